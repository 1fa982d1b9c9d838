//! The services the faces of eddy call (the admin API, the intakes, `eddy dev`'s log): the
//! store, the runtime, the delivery engine, replays, the handler registry with its routing
//! table (`handlers.rs`) and the metrics. Each operation is one call: ingest (`ingest.rs`),
//! reads (`inspect.rs`), repairs (`repair.rs`, `bulk.rs`) and replay jobs (`jobs.rs`). The
//! server builds one and hands it to each face, so no face knows how the others are wired;
//! nothing here speaks HTTP.

mod bulk;
mod handlers;
mod ingest;
mod inspect;
mod jobs;
mod listing;
mod repair;

use std::sync::Arc;

pub use bulk::Selection;
pub use handlers::{HandlerStatus, Handlers, RELOAD_EVERY, check_exports};
pub use inspect::{DeliveryDetail, EventDetail, Page};
pub use jobs::{BulkReplay, Preview};
pub use listing::{DeliveriesAsked, EventsAsked, Window, delivery_filter, delivery_status, time_bound};
pub use repair::{Redaction, is_data_path, merge_patch_between};

use crate::delivery::{Engine, Replays};
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::store::{SharedStore, StoreError};

/// What every face shares, built once by the server.
pub struct Services {
    pub store: SharedStore,
    pub runtime: Arc<Runtime>,
    pub engine: Arc<Engine>,
    pub replays: Arc<Replays>,
    pub handlers: Handlers,
    pub metrics: Arc<Metrics>,
}

impl Services {
    /// The handlers in use (routes, versions, status), as one snapshot.
    pub fn routing(&self) -> Arc<crate::delivery::Registry> {
        self.handlers.snapshot()
    }
}

/// Errors of the services: the request's, or the store's.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("give either fields or payload: true")]
    Ambiguous,
    #[error("{0:?}: fields are paths under data, like data.email")]
    Field(String),
    #[error("no event with id {0:?}")]
    NoEvent(String),
    #[error("no delivery with id {0:?}")]
    NoDelivery(String),
    #[error("no replay job with id {0:?}")]
    NoJob(String),
    #[error(
        "delivery {0:?} holds no key's line: only a dead delivery of an ordered handler that its key waits for can be skipped"
    )]
    NotHolding(String),
    #[error("only dead or succeeded deliveries can be replayed")]
    ReplayStatus,
    #[error("rate must be a positive number")]
    Rate,
    #[error("a backfill needs the handler to run")]
    BackfillFilter,
    #[error("fresh is for replays: a backfill's deliveries are new and have no steps recorded")]
    FreshBackfill,
    #[error("no loaded handler {0:?}")]
    UnknownHandler(String),
    #[error("give where (and/or type) to choose events")]
    NoFilter,
    #[error("{0:?}: where paths are under data")]
    Where(String),
    #[error("{0}")]
    Query(String),
    #[error(
        "event {id:?} was edited since version {seen} was read (it is at version {current}): reload it and edit again"
    )]
    Stale { id: String, seen: u32, current: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}
