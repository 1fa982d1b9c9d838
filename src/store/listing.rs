//! Listings of deliveries in creation order (events are listed in `event_listing.rs`), each
//! read through the index that narrows it most, so a page costs its own length and a seek,
//! not the store's size. Whatever an index does not narrow (a second filter, an entry a crash
//! left behind) is checked on the record.

use super::records::{DeliveryRecord, DeliveryStatus};
use super::{DeliveryFilter, Store, StoreError, keys};

impl Store {
    /// Deliveries matching `filter`, in creation order (created ms, then id; ids are
    /// time-ordered, so this is id order but for deliveries created in the same instant), or
    /// newest first.
    pub fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError> {
        let (tree, within) = match (&filter.handler, &filter.event_type) {
            (Some(handler), _) => (&self.trees.deliveries_by_handler, Some(handler.as_str())),
            (None, Some(kind)) => (&self.trees.deliveries_by_type, Some(kind.as_str())),
            (None, None) => (&self.trees.deliveries_by_status, None),
        };
        let (from, to) = self.position_bounds(filter)?;
        let reverse = filter.newest_first;
        let statuses = filter.status.map_or(keys::STATUSES.to_vec(), |s| vec![s]);
        let heads = statuses.into_iter().map(|status| {
            // Running deliveries are only in the status index (see `keys.rs`), and few.
            let (tree, within) = match status {
                DeliveryStatus::Running => (&self.trees.deliveries_by_status, None),
                _ => (tree, within),
            };
            let prefix = keys::delivery_prefix(status, within);
            let start = [prefix.as_slice(), &from].concat();
            let end = match &to {
                Some(to) => Some([prefix.as_slice(), to].concat()),
                None => keys::prefix_end(&prefix),
            };
            let keys: Keys = if status == DeliveryStatus::Running {
                let mut keys = self.running_keys(&prefix, &start, end.as_deref())?;
                if reverse {
                    keys.reverse();
                }
                Box::new(keys.into_iter().map(Ok))
            } else {
                let keys = range(tree, start, end).keys();
                if reverse {
                    Box::new(keys.rev().map(|key| Ok(key?)))
                } else {
                    Box::new(keys.map(|key| Ok(key?)))
                }
            };
            Ok(Head::new(status, prefix.len(), keys))
        });
        let heads = heads.collect::<Result<Vec<_>, StoreError>>()?;
        let mut out = Vec::new();
        for item in (Merged { heads, reverse }) {
            if out.len() >= filter.limit {
                break;
            }
            let (status, position) = item?;
            let (created_ms, id) = keys::parse_position(&position)?;
            let Some(delivery) = self.delivery(&id)? else {
                continue;
            };
            if delivery.status == status && delivery.created_ms == created_ms && delivery_matches(filter, &delivery) {
                out.push(delivery);
            }
        }
        Ok(out)
    }

    /// The positions a delivery listing covers within each index range, `from..to` (to the
    /// range's end when `to` is `None`): within `since_ms..until_ms`, and past the cursor in
    /// the listing's order.
    fn position_bounds(&self, filter: &DeliveryFilter) -> Result<(Vec<u8>, Option<Vec<u8>>), StoreError> {
        let mut from = filter.since_ms.map_or_else(Vec::new, |s| s.to_be_bytes().to_vec());
        let mut to = filter.until_ms.map(|u| u.to_be_bytes().to_vec());
        if let Some(id) = &filter.after_id {
            // A cursor whose delivery is gone resumes at its id's own time, which is within a
            // few milliseconds of when it was created.
            let at_ms = match self.delivery(id)? {
                Some(delivery) => delivery.created_ms,
                None => id_time_ms(id),
            };
            let mut position = keys::position(at_ms, id);
            if filter.newest_first {
                to = Some(to.map_or(position.clone(), |to| to.min(position)));
            } else {
                position.push(0);
                from = from.max(position);
            }
        }
        Ok((from, to))
    }
}

fn delivery_matches(filter: &DeliveryFilter, d: &DeliveryRecord) -> bool {
    filter.status.is_none_or(|s| s == d.status)
        && filter.handler.as_deref().is_none_or(|h| h == d.handler)
        && filter.event_type.as_deref().is_none_or(|t| t == d.event_type)
        && filter.since_ms.is_none_or(|s| d.created_ms >= s)
        && filter.until_ms.is_none_or(|u| d.created_ms < u)
        && (filter.error.as_deref()).is_none_or(|needle| d.last_error.as_deref().is_some_and(|e| e.contains(needle)))
}

/// The milliseconds of a UUIDv7 id; 0 for anything else.
fn id_time_ms(id: &str) -> u64 {
    uuid::Uuid::parse_str(id)
        .ok()
        .and_then(|u| u.get_timestamp())
        .map_or(0, |t| {
            let (secs, nanos) = t.to_unix();
            secs * 1000 + u64::from(nanos) / 1_000_000
        })
}

pub(super) fn range(tree: &sled::Tree, start: Vec<u8>, end: Option<Vec<u8>>) -> sled::Iter {
    match end {
        Some(end) => tree.range(start..end),
        None => tree.range(start..),
    }
}

/// One status's range of a delivery index, with its next key read ahead.
struct Head {
    status: DeliveryStatus,
    prefix_len: usize,
    iter: Keys,
    next: Option<sled::IVec>,
    done: bool,
}

/// The keys of one range, in order.
type Keys = Box<dyn Iterator<Item = Result<sled::IVec, StoreError>>>;

impl Head {
    fn new(status: DeliveryStatus, prefix_len: usize, iter: Keys) -> Self {
        Self {
            status,
            prefix_len,
            iter,
            next: None,
            done: false,
        }
    }

    fn position(&self) -> Option<&[u8]> {
        self.next.as_deref().map(|key| &key[self.prefix_len..])
    }
}

/// The ranges of several statuses merged into one sequence by position, lowest first or
/// (`reverse`) highest first (at most four, so a linear pick beats a heap).
struct Merged {
    heads: Vec<Head>,
    reverse: bool,
}

impl Iterator for Merged {
    type Item = Result<(DeliveryStatus, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        for head in self.heads.iter_mut().filter(|h| h.next.is_none() && !h.done) {
            match head.iter.next() {
                Some(Ok(key)) => head.next = Some(key),
                Some(Err(e)) => return Some(Err(e)),
                None => head.done = true,
            }
        }
        let reverse = self.reverse;
        let best = self.heads.iter_mut().filter(|h| h.next.is_some()).min_by(|a, b| {
            let order = a.position().cmp(&b.position());
            if reverse { order.reverse() } else { order }
        })?;
        let position = best.position().map(<[u8]>::to_vec)?;
        best.next = None;
        Some(Ok((best.status, position)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NextStep;
    use crate::store::testing::{attempt, ingest_typed};

    fn page(store: &Store, filter: DeliveryFilter) -> Vec<String> {
        crate::store::testing::delivery_ids(store, &filter)
    }

    #[test]
    fn deliveries_merge_statuses_in_creation_order_and_page_by_cursor() {
        let store = Store::temporary().unwrap();
        let mut all = Vec::new();
        for (i, (kind, handler)) in [("a", "h1"), ("b", "h1"), ("a", "h2"), ("a", "h1")].iter().enumerate() {
            all.extend(ingest_typed(
                &store,
                &format!("e{i}"),
                kind,
                &[handler],
                10 * (i as u64 + 1),
            ));
        }
        attempt(
            &store,
            &all[1],
            NextStep::Dead {
                error: "x".into(),
                holds_key: true,
            },
            50,
        );
        attempt(&store, &all[2], NextStep::Succeeded, 51);
        let filter = |limit| DeliveryFilter {
            limit,
            ..Default::default()
        };
        assert_eq!(page(&store, filter(10)), all, "every status, in creation order");
        let first = page(&store, filter(2));
        let next = page(
            &store,
            DeliveryFilter {
                after_id: first.last().cloned(),
                ..filter(10)
            },
        );
        assert_eq!([first, next].concat(), all);
        let h1 = DeliveryFilter {
            handler: Some("h1".into()),
            ..filter(10)
        };
        assert_eq!(
            page(&store, h1.clone()),
            [all[0].clone(), all[1].clone(), all[3].clone()]
        );
        let pending_h1_a = DeliveryFilter {
            status: Some(DeliveryStatus::Pending),
            event_type: Some("a".into()),
            ..h1
        };
        assert_eq!(page(&store, pending_h1_a), [all[0].clone(), all[3].clone()]);
        let dead_b = DeliveryFilter {
            status: Some(DeliveryStatus::Dead),
            event_type: Some("b".into()),
            ..filter(10)
        };
        assert_eq!(page(&store, dead_b), [all[1].clone()]);
        crate::store::testing::claim(&store, 40, &all[3], 60)
            .unwrap()
            .expect("claimed");
        let running = |handler: &str| DeliveryFilter {
            status: Some(DeliveryStatus::Running),
            handler: Some(handler.into()),
            ..filter(10)
        };
        assert_eq!(page(&store, running("h1")), [all[3].clone()]);
        assert!(page(&store, running("h2")).is_empty());
        let h1 = DeliveryFilter {
            handler: Some("h1".into()),
            ..filter(10)
        };
        assert_eq!(page(&store, h1), [all[0].clone(), all[1].clone(), all[3].clone()]);
    }

    #[test]
    fn a_time_window_seeks_to_its_start_and_stops_at_its_end() {
        let store = Store::temporary().unwrap();
        let ids: Vec<String> = (0..6)
            .flat_map(|i| ingest_typed(&store, &format!("e{i}"), "t", &["h"], 100 * i))
            .collect();
        let window = DeliveryFilter {
            since_ms: Some(100),
            until_ms: Some(400),
            handler: Some("h".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(page(&store, window.clone()), ids[1..4]);
        let first = page(
            &store,
            DeliveryFilter {
                limit: 1,
                ..window.clone()
            },
        );
        let next = page(
            &store,
            DeliveryFilter {
                after_id: Some(first[0].clone()),
                ..window
            },
        );
        assert_eq!(next, ids[2..4]);
    }

    #[test]
    fn a_cursor_whose_delivery_is_gone_resumes_at_its_time() {
        let store = Store::temporary().unwrap();
        let now = crate::clock::now_ms;
        let ids: Vec<String> = (0..6)
            .flat_map(|i| ingest_typed(&store, &format!("e{i}"), "t", &["h"], now()))
            .collect();
        store.forget_delivery(&ids[2]).unwrap();
        let next = DeliveryFilter {
            after_id: Some(ids[2].clone()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(page(&store, next), ids[3..]);
    }

    #[test]
    fn an_entry_left_by_a_crash_is_skipped_not_listed_twice() {
        let store = Store::temporary().unwrap();
        let id = ingest_typed(&store, "e", "t", &["h"], 10).remove(0);
        attempt(&store, &id, NextStep::Succeeded, 20);
        // As if the process died before removing the entry of the old status.
        let pending = keys::delivery_prefix(DeliveryStatus::Pending, None);
        let stale = [pending.as_slice(), &keys::position(10, &id)].concat();
        store.trees.deliveries_by_status.insert(stale, &[] as &[u8]).unwrap();
        let all = DeliveryFilter {
            limit: 10,
            ..Default::default()
        };
        assert_eq!(page(&store, all), std::slice::from_ref(&id));
        let pending = DeliveryFilter {
            status: Some(DeliveryStatus::Pending),
            limit: 10,
            ..Default::default()
        };
        assert!(page(&store, pending).is_empty());
    }

    #[test]
    fn newest_first_merges_statuses_backwards_and_pages_by_cursor_within_the_window() {
        let store = Store::temporary().unwrap();
        let mut all = Vec::new();
        for i in 0..5u64 {
            all.extend(ingest_typed(&store, &format!("e{i}"), "a", &["h"], 10 * (i + 1)));
        }
        attempt(
            &store,
            &all[1],
            NextStep::Dead {
                error: "crm said 500".into(),
                holds_key: true,
            },
            60,
        );
        attempt(&store, &all[3], NextStep::Succeeded, 61);
        crate::store::testing::claim(&store, 30, &all[2], 62)
            .unwrap()
            .expect("claimed");
        let newest = |limit| DeliveryFilter {
            newest_first: true,
            limit,
            ..Default::default()
        };
        let reversed: Vec<String> = all.iter().rev().cloned().collect();
        assert_eq!(page(&store, newest(10)), reversed, "every status, newest first");
        let mut seen = Vec::new();
        let mut after_id = None;
        for _ in 0..6 {
            let found = page(
                &store,
                DeliveryFilter {
                    after_id: after_id.clone(),
                    ..newest(2)
                },
            );
            let Some(last) = found.last().cloned() else { break };
            after_id = Some(last);
            seen.extend(found);
        }
        assert_eq!(seen, reversed, "pages of 2 backwards");
        let window = DeliveryFilter {
            since_ms: Some(20),
            until_ms: Some(40),
            ..newest(10)
        };
        assert_eq!(page(&store, window), [all[2].clone(), all[1].clone()]);
        let by_error = DeliveryFilter {
            error: Some("said 500".into()),
            ..newest(10)
        };
        assert_eq!(page(&store, by_error), [all[1].clone()]);
    }
}
