//! Events in: routed by the handlers in use, stored with their deliveries, made durable.

use std::collections::HashMap;
use std::time::Instant;

use super::{ServiceError, Services};
use crate::clock::now_ms;
use crate::event::Event;
use crate::logs;
use crate::store::{Ingested, NewEvent};

impl Services {
    /// Routes and stores `events` with a delivery per matching handler (an id seen before
    /// writes nothing); with `durable`, returns only once that is on disk.
    pub async fn ingest(&self, events: Vec<Event>, durable: bool) -> Result<Vec<Ingested>, ServiceError> {
        let started = Instant::now();
        // The types of the events to log as unrouted, collected only when that is logged.
        let logging_unrouted = tracing::enabled!(target: logs::UNROUTED, tracing::Level::DEBUG);
        let mut unrouted = HashMap::new();
        let batch: Vec<NewEvent> = {
            let routing = self.routing();
            events
                .into_iter()
                .map(|event| {
                    let handlers = routing.routes(&event);
                    if logging_unrouted && handlers.is_empty() {
                        unrouted.insert(event.id.clone(), event.kind.clone());
                    }
                    NewEvent { handlers, event }
                })
                .collect()
        };
        // The store's writes go to in-memory buffers: cheap enough to do inline; the wait for
        // disk is the commit below, shared with every request that wrote meanwhile.
        let ingested = self.store.ingest(batch, now_ms()).await?;
        if durable {
            self.store.commit().await?;
        }
        self.metrics.ingest_took(started.elapsed());
        if !unrouted.is_empty() {
            log_unrouted(&unrouted, &ingested);
        }
        let new = ingested.iter().filter(|i| matches!(i, Ingested::New { .. })).count();
        self.metrics.ingested(new);
        self.engine.wake();
        Ok(ingested)
    }
}

/// One debug line per new event of `ingested` that `unrouted` (id to type) holds; a duplicate
/// was logged, if at all, when it first came.
fn log_unrouted(unrouted: &HashMap<String, String>, ingested: &[Ingested]) {
    for ingested in ingested {
        if let Ingested::New { id, .. } = ingested
            && let Some(kind) = unrouted.get(id)
        {
            tracing::debug!(
                target: logs::UNROUTED,
                event_id = %id,
                event_type = %kind,
                "no handler routes {kind}: event {id} stored, nothing will run for it"
            );
        }
    }
}
