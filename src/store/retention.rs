//! Retention: removing deliveries and events older than the configured ages.

use std::time::Duration;

use super::records::DeliveryStatus;
use super::{Store, StoreError, keys};

/// How long finished deliveries and events are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    pub succeeded_deliveries: Duration,
    pub dead_deliveries: Duration,
    pub events: Duration,
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Expired {
    pub deliveries: usize,
    pub events: usize,
}

/// Index entries read at a time: the pass holds at most this many ids.
const CHUNK: usize = 1000;

impl Store {
    /// Removes succeeded and dead deliveries last updated, and events received, longer ago
    /// than `retention` allows (an event goes with all its deliveries and history). Reads
    /// only the index entries of what expires.
    pub fn expire(&self, retention: &Retention, now_ms: u64) -> Result<Expired, StoreError> {
        self.write(|| {
            // An age past u64 milliseconds (a typo of years) keeps everything, never wraps to little.
            let before = |age: Duration| now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
            let mut expired = Expired {
                events: self.expire_events(before(retention.events))?,
                deliveries: 0,
            };
            for (status, age) in [
                (DeliveryStatus::Succeeded, retention.succeeded_deliveries),
                (DeliveryStatus::Dead, retention.dead_deliveries),
            ] {
                expired.deliveries += self.expire_deliveries(status, before(age))?;
            }
            Ok(expired)
        })
    }

    /// Deletes events received before `before_ms`. Their time entries come first in the
    /// time index, as order ms is at least the received time; an event received earlier than
    /// one accepted before it (a clock stepped back) expires with that one.
    fn expire_events(&self, before_ms: u64) -> Result<usize, StoreError> {
        let end = keys::event_time_key(before_ms, 0);
        let mut from = Vec::new();
        let mut count = 0;
        loop {
            let chunk = self
                .trees
                .events_by_time
                .range(from.clone()..end.to_vec())
                .take(CHUNK)
                .collect::<Result<Vec<_>, _>>()?;
            let Some((last, _)) = chunk.last() else {
                return Ok(count);
            };
            from = [last.as_ref(), &[0]].concat();
            for (key, id) in chunk {
                let (_, seq) = keys::parse_event_time_key(&key)?;
                let id = String::from_utf8_lossy(&id);
                // The entry may outlive its event (a crash mid-delete) and the id be taken
                // again since: only the event with the entry's seq goes.
                let current = self
                    .event(&id)?
                    .is_some_and(|e| e.seq == seq && e.received_ms < before_ms);
                if current && self.delete_event(&id)? {
                    count += 1;
                }
            }
        }
    }

    /// Removes deliveries with `status` last updated before `before_ms`. They were created
    /// before it too, so the walk over the status index stops there; on the way it passes the
    /// few created before it but updated since (replayed), which stay.
    fn expire_deliveries(&self, status: DeliveryStatus, before_ms: u64) -> Result<usize, StoreError> {
        let prefix = keys::delivery_prefix(status, None);
        let end = [prefix.as_slice(), &before_ms.to_be_bytes()].concat();
        let mut from = prefix.clone();
        let mut count = 0;
        loop {
            let chunk = self
                .trees
                .deliveries_by_status
                .range(from.clone()..end.clone())
                .keys()
                .take(CHUNK)
                .collect::<Result<Vec<_>, _>>()?;
            let Some(last) = chunk.last() else {
                return Ok(count);
            };
            from = [last.as_ref(), &[0]].concat();
            for key in chunk {
                let (_, id) = keys::parse_position(&key[prefix.len()..])?;
                // Checked under the delivery's lock: a replay may have moved it on.
                let expires = |d: &super::DeliveryRecord| d.status == status && d.updated_ms < before_ms;
                if self.forget_delivery_if(&id, expires)? {
                    count += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::store::testing::{assert_consistent, attempt, ingest};
    use crate::store::{AttemptRecord, Ingested, NewEvent, NextStep};
    use serde_json::json;

    #[test]
    fn removes_only_what_is_older_than_its_age() {
        let store = Store::temporary().unwrap();
        let mut ids = Vec::new();
        for (id, at) in [("old", 1_000), ("new", 90_000)] {
            let event = Event::from_value(json!({"id": id, "type": "t"}), "t").unwrap();
            let out = store
                .ingest(
                    vec![NewEvent {
                        event,
                        handlers: vec!["h".into()],
                    }],
                    at,
                )
                .unwrap();
            let Ingested::New { deliveries, .. } = &out[0] else {
                panic!()
            };
            ids.push(deliveries[0].clone());
        }
        let mut done = crate::store::testing::claim(&store, 90_000, &ids[1], 90_000)
            .unwrap()
            .unwrap();
        let attempt = AttemptRecord {
            n: 1,
            started_ms: 1,
            duration_ms: 1.0,
            succeeded: true,
            report: json!({}),
            replay: false,
            event_version: None,
            recorded_steps: false,
        };
        store
            .finish_attempt(&mut done, &attempt, NextStep::Succeeded, 90_001)
            .unwrap();
        let retention = Retention {
            succeeded_deliveries: Duration::from_secs(5),
            dead_deliveries: Duration::from_secs(3600),
            events: Duration::from_secs(50),
        };
        assert_eq!(
            store.expire(&retention, 50_000).unwrap(),
            Expired {
                deliveries: 0,
                events: 0
            }
        );
        // 2^64 ms and 5 ms more: truncated to 5 ms it would remove everything.
        let endless = Duration::from_millis(u64::MAX) + Duration::from_millis(6);
        let forever = Retention {
            succeeded_deliveries: endless,
            dead_deliveries: endless,
            events: endless,
        };
        let none = Expired {
            deliveries: 0,
            events: 0,
        };
        assert_eq!(
            store.expire(&forever, 100_000).unwrap(),
            none,
            "ages beyond u64 ms keep all"
        );
        let later = store.expire(&retention, 100_000).unwrap();
        assert_eq!(
            later,
            Expired {
                deliveries: 1,
                events: 1
            }
        );
        assert!(
            store.event("old").unwrap().is_none(),
            "the old event went with its delivery"
        );
        assert!(store.event("new").unwrap().is_some());
        assert!(
            store.delivery(&ids[1]).unwrap().is_none(),
            "the succeeded delivery expired"
        );
    }

    #[test]
    fn a_delivery_replayed_since_stays_while_older_ones_go() {
        let store = Store::temporary().unwrap();
        let mut ids = Vec::new();
        for (i, event) in ["a", "b", "c"].iter().enumerate() {
            let id = ingest(&store, event, &["h"], 10 + i as u64).remove(0);
            attempt(
                &store,
                &id,
                NextStep::Dead {
                    error: "x".into(),
                    holds_key: true,
                },
                20,
            );
            ids.push(id);
        }
        store.replay_delivery(&ids[1], 5_000, false).unwrap();
        attempt(
            &store,
            &ids[1],
            NextStep::Dead {
                error: "x".into(),
                holds_key: true,
            },
            5_000,
        );
        let retention = Retention {
            succeeded_deliveries: Duration::from_secs(1),
            dead_deliveries: Duration::from_secs(1),
            events: Duration::from_secs(3600),
        };
        assert_eq!(store.expire(&retention, 5_500).unwrap().deliveries, 2);
        assert!(store.delivery(&ids[1]).unwrap().is_some(), "updated 0.5 s ago");
        assert_consistent(&store);
        assert_eq!(store.expire(&retention, 6_500).unwrap().deliveries, 1);
    }
}
