//! Repair: replaying deliveries, adding deliveries for stored events (backfill), and the
//! audit log of who asked.

use super::records::{AuditRecord, DeliveryRecord, DeliveryStatus, EventRecord};
use super::{Store, StoreError, codec, keys};
use crate::event::KeyPath;
use crate::event::new_id;

/// The result of asking to replay one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// Queued to run now.
    Queued,
    /// Already pending or running: it runs once, not twice.
    AlreadyQueued,
    NotFound,
}

impl Store {
    /// Queues a finished (succeeded or dead) delivery to run again now; its next attempt is
    /// recorded as a replay. Two concurrent requests queue it once.
    ///
    /// An ordered delivery that still holds the front of its key's line (a dead one the key
    /// waits for) runs there, first; any other joins the back of its key's line, behind the
    /// deliveries of that key waiting now.
    ///
    /// With `fresh`, the delivery forgets the step results its attempts recorded.
    pub fn replay_delivery(&self, id: &str, now_ms: u64, fresh: bool) -> Result<Replayed, StoreError> {
        self.write(|| {
            let found = self.stored_delivery(id)?;
            let key = found
                .as_ref()
                .and_then(|d| Some((d.handler.as_str(), d.order_key.as_deref()?)));
            let _line = key.map(|(handler, key)| self.lock_line(handler, key));
            let replayed = self.update_delivery(id, |delivery| {
                if matches!(
                    delivery.status,
                    DeliveryStatus::Pending | DeliveryStatus::Running | DeliveryStatus::Blocked
                ) {
                    return Ok(None);
                }
                match delivery.order_key.clone() {
                    Some(key) if delivery.line_place.is_none() => {
                        if self.join_line(delivery, &key, now_ms)? {
                            // Under the delivery's lock, as below: queued before its record says so.
                            self.enqueue(&delivery.handler, now_ms, id)?;
                        }
                    }
                    _ => {
                        // Queued before the record says pending, as a retry is (see `finish_attempt`).
                        self.enqueue(&delivery.handler, now_ms, id)?;
                        delivery.status = DeliveryStatus::Pending;
                        delivery.next_attempt_ms = Some(now_ms);
                    }
                }
                delivery.updated_ms = now_ms;
                if fresh {
                    delivery.steps_since = None;
                }
                delivery.replay_requested = true;
                delivery.replay_from = delivery.attempts;
                delivery.deferred = 0;
                Ok(Some(()))
            })?;
            Ok(match replayed {
                None => Replayed::NotFound,
                Some((_, None)) => Replayed::AlreadyQueued,
                Some((_, Some(()))) => Replayed::Queued,
            })
        })
    }

    /// Adds a delivery of event `event_id` to `handler`, due now (or, when `order_by` finds an
    /// order key in the event, at the back of that key's line), unless the event already has
    /// one to that handler. Returns the new delivery id.
    pub fn add_delivery(
        &self,
        event_id: &str,
        handler: &str,
        order_by: Option<&KeyPath>,
        now_ms: u64,
    ) -> Result<Option<String>, StoreError> {
        self.write(|| {
            loop {
                let Some(raw) = self.trees.events.get(event_id.as_bytes())? else {
                    return Ok(None);
                };
                let mut record: EventRecord = codec::decode(keys::EVENT_RECORD_V1, &raw)?;
                for existing in &record.deliveries {
                    if self.delivery(existing)?.is_some_and(|d| d.handler == handler) {
                        return Ok(None);
                    }
                }
                let mut delivery = DeliveryRecord::new(&record.event, handler, now_ms);
                let was_unrouted = record.deliveries.is_empty();
                record.deliveries.push(delivery.id.clone());
                let updated = codec::encode(keys::EVENT_RECORD_V1, &record)?;
                // Queued before the event names it, as at ingest: a crash in between leaves a
                // delivery of no event, which the engine drops, not one that never runs.
                let order_key = order_by.and_then(|path| path.key_of(&record.event));
                self.add_new_delivery(&mut delivery, order_key.as_deref(), now_ms)?;
                let swapped = self
                    .trees
                    .events
                    .compare_and_swap(event_id.as_bytes(), Some(raw), Some(updated))?;
                if swapped.is_ok() {
                    if was_unrouted {
                        self.mark_routed(record.seq)?;
                    }
                    return Ok(Some(delivery.id));
                }
                // The event changed meanwhile: drop this delivery and look again.
                self.forget_delivery(&delivery.id)?;
            }
        })
    }

    /// Appends an audit entry.
    pub fn audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.write(|| {
            let raw = codec::encode(keys::AUDIT_RECORD_V1, record)?;
            self.trees.audit.insert(new_id().as_bytes(), raw)?;
            Ok(())
        })
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.trees
            .audit
            .iter()
            .rev()
            .take(limit)
            .map(|item| codec::decode(keys::AUDIT_RECORD_V1, &item?.1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AttemptRecord, NextStep};
    use serde_json::json;

    fn dead_delivery(store: &Store) -> String {
        let id = crate::store::testing::ingest(store, "e", &["h"], 10).remove(0);
        let mut d = crate::store::testing::claim(store, 10, &id, 11).unwrap().unwrap();
        let attempt = AttemptRecord {
            n: 1,
            started_ms: 11,
            duration_ms: 1.0,
            succeeded: false,
            report: json!({}),
            replay: false,
            event_version: None,
            recorded_steps: false,
        };
        store
            .finish_attempt(
                &mut d,
                &attempt,
                NextStep::Dead {
                    error: "x".into(),
                    holds_key: true,
                },
                12,
            )
            .unwrap();
        id
    }

    #[test]
    fn replay_queues_once() {
        let store = Store::temporary().unwrap();
        let id = dead_delivery(&store);
        assert_eq!(store.replay_delivery(&id, 100, false).unwrap(), Replayed::Queued);
        assert_eq!(store.replay_delivery(&id, 101, false).unwrap(), Replayed::AlreadyQueued);
        assert_eq!(crate::store::testing::due(&store, 200), [(100, id.clone())]);
        let d = store.delivery(&id).unwrap().unwrap();
        assert!(d.replay_requested && d.status == DeliveryStatus::Pending);
        assert_eq!(store.replay_delivery("nope", 1, false).unwrap(), Replayed::NotFound);
    }

    #[test]
    fn concurrent_replays_queue_once() {
        let store = Store::temporary().unwrap();
        let id = dead_delivery(&store);
        let results: Vec<Replayed> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| store.replay_delivery(&id, 100, false).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| **r == Replayed::Queued).count(), 1);
        assert_eq!(store.queue_depth(), 1);
    }

    #[test]
    fn backfill_adds_one_delivery_per_handler() {
        let store = Store::temporary().unwrap();
        dead_delivery(&store);
        let added = store.add_delivery("e", "new_handler", None, 50).unwrap();
        assert!(added.is_some());
        assert_eq!(
            store.add_delivery("e", "new_handler", None, 51).unwrap(),
            None,
            "only once"
        );
        assert_eq!(
            store.add_delivery("e", "h", None, 51).unwrap(),
            None,
            "h already has one"
        );
        assert_eq!(store.event("e").unwrap().unwrap().deliveries.len(), 2);
    }

    #[test]
    fn audit_entries_are_kept_newest_first() {
        let store = Store::temporary().unwrap();
        for action in ["replay", "backfill"] {
            let record = AuditRecord {
                at_ms: 1,
                actor: "cli".into(),
                action: action.into(),
                target: "d".into(),
                detail: json!({}),
            };
            store.audit(&record).unwrap();
        }
        let log = store.audit_log(10).unwrap();
        assert_eq!(
            log.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
            ["backfill", "replay"]
        );
    }
}
