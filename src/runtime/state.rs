//! `ctx.state` backed by the store: the adapter between the ops' [`StateBackend`] and the
//! store's [`StateStore`].

use eddy_runtime_js::{StateBackend, StateError, StateFuture};

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
    fn get<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<serde_json::Value>> {
        Box::pin(async move { self.0.get(key).await.map_err(state_error) })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a serde_json::Value) -> StateFuture<'a, ()> {
        Box::pin(async move { self.0.set(key, value).await.map_err(state_error) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StateFuture<'a, bool> {
        Box::pin(async move { self.0.delete(key).await.map_err(state_error) })
    }

    fn list<'a>(&'a self, prefix: &'a str, limit: usize) -> StateFuture<'a, Vec<(String, serde_json::Value)>> {
        Box::pin(async move {
            let entries = self.0.list(prefix, limit).await.map_err(state_error)?;
            Ok(entries.into_iter().map(|e| (e.key, e.value)).collect())
        })
    }
}
