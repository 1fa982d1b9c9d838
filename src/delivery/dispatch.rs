//! Choosing what runs next: a scan of the due queue that starts what the concurrency limits
//! allow. It must stay cheap under load, since it runs after every finished attempt and on
//! every ingest: deliveries of a handler at its limit are passed over by a lookup in memory
//! instead of a read of their records, and a scan that could start nothing says so, so the
//! engine waits for a permit instead of scanning again at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{DeliveryError, Engine, attempt};
use crate::clock::now_ms;

/// What one scan did.
#[derive(Debug, Default)]
pub(super) struct Dispatched {
    /// Attempts started.
    pub started: usize,
    /// Due deliveries were left for lack of a permit.
    pub blocked: bool,
}

/// Entries kept before the map is emptied and refilled (a bound on memory, not a cache
/// policy: a miss costs one record read).
const REMEMBERED: usize = 100_000;

/// The handler of each queued delivery seen by a scan.
#[derive(Default)]
pub(super) struct HandlerOf(Mutex<HashMap<String, Arc<str>>>);

impl HandlerOf {
    fn get(&self, id: &str) -> Option<Arc<str>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    fn remember(&self, id: &str, handler: &str) -> Arc<str> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= REMEMBERED {
            map.clear();
        }
        let handler: Arc<str> = Arc::from(handler);
        map.insert(id.to_owned(), handler.clone());
        handler
    }

    fn forget(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

impl Engine {
    /// Claims every due delivery that has a free permit and starts its attempt.
    pub(super) async fn dispatch(self: &Arc<Self>, tasks: &mut JoinSet<()>) -> Result<Dispatched, DeliveryError> {
        let now = now_ms();
        let mut done = Dispatched::default();
        let mut full: HashSet<Arc<str>> = HashSet::new();
        // One snapshot per scan: each attempt gets the code, limits and policy of one version.
        let registry = self.registry.snapshot();
        for (due_ms, id) in self.store.due(now, super::SCAN).await? {
            let Some(handler) = self.handler_of(&id).await? else {
                continue;
            };
            if full.contains(&handler) {
                done.blocked = true;
                continue;
            }
            let version = registry.version(&handler);
            // No version in use: nothing to limit, the attempt fails at once as "not loaded".
            let permits = version
                .as_ref()
                .map_or_else(|| Arc::new(Semaphore::new(1)), |v| v.limits.permits.clone());
            let Ok(global) = self.global.clone().try_acquire_owned() else {
                done.blocked = true;
                break;
            };
            let Ok(local) = permits.try_acquire_owned() else {
                full.insert(handler);
                done.blocked = true;
                continue;
            };
            let Some(claimed) = self.store.claim(due_ms, &id, now).await? else {
                continue;
            };
            self.handler_of.forget(&id);
            done.started += 1;
            let engine = self.clone();
            tasks.spawn(async move {
                attempt::run(&engine, claimed, version.as_deref()).await;
                drop((global, local));
            });
        }
        Ok(done)
    }

    async fn handler_of(&self, id: &str) -> Result<Option<Arc<str>>, DeliveryError> {
        if let Some(handler) = self.handler_of.get(id) {
            return Ok(Some(handler));
        }
        Ok(self
            .store
            .delivery(id)
            .await?
            .map(|delivery| self.handler_of.remember(id, &delivery.handler)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_handlers_are_bounded_and_forgotten_on_claim() {
        let map = HandlerOf::default();
        map.remember("d1", "h");
        assert_eq!(map.get("d1").as_deref(), Some("h"));
        map.forget("d1");
        assert_eq!(map.get("d1"), None);
        for n in 0..REMEMBERED + 1 {
            map.remember(&format!("d{n}"), "h");
        }
        assert!(map.0.lock().unwrap().len() <= REMEMBERED);
    }
}
