//! Deliveries: the queue ordered by due time, claiming, attempts and their outcomes.

use std::sync::atomic::Ordering;

use super::records::{AttemptRecord, DeliveryRecord, DeliveryStatus, NextStep};
use super::{Store, StoreError, codec, keys};

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub handler: Option<String>,
    pub event_type: Option<String>,
    /// Only deliveries created at or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Only deliveries created before this time (ms since the epoch).
    pub until_ms: Option<u64>,
    /// Only deliveries past this one in the listing's order (the previous page's last id).
    pub after_id: Option<String>,
    /// Only deliveries whose last error contains this text.
    pub error: Option<String>,
    /// Newest first rather than in creation order.
    pub newest_first: bool,
    pub limit: usize,
}

impl Store {
    /// Each handler with queued deliveries, with when its earliest is due: one seek per
    /// handler, whatever the length of its queue.
    pub fn queue_heads(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut heads = Vec::new();
        let mut from = Vec::new();
        while let Some(item) = self.trees.queue.range(from.as_slice()..).next() {
            let (handler, due_ms, _) = keys::parse_queue_key(&item?.0)?;
            // Past every key of this handler (its prefix ends in 0x00, so there always is a
            // first key past them).
            let next = keys::prefix_end(&keys::queue_prefix(&handler));
            heads.push((handler, due_ms));
            match next {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(heads)
    }

    /// Up to `limit` of `handler`'s queued deliveries due at or before `now_ms`, earliest
    /// first, as `(due_ms, delivery id)`.
    pub fn due(&self, handler: &str, now_ms: u64, limit: usize) -> Result<Vec<(u64, String)>, StoreError> {
        let start = keys::queue_prefix(handler);
        let end = keys::queue_key(handler, now_ms.saturating_add(1), "");
        let prefix = start.len();
        self.trees
            .queue
            .range(start..end)
            .take(limit)
            .map(|item| keys::parse_position(&item?.0[prefix..]))
            .collect()
    }

    /// Takes a queued delivery for an attempt: removes its queue entry and holds the claim in
    /// memory (see `running.rs`); the record is not written. None if another worker took it
    /// first, or if the entry is stale (see below).
    pub fn claim(
        &self,
        handler: &str,
        due_ms: u64,
        id: &str,
        now_ms: u64,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        self.write(|| {
            let _held = self.shared.stripes.lock(id);
            let record = self.stored_delivery(id)?;
            let current = record.as_ref().is_some_and(|d| {
                d.status == DeliveryStatus::Pending && d.next_attempt_ms == Some(due_ms) && d.handler == handler
            });
            // Every write that queues a delivery puts the entry in before the record says
            // pending, so a crash can leave an entry the record does not match: it is dropped.
            // The entry is the claim's token: whoever removes it holds the claim.
            let taken = self.dequeue(handler, due_ms, id)?;
            match record {
                Some(record) if current && taken => Ok(Some(self.shared.claims.hold(record, due_ms, now_ms))),
                _ => Ok(None),
            }
        })
    }

    /// Records an attempt and what follows it; a retry is queued for its due time. Nothing
    /// is written if the delivery was removed meanwhile (its event was deleted).
    pub fn finish_attempt(
        &self,
        delivery: &mut DeliveryRecord,
        attempt: &AttemptRecord,
        next: NextStep,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(|| {
            let raw = codec::encode(keys::ATTEMPT_RECORD_V1, attempt)?;
            let held = self.shared.stripes.lock(&delivery.id);
            let finished = self.update_delivery_held(&delivery.id, |stored| {
                self.trees
                    .attempts
                    .insert(keys::attempt_key(&stored.id, attempt.n), raw)?;
                stored.attempts = attempt.n;
                if attempt.recorded_steps && stored.steps_since.is_none() {
                    stored.steps_since = Some(attempt.n);
                }
                stored.updated_ms = now_ms;
                stored.replay_requested = false;
                // A success leaves its key's line, and a death unless it holds the key.
                let leaves = matches!(next, NextStep::Succeeded | NextStep::Dead { holds_key: false, .. });
                let (status, due_ms, error) = match next {
                    NextStep::Succeeded => (DeliveryStatus::Succeeded, None, None),
                    NextStep::Retry { due_ms, error } => (DeliveryStatus::Pending, Some(due_ms), Some(error)),
                    NextStep::Defer { due_ms, error } => {
                        stored.deferred += 1;
                        (DeliveryStatus::Pending, Some(due_ms), Some(error))
                    }
                    NextStep::Dead { error, .. } => (DeliveryStatus::Dead, None, Some(error)),
                };
                if leaves {
                    // Its key's next delivery is queued by the caller, once this is on disk
                    // (see `Store::advance_line`).
                    stored.line_place = None;
                }
                if let Some(due_ms) = due_ms {
                    // Queued before the record says pending: a crash between the two runs the
                    // delivery again, which at-least-once allows; the other order could strand it.
                    self.enqueue(&stored.handler, due_ms, &stored.id)?;
                }
                stored.status = status;
                stored.next_attempt_ms = due_ms;
                // A success clears the error of an earlier attempt: the attempts keep it.
                stored.last_error = error;
                Ok(Some(()))
            });
            // Released under the lock: a retry due at once may be claimed again right after.
            self.shared.claims.release(&delivery.id);
            drop(held);
            if let Some((stored, _)) = finished? {
                *delivery = stored;
            }
            Ok(())
        })
    }

    /// Puts back in the queue the deliveries claimed and not finished (by an engine that
    /// stopped), due at their claimed time, and those an earlier version of eddy recorded as
    /// running when it stopped, due at `now_ms` (at least once across stops); returns how many.
    pub fn requeue_running(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.write(|| {
            self.repair_lines(now_ms)?;
            let mut count = self.requeue_claims()?;
            let running = keys::delivery_prefix(DeliveryStatus::Running, None);
            let ids = self
                .trees
                .deliveries_by_status
                .scan_prefix(&running)
                .keys()
                .map(|key| Ok(keys::parse_position(&key?[running.len()..])?.1))
                .collect::<Result<Vec<_>, StoreError>>()?;
            for id in ids {
                if self.back_to_queue(&id, now_ms, now_ms)? {
                    count += 1;
                }
            }
            Ok(count)
        })
    }

    /// Ends every claim, its delivery queued again at the due time it was claimed at;
    /// returns how many were queued (a delivery removed meanwhile is not).
    pub(super) fn requeue_claims(&self) -> Result<usize, StoreError> {
        let mut count = 0;
        for (id, claim) in self.shared.claims.snapshot() {
            let _held = self.shared.stripes.lock(&id);
            if self.shared.claims.release(&id).is_none() {
                continue; // finished meanwhile
            }
            if self.stored_delivery(&id)?.is_some() {
                self.enqueue(&claim.handler, claim.due_ms, &id)?;
                count += 1;
            }
        }
        Ok(count)
    }

    /// The delivery with `id`, as readers see it: running while claimed.
    pub fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        Ok(self.stored_delivery(id)?.map(|d| self.shared.claims.overlay(d)))
    }

    /// The delivery with `id` as its record stores it (a claimed one says pending).
    pub(super) fn stored_delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        let raw = self.trees.deliveries.get(id.as_bytes())?;
        raw.map(|raw| codec::decode(keys::DELIVERY_RECORD_V1, &raw)).transpose()
    }

    /// Every attempt of delivery `id`, in order.
    pub fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        keys::numbered(&self.trees.attempts, id)
            .map(|item| codec::decode(keys::ATTEMPT_RECORD_V1, &item?.1))
            .collect()
    }

    /// Removes a delivery with its queue entry, attempts and index entries (its event does
    /// not exist, or is being deleted).
    pub fn forget_delivery(&self, id: &str) -> Result<(), StoreError> {
        self.write(|| self.forget_delivery_if(id, |_| true).map(|_| ()))
    }

    /// Removes delivery `id` if `gone` holds for its stored record; whether it did.
    pub(super) fn forget_delivery_if(
        &self,
        id: &str,
        gone: impl Fn(&DeliveryRecord) -> bool,
    ) -> Result<bool, StoreError> {
        let held = self.shared.stripes.lock(id);
        match self.stored_delivery(id)? {
            Some(delivery) if gone(&delivery) => {
                self.erase_delivery(&delivery)?;
                drop(held);
                if let (Some(key), Some(_)) = (&delivery.order_key, delivery.line_place) {
                    self.advance_line(&delivery.handler, key, crate::clock::now_ms())?;
                }
                Ok(true)
            }
            Some(_) => Ok(false),
            None => {
                // Attempts of a delivery whose record is gone: left by an earlier crash.
                for item in keys::numbered(&self.trees.attempts, id) {
                    self.trees.attempts.remove(item?.0)?;
                }
                Ok(false)
            }
        }
    }

    /// How many deliveries are queued; kept as a count, so this reads no tree.
    pub fn queue_depth(&self) -> usize {
        self.shared.queued.load(Ordering::SeqCst)
    }

    /// Queues `handler`'s delivery `id` for `due_ms`.
    pub(super) fn enqueue(&self, handler: &str, due_ms: u64, id: &str) -> Result<(), StoreError> {
        let key = keys::queue_key(handler, due_ms, id);
        if self.trees.queue.insert(key, &[] as &[u8])?.is_none() {
            self.shared.queued.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Takes `handler`'s delivery `id` off the queue for `due_ms`; whether it was there.
    pub(super) fn dequeue(&self, handler: &str, due_ms: u64, id: &str) -> Result<bool, StoreError> {
        let removed = self.trees.queue.remove(keys::queue_key(handler, due_ms, id))?.is_some();
        if removed {
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one_delivery(store: &Store) -> String {
        crate::store::testing::ingest(store, "e", &["h"], 10).remove(0)
    }

    fn attempt(n: u32, succeeded: bool) -> AttemptRecord {
        AttemptRecord {
            n,
            started_ms: 10,
            duration_ms: 1.0,
            succeeded,
            report: json!({}),
            replay: false,
            event_version: None,
            recorded_steps: false,
        }
    }

    #[test]
    fn the_queue_is_read_per_handler() {
        let store = Store::temporary().unwrap();
        let first = crate::store::testing::ingest(&store, "e1", &["h", "h.x"], 10);
        let second = crate::store::testing::ingest(&store, "e2", &["h"], 20);
        // "h.x" starts with "h": its entries are still its own.
        let heads = store.queue_heads().unwrap();
        assert_eq!(heads, [("h".to_owned(), 10), ("h.x".to_owned(), 10)]);
        assert_eq!(store.due("h", 15, 10).unwrap(), [(10, first[0].clone())]);
        assert_eq!(
            store.due("h", 20, 10).unwrap(),
            [(10, first[0].clone()), (20, second[0].clone())]
        );
        assert_eq!(
            store.due("h", 20, 1).unwrap(),
            [(10, first[0].clone())],
            "earliest first"
        );
        assert_eq!(store.due("h.x", 20, 10).unwrap(), [(10, first[1].clone())]);
        assert!(store.due("h.x", 5, 10).unwrap().is_empty());
        assert!(store.due("other", 20, 10).unwrap().is_empty());
    }

    #[test]
    fn claim_retry_and_finish() {
        let store = Store::temporary().unwrap();
        let id = one_delivery(&store);
        let mut d = crate::store::testing::claim(&store, 10, &id, 11)
            .unwrap()
            .expect("claimed");
        assert_eq!(d.status, DeliveryStatus::Running);
        assert!(
            crate::store::testing::claim(&store, 10, &id, 11).unwrap().is_none(),
            "a delivery is claimed once"
        );
        let retry = NextStep::Retry {
            due_ms: 5000,
            error: "boom".into(),
        };
        store.finish_attempt(&mut d, &attempt(1, false), retry, 12).unwrap();
        let waiting = store.delivery(&id).unwrap().unwrap();
        assert_eq!(waiting.last_error.as_deref(), Some("boom"));
        assert_eq!(store.queue_heads().unwrap(), [("h".to_owned(), 5000)]);
        assert!(crate::store::testing::due(&store, 4999).is_empty());
        let mut d = crate::store::testing::claim(&store, 5000, &id, 5000).unwrap().unwrap();
        store
            .finish_attempt(&mut d, &attempt(2, true), NextStep::Succeeded, 5001)
            .unwrap();
        let stored = store.delivery(&id).unwrap().unwrap();
        assert_eq!((stored.status, stored.attempts), (DeliveryStatus::Succeeded, 2));
        assert_eq!(stored.last_error, None, "a succeeded delivery shows no earlier error");
        let attempts = store.attempts(&id).unwrap();
        assert_eq!(attempts.iter().map(|a| a.n).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(store.queue_depth(), 0);
    }

    #[test]
    fn a_queue_entry_left_by_a_crash_is_dropped_not_run() {
        let store = Store::temporary().unwrap();
        let id = one_delivery(&store);
        crate::store::testing::attempt(&store, &id, NextStep::Succeeded, 11);
        // As if the process died after queueing a replay, before the record said pending.
        store.enqueue("h", 12, &id).unwrap();
        assert!(crate::store::testing::claim(&store, 12, &id, 13).unwrap().is_none());
        assert_eq!(store.queue_depth(), 0, "the stale entry is gone");
        let stored = store.delivery(&id).unwrap().unwrap();
        assert_eq!((stored.status, stored.attempts), (DeliveryStatus::Succeeded, 1));
    }

    #[test]
    fn deliveries_list_by_filter() {
        let store = Store::temporary().unwrap();
        let id = one_delivery(&store);
        let mut d = crate::store::testing::claim(&store, 10, &id, 11).unwrap().unwrap();
        store
            .finish_attempt(
                &mut d,
                &attempt(1, false),
                NextStep::Dead {
                    error: "no".into(),
                    holds_key: true,
                },
                12,
            )
            .unwrap();
        let dead = DeliveryFilter {
            status: Some(DeliveryStatus::Dead),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.list_deliveries(&dead).unwrap().len(), 1);
        let other = DeliveryFilter {
            handler: Some("x".into()),
            limit: 10,
            ..Default::default()
        };
        assert!(store.list_deliveries(&other).unwrap().is_empty());
        let after = DeliveryFilter {
            after_id: Some(id),
            limit: 10,
            ..Default::default()
        };
        assert!(store.list_deliveries(&after).unwrap().is_empty());
    }
}
