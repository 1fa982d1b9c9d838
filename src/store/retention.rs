//! Retention: removing deliveries and events older than the configured ages.

use std::time::Duration;

use super::records::{DeliveryRecord, DeliveryStatus, EventRecord};
use super::{Store, StoreError, codec, keys};

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

impl Store {
    /// Removes succeeded and dead deliveries last updated, and events received, longer ago
    /// than `retention` allows (an event goes with all its deliveries and history).
    pub fn expire(&self, retention: &Retention, now_ms: u64) -> Result<Expired, StoreError> {
        let before = |age: Duration| now_ms.saturating_sub(age.as_millis() as u64);
        let mut expired = Expired::default();
        let events_before = before(retention.events);
        let mut old_events = Vec::new();
        for item in self.trees.events.iter() {
            let (_, raw) = item?;
            let record: EventRecord = codec::decode(keys::EVENT_RECORD_V1, &raw)?;
            if record.received_ms < events_before {
                old_events.push(record.event.id);
            }
        }
        for id in old_events {
            if self.delete_event(&id)? {
                expired.events += 1;
            }
        }
        let mut old_deliveries = Vec::new();
        for item in self.trees.deliveries.iter() {
            let (_, raw) = item?;
            let delivery: DeliveryRecord = codec::decode(keys::DELIVERY_RECORD_V1, &raw)?;
            let limit = match delivery.status {
                DeliveryStatus::Succeeded => before(retention.succeeded_deliveries),
                DeliveryStatus::Dead => before(retention.dead_deliveries),
                _ => continue,
            };
            if delivery.updated_ms < limit {
                old_deliveries.push(delivery.id);
            }
        }
        for id in old_deliveries {
            self.forget_delivery(&id)?;
            expired.deliveries += 1;
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
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
        let mut done = store.claim(90_000, &ids[1], 90_000).unwrap().unwrap();
        let attempt = AttemptRecord {
            n: 1,
            started_ms: 1,
            duration_ms: 1.0,
            succeeded: true,
            report: json!({}),
            replay: false,
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
}
