//! Events: accepted once by id, listed in ingest order, each with the deliveries it created.

use super::records::{DeliveryRecord, EventRecord};
use super::{Store, StoreError, codec, keys};
use crate::event::Event;

/// An event to accept, with the handlers it routes to.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Event,
    pub handlers: Vec<Route>,
}

/// A handler an event goes to, with the event's order key if the handler orders its
/// deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub handler: String,
    pub order_key: Option<String>,
}

impl From<&str> for Route {
    fn from(handler: &str) -> Self {
        handler.to_owned().into()
    }
}

impl From<String> for Route {
    fn from(handler: String) -> Self {
        Self {
            handler,
            order_key: None,
        }
    }
}

/// The result of accepting one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    /// Stored now, with the ids of its new deliveries.
    New { id: String, deliveries: Vec<String> },
    /// An event with this id was accepted before; nothing was written.
    Duplicate { id: String },
}

impl Ingested {
    /// The event id.
    pub fn id(&self) -> &str {
        match self {
            Ingested::New { id, .. } | Ingested::Duplicate { id } => id,
        }
    }
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events of these types (none at all when empty).
    pub types: Option<Vec<String>>,
    /// Only events received at or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Only events received before this time (ms since the epoch), as the store orders them:
    /// an event received while the clock stood behind an earlier one counts at that one's time.
    pub until_ms: Option<u64>,
    /// Only events past this sequence number in the listing's order (the previous page's cursor).
    pub after_seq: Option<u64>,
    /// Only events that matched no handler.
    pub unrouted: bool,
    /// Newest first rather than in ingest order.
    pub newest_first: bool,
    pub limit: usize,
}

impl EventFilter {
    /// Only events of `kind`.
    pub fn of_type(kind: &str) -> Self {
        Self {
            types: Some(vec![kind.to_owned()]),
            ..Self::default()
        }
    }
}

impl Store {
    /// Stores each new event with its deliveries (queued, due at `now_ms`) atomically per
    /// event. Not durable until [`Store::commit`] returns.
    pub fn ingest(&self, batch: Vec<NewEvent>, now_ms: u64) -> Result<Vec<Ingested>, StoreError> {
        self.write(|| batch.into_iter().map(|new| self.ingest_one(new, now_ms)).collect())
    }

    fn ingest_one(&self, new: NewEvent, now_ms: u64) -> Result<Ingested, StoreError> {
        // A duplicate writes nothing: checked under the id's lock, so concurrent posts of one
        // id are seen one after the other, and a losing post never leaves deliveries that
        // could be claimed (with the winner's event, they would run the handler again).
        let _held = self.shared.event_stripes.lock(&new.event.id);
        if self.trees.events.contains_key(new.event.id.as_bytes())? {
            return Ok(Ingested::Duplicate { id: new.event.id });
        }
        let (seq, order_ms) = self.next_seq(now_ms)?;
        let mut deliveries: Vec<(DeliveryRecord, Option<String>)> = new
            .handlers
            .into_iter()
            .map(|route| (DeliveryRecord::new(&new.event, &route.handler, now_ms), route.order_key))
            .collect();
        let record = EventRecord {
            seq,
            received_ms: now_ms,
            deliveries: deliveries.iter().map(|(d, _)| d.id.clone()).collect(),
            event: new.event,
            version: 1,
            redacted: Vec::new(),
            redacted_ms: None,
        };
        let event_raw = codec::encode(keys::EVENT_RECORD_V1, &record)?;
        let id = record.event.id.clone();
        // No multi-tree transaction (eddy uses none, see `state.rs`): the event record is
        // written last, by compare-and-swap, and is what makes the rest count. sled keeps
        // writes in order, so a crash leaves at most a prefix: index entries and deliveries
        // whose event is missing, which listing and delivery skip and remove.
        self.index_event(&record, order_ms)?;
        for (delivery, order_key) in deliveries.iter_mut() {
            self.add_new_delivery(delivery, order_key.as_deref(), now_ms)?;
        }
        let claimed = self
            .trees
            .events
            .compare_and_swap(id.as_bytes(), None as Option<&[u8]>, Some(event_raw))?;
        if claimed.is_ok() {
            return Ok(Ingested::New {
                id,
                deliveries: record.deliveries,
            });
        }
        // Accepted meanwhile by a write that does not take the id's lock (none does today):
        // undo this attempt's writes.
        for (delivery, _) in &deliveries {
            self.forget_delivery(&delivery.id)?;
        }
        self.unindex_event(&record)?;
        Ok(Ingested::Duplicate { id })
    }

    /// Writes a new delivery, queued at `now_ms`, or with an order key, at the back of its
    /// key's line.
    pub(super) fn add_new_delivery(
        &self,
        delivery: &mut DeliveryRecord,
        order_key: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let Some(key) = order_key else {
            self.write_delivery(None, delivery)?;
            return self.enqueue(&delivery.handler, now_ms, &delivery.id);
        };
        let _held = self.lock_line(&delivery.handler, key);
        let front = self.join_line(delivery, key, now_ms)?;
        // The record first, as above: no claim can take a new delivery's queue entry for
        // stale while the record is still to come.
        self.write_delivery(None, delivery)?;
        if front {
            self.enqueue(&delivery.handler, now_ms, &delivery.id)?;
        }
        Ok(())
    }

    /// The next ingest seq and its order ms (see [`keys::TREE_EVENTS_BY_TIME`]), taken
    /// together so that order ms never decreases along seq.
    fn next_seq(&self, now_ms: u64) -> Result<(u64, u64), StoreError> {
        let mut last = self.shared.last_order_ms.lock().unwrap_or_else(|e| e.into_inner());
        let seq = self.db.generate_id()?;
        *last = now_ms.max(*last);
        Ok((seq, *last))
    }

    /// The event with `id`, if accepted.
    pub fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let raw = self.trees.events.get(id.as_bytes())?;
        raw.map(|raw| codec::decode(keys::EVENT_RECORD_V1, &raw)).transpose()
    }

    /// Removes event `id` with every delivery, queue entry, attempt (and so every captured
    /// log), history version and index entry. False if there was no such event.
    pub fn delete_event(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|| {
            let Some(record) = self.event(id)? else {
                return Ok(false);
            };
            for delivery_id in &record.deliveries {
                self.forget_delivery(delivery_id)?;
            }
            for item in keys::numbered(&self.trees.history, id) {
                self.trees.history.remove(item?.0)?;
            }
            // The record goes before its index entries: a crash in between leaves entries that
            // readers skip, while the event itself is gone or still whole (and can be deleted again).
            self.trees.events.remove(id.as_bytes())?;
            self.unindex_event(&record)?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str, kind: &str) -> Event {
        Event::from_value(json!({"id": id, "type": kind, "data": {"n": 1}}), "test").unwrap()
    }

    #[test]
    fn ingest_creates_queued_deliveries_and_dedupes_by_id() {
        let store = Store::temporary().unwrap();
        let batch = vec![
            NewEvent {
                event: event("e1", "a.b"),
                handlers: vec!["h1".into(), "h2".into()],
            },
            NewEvent {
                event: event("e2", "x"),
                handlers: vec![],
            },
        ];
        let out = store.ingest(batch, 1000).unwrap();
        let Ingested::New { deliveries, .. } = &out[0] else {
            panic!()
        };
        assert_eq!(deliveries.len(), 2);
        assert_eq!(
            out[1],
            Ingested::New {
                id: "e2".into(),
                deliveries: vec![]
            }
        );
        assert_eq!(crate::store::testing::due(&store, 1000).len(), 2);
        assert_eq!(crate::store::testing::due(&store, 999).len(), 0);

        let again = store.ingest(
            vec![NewEvent {
                event: event("e1", "a.b"),
                handlers: vec!["h1".into()],
            }],
            2000,
        );
        assert_eq!(again.unwrap(), [Ingested::Duplicate { id: "e1".into() }]);
        assert_eq!(
            crate::store::testing::due(&store, 5000).len(),
            2,
            "a duplicate creates no delivery"
        );
        assert_eq!(store.trees.deliveries.len(), 2, "nor any record a scan could find");
        assert_eq!(store.trees.events_by_type.len(), 2, "nor index entries");
    }

    #[test]
    fn events_list_in_ingest_order_with_filters_and_cursor() {
        let store = Store::temporary().unwrap();
        for (i, kind) in ["a", "b", "a", "a"].iter().enumerate() {
            let new = NewEvent {
                event: event(&format!("e{i}"), kind),
                handlers: vec![],
            };
            store.ingest(vec![new], 100 * i as u64).unwrap();
        }
        let all = store
            .list_events(&EventFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            all.iter().map(|e| e.event.id.as_str()).collect::<Vec<_>>(),
            ["e0", "e1", "e2", "e3"]
        );
        let a = EventFilter {
            limit: 2,
            ..EventFilter::of_type("a")
        };
        let page = store.list_events(&a).unwrap();
        assert_eq!(
            page.iter().map(|e| e.event.id.as_str()).collect::<Vec<_>>(),
            ["e0", "e2"]
        );
        let next = EventFilter {
            after_seq: Some(page[1].seq),
            ..a
        };
        assert_eq!(store.list_events(&next).unwrap()[0].event.id, "e3");
        let since = EventFilter {
            since_ms: Some(200),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.list_events(&since).unwrap().len(), 2);
        assert_eq!(store.event("e1").unwrap().unwrap().event.kind, "b");
        assert!(store.event("nope").unwrap().is_none());
    }

    #[test]
    fn delete_removes_everything_of_an_event() {
        let store = Store::temporary().unwrap();
        let event = Event::from_value(json!({"id": "e", "type": "t", "data": {"n": 1}}), "t").unwrap();
        store
            .ingest(
                vec![NewEvent {
                    event,
                    handlers: vec!["a".into(), "b".into()],
                }],
                1,
            )
            .unwrap();
        store.edit_event("e", &json!({"n": 2}), 2).unwrap();
        let delivery = store.event("e").unwrap().unwrap().deliveries[0].clone();
        let mut claimed = crate::store::testing::claim(&store, 1, &delivery, 3).unwrap().unwrap();
        assert!(store.delete_event("e").unwrap());
        assert!(!store.delete_event("e").unwrap());
        assert!(store.event("e").unwrap().is_none());
        assert!(store.event_history("e").unwrap().is_empty());
        assert!(store.delivery(&delivery).unwrap().is_none());
        assert_eq!(store.queue_depth(), 0);
        assert!(
            store
                .list_events(&crate::store::EventFilter {
                    limit: 10,
                    ..Default::default()
                })
                .unwrap()
                .is_empty()
        );
        // An attempt that was running when the event was deleted writes nothing back.
        let attempt = crate::store::AttemptRecord {
            n: 1,
            started_ms: 3,
            duration_ms: 1.0,
            succeeded: true,
            report: json!({}),
            replay: false,
            event_version: None,
            recorded_steps: false,
        };
        store
            .finish_attempt(&mut claimed, &attempt, crate::store::NextStep::Succeeded, 4)
            .unwrap();
        assert!(store.delivery(&delivery).unwrap().is_none());
        assert!(store.attempts(&delivery).unwrap().is_empty());
    }
}
