//! Listings of events in ingest order, each read through the index that narrows it most
//! (type, unrouted, or time), so a page costs its own length and a seek, not the store's size.
//! Whatever an index does not narrow (a second filter, an entry a crash left behind) is checked
//! on the record.

use super::listing::range;
use super::records::EventRecord;
use super::{EventFilter, Store, StoreError, keys};

impl Store {
    /// Events in ingest order matching `filter`.
    pub fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let after = filter.after_seq.map_or(0, |s| s.saturating_add(1));
        let (tree, start, end) = match (&filter.event_type, filter.unrouted) {
            // The time index is in ingest order too (see `keys.rs`).
            (None, false) => {
                let mut start = self.time_key_at_seq(after)?.to_vec();
                if let Some(since_ms) = filter.since_ms {
                    start = start.max(keys::event_time_key(since_ms, 0).to_vec());
                }
                (&self.trees.events_by_time, start, None)
            }
            (kind, _) => {
                let mut from = after;
                if let Some(since_ms) = filter.since_ms {
                    match self.first_seq_at(since_ms)? {
                        Some(seq) => from = from.max(seq),
                        None => return Ok(Vec::new()),
                    }
                }
                let (tree, prefix) = match kind {
                    Some(kind) => (&self.trees.events_by_type, keys::event_type_prefix(kind)),
                    None => (&self.trees.events_unrouted, Vec::new()),
                };
                let start = [prefix.as_slice(), &keys::seq_key(from)].concat();
                (tree, start, keys::prefix_end(&prefix))
            }
        };
        let mut out = Vec::new();
        for item in range(tree, start, end) {
            if out.len() >= filter.limit {
                break;
            }
            let (key, id) = item?;
            // Every key of these indexes ends in the event's seq.
            let seq = keys::parse_seq(&key)?;
            let Some(record) = self.event(&String::from_utf8_lossy(&id))? else {
                continue;
            };
            if record.seq == seq && event_matches(filter, &record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// The seq of the first event whose order ms is at least `since_ms`. Order ms never
    /// decreases along seq and is at least the received time, so no event before that seq
    /// was received at or after `since_ms`.
    fn first_seq_at(&self, since_ms: u64) -> Result<Option<u64>, StoreError> {
        match self
            .trees
            .events_by_time
            .range(keys::event_time_key(since_ms, 0)..)
            .next()
        {
            Some(item) => Ok(Some(keys::parse_event_time_key(&item?.0)?.1)),
            None => Ok(None),
        }
    }

    /// The first key of the time index whose seq may be `from` or more: every key from it
    /// on has a seq of at least `from`, every key before it less. Seqs rise with the keys
    /// (order ms never decreases along seq), so bisecting on order ms finds it in about 40
    /// seeks, whatever the number of events.
    fn time_key_at_seq(&self, from: u64) -> Result<[u8; 16], StoreError> {
        // Whether the first entry at or past `ms` has a seq below `from`; false past them all.
        let below = |ms| Ok::<_, StoreError>(self.first_seq_at(ms)?.is_some_and(|seq| seq < from));
        if from == 0 || !below(0)? {
            return Ok(keys::event_time_key(0, 0));
        }
        let last_ms = match self.trees.events_by_time.last()? {
            Some((key, _)) => keys::parse_event_time_key(&key)?.0,
            None => 0,
        };
        // below(lo) holds and below(hi) does not: the entries of order ms `lo` with a seq of
        // `from` or more are the first.
        let (mut lo, mut hi) = (0, last_ms.saturating_add(1));
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if below(mid)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(keys::event_time_key(lo, from))
    }
}

fn event_matches(filter: &EventFilter, record: &EventRecord) -> bool {
    filter.event_type.as_deref().is_none_or(|t| t == record.event.kind)
        && filter.since_ms.is_none_or(|s| record.received_ms >= s)
        && (!filter.unrouted || record.deliveries.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::ingest_typed;

    fn ids_of_events(events: &[EventRecord]) -> Vec<&str> {
        events.iter().map(|e| e.event.id.as_str()).collect()
    }

    #[test]
    fn events_by_type_since_and_unrouted_page_through_their_indexes() {
        let store = Store::temporary().unwrap();
        // Received times cross: e2 arrived "before" e1 by the clock, after it in ingest order.
        for (id, kind, handlers, at) in [
            ("e0", "a", &["h"][..], 100),
            ("e1", "b", &[][..], 300),
            ("e2", "a", &[][..], 200),
            ("e3", "a", &["h"][..], 400),
        ] {
            ingest_typed(&store, id, kind, handlers, at);
        }
        let of = |filter: EventFilter| store.list_events(&EventFilter { limit: 10, ..filter }).unwrap();
        let by_type = |kind: &str| EventFilter {
            event_type: Some(kind.into()),
            ..Default::default()
        };
        assert_eq!(ids_of_events(&of(by_type("a"))), ["e0", "e2", "e3"]);
        let first = store
            .list_events(&EventFilter {
                limit: 1,
                ..by_type("a")
            })
            .unwrap();
        let rest = of(EventFilter {
            after_seq: Some(first[0].seq),
            ..by_type("a")
        });
        assert_eq!(ids_of_events(&rest), ["e2", "e3"]);
        let since = |ms| EventFilter {
            since_ms: Some(ms),
            ..Default::default()
        };
        assert_eq!(ids_of_events(&of(since(200))), ["e1", "e2", "e3"]);
        assert_eq!(ids_of_events(&of(since(250))), ["e1", "e3"]);
        assert!(of(since(401)).is_empty());
        let unrouted = EventFilter {
            unrouted: true,
            ..Default::default()
        };
        assert_eq!(ids_of_events(&of(unrouted.clone())), ["e1", "e2"]);
        assert_eq!(
            ids_of_events(&of(EventFilter {
                unrouted: true,
                ..by_type("a")
            })),
            ["e2"]
        );
        assert!(of(by_type("zz")).is_empty());
    }

    #[test]
    fn all_events_page_by_cursor_in_ingest_order_across_crossed_clocks() {
        let store = Store::temporary().unwrap();
        // The clock steps back twice: several events share an order ms.
        let received = [100, 300, 200, 300, 400, 50, 400, 401];
        for (i, at) in received.iter().enumerate() {
            ingest_typed(&store, &format!("e{i}"), "t", &[], *at);
        }
        let every: Vec<String> = (0..received.len()).map(|i| format!("e{i}")).collect();
        for limit in [1, 2, 3] {
            let mut seen = Vec::new();
            let mut after_seq = None;
            for _ in 0..received.len() + 1 {
                let filter = EventFilter {
                    after_seq,
                    limit,
                    ..Default::default()
                };
                let page = store.list_events(&filter).unwrap();
                let Some(last) = page.last() else { break };
                after_seq = Some(last.seq);
                seen.extend(page.iter().map(|e| e.event.id.clone()));
            }
            assert_eq!(seen, every, "pages of {limit}");
        }
        let since_and_after = EventFilter {
            since_ms: Some(300),
            after_seq: Some(store.event("e3").unwrap().unwrap().seq),
            limit: 10,
            ..Default::default()
        };
        let rest = store.list_events(&since_and_after).unwrap();
        assert_eq!(ids_of_events(&rest), ["e4", "e6", "e7"], "e5 was received before 300");
    }
}
