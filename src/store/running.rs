//! Deliveries claimed for an attempt, held in memory only.
//!
//! A claim takes the delivery's queue entry and writes nothing else: its record keeps saying
//! pending (due when it was claimed) and its index entries stay where they are until the
//! attempt finishes and moves them once. The status a reader sees is "running" while the
//! claim is held here. Nothing of a claim survives the process, so what a stop leaves behind
//! is put back in the queue: by the last handle on the store as it is dropped (before a clean
//! close is recorded), and, after a crash, by the next open, which queues every pending
//! delivery that has no queue entry. An engine that starts over a store still holding claims
//! (of an engine stopped before it) queues them again too (`requeue_running`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::records::{DeliveryRecord, DeliveryStatus};
use super::{Store, StoreError, keys};

/// One delivery claimed and not yet finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Claim {
    pub handler: String,
    /// The due time of the queue entry the claim took.
    pub due_ms: u64,
    pub created_ms: u64,
    pub claimed_ms: u64,
}

/// The claims of one open store, by delivery id.
#[derive(Default)]
pub(super) struct Claims {
    held: Mutex<HashMap<String, Claim>>,
    /// The store's queue, where claims still held go back when the store is dropped.
    queue: Option<sled::Tree>,
}

impl Claims {
    pub fn new(queue: sled::Tree) -> Self {
        Self {
            held: Mutex::default(),
            queue: Some(queue),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Claim>> {
        // Each change is one map operation, so a panic elsewhere leaves nothing half-changed.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called once, as the last handle on the store goes: puts every claim still held back in
    /// the queue, so a clean close leaves every pending delivery queued. A failed store is
    /// left as it is (its next open takes the path of a crash, which queues them).
    pub fn drop_with_store(&mut self, failed: bool) {
        let Some(queue) = self.queue.take() else { return };
        if failed {
            // Dropping a handle on a failed store would flush (see `Store`'s `Drop`).
            std::mem::forget(queue);
            return;
        }
        for (id, claim) in self.map().drain() {
            // A delivery deleted meanwhile leaves an entry its claim drops (see `claim`).
            if let Err(e) = queue.insert(keys::queue_key(&claim.handler, claim.due_ms, &id), &[] as &[u8]) {
                tracing::error!("cannot queue delivery {id} again as the store closes: {e}");
                break;
            }
        }
    }

    /// Records the claim of `record`, queued at `due_ms`, made at `now_ms`; returns the
    /// record as readers now see it.
    pub fn hold(&self, record: DeliveryRecord, due_ms: u64, now_ms: u64) -> DeliveryRecord {
        let claim = Claim {
            handler: record.handler.clone(),
            due_ms,
            created_ms: record.created_ms,
            claimed_ms: now_ms,
        };
        let seen = running(record, &claim);
        self.map().insert(seen.id.clone(), claim);
        seen
    }

    /// Ends the claim of `id`; what it was, if held.
    pub fn release(&self, id: &str) -> Option<Claim> {
        self.map().remove(id)
    }

    pub fn holds(&self, id: &str) -> bool {
        self.map().contains_key(id)
    }

    /// The claims, by delivery id, without ending them.
    pub fn snapshot(&self) -> Vec<(String, Claim)> {
        self.map().iter().map(|(id, c)| (id.clone(), c.clone())).collect()
    }

    /// `record` as a reader sees it: running while claimed.
    pub fn overlay(&self, record: DeliveryRecord) -> DeliveryRecord {
        match self.map().get(&record.id) {
            Some(claim) => running(record, claim),
            None => record,
        }
    }
}

/// `record` while `claim` holds it.
fn running(mut record: DeliveryRecord, claim: &Claim) -> DeliveryRecord {
    record.status = DeliveryStatus::Running;
    record.next_attempt_ms = None;
    record.updated_ms = claim.claimed_ms;
    record
}

impl Store {
    /// The keys of running deliveries between `start` and `end` in the status index, in
    /// order: the claims held in memory, and any that a folder of an earlier version records
    /// as running until the engine queues them again at its start.
    pub(super) fn running_keys(
        &self,
        prefix: &[u8],
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Vec<sled::IVec>, StoreError> {
        let claimed = self.shared.claims.snapshot().into_iter();
        let claimed = claimed.map(|(id, claim)| [prefix, &keys::position(claim.created_ms, &id)].concat());
        let recorded = match end {
            Some(end) => self.trees.deliveries_by_status.range(start..end),
            None => self.trees.deliveries_by_status.range(start..),
        };
        let mut keys = recorded.keys().collect::<Result<Vec<_>, _>>()?;
        let within = |key: &Vec<u8>| key.as_slice() >= start && end.is_none_or(|end| key.as_slice() < end);
        keys.extend(claimed.filter(within).map(sled::IVec::from));
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    /// Queues every pending delivery that has no queue entry: what claims a crash left
    /// behind. One read of the record and one of the queue per pending delivery, so it runs
    /// only at an open after a close that was not clean.
    pub(super) fn queue_lost_claims(&self) -> Result<usize, StoreError> {
        let pending = keys::delivery_prefix(DeliveryStatus::Pending, None);
        let mut queued = 0;
        for key in self.trees.deliveries_by_status.scan_prefix(&pending).keys() {
            let (_, id) = keys::parse_position(&key?[pending.len()..])?;
            let Some(record) = self.stored_delivery(&id)? else {
                continue;
            };
            // An entry whose record moved on is not the record's (see `index.rs`).
            let (DeliveryStatus::Pending, Some(due_ms)) = (record.status, record.next_attempt_ms) else {
                continue;
            };
            if !self
                .trees
                .queue
                .contains_key(keys::queue_key(&record.handler, due_ms, &id))?
            {
                self.enqueue(&record.handler, due_ms, &id)?;
                queued += 1;
            }
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NextStep;
    use crate::store::testing::{self, CACHE_BYTES, assert_consistent, index_snapshot, ingest};

    fn record(id: &str) -> DeliveryRecord {
        DeliveryRecord {
            id: id.into(),
            event_id: "e".into(),
            event_type: "t".into(),
            handler: "h".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            created_ms: 5,
            updated_ms: 5,
            next_attempt_ms: Some(7),
            last_error: None,
            replay_requested: false,
            replay_from: 0,
            deferred: 0,
            order_key: None,
            line_place: None,
            steps_since: None,
        }
    }

    fn listed(store: &Store, status: DeliveryStatus) -> Vec<String> {
        let filter = crate::store::DeliveryFilter {
            status: Some(status),
            handler: Some("h".into()),
            limit: 10,
            ..Default::default()
        };
        testing::delivery_ids(store, &filter)
    }

    #[test]
    fn a_held_claim_reads_as_running_until_released() {
        let claims = Claims::default();
        claims.hold(record("d"), 7, 9);
        let seen = claims.overlay(record("d"));
        assert_eq!(
            (seen.status, seen.next_attempt_ms, seen.updated_ms),
            (DeliveryStatus::Running, None, 9)
        );
        assert_eq!(claims.overlay(record("other")).status, DeliveryStatus::Pending);
        let claim = claims.release("d").expect("held");
        assert_eq!((claim.due_ms, claim.created_ms, claim.handler.as_str()), (7, 5, "h"));
        assert!(!claims.holds("d"));
        assert_eq!(claims.overlay(record("d")).status, DeliveryStatus::Pending);
    }

    #[test]
    fn a_claim_writes_nothing_but_the_removal_of_its_queue_entry() {
        let store = Store::temporary().unwrap();
        let id = ingest(&store, "e", &["h"], 10).remove(0);
        let (record, indexes) = (store.stored_delivery(&id).unwrap(), index_snapshot(&store));
        let claimed = testing::claim(&store, 10, &id, 11).unwrap().expect("claimed");
        assert_eq!((claimed.status, claimed.updated_ms), (DeliveryStatus::Running, 11));
        assert_eq!(store.stored_delivery(&id).unwrap(), record, "the record is not written");
        assert_eq!(index_snapshot(&store), indexes, "no index entry moves");
        assert!(store.trees.queue.is_empty());
        assert_eq!(store.delivery(&id).unwrap().unwrap().status, DeliveryStatus::Running);
        assert_eq!(listed(&store, DeliveryStatus::Running), std::slice::from_ref(&id));
        assert!(listed(&store, DeliveryStatus::Pending).is_empty());
        assert!(testing::claim(&store, 10, &id, 12).unwrap().is_none(), "claimed once");
        assert_consistent(&store);
    }

    #[test]
    fn concurrent_claimers_take_each_delivery_once() {
        let store = Store::temporary().unwrap();
        let ids: Vec<String> = (0..200)
            .flat_map(|i| ingest(&store, &format!("e{i}"), &["h"], 10))
            .collect();
        let start = std::sync::Barrier::new(8);
        let claimed: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        let mut mine = Vec::new();
                        // Every worker reads the same due entries and races for each.
                        for (due, id) in store.due("h", 10, usize::MAX).unwrap() {
                            if let Some(mut d) = store.claim("h", due, &id, 11).unwrap() {
                                let n = d.attempts + 1;
                                let attempt = crate::store::AttemptRecord {
                                    n,
                                    started_ms: 11,
                                    duration_ms: 1.0,
                                    succeeded: true,
                                    report: serde_json::json!({}),
                                    replay: false,
                                    event_version: None,
                                    recorded_steps: false,
                                };
                                store.finish_attempt(&mut d, &attempt, NextStep::Succeeded, 12).unwrap();
                                mine.push(id);
                            }
                        }
                        mine
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        let mut sorted = claimed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), claimed.len(), "a delivery was claimed twice");
        assert_eq!(claimed.len(), ids.len(), "every delivery was claimed");
        for id in &ids {
            assert_eq!(store.attempts(id).unwrap().len(), 1, "{id} ran once");
        }
        assert_eq!(store.queue_depth(), 0);
        assert_consistent(&store);
    }

    #[test]
    fn a_claimed_delivery_removed_without_an_attempt_leaves_no_claim() {
        let store = Store::temporary().unwrap();
        let id = ingest(&store, "e", &["h"], 10).remove(0);
        testing::claim(&store, 10, &id, 11).unwrap().unwrap();
        // What the engine does with a delivery whose event never came.
        store.forget_delivery(&id).unwrap();
        assert!(!store.shared.claims.holds(&id));
        assert!(listed(&store, DeliveryStatus::Running).is_empty());
        assert_eq!(store.requeue_running(99).unwrap(), 0, "nothing to queue again");
        assert!(store.trees.queue.is_empty());
    }

    #[test]
    fn claims_of_a_stopped_engine_are_queued_again_at_their_due_time() {
        let store = Store::temporary().unwrap();
        let id = ingest(&store, "e", &["h"], 10).remove(0);
        testing::claim(&store, 10, &id, 11).unwrap().unwrap();
        assert_eq!(store.requeue_running(99).unwrap(), 1);
        assert_eq!(testing::due(&store, 10), [(10, id.clone())]);
        assert_eq!(store.delivery(&id).unwrap().unwrap().status, DeliveryStatus::Pending);
        assert_eq!(store.requeue_running(99).unwrap(), 0, "the claim ended");
    }

    #[test]
    fn a_delivery_an_older_version_recorded_as_running_is_queued_again_now() {
        let store = Store::temporary().unwrap();
        let id = ingest(&store, "e", &["h"], 10).remove(0);
        // What a claim wrote up to schema 4: the record says running, the entry is gone.
        let pending = store.stored_delivery(&id).unwrap().unwrap();
        let mut running = pending.clone();
        (running.status, running.next_attempt_ms) = (DeliveryStatus::Running, None);
        store.write_delivery(Some(&pending), &running).unwrap();
        store.dequeue("h", 10, &id).unwrap();
        assert_eq!(listed(&store, DeliveryStatus::Running), std::slice::from_ref(&id));
        assert_eq!(store.requeue_running(99).unwrap(), 1);
        assert_eq!(testing::due(&store, 99), [(99, id.clone())]);
        assert_consistent(&store);
    }

    /// Claims `handler` "h"'s delivery of a new event in a store at `dir`, then lets the
    /// store go as a crash would (the claim forgotten, nothing queued again) or as a
    /// process ends (the last handle dropped with the claim held).
    fn claim_then_stop(dir: &std::path::Path, crash: bool) -> String {
        let store = Store::open(dir, CACHE_BYTES).unwrap();
        let id = ingest(&store, "e", &["h"], 10).remove(0);
        testing::claim(&store, 10, &id, 11).unwrap().unwrap();
        if crash {
            store.shared.claims.release(&id);
        }
        store.db.flush().unwrap();
        id
    }

    #[test]
    fn claims_a_crash_left_are_queued_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let id = claim_then_stop(dir.path(), true);
        // Not sealed: the open takes the path of a crash.
        let store = testing::open_when_free(dir.path()).unwrap();
        assert_eq!(testing::due(&store, 10), [(10, id)]);
        assert_consistent(&store);
    }

    #[tokio::test]
    async fn the_last_handle_queues_what_is_still_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let id = claim_then_stop(dir.path(), false);
        let wait = std::time::Duration::from_secs(10);
        assert!(Store::seal(dir.path(), wait).await.unwrap(), "closed cleanly");
        let store = testing::open_when_free(dir.path()).unwrap();
        assert_eq!(testing::due(&store, 10), [(10, id)]);
    }
}
