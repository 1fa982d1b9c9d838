//! Handing a claimed delivery back to the queue without an attempt.

use super::records::DeliveryStatus;
use super::{Store, StoreError};

impl Store {
    /// Hands a claimed delivery back to the queue, due at `due_ms`, without counting an
    /// attempt (its event was not readable yet). False if it is not claimed.
    pub fn postpone(&self, id: &str, due_ms: u64, now_ms: u64) -> Result<bool, StoreError> {
        self.write(|| {
            let _held = self.shared.stripes.lock(id);
            if !self.shared.claims.holds(id) {
                return Ok(false);
            }
            let queued = self.update_delivery_held(id, |delivery| {
                // Queued before the record says when, as in `finish_attempt`.
                self.enqueue(&delivery.handler, due_ms, &delivery.id)?;
                delivery.next_attempt_ms = Some(due_ms);
                delivery.updated_ms = now_ms;
                Ok(Some(()))
            })?;
            self.shared.claims.release(id);
            Ok(queued.is_some())
        })
    }

    /// A delivery recorded as running (by an earlier version of eddy, which wrote claims to
    /// disk) becomes pending, queued at `due_ms`. False if it is not recorded as running.
    pub(super) fn back_to_queue(&self, id: &str, due_ms: u64, now_ms: u64) -> Result<bool, StoreError> {
        let queued = self.update_delivery(id, |delivery| {
            if delivery.status != DeliveryStatus::Running {
                return Ok(None);
            }
            // Queued before the record says pending, as in `finish_attempt`.
            self.enqueue(&delivery.handler, due_ms, &delivery.id)?;
            delivery.status = DeliveryStatus::Pending;
            delivery.next_attempt_ms = Some(due_ms);
            delivery.updated_ms = now_ms;
            Ok(Some(()))
        })?;
        Ok(matches!(queued, Some((_, Some(())))))
    }
}

#[cfg(test)]
mod tests {
    use crate::event::Event;
    use crate::store::{NewEvent, Store};

    #[test]
    fn a_postponed_delivery_is_due_again_and_keeps_its_attempt_count() {
        let store = Store::temporary().unwrap();
        let event = Event::from_json(r#"{"type":"a.b","id":"e1"}"#, "test").unwrap();
        let ingested = store
            .ingest(
                vec![NewEvent {
                    event,
                    handlers: vec!["h".into()],
                }],
                1000,
            )
            .unwrap();
        let crate::store::Ingested::New { deliveries, .. } = &ingested[0] else {
            panic!("new")
        };
        let (due, id) = crate::store::testing::due(&store, 1000).remove(0);
        assert_eq!(&id, &deliveries[0]);
        assert!(crate::store::testing::claim(&store, due, &id, 1000).unwrap().is_some());
        assert!(store.postpone(&id, 1500, 1000).unwrap());
        assert!(crate::store::testing::due(&store, 1499).is_empty());
        assert_eq!(crate::store::testing::due(&store, 1500).len(), 1);
        let delivery = store.delivery(&id).unwrap().unwrap();
        assert_eq!((delivery.attempts, delivery.next_attempt_ms), (0, Some(1500)));
        assert!(
            !store.postpone(&id, 2000, 1000).unwrap(),
            "only a claimed delivery is postponed"
        );
    }
}
