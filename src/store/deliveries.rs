//! Deliveries: the queue ordered by due time, claiming, attempts and their outcomes.

use super::records::{AttemptRecord, DeliveryRecord, DeliveryStatus, NextStep};
use super::{Store, StoreError, codec, keys};

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub handler: Option<String>,
    pub event_type: Option<String>,
    /// Only deliveries whose id sorts after this one (the previous page's last id).
    pub after_id: Option<String>,
    pub limit: usize,
}

impl Store {
    /// Up to `limit` queued deliveries due at or before `now_ms`, earliest first, as
    /// `(due_ms, delivery id)`.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<(u64, String)>, StoreError> {
        let mut out = Vec::new();
        for item in self.trees.queue.range(..keys::queue_key(now_ms.saturating_add(1), "")) {
            if out.len() >= limit {
                break;
            }
            let (key, _) = item?;
            out.push(keys::parse_queue_key(&key)?);
        }
        Ok(out)
    }

    /// When the earliest queued delivery is due.
    pub fn next_due(&self) -> Result<Option<u64>, StoreError> {
        match self.trees.queue.first()? {
            Some((key, _)) => Ok(Some(keys::parse_queue_key(&key)?.0)),
            None => Ok(None),
        }
    }

    /// Takes a queued delivery for an attempt: removes it from the queue and marks it running.
    /// None if another worker took it first.
    pub fn claim(&self, due_ms: u64, id: &str, now_ms: u64) -> Result<Option<DeliveryRecord>, StoreError> {
        if self.trees.queue.remove(keys::queue_key(due_ms, id))?.is_none() {
            return Ok(None);
        }
        let Some(mut delivery) = self.delivery(id)? else {
            return Ok(None);
        };
        delivery.status = DeliveryStatus::Running;
        delivery.updated_ms = now_ms;
        delivery.next_attempt_ms = None;
        self.put_delivery(&delivery)?;
        Ok(Some(delivery))
    }

    /// Records an attempt and what follows it; a retry is queued for its due time. Nothing
    /// is written if the delivery was removed meanwhile (its event was deleted).
    pub fn finish_attempt(
        &self,
        delivery: &mut DeliveryRecord,
        attempt: &AttemptRecord,
        next: NextStep,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        if !self.trees.deliveries.contains_key(delivery.id.as_bytes())? {
            return Ok(());
        }
        let raw = codec::encode(keys::ATTEMPT_RECORD_V1, attempt)?;
        self.trees
            .attempts
            .insert(keys::attempt_key(&delivery.id, attempt.n), raw)?;
        delivery.attempts = attempt.n;
        delivery.updated_ms = now_ms;
        delivery.replay_requested = false;
        match next {
            NextStep::Succeeded => {
                delivery.status = DeliveryStatus::Succeeded;
                delivery.next_attempt_ms = None;
            }
            NextStep::Retry { due_ms, error } => {
                delivery.status = DeliveryStatus::Pending;
                delivery.next_attempt_ms = Some(due_ms);
                delivery.last_error = Some(error);
                self.trees
                    .queue
                    .insert(keys::queue_key(due_ms, &delivery.id), &[] as &[u8])?;
            }
            NextStep::Dead { error } => {
                delivery.status = DeliveryStatus::Dead;
                delivery.next_attempt_ms = None;
                delivery.last_error = Some(error);
            }
        }
        self.put_delivery(delivery)
    }

    /// Puts deliveries left running by a previous process back in the queue, due at
    /// `now_ms` (at-least-once across crashes); returns how many.
    pub fn requeue_running(&self, now_ms: u64) -> Result<usize, StoreError> {
        let mut count = 0;
        for item in self.trees.deliveries.iter() {
            let (_, raw) = item?;
            let mut delivery: DeliveryRecord = codec::decode(keys::DELIVERY_RECORD_V1, &raw)?;
            if delivery.status != DeliveryStatus::Running {
                continue;
            }
            delivery.status = DeliveryStatus::Pending;
            delivery.next_attempt_ms = Some(now_ms);
            delivery.updated_ms = now_ms;
            self.put_delivery(&delivery)?;
            self.trees
                .queue
                .insert(keys::queue_key(now_ms, &delivery.id), &[] as &[u8])?;
            count += 1;
        }
        Ok(count)
    }

    /// The delivery with `id`.
    pub fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        let raw = self.trees.deliveries.get(id.as_bytes())?;
        raw.map(|raw| codec::decode(keys::DELIVERY_RECORD_V1, &raw)).transpose()
    }

    /// Every attempt of delivery `id`, in order.
    pub fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        self.trees
            .attempts
            .scan_prefix(keys::attempt_prefix(id))
            .map(|item| codec::decode(keys::ATTEMPT_RECORD_V1, &item?.1))
            .collect()
    }

    /// Deliveries matching `filter`, in id order (ids are time-ordered).
    pub fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError> {
        let start = filter.after_id.as_deref().map_or(Vec::new(), |id| {
            let mut key = id.as_bytes().to_vec();
            key.push(0);
            key
        });
        let mut out = Vec::new();
        for item in self.trees.deliveries.range(start..) {
            if out.len() >= filter.limit {
                break;
            }
            let (_, raw) = item?;
            let d: DeliveryRecord = codec::decode(keys::DELIVERY_RECORD_V1, &raw)?;
            let keep = filter.status.is_none_or(|s| s == d.status)
                && filter.handler.as_deref().is_none_or(|h| h == d.handler)
                && filter.event_type.as_deref().is_none_or(|t| t == d.event_type);
            if keep {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Removes a delivery (and its attempts) whose event does not exist.
    pub fn forget_delivery(&self, id: &str) -> Result<(), StoreError> {
        for key in self.trees.attempts.scan_prefix(keys::attempt_prefix(id)).keys() {
            self.trees.attempts.remove(key?)?;
        }
        self.trees.deliveries.remove(id.as_bytes())?;
        Ok(())
    }

    /// Counts of queued deliveries.
    pub fn queue_depth(&self) -> usize {
        self.trees.queue.len()
    }

    pub(super) fn put_delivery(&self, delivery: &DeliveryRecord) -> Result<(), StoreError> {
        let raw = codec::encode(keys::DELIVERY_RECORD_V1, delivery)?;
        self.trees.deliveries.insert(delivery.id.as_bytes(), raw)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one_delivery(store: &Store) -> String {
        crate::store::testing::ingest(store, "e", &["h"], 10).remove(0)
    }

    fn attempt(n: u32, succeeded: bool) -> AttemptRecord {
        AttemptRecord {
            n,
            started_ms: 10,
            duration_ms: 1.0,
            succeeded,
            report: json!({}),
            replay: false,
        }
    }

    #[test]
    fn claim_retry_and_finish() {
        let store = Store::temporary().unwrap();
        let id = one_delivery(&store);
        let mut d = store.claim(10, &id, 11).unwrap().expect("claimed");
        assert_eq!(d.status, DeliveryStatus::Running);
        assert!(
            store.claim(10, &id, 11).unwrap().is_none(),
            "a delivery is claimed once"
        );
        let retry = NextStep::Retry {
            due_ms: 5000,
            error: "boom".into(),
        };
        store.finish_attempt(&mut d, &attempt(1, false), retry, 12).unwrap();
        assert_eq!(store.next_due().unwrap(), Some(5000));
        assert!(store.due(4999, 10).unwrap().is_empty());
        let mut d = store.claim(5000, &id, 5000).unwrap().unwrap();
        store
            .finish_attempt(&mut d, &attempt(2, true), NextStep::Succeeded, 5001)
            .unwrap();
        let stored = store.delivery(&id).unwrap().unwrap();
        assert_eq!((stored.status, stored.attempts), (DeliveryStatus::Succeeded, 2));
        assert_eq!(stored.last_error.as_deref(), Some("boom"));
        let attempts = store.attempts(&id).unwrap();
        assert_eq!(attempts.iter().map(|a| a.n).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(store.queue_depth(), 0);
    }

    #[test]
    fn running_deliveries_are_requeued_after_a_crash() {
        let store = Store::temporary().unwrap();
        let id = one_delivery(&store);
        store.claim(10, &id, 11).unwrap().unwrap();
        assert_eq!(store.requeue_running(99).unwrap(), 1);
        assert_eq!(store.due(99, 10).unwrap(), [(99, id.clone())]);
        assert_eq!(store.delivery(&id).unwrap().unwrap().status, DeliveryStatus::Pending);
    }

    #[test]
    fn deliveries_list_by_filter() {
        let store = Store::temporary().unwrap();
        let id = one_delivery(&store);
        let mut d = store.claim(10, &id, 11).unwrap().unwrap();
        store
            .finish_attempt(&mut d, &attempt(1, false), NextStep::Dead { error: "no".into() }, 12)
            .unwrap();
        let dead = DeliveryFilter {
            status: Some(DeliveryStatus::Dead),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.list_deliveries(&dead).unwrap().len(), 1);
        let other = DeliveryFilter {
            handler: Some("x".into()),
            limit: 10,
            ..Default::default()
        };
        assert!(store.list_deliveries(&other).unwrap().is_empty());
        let after = DeliveryFilter {
            after_id: Some(id),
            limit: 10,
            ..Default::default()
        };
        assert!(store.list_deliveries(&after).unwrap().is_empty());
    }
}
