//! Events: accepted once by id, listed in ingest order, each with the deliveries it created.

use super::records::{DeliveryRecord, EventRecord};
use super::{Store, StoreError, codec, keys};
use crate::event::Event;

/// An event to accept, with the handlers it routes to.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Event,
    pub handlers: Vec<String>,
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
    pub event_type: Option<String>,
    /// Only events received at or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Only events after this sequence number (the previous page's cursor).
    pub after_seq: Option<u64>,
    /// Only events that matched no handler.
    pub unrouted: bool,
    pub limit: usize,
}

impl Store {
    /// Stores each new event with its deliveries (queued, due at `now_ms`) atomically per
    /// event. Not durable until [`Store::commit`] returns.
    pub fn ingest(&self, batch: Vec<NewEvent>, now_ms: u64) -> Result<Vec<Ingested>, StoreError> {
        batch.into_iter().map(|new| self.ingest_one(new, now_ms)).collect()
    }

    fn ingest_one(&self, new: NewEvent, now_ms: u64) -> Result<Ingested, StoreError> {
        let t = &self.trees;
        let seq = self.db.generate_id()?;
        let deliveries: Vec<DeliveryRecord> = new
            .handlers
            .iter()
            .map(|handler| DeliveryRecord::new(&new.event, handler, now_ms))
            .collect();
        let record = EventRecord {
            seq,
            received_ms: now_ms,
            deliveries: deliveries.iter().map(|d| d.id.clone()).collect(),
            event: new.event,
            version: 1,
            redacted: Vec::new(),
            redacted_ms: None,
        };
        let event_raw = codec::encode(keys::EVENT_RECORD_V1, &record)?;
        let delivery_raws = deliveries
            .iter()
            .map(|d| Ok((d.id.clone(), codec::encode(keys::DELIVERY_RECORD_V1, d)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let id = record.event.id.clone();
        // No multi-tree transaction (they cost more than the writes): the event record is
        // written last, by compare-and-swap, and is what makes the rest count. sled keeps
        // writes in order, so a crash leaves at most a prefix: index entries and deliveries
        // whose event is missing, which listing and delivery skip and remove.
        t.events_seq.insert(seq.to_be_bytes(), id.as_bytes())?;
        for (delivery_id, raw) in &delivery_raws {
            t.deliveries.insert(delivery_id.as_bytes(), raw.as_slice())?;
            t.queue.insert(keys::queue_key(now_ms, delivery_id), &[] as &[u8])?;
        }
        let claimed = t
            .events
            .compare_and_swap(id.as_bytes(), None as Option<&[u8]>, Some(event_raw))?;
        if claimed.is_ok() {
            return Ok(Ingested::New {
                id,
                deliveries: record.deliveries,
            });
        }
        // Accepted before (or by a concurrent request): undo this attempt's writes.
        t.events_seq.remove(seq.to_be_bytes())?;
        for (delivery_id, _) in &delivery_raws {
            t.queue.remove(keys::queue_key(now_ms, delivery_id))?;
            t.deliveries.remove(delivery_id.as_bytes())?;
        }
        Ok(Ingested::Duplicate { id })
    }

    /// The event with `id`, if accepted.
    pub fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let raw = self.trees.events.get(id.as_bytes())?;
        raw.map(|raw| codec::decode(keys::EVENT_RECORD_V1, &raw)).transpose()
    }

    /// Events in ingest order matching `filter`.
    pub fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let start = filter.after_seq.map_or(0, |s| s.saturating_add(1));
        let mut out = Vec::new();
        for item in self.trees.events_seq.range(start.to_be_bytes()..) {
            if out.len() >= filter.limit {
                break;
            }
            let (key, id) = item?;
            let key_seq: [u8; 8] = key
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("event index key".into()))?;
            let id = String::from_utf8_lossy(&id);
            let Some(record) = self.event(&id)? else { continue };
            if record.seq != u64::from_be_bytes(key_seq) {
                continue;
            }
            let type_ok = filter.event_type.as_deref().is_none_or(|t| t == record.event.kind);
            let time_ok = filter.since_ms.is_none_or(|s| record.received_ms >= s);
            let routed_ok = !filter.unrouted || record.deliveries.is_empty();
            if type_ok && time_ok && routed_ok {
                out.push(record);
            }
        }
        Ok(out)
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
        assert_eq!(store.due(1000, 10).unwrap().len(), 2);
        assert_eq!(store.due(999, 10).unwrap().len(), 0);

        let again = store.ingest(
            vec![NewEvent {
                event: event("e1", "a.b"),
                handlers: vec!["h1".into()],
            }],
            2000,
        );
        assert_eq!(again.unwrap(), [Ingested::Duplicate { id: "e1".into() }]);
        assert_eq!(store.due(5000, 10).unwrap().len(), 2, "a duplicate creates no delivery");
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
            event_type: Some("a".into()),
            limit: 2,
            ..Default::default()
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
}
