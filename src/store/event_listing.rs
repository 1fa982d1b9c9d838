//! Listings of events in ingest order or newest first, each read through the index that
//! narrows it most (type, unrouted, or time), so a page costs its own length and a seek per
//! range, not the store's size. Whatever an index does not narrow (a second filter, an entry a
//! crash left behind) is checked on the record.

use sled::IVec;

use super::listing::range;
use super::records::EventRecord;
use super::{EventFilter, Store, StoreError, keys};

impl Store {
    /// Events matching `filter`, in ingest order or newest first.
    pub fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let Some((lo, hi)) = self.seq_bounds(filter)? else {
            return Ok(Vec::new());
        };
        let ranges = self.event_ranges(filter, lo, hi)?;
        let mut out = Vec::new();
        for item in BySeq::new(ranges, filter.newest_first) {
            if out.len() >= filter.limit {
                break;
            }
            let (seq, id) = item?;
            let Some(record) = self.event(&String::from_utf8_lossy(&id))? else {
                continue;
            };
            if record.seq == seq && event_matches(filter, &record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// The distinct types of stored events that start with `prefix`, in byte order: one seek
    /// per type, whatever the number of events.
    pub fn event_types(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut types = Vec::new();
        let mut from = prefix.as_bytes().to_vec();
        while let Some(item) = self.trees.events_by_type.range(from.as_slice()..).next() {
            let key = item?.0;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            // Every key is the type, a 0 byte, then the seq.
            let end = key
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| StoreError::Corrupt("event type key".into()))?;
            types.push(String::from_utf8_lossy(&key[..end]).into_owned());
            match keys::prefix_end(&key[..=end]) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(types)
    }

    /// The seqs `filter` allows, `lo..hi` (no end when `hi` is `None`); `None` when it allows
    /// none.
    fn seq_bounds(&self, filter: &EventFilter) -> Result<Option<(u64, Option<u64>)>, StoreError> {
        let mut lo = 0;
        let mut hi = None;
        if let Some(since_ms) = filter.since_ms {
            match self.first_seq_at(since_ms)? {
                Some(seq) => lo = seq,
                None => return Ok(None),
            }
        }
        if let Some(until_ms) = filter.until_ms {
            hi = self.first_seq_at(until_ms)?;
        }
        match (filter.after_seq, filter.newest_first) {
            (Some(cursor), false) => lo = lo.max(cursor.saturating_add(1)),
            (Some(cursor), true) => hi = Some(hi.map_or(cursor, |hi: u64| hi.min(cursor))),
            (None, _) => {}
        }
        Ok(hi.is_none_or(|hi| hi > lo).then_some((lo, hi)))
    }

    /// The index ranges holding the events of seqs `lo..hi` that `filter` may take, each read
    /// in the listing's direction.
    fn event_ranges(&self, filter: &EventFilter, lo: u64, hi: Option<u64>) -> Result<Vec<Keys>, StoreError> {
        let bounded = |tree, prefix: Vec<u8>| {
            let start = [prefix.as_slice(), &keys::seq_key(lo)].concat();
            let end = match hi {
                Some(hi) => Some([prefix.as_slice(), &keys::seq_key(hi)].concat()),
                None => keys::prefix_end(&prefix),
            };
            (tree, start, end)
        };
        let ranges = match (&filter.types, filter.unrouted) {
            (Some(types), _) => types
                .iter()
                .map(|kind| bounded(&self.trees.events_by_type, keys::event_type_prefix(kind)))
                .collect(),
            (None, true) => vec![bounded(&self.trees.events_unrouted, Vec::new())],
            // The time index is in ingest order too (see `keys.rs`).
            (None, false) => {
                let (start, end) = self.time_bounds(filter)?;
                vec![(&self.trees.events_by_time, start.to_vec(), end.map(|k| k.to_vec()))]
            }
        };
        let newest_first = filter.newest_first;
        Ok(ranges
            .into_iter()
            .map(|(tree, start, end)| {
                let iter = range(tree, start, end);
                // Every key of these indexes ends in the event's seq.
                let entry = |item: Result<(IVec, IVec), sled::Error>| {
                    let (key, id) = item?;
                    Ok((keys::parse_seq(&key)?, id))
                };
                if newest_first {
                    Box::new(iter.rev().map(entry)) as Keys
                } else {
                    Box::new(iter.map(entry))
                }
            })
            .collect())
    }

    /// The keys of the time index `filter` covers, `start..end`: the time bounds are keys of
    /// their own, and only a cursor needs its seq found.
    fn time_bounds(&self, filter: &EventFilter) -> Result<([u8; 16], Option<[u8; 16]>), StoreError> {
        let mut start = keys::event_time_key(filter.since_ms.unwrap_or(0), 0);
        let mut end = filter.until_ms.map(|until_ms| keys::event_time_key(until_ms, 0));
        match (filter.after_seq, filter.newest_first) {
            (Some(cursor), false) => start = start.max(self.time_key_at_seq(cursor.saturating_add(1))?),
            (Some(cursor), true) => {
                let before = self.time_key_at_seq(cursor)?;
                end = Some(end.map_or(before, |end| end.min(before)));
            }
            (None, _) => {}
        }
        Ok((start, end))
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
    filter
        .types
        .as_ref()
        .is_none_or(|types| types.contains(&record.event.kind))
        && filter.since_ms.is_none_or(|s| record.received_ms >= s)
        && (!filter.unrouted || record.deliveries.is_empty())
}

/// One index range's entries as (seq, event id), in the listing's direction.
type Keys = Box<dyn Iterator<Item = Result<(u64, IVec), StoreError>>>;

/// Index ranges merged into one sequence by seq: lowest first, or highest first. One range
/// per event type listed, so a linear pick of the next is enough.
struct BySeq {
    heads: Vec<std::iter::Peekable<Keys>>,
    newest_first: bool,
}

impl BySeq {
    fn new(ranges: Vec<Keys>, newest_first: bool) -> Self {
        Self {
            heads: ranges.into_iter().map(Iterator::peekable).collect(),
            newest_first,
        }
    }
}

impl Iterator for BySeq {
    type Item = Result<(u64, IVec), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<(usize, u64)> = None;
        for (i, head) in self.heads.iter_mut().enumerate() {
            let seq = match head.peek() {
                None => continue,
                Some(Ok((seq, _))) => *seq,
                // An error is passed on at once.
                Some(Err(_)) => return head.next(),
            };
            let better = best.is_none_or(|(_, b)| if self.newest_first { seq > b } else { seq < b });
            if better {
                best = Some((i, seq));
            }
        }
        self.heads[best?.0].next()
    }
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
        let by_type = EventFilter::of_type;
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

    #[test]
    fn several_types_until_and_newest_first_merge_and_page_both_ways() {
        let store = Store::temporary().unwrap();
        for (i, (kind, at)) in [
            ("crm.a", 100),
            ("crm.b", 200),
            ("gh.x", 300),
            ("crm.a", 400),
            ("crm.b", 500),
        ]
        .iter()
        .enumerate()
        {
            ingest_typed(&store, &format!("e{i}"), kind, &[], *at);
        }
        assert_eq!(store.event_types("crm.").unwrap(), ["crm.a", "crm.b"]);
        assert_eq!(store.event_types("").unwrap(), ["crm.a", "crm.b", "gh.x"]);
        assert!(store.event_types("zz").unwrap().is_empty());
        let crm = EventFilter {
            types: Some(vec!["crm.a".into(), "crm.b".into()]),
            limit: 10,
            ..Default::default()
        };
        let of = |filter: &EventFilter| ids_of_events(&store.list_events(filter).unwrap()).join(" ");
        assert_eq!(of(&crm), "e0 e1 e3 e4");
        let newest = EventFilter {
            newest_first: true,
            ..crm.clone()
        };
        assert_eq!(of(&newest), "e4 e3 e1 e0");
        assert_eq!(
            of(&EventFilter {
                until_ms: Some(400),
                ..newest.clone()
            }),
            "e1 e0"
        );
        let everything = EventFilter {
            newest_first: true,
            since_ms: Some(200),
            until_ms: Some(500),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(of(&everything), "e3 e2 e1");
        assert!(
            of(&EventFilter {
                types: Some(Vec::new()),
                ..crm.clone()
            })
            .is_empty()
        );
        // Newest first pages backwards from the cursor, by type and over the time index.
        for filter in [
            newest,
            EventFilter {
                types: None,
                ..everything
            },
        ] {
            let mut seen = Vec::new();
            let mut after_seq = None;
            for _ in 0..6 {
                let page = store
                    .list_events(&EventFilter {
                        after_seq,
                        limit: 1,
                        ..filter.clone()
                    })
                    .unwrap();
                let Some(last) = page.last() else { break };
                after_seq = Some(last.seq);
                seen.push(last.event.id.clone());
            }
            assert_eq!(seen.join(" "), of(&filter));
        }
    }
}
