//! Deliveries per handler and status, for the metrics' gauges: pending, blocked and dead counted from
//! the index by status and handler (its keys only, no record read), running from the claims
//! held in memory. A scrape walks every pending, blocked and dead entry once.

use std::collections::BTreeMap;

use super::records::DeliveryStatus;
use super::{Store, StoreError, keys};

/// How many deliveries of `handler` are in `status` now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerCount {
    pub handler: String,
    pub status: DeliveryStatus,
    pub count: u64,
}

impl Store {
    /// Pending, blocked, running and dead deliveries per handler; handlers with none are left out.
    pub fn delivery_counts(&self) -> Result<Vec<HandlerCount>, StoreError> {
        let mut running: BTreeMap<String, u64> = BTreeMap::new();
        for (_, claim) in self.shared.claims.snapshot() {
            *running.entry(claim.handler).or_default() += 1;
        }
        let mut counts = Vec::new();
        for status in [DeliveryStatus::Pending, DeliveryStatus::Dead, DeliveryStatus::Blocked] {
            for (handler, mut count) in self.count_by_handler(status)? {
                if status == DeliveryStatus::Pending {
                    // A claimed delivery keeps its pending entries until its attempt ends.
                    count = count.saturating_sub(running.get(&handler).copied().unwrap_or(0));
                }
                if count > 0 {
                    counts.push(HandlerCount { handler, status, count });
                }
            }
        }
        let running = running.into_iter().map(|(handler, count)| HandlerCount {
            handler,
            status: DeliveryStatus::Running,
            count,
        });
        counts.extend(running);
        Ok(counts)
    }

    /// Entries of `status` in the index by status and handler, per handler.
    fn count_by_handler(&self, status: DeliveryStatus) -> Result<BTreeMap<String, u64>, StoreError> {
        let prefix = keys::delivery_prefix(status, None);
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for entry in self.trees.deliveries_by_handler.scan_prefix(&prefix) {
            let (key, _) = entry?;
            let rest = &key[prefix.len()..];
            let name = &rest[..rest.iter().position(|b| *b == 0).unwrap_or(rest.len())];
            // Keys come in order, so one handler's entries are adjacent: only the first of
            // them makes a new name.
            match counts.last_entry() {
                Some(mut last) if last.key().as_bytes() == name => *last.get_mut() += 1,
                _ => {
                    counts.insert(String::from_utf8_lossy(name).into_owned(), 1);
                }
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NextStep;
    use crate::store::testing::{self, ingest};

    #[test]
    fn pending_running_and_dead_are_counted_per_handler() {
        let store = Store::temporary().unwrap();
        let h1: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|e| ingest(&store, e, &["h1"], 10).remove(0))
            .collect();
        ingest(&store, "d", &["h2", "h1.more"], 10);
        testing::claim(&store, 10, &h1[0], 11).unwrap().expect("claimed");
        let dead = NextStep::Dead {
            error: "no".into(),
            holds_key: true,
        };
        testing::attempt(&store, &h1[1], dead, 12);
        let mut counts = store.delivery_counts().unwrap();
        counts.sort_by_key(|c| (c.handler.clone(), keys::status_code(c.status)));
        let seen: Vec<(&str, DeliveryStatus, u64)> =
            counts.iter().map(|c| (c.handler.as_str(), c.status, c.count)).collect();
        assert_eq!(
            seen,
            [
                ("h1", DeliveryStatus::Pending, 1),
                ("h1", DeliveryStatus::Running, 1),
                ("h1", DeliveryStatus::Dead, 1),
                ("h1.more", DeliveryStatus::Pending, 1),
                ("h2", DeliveryStatus::Pending, 1),
            ]
        );
    }
}
