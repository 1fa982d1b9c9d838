//! Events in: routed by the handlers in use, stored with their deliveries, made durable.

use super::{ServiceError, Services};
use crate::clock::now_ms;
use crate::event::Event;
use crate::store::{Ingested, NewEvent};

impl Services {
    /// Routes and stores `events` with a delivery per matching handler (an id seen before
    /// writes nothing); with `durable`, returns only once that is on disk.
    pub async fn ingest(&self, events: Vec<Event>, durable: bool) -> Result<Vec<Ingested>, ServiceError> {
        let batch: Vec<NewEvent> = {
            let routing = self.routing();
            events
                .into_iter()
                .map(|event| NewEvent {
                    handlers: routing.route(&event.kind),
                    event,
                })
                .collect()
        };
        // The store's writes go to in-memory buffers: cheap enough to do inline; the wait for
        // disk is the commit below, shared with every request that wrote meanwhile.
        let ingested = self.store.ingest(batch, now_ms()).await?;
        if durable {
            self.store.commit().await?;
        }
        let new = ingested.iter().filter(|i| matches!(i, Ingested::New { .. })).count();
        self.metrics.ingested(new);
        self.engine.wake();
        Ok(ingested)
    }
}
