//! A store that opens its folder on the first `ctx.state` call. `eddy run` runs one event,
//! and most handlers never touch `ctx.state`: for them the folder is never opened, so it is
//! neither locked, nor flushed, nor sealed, and the run pays none of that.
//!
//! The first state call opens the store on a blocking thread and waits for it: the wait
//! counts toward the handler's timeout, never its CPU limit (an open after a crash copies the
//! files aside first, which takes a while on a large folder). A failed open fails that call
//! and every later one with the open's error, so a handler sees, say, that another eddy holds
//! the folder.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tokio::sync::OnceCell;

use super::backend::{Pending, StateSource, StateStore};
use super::{HandlerState, StateEntry, StateQuota, Store, StoreError};

/// The folder `dir`, opened with a page cache of `cache_bytes` once something asks for state.
#[derive(Clone)]
pub struct OpenOnUse(Arc<Folder>);

struct Folder {
    dir: PathBuf,
    cache_bytes: u64,
    /// The open's outcome; an error is kept as its message, repeated to every caller.
    opened: OnceCell<Result<Store, String>>,
}

impl OpenOnUse {
    pub fn new(dir: PathBuf, cache_bytes: u64) -> Self {
        Self(Arc::new(Folder {
            dir,
            cache_bytes,
            opened: OnceCell::new(),
        }))
    }

    /// The store, if a state call opened it.
    pub fn opened(&self) -> Option<&Store> {
        self.0.opened.get().and_then(|opened| opened.as_ref().ok())
    }
}

impl Folder {
    async fn store(&self) -> Result<&Store, StoreError> {
        let opened = self
            .opened
            .get_or_init(|| async {
                let (dir, cache_bytes) = (self.dir.clone(), self.cache_bytes);
                tokio::task::spawn_blocking(move || Store::open(&dir, cache_bytes).map_err(|e| e.to_string()))
                    .await
                    .unwrap_or_else(|e| Err(format!("the store could not be opened: {e}")))
            })
            .await;
        opened
            .as_ref()
            .map_err(|message| StoreError::NotOpened(message.clone()))
    }
}

impl StateSource for OpenOnUse {
    fn handler_state(&self, handler: &str, quota: StateQuota) -> Box<dyn StateStore> {
        Box::new(StateOnUse {
            folder: self.0.clone(),
            handler: handler.to_owned(),
            quota,
            state: OnceLock::new(),
        })
    }
}

/// One handler's state in a folder not opened yet.
struct StateOnUse {
    folder: Arc<Folder>,
    handler: String,
    quota: StateQuota,
    state: OnceLock<HandlerState>,
}

impl StateOnUse {
    async fn state(&self) -> Result<&HandlerState, StoreError> {
        if let Some(state) = self.state.get() {
            return Ok(state);
        }
        let store = self.folder.store().await?;
        Ok(self
            .state
            .get_or_init(|| store.handler_state(&self.handler, self.quota)))
    }
}

impl StateStore for StateOnUse {
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Option<Value>> {
        Box::pin(async move { self.state().await?.get(key) })
    }
    fn set<'a>(&'a self, key: &'a str, value: &'a Value) -> Pending<'a, ()> {
        Box::pin(async move { self.state().await?.set(key, value) })
    }
    fn delete<'a>(&'a self, key: &'a str) -> Pending<'a, bool> {
        Box::pin(async move { self.state().await?.delete(key) })
    }
    fn list<'a>(&'a self, prefix: &'a str, limit: usize) -> Pending<'a, Vec<StateEntry>> {
        Box::pin(async move { self.state().await?.list(prefix, limit) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_folder_is_opened_by_the_first_state_call_only() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let source = OpenOnUse::new(data.clone(), 1 << 20);
        let state = source.handler_state("h", StateQuota::UNLIMITED);
        assert!(source.opened().is_none());
        assert!(!data.exists(), "nothing is created before a state call");
        state.set("k", &serde_json::json!(1)).await.unwrap();
        assert!(source.opened().is_some());
        assert_eq!(state.get("k").await.unwrap(), Some(serde_json::json!(1)));
        // Another handler's state shares the folder opened once.
        let other = source.handler_state("other", StateQuota::UNLIMITED);
        assert_eq!(other.get("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_folder_that_cannot_be_opened_fails_every_state_call_with_why() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let _holder = Store::open(&data, 1 << 20).unwrap();
        let source = OpenOnUse::new(data, 1 << 20);
        let state = source.handler_state("h", StateQuota::UNLIMITED);
        for _ in 0..2 {
            let error = state.get("k").await.unwrap_err().to_string();
            assert!(error.contains("in use by another eddy process"), "{error}");
        }
        assert!(source.opened().is_none());
    }
}
