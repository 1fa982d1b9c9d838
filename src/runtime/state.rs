//! `ctx.state` backed by the store: the adapter between the ops' [`StateBackend`] and the
//! store's [`StateStore`].

use eddy_runtime_js::{StateBackend, StateError};

use crate::store::{StateStore, StoreError};

/// One handler's store namespace, as the ops see it.
pub struct StoreState(pub Box<dyn StateStore>);

fn state_error(e: StoreError) -> StateError {
    match e {
        StoreError::KeyLength { .. } | StoreError::ValueTooLarge { .. } => StateError::Invalid(e.to_string()),
        StoreError::Quota(quota) => StateError::Quota(format!("ctx.state.set: {quota}")),
        other => StateError::Failed(other.to_string()),
    }
}

impl StateBackend for StoreState {
    fn get(&self, key: &str) -> Result<Option<serde_json::Value>, StateError> {
        self.0.get(key).map_err(state_error)
    }

    fn set(&self, key: &str, value: &serde_json::Value) -> Result<(), StateError> {
        self.0.set(key, value).map_err(state_error)
    }

    fn delete(&self, key: &str) -> Result<bool, StateError> {
        self.0.delete(key).map_err(state_error)
    }

    fn list(&self, prefix: &str, limit: usize) -> Result<Vec<(String, serde_json::Value)>, StateError> {
        let entries = self.0.list(prefix, limit).map_err(state_error)?;
        Ok(entries.into_iter().map(|e| (e.key, e.value)).collect())
    }
}
