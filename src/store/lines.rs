//! Per-key order: each ordered delivery stands in the line of its handler and order key
//! (an index entry in [`keys::TREE_LINES`], kept with its record by `write_delivery`). Only
//! the line's front is ever queued; the others are `blocked` until it leaves the line, which
//! it does when it succeeds, goes dead under `onDead: "continue"`, is skipped, or is removed.
//! The delivery then behind it is queued (promoted).
//!
//! A line's lock is held while a delivery joins it and while its front is promoted, so a
//! joiner either sees the line empty and is queued itself, or is promoted later. A delivery
//! leaving writes its record first and promotes after (after an attempt, only once its record
//! is on disk: otherwise a crash could run it again after its successor ran), so a crash
//! between the two leaves a line whose front entry names a record that moved on, or a blocked
//! front: the engine's start ([`Store::repair_lines`]) drops such entries and promotes every
//! line's front.

use super::records::{DeliveryRecord, DeliveryStatus};
use super::{Store, StoreError, keys};

/// The result of asking to skip a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// It left its key's line; the next delivery of the key runs.
    Released,
    /// It holds no line: only a dead delivery at the front of its key's line can be skipped.
    NotHolding,
    NotFound,
}

impl Store {
    /// Places `d` (new, or replayed) at the back of the line of its handler and `key`:
    /// pending at `due_ms` if the line was empty (returns true: the caller queues it), else
    /// blocked. The caller holds the line's lock ([`Store::lock_line`]) and writes the record.
    pub(super) fn join_line(&self, d: &mut DeliveryRecord, key: &str, due_ms: u64) -> Result<bool, StoreError> {
        let line = keys::line_prefix(&d.handler, key);
        let front = self.line_front(&line, true)?.is_none();
        d.order_key = Some(key.to_owned());
        d.line_place = Some(self.db.generate_id()?);
        if front {
            d.status = DeliveryStatus::Pending;
            d.next_attempt_ms = Some(due_ms);
        } else {
            d.status = DeliveryStatus::Blocked;
            d.next_attempt_ms = None;
        }
        Ok(front)
    }

    /// Holds the lock of `handler`'s line for `key`.
    pub(super) fn lock_line(&self, handler: &str, key: &str) -> std::sync::MutexGuard<'_, ()> {
        self.shared.line_stripes.lock(keys::line_prefix(handler, key))
    }

    /// After a delivery of `handler` with `key` left its line (its record written): queues the
    /// line's new front if it is blocked. The engine calls it once an attempt's leaving is on
    /// disk, so that no crash can run a delivery again after the next of its key ran.
    pub fn advance_line(&self, handler: &str, key: &str, now_ms: u64) -> Result<(), StoreError> {
        self.write(|| {
            let _held = self.lock_line(handler, key);
            self.promote_front(&keys::line_prefix(handler, key), now_ms)
        })
    }

    /// Queues the front of the line with prefix `line`, due at `now_ms`, if it is blocked.
    fn promote_front(&self, line: &[u8], now_ms: u64) -> Result<(), StoreError> {
        let Some((place, front)) = self.line_front(line, true)? else {
            return Ok(());
        };
        if front.status != DeliveryStatus::Blocked {
            return Ok(());
        }
        self.update_delivery(&front.id, |d| {
            if d.status != DeliveryStatus::Blocked || d.line_place != Some(place) {
                return Ok(None);
            }
            self.enqueue(&d.handler, now_ms, &d.id)?;
            d.status = DeliveryStatus::Pending;
            d.next_attempt_ms = Some(now_ms);
            d.updated_ms = now_ms;
            Ok(Some(()))
        })?;
        Ok(())
    }

    /// The first delivery of the line with prefix `line` whose record still stands at its
    /// entry's place, with that place; with `tidy` (the line's lock held), the entries before
    /// it, which a crash or a removal left, are dropped.
    fn line_front(&self, line: &[u8], tidy: bool) -> Result<Option<(u64, DeliveryRecord)>, StoreError> {
        // A line's prefix holds its key's length, so no other line's entries start with it.
        for item in self.trees.lines.scan_prefix(line) {
            let (key, _) = item?;
            let (place, id) = keys::parse_position(&key[line.len()..])?;
            match self.stored_delivery(&id)? {
                Some(d) if d.line_place == Some(place) => return Ok(Some((place, d))),
                _ if tidy => {
                    self.trees.lines.remove(key)?;
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// The id of the delivery a blocked delivery waits for: the front of its key's line.
    pub fn blocked_by(&self, d: &DeliveryRecord) -> Result<Option<String>, StoreError> {
        let (DeliveryStatus::Blocked, Some(key)) = (d.status, &d.order_key) else {
            return Ok(None);
        };
        let line = keys::line_prefix(&d.handler, key);
        Ok(self.line_front(&line, false)?.map(|(_, front)| front.id))
    }

    /// Takes a dead delivery that holds its key's line out of it, so the next one runs.
    pub fn skip_delivery(&self, id: &str, now_ms: u64) -> Result<Skipped, StoreError> {
        self.write(|| {
            let Some(found) = self.stored_delivery(id)? else {
                return Ok(Skipped::NotFound);
            };
            let Some(key) = found.order_key.clone() else {
                return Ok(Skipped::NotHolding);
            };
            let _held = self.lock_line(&found.handler, &key);
            let left = self.update_delivery(id, |d| {
                if d.status != DeliveryStatus::Dead || d.line_place.is_none() {
                    return Ok(None);
                }
                d.line_place = None;
                d.updated_ms = now_ms;
                Ok(Some(()))
            })?;
            match left {
                None => Ok(Skipped::NotFound),
                Some((_, None)) => Ok(Skipped::NotHolding),
                Some((_, Some(()))) => {
                    self.promote_front(&keys::line_prefix(&found.handler, &key), now_ms)?;
                    Ok(Skipped::Released)
                }
            }
        })
    }

    /// Drops the entries a crash left at the front of each line and queues each line's front
    /// that is blocked; the engine calls it as it starts. Reads every line's entries.
    pub(super) fn repair_lines(&self, now_ms: u64) -> Result<(), StoreError> {
        let mut from = Vec::new();
        while let Some(item) = self.trees.lines.range(from.as_slice()..).next() {
            let key = item?.0;
            let line = keys::line_of_key(&key)?;
            {
                let _held = self.shared.line_stripes.lock(line);
                self.promote_front(line, now_ms)?;
            }
            match keys::prefix_end(line) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::store::testing::{assert_consistent, attempt, due};
    use crate::store::{Ingested, NewEvent, NextStep, Route};

    /// Ingests event `id` for handler `h` with order key `key`; its delivery id.
    fn keyed(store: &Store, id: &str, key: &str, now_ms: u64) -> String {
        let event = Event::from_value(serde_json::json!({"id": id, "type": "t"}), "test").unwrap();
        let route = Route {
            handler: "h".into(),
            order_key: Some(key.into()),
        };
        let batch = vec![NewEvent {
            event,
            handlers: vec![route],
        }];
        match store.ingest(batch, now_ms).unwrap().remove(0) {
            Ingested::New { mut deliveries, .. } => deliveries.remove(0),
            Ingested::Duplicate { .. } => panic!("duplicate"),
        }
    }

    fn status(store: &Store, id: &str) -> DeliveryStatus {
        store.delivery(id).unwrap().unwrap().status
    }

    fn queued(store: &Store) -> Vec<String> {
        due(store, u64::MAX).into_iter().map(|(_, id)| id).collect()
    }

    fn dead(holds_key: bool) -> NextStep {
        NextStep::Dead {
            error: "no".into(),
            holds_key,
        }
    }

    #[test]
    fn one_key_runs_one_at_a_time_in_ingest_order_and_keys_apart_run_together() {
        let store = Store::temporary().unwrap();
        let a1 = keyed(&store, "e1", "a", 10);
        let b1 = keyed(&store, "e2", "b", 11);
        let a2 = keyed(&store, "e3", "a", 12);
        let a3 = keyed(&store, "e4", "a", 13);
        assert_eq!(queued(&store), [a1.clone(), b1.clone()]);
        assert_eq!(status(&store, &a2), DeliveryStatus::Blocked);
        let blocked = store.delivery(&a3).unwrap().unwrap();
        assert_eq!(
            store.blocked_by(&blocked).unwrap(),
            Some(a1.clone()),
            "waits for the front"
        );
        attempt(
            &store,
            &a1,
            NextStep::Retry {
                due_ms: 50,
                error: "x".into(),
            },
            20,
        );
        assert_eq!(status(&store, &a2), DeliveryStatus::Blocked, "a retry keeps the key");
        attempt(&store, &a1, NextStep::Succeeded, 60);
        assert_eq!(queued(&store), [b1, a2.clone()]);
        assert_eq!(status(&store, &a3), DeliveryStatus::Blocked);
        attempt(&store, &a2, NextStep::Succeeded, 61);
        assert_eq!(status(&store, &a3), DeliveryStatus::Pending);
        assert_consistent(&store);
    }

    #[test]
    fn a_dead_delivery_holds_its_key_until_replayed_or_skipped_unless_told_to_continue() {
        let store = Store::temporary().unwrap();
        let ids: Vec<String> = (0..4).map(|n| keyed(&store, &format!("e{n}"), "k", 10 + n)).collect();
        attempt(&store, &ids[0], dead(true), 20);
        assert_eq!(status(&store, &ids[1]), DeliveryStatus::Blocked, "held by the dead one");
        assert_eq!(
            store.replay_delivery(&ids[0], 21, false).unwrap(),
            crate::store::Replayed::Queued
        );
        assert_eq!(queued(&store), [ids[0].clone()], "the replay runs at the front");
        attempt(&store, &ids[0], NextStep::Succeeded, 22);
        assert_eq!(status(&store, &ids[1]), DeliveryStatus::Pending);
        attempt(&store, &ids[1], dead(true), 23);
        assert_eq!(store.skip_delivery(&ids[1], 24).unwrap(), Skipped::Released);
        assert_eq!(
            status(&store, &ids[1]),
            DeliveryStatus::Dead,
            "a skipped delivery stays dead"
        );
        assert_eq!(store.skip_delivery(&ids[1], 25).unwrap(), Skipped::NotHolding);
        assert_eq!(queued(&store), [ids[2].clone()]);
        attempt(&store, &ids[2], dead(false), 26);
        assert_eq!(queued(&store), [ids[3].clone()], "onDead continue lets the next run");
        assert_eq!(store.skip_delivery(&ids[2], 27).unwrap(), Skipped::NotHolding);
        assert_eq!(store.skip_delivery("nope", 27).unwrap(), Skipped::NotFound);
        assert_consistent(&store);
    }

    #[test]
    fn a_replayed_delivery_joins_the_back_of_its_key_behind_those_waiting_now() {
        let store = Store::temporary().unwrap();
        let first = keyed(&store, "e1", "k", 10);
        attempt(&store, &first, NextStep::Succeeded, 11);
        let second = keyed(&store, "e2", "k", 12);
        let third = keyed(&store, "e3", "k", 13);
        store.replay_delivery(&first, 14, false).unwrap();
        let replayed = store.delivery(&first).unwrap().unwrap();
        assert_eq!(replayed.status, DeliveryStatus::Blocked);
        assert_eq!(store.blocked_by(&replayed).unwrap(), Some(second.clone()));
        attempt(&store, &second, NextStep::Succeeded, 15);
        assert_eq!(queued(&store), [third.as_str()], "the replay is behind the third");
        attempt(&store, &third, NextStep::Succeeded, 16);
        assert_eq!(queued(&store), [first.as_str()]);
        let again = attempt(&store, &first, NextStep::Succeeded, 17);
        assert!(again.line_place.is_none());
        // Alone in its line, a replay runs at once.
        store.replay_delivery(&first, 18, false).unwrap();
        assert_eq!(queued(&store), [first]);
        assert_consistent(&store);
    }

    #[test]
    fn an_attempt_leaves_its_line_and_the_next_is_queued_only_when_the_caller_says() {
        let store = Store::temporary().unwrap();
        let first = keyed(&store, "e1", "k", 10);
        let next = keyed(&store, "e2", "k", 11);
        let mut claimed = crate::store::testing::claim(&store, 10, &first, 12).unwrap().unwrap();
        let record = crate::store::AttemptRecord {
            n: 1,
            started_ms: 12,
            duration_ms: 1.0,
            succeeded: true,
            report: serde_json::json!({}),
            replay: false,
            event_version: Some(1),
            recorded_steps: false,
        };
        store
            .finish_attempt(&mut claimed, &record, NextStep::Succeeded, 13)
            .unwrap();
        assert!(claimed.line_place.is_none());
        assert_eq!(
            status(&store, &next),
            DeliveryStatus::Blocked,
            "not before the caller's commit"
        );
        store.advance_line("h", "k", 14).unwrap();
        assert_eq!(queued(&store), [next]);
        assert_consistent(&store);
    }

    #[test]
    fn removing_the_front_lets_the_next_run() {
        let store = Store::temporary().unwrap();
        let front = keyed(&store, "e1", "k", 10);
        let next = keyed(&store, "e2", "k", 11);
        store.delete_event("e1").unwrap();
        assert!(store.delivery(&front).unwrap().is_none());
        assert_eq!(queued(&store), [next]);
        assert_consistent(&store);
    }

    #[test]
    fn a_crash_between_leaving_a_line_and_promoting_is_repaired_at_start() {
        let store = Store::temporary().unwrap();
        let front = keyed(&store, "e1", "k", 10);
        let next = keyed(&store, "e2", "k", 11);
        // As if the process died after the front's record said it left, before the promotion.
        store
            .update_delivery(&front, |d| {
                d.line_place = None;
                d.status = DeliveryStatus::Succeeded;
                store.dequeue("h", 10, &d.id)?;
                d.next_attempt_ms = None;
                Ok(Some(()))
            })
            .unwrap();
        assert_eq!(status(&store, &next), DeliveryStatus::Blocked);
        // And a line entry whose record is gone, left by a crash mid-ingest.
        let line = keys::line_prefix("h", "k");
        store
            .trees
            .lines
            .insert(keys::line_key(&line, 1, "ghost"), &[] as &[u8])
            .unwrap();
        store.requeue_running(20).unwrap();
        assert_eq!(queued(&store), [next]);
        assert_consistent(&store);
    }
}
