//! The services the faces of eddy call (the admin API, the intakes, `eddy dev`'s log): the
//! store, the runtime, the delivery engine, replays, the handler registry with its routing
//! table (`handlers.rs`) and the metrics; repairs (`repair.rs`) as one call each. The server builds one and hands it to each face,
//! so no face knows how the others are wired; nothing here speaks HTTP.

mod bulk;
mod handlers;
mod repair;

use std::sync::Arc;

pub use bulk::Selection;
pub use handlers::{HandlerStatus, Handlers, RELOAD_EVERY};
pub use repair::{Redaction, RepairError, is_data_path};

use crate::delivery::{Engine, Replays};
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::store::Store;

/// What every face shares, built once by the server.
pub struct Services {
    pub store: Store,
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
