//! Secondary indexes: keeping them in step with the records they are derived from.
//!
//! sled has no cheap atomic write across trees, so every change follows one order: entries the
//! new record needs are written first, then the record, then entries only the old record had
//! are removed. A crash between two writes leaves an extra entry, never a record without its
//! entries, and every reader checks an entry against its record before using it. Changes to one
//! delivery are serialised by a lock striped by id, so two writers cannot interleave those
//! steps (which could remove an entry the other just needed).

use std::sync::{Mutex, MutexGuard};

use super::records::{DeliveryRecord, DeliveryStatus, EventRecord};
use super::{Store, StoreError, codec, keys};

/// Locks taken by id (a delivery's, an event's, a handler's): enough stripes that unrelated
/// ones rarely wait.
pub(super) struct Stripes([Mutex<()>; 64]);

impl Default for Stripes {
    fn default() -> Self {
        Self(std::array::from_fn(|_| Mutex::new(())))
    }
}

impl Stripes {
    /// Holds the lock of `id`. Callers take one stripe at a time, so no two locks
    /// are ever held together and they cannot deadlock.
    pub fn lock(&self, id: impl AsRef<[u8]>) -> MutexGuard<'_, ()> {
        // FNV-1a: cheap and spreads the random tail of an id well enough.
        let hash = id.as_ref().iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        let stripe = &self.0[(hash % self.0.len() as u64) as usize];
        // The lock guards no data, so a panic elsewhere leaves nothing half-changed here.
        stripe.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store {
    /// The index entries of delivery `d`, as `(tree, key)`.
    pub(super) fn delivery_entries(&self, d: &DeliveryRecord) -> Vec<(&sled::Tree, Vec<u8>)> {
        let t = &self.trees;
        let at = keys::position(d.created_ms, &d.id);
        let under = |prefix: Vec<u8>| [prefix, at.clone()].concat();
        let mut entries = vec![(&t.deliveries_by_status, under(keys::delivery_prefix(d.status, None)))];
        if d.status != DeliveryStatus::Running {
            let handler = under(keys::delivery_prefix(d.status, Some(&d.handler)));
            let kind = under(keys::delivery_prefix(d.status, Some(&d.event_type)));
            entries.extend([(&t.deliveries_by_handler, handler), (&t.deliveries_by_type, kind)]);
        }
        if let (Some(key), Some(place)) = (&d.order_key, d.line_place) {
            let line = keys::line_prefix(&d.handler, key);
            entries.push((&t.lines, keys::line_key(&line, place, &d.id)));
        }
        entries
    }

    /// Writes delivery `new` over `old` (None for a new delivery), with its index entries.
    /// Callers changing an existing delivery hold its lock (see [`Store::update_delivery`]).
    pub(super) fn write_delivery(&self, old: Option<&DeliveryRecord>, new: &DeliveryRecord) -> Result<(), StoreError> {
        let before = old.map(|d| self.delivery_entries(d)).unwrap_or_default();
        let after = self.delivery_entries(new);
        for (tree, key) in &after {
            if !holds(&before, tree, key) {
                tree.insert(key.as_slice(), &[] as &[u8])?;
            }
        }
        let raw = codec::encode(keys::DELIVERY_RECORD_V1, new)?;
        self.trees.deliveries.insert(new.id.as_bytes(), raw)?;
        for (tree, key) in &before {
            if !holds(&after, tree, key) {
                tree.remove(key.as_slice())?;
            }
        }
        Ok(())
    }

    /// Removes delivery `d`: its claim, queue entry, attempts and record, then its index
    /// entries. Callers hold its lock.
    pub(super) fn erase_delivery(&self, d: &DeliveryRecord) -> Result<(), StoreError> {
        // A claimed delivery may be removed with no attempt to finish it (its event was
        // deleted, or never came).
        self.shared.claims.release(&d.id);
        if let Some(due) = d.next_attempt_ms {
            self.dequeue(&d.handler, due, &d.id)?;
        }
        for item in keys::numbered(&self.trees.attempts, &d.id) {
            self.trees.attempts.remove(item?.0)?;
        }
        self.trees.deliveries.remove(d.id.as_bytes())?;
        for (tree, key) in self.delivery_entries(d) {
            tree.remove(key)?;
        }
        Ok(())
    }

    /// Changes delivery `id` under its lock: `change` sees the stored record and returns None
    /// to leave it as it is, or Some(answer) to have the changed record written. Returns None
    /// if there is no such delivery.
    pub(super) fn update_delivery<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut DeliveryRecord) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<(DeliveryRecord, Option<T>)>, StoreError> {
        let _held = self.shared.stripes.lock(id);
        self.update_delivery_held(id, change)
    }

    /// [`Store::update_delivery`] for a caller that holds the delivery's lock.
    pub(super) fn update_delivery_held<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut DeliveryRecord) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<(DeliveryRecord, Option<T>)>, StoreError> {
        let Some(old) = self.stored_delivery(id)? else {
            return Ok(None);
        };
        let mut new = old.clone();
        let answer = change(&mut new)?;
        if answer.is_some() {
            self.write_delivery(Some(&old), &new)?;
        }
        Ok(Some((new, answer)))
    }

    /// The index entries of event `record` other than its time entry, as `(tree, key)`.
    pub(super) fn event_entries(&self, record: &EventRecord) -> Vec<(&sled::Tree, Vec<u8>)> {
        let t = &self.trees;
        let mut entries = vec![(&t.events_by_type, keys::event_type_key(&record.event.kind, record.seq))];
        if record.deliveries.is_empty() {
            entries.push((&t.events_unrouted, keys::seq_key(record.seq).to_vec()));
        }
        entries
    }

    /// Writes the index entries of a new event, which is then written by its ingest.
    pub(super) fn index_event(&self, record: &EventRecord, order_ms: u64) -> Result<(), StoreError> {
        let id = record.event.id.as_bytes();
        for (tree, key) in self.event_entries(record) {
            tree.insert(key, id)?;
        }
        let time = keys::event_time_key(order_ms, record.seq);
        self.trees.events_by_time.insert(time, id)?;
        Ok(())
    }

    /// Removes the index entries of an event (after its record, or instead of writing it).
    pub(super) fn unindex_event(&self, record: &EventRecord) -> Result<(), StoreError> {
        for (tree, key) in self.event_entries(record) {
            tree.remove(key)?;
        }
        if let Some(key) = self.event_time_entry(record)? {
            self.trees.events_by_time.remove(key)?;
        }
        Ok(())
    }

    /// The time entry of an event. Its order ms is at least its `received_ms`, and entries of
    /// later events sort after it, so it is found by walking from `(received_ms, seq)` past
    /// the entries of earlier events whose order ms is higher: none, unless the clock stepped
    /// back or concurrent ingests crossed within a few milliseconds.
    fn event_time_entry(&self, record: &EventRecord) -> Result<Option<sled::IVec>, StoreError> {
        let from = keys::event_time_key(record.received_ms, record.seq);
        for item in self.trees.events_by_time.range(from..) {
            let (key, _) = item?;
            let (_, seq) = keys::parse_event_time_key(&key)?;
            if seq == record.seq {
                return Ok(Some(key));
            }
            if seq > record.seq {
                break;
            }
        }
        Ok(None)
    }

    /// Takes event `seq` out of the unrouted index: a delivery was added to it.
    pub(super) fn mark_routed(&self, seq: u64) -> Result<(), StoreError> {
        self.trees.events_unrouted.remove(keys::seq_key(seq))?;
        Ok(())
    }
}

/// Whether `entries` has `key` in `tree` (the same key can be in two trees).
fn holds(entries: &[(&sled::Tree, Vec<u8>)], tree: &sled::Tree, key: &[u8]) -> bool {
    entries.iter().any(|(t, k)| std::ptr::eq(*t, tree) && k == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{assert_consistent, attempt, ingest, ingest_typed};
    use crate::store::{NextStep, Replayed, Retention};

    fn dead(error: &str) -> NextStep {
        NextStep::Dead {
            error: error.into(),
            holds_key: true,
        }
    }

    #[test]
    fn indexes_follow_every_step_of_a_delivery() {
        let store = Store::temporary().unwrap();
        let ids = ingest_typed(&store, "e1", "a", &["h1", "h2"], 10);
        ingest_typed(&store, "e2", "b", &[], 11);
        assert_consistent(&store);
        let retry = NextStep::Retry {
            due_ms: 50,
            error: "later".into(),
        };
        attempt(&store, &ids[0], retry, 20);
        assert_consistent(&store);
        attempt(&store, &ids[0], dead("no"), 50);
        attempt(&store, &ids[1], NextStep::Succeeded, 21);
        assert_consistent(&store);
        assert_eq!(store.replay_delivery(&ids[0], 60, false).unwrap(), Replayed::Queued);
        assert_consistent(&store);
        crate::store::testing::claim(&store, 60, &ids[0], 61).unwrap().unwrap();
        assert_eq!(store.requeue_running(70).unwrap(), 1);
        assert_consistent(&store);
        store.add_delivery("e2", "h3", None, 80).unwrap().expect("added");
        assert!(store.trees.events_unrouted.is_empty(), "e2 is routed now");
        store.redact_event("e1", None, 90).unwrap();
        assert_consistent(&store);
        let again = crate::store::NewEvent {
            event: store.event("e1").unwrap().unwrap().event,
            handlers: vec!["h9".into()],
        };
        store.ingest(vec![again], 95).unwrap();
        assert_consistent(&store);
    }

    #[test]
    fn delete_and_retention_take_every_entry_with_them() {
        let store = Store::temporary().unwrap();
        let gone = ingest(&store, "gone", &["h"], 10);
        attempt(&store, &gone[0], dead("x"), 11);
        ingest(&store, "unrouted", &[], 12);
        let old = ingest(&store, "old", &["h"], 13);
        attempt(&store, &old[0], NextStep::Succeeded, 14);
        let kept = ingest(&store, "kept", &["h"], 5_000);
        attempt(&store, &kept[0], NextStep::Succeeded, 5_000);
        assert!(store.delete_event("gone").unwrap());
        assert_consistent(&store);
        let mentions = |id: &str| {
            keys::INDEX_TREES.iter().any(|name| {
                let tree = store.db.open_tree(name).unwrap();
                tree.iter()
                    .flatten()
                    .any(|(k, v)| k.windows(id.len()).any(|w| w == id.as_bytes()) || v.as_ref() == id.as_bytes())
            })
        };
        assert!(!mentions(&gone[0]) && !mentions("gone"));
        let retention = Retention {
            succeeded_deliveries: std::time::Duration::from_secs(1),
            dead_deliveries: std::time::Duration::from_secs(1),
            events: std::time::Duration::from_secs(3),
        };
        let expired = store.expire(&retention, 5_500).unwrap();
        assert_eq!((expired.events, expired.deliveries), (2, 0));
        assert_consistent(&store);
        assert!(!mentions(&old[0]) && !mentions("unrouted"));
        assert_eq!(store.expire(&retention, 7_000).unwrap().deliveries, 1);
        assert!(!mentions(&kept[0]));
        assert_consistent(&store);
    }

    #[test]
    fn a_status_change_moves_every_entry() {
        let store = Store::temporary().unwrap();
        let id = crate::store::testing::ingest(&store, "e", &["h"], 10).remove(0);
        let pending = store.delivery(&id).unwrap().unwrap();
        let mut dead = pending.clone();
        (dead.status, dead.updated_ms) = (DeliveryStatus::Dead, 20);
        store.write_delivery(Some(&pending), &dead).unwrap();
        let entries = |d: &DeliveryRecord| store.delivery_entries(d);
        for (tree, key) in entries(&pending) {
            assert!(!tree.contains_key(key).unwrap(), "an entry of the old status is left");
        }
        for (tree, key) in entries(&dead) {
            assert!(tree.contains_key(key).unwrap(), "an entry of the new status is missing");
        }
        let mut running = pending.clone();
        running.status = DeliveryStatus::Running;
        assert_eq!(
            entries(&running).len(),
            1,
            "a running delivery is only in the status index"
        );
        store.erase_delivery(&dead).unwrap();
        for name in keys::INDEX_TREES.iter().filter(|n| n.starts_with("deliveries")) {
            assert!(store.db.open_tree(name).unwrap().is_empty(), "{name}");
        }
    }

    #[test]
    fn time_entries_are_found_past_crossed_clocks() {
        let store = Store::temporary().unwrap();
        crate::store::testing::ingest(&store, "late", &[], 500);
        // The clock stepped back: this event's order ms is held at 500.
        crate::store::testing::ingest(&store, "early", &[], 100);
        let early = store.event("early").unwrap().unwrap();
        let key = store.event_time_entry(&early).unwrap().expect("found");
        assert_eq!(keys::parse_event_time_key(&key).unwrap(), (500, early.seq));
        store.unindex_event(&early).unwrap();
        assert_eq!(store.trees.events_by_time.len(), 1);
        assert!(store.event_time_entry(&early).unwrap().is_none());
    }
}
