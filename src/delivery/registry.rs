//! The handlers in use: one value per handler file ([`LoadedHandler`]: its code, routes,
//! limits and load status), all held in one [`Registry`] that is replaced whole on reload.
//!
//! Readers (routing at ingest, the engine's dispatch, `GET /handlers`, `eddy dev`'s log) take
//! one snapshot and read everything from it, so none sees one version's routes with another's
//! code or limits. A delivery keeps the [`Version`] it was started with until it ends. This
//! module only holds what the server loaded: it does not load, discover or run handlers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::sync::Semaphore;

use super::RetryPolicy;
use crate::event::{Event, KeyPath};
use crate::router::{Pattern, RoutingTable, Stamp};
use crate::runtime::{HandlerPool, OnDead};
use crate::store::Route;

/// One handler version's delivery limits.
#[derive(Clone)]
pub struct Limits {
    /// When failed attempts run again.
    pub policy: RetryPolicy,
    /// Most attempts of this version running at once.
    pub concurrency: usize,
    /// Taken by each attempt for as long as it runs; a new version gets a new one, so
    /// attempts of the old version keep theirs.
    pub permits: Arc<Semaphore>,
    /// Where its deliveries' order key is, if they are ordered.
    pub order_by: Option<KeyPath>,
    /// What a dead delivery does to its key's line.
    pub on_dead: OnDead,
}

impl Limits {
    /// Limits allowing `concurrency` attempts at once, retried by `policy`.
    pub fn new(policy: RetryPolicy, concurrency: usize) -> Self {
        Self {
            policy,
            concurrency,
            permits: Arc::new(Semaphore::new(concurrency)),
            order_by: None,
            on_dead: OnDead::Block,
        }
    }
}

/// One version of a handler that loaded and passed its checks: what runs it, which events it
/// gets and how they are delivered, put in use together.
pub struct Version {
    pub pool: HandlerPool,
    /// The patterns it is routed by, never empty.
    pub routes: Vec<Pattern>,
    pub limits: Limits,
    /// When it was loaded (RFC 3339).
    pub loaded_at: String,
}

/// One handler file and the version of it in use.
pub struct LoadedHandler {
    pub id: String,
    pub file: PathBuf,
    /// The file as last looked at (loaded or not), to notice changes.
    pub stamp: Stamp,
    /// Why the file as last looked at does not load, if it does not.
    pub error: Option<String>,
    /// The last version that loaded, still in use after a failed reload; none if the file
    /// never loaded.
    pub version: Option<Arc<Version>>,
}

/// Every handler file with its version in use, and the routing table made from them.
#[derive(Default)]
pub struct Registry {
    handlers: BTreeMap<String, Arc<LoadedHandler>>,
    /// Derived from `handlers` when the registry is made, never changed apart from them.
    routing: RoutingTable,
}

/// What one reload changes.
pub enum Change {
    /// A file loaded, or failed to: the handler's new entry.
    Set(LoadedHandler),
    /// A file was removed: its handler goes, routes, limits and status together.
    Remove(String),
}

impl Registry {
    /// A registry of `handlers`, routed by the versions in use.
    pub fn new(handlers: BTreeMap<String, Arc<LoadedHandler>>) -> Self {
        let routing = handlers
            .values()
            .filter_map(|h| Some((h.id.clone(), h.version.as_ref()?.routes.clone())))
            .collect();
        Self { handlers, routing }
    }

    /// This registry with `changes` applied; `self` is left as it was.
    pub fn with(&self, changes: Vec<Change>) -> Self {
        let mut handlers = self.handlers.clone();
        for change in changes {
            match change {
                Change::Set(handler) => {
                    handlers.insert(handler.id.clone(), Arc::new(handler));
                }
                Change::Remove(id) => {
                    handlers.remove(&id);
                }
            }
        }
        Self::new(handlers)
    }

    /// Ids of the handlers an event of `event_type` goes to, sorted; empty when unrouted.
    pub fn route(&self, event_type: &str) -> Vec<String> {
        self.routing.route(event_type)
    }

    /// The handlers an event goes to, each with the event's order key when the handler's
    /// version in use orders its deliveries.
    pub fn routes(&self, event: &Event) -> Vec<Route> {
        let handlers = self.route(&event.kind);
        handlers
            .into_iter()
            .map(|handler| Route {
                order_key: self.order_key(&handler, event),
                handler,
            })
            .collect()
    }

    /// `event`'s order key for handler `id`: none when the handler does not order its
    /// deliveries or the event has no such key.
    pub fn order_key(&self, id: &str, event: &Event) -> Option<String> {
        let version = self.handlers.get(id)?.version.as_ref()?;
        version.limits.order_by.as_ref()?.key_of(event)
    }

    /// Handler `id`, loaded or not.
    pub fn get(&self, id: &str) -> Option<&Arc<LoadedHandler>> {
        self.handlers.get(id)
    }

    /// The version of handler `id` in use, if any.
    pub fn version(&self, id: &str) -> Option<Arc<Version>> {
        self.handlers.get(id)?.version.clone()
    }

    /// Every handler file, sorted by id.
    pub fn handlers(&self) -> impl Iterator<Item = &Arc<LoadedHandler>> {
        self.handlers.values()
    }

    /// Isolates alive now across the versions in use.
    pub fn live_isolates(&self) -> usize {
        self.handlers
            .values()
            .filter_map(|h| h.version.as_ref())
            .map(|v| v.pool.live_isolates())
            .sum()
    }
}

/// The registry in use. Reads take a snapshot (one `Arc` clone under a read lock held for
/// nothing else); a reload puts a whole new registry in its place.
#[derive(Default)]
pub struct RegistryCell(RwLock<Arc<Registry>>);

impl RegistryCell {
    /// The registry in use now; it does not change after a reload.
    pub fn snapshot(&self) -> Arc<Registry> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies `changes` to the registry in use, in one swap.
    pub fn apply(&self, changes: Vec<Change>) {
        // Most scans change nothing: readers keep the registry they have.
        if changes.is_empty() {
            return;
        }
        let mut current = self.0.write().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(current.with(changes));
    }
}
