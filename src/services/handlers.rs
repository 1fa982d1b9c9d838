//! The handlers of a running server: found on disk, loaded into the runtime, routed, and
//! reloaded when their files change. A file that no longer loads keeps its last good
//! version; the error is kept for `GET /handlers`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::delivery::{Engine, RetryPolicy};
use crate::router::{self, RoutingTable};
use crate::runtime::{HandlerInfo, Runtime};

/// How often handler files are checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_millis(500);

/// What `GET /handlers` shows of one handler.
#[derive(Debug, Clone, Serialize)]
pub struct HandlerStatus {
    pub id: String,
    pub file: PathBuf,
    /// Routing patterns of the version in use.
    pub routes: Vec<String>,
    /// Whether a version is in use.
    pub loaded: bool,
    /// Why the current file does not load, if it does not.
    pub error: Option<String>,
    /// When the version in use was loaded (RFC 3339).
    pub loaded_at: Option<String>,
    #[serde(skip)]
    stamp: Option<router::Stamp>,
}

/// Handlers on disk and in use.
pub struct Handlers {
    root: PathBuf,
    runtime: Arc<Runtime>,
    engine: Arc<Engine>,
    routing: RwLock<RoutingTable>,
    status: RwLock<BTreeMap<String, HandlerStatus>>,
    /// Helper modules as last seen; a change reloads every handler.
    helpers: std::sync::Mutex<Vec<(PathBuf, router::Stamp)>>,
}

impl Handlers {
    pub fn new(root: &Path, runtime: Arc<Runtime>, engine: Arc<Engine>) -> Self {
        Self {
            root: root.to_owned(),
            runtime,
            engine,
            routing: RwLock::new(RoutingTable::new()),
            status: RwLock::new(BTreeMap::new()),
            helpers: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The routing table in use.
    pub fn routing(&self) -> std::sync::RwLockReadGuard<'_, RoutingTable> {
        self.routing.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Every handler with its state.
    pub fn statuses(&self) -> Vec<HandlerStatus> {
        self.status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Loads new and changed files, drops removed ones. Returns the load errors seen.
    pub async fn scan(&self) -> Vec<String> {
        let files = match router::discover(&self.root) {
            Ok(files) => files,
            Err(e) => return vec![e.to_string()],
        };
        let helpers = router::helper_stamps(&self.root).unwrap_or_default();
        let helpers_changed = {
            let mut seen = self.helpers.lock().unwrap_or_else(|e| e.into_inner());
            let changed = *seen != helpers;
            *seen = helpers;
            changed
        };
        let mut errors = Vec::new();
        let known: Vec<String> = self
            .status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for gone in known.iter().filter(|id| !files.iter().any(|f| &&f.id == id)) {
            self.routing.write().unwrap_or_else(|e| e.into_inner()).remove(gone);
            self.status.write().unwrap_or_else(|e| e.into_inner()).remove(gone);
            self.runtime.unload(gone);
        }
        for file in files {
            let unchanged = self
                .status
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&file.id)
                .is_some_and(|s| s.stamp == Some(file.stamp))
                && !helpers_changed;
            if unchanged {
                continue;
            }
            if let Err(e) = self.load(&file.id, &file.path, file.stamp).await {
                errors.push(format!("{}: {e}", file.path.display()));
            }
        }
        errors
    }

    async fn load(&self, id: &str, path: &Path, stamp: router::Stamp) -> Result<(), String> {
        let result = match self.runtime.prepare(id, path).await {
            Ok(prepared) => {
                let applied = self.apply(&prepared.info);
                if applied.is_ok() {
                    self.runtime.install(prepared);
                }
                applied
            }
            Err(e) => Err(e.render()),
        };
        let mut status = self.status.write().unwrap_or_else(|e| e.into_inner());
        let entry = status.entry(id.to_owned()).or_insert_with(|| HandlerStatus {
            id: id.to_owned(),
            file: path.to_owned(),
            routes: Vec::new(),
            loaded: false,
            error: None,
            loaded_at: None,
            stamp: None,
        });
        entry.stamp = Some(stamp);
        match result {
            Ok(routes) => {
                entry.routes = routes;
                entry.loaded = true;
                entry.error = None;
                entry.loaded_at = Some(crate::event::now_rfc3339());
                Ok(())
            }
            Err(e) => {
                entry.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Puts a loaded handler's routes and delivery limits in force; returns its patterns.
    fn apply(&self, info: &HandlerInfo) -> Result<Vec<String>, String> {
        let on = (!info.on.is_null()).then_some(&info.on);
        let routes = router::routes_from_export(on).map_err(|e| format!("export const on: {e}"))?;
        let policy = match &info.config.retry {
            Some(retry) => Some(RetryPolicy::parse(&retry.schedule).map_err(|e| format!("config.retry: {e}"))?),
            None => None,
        };
        let mut routing = self.routing.write().unwrap_or_else(|e| e.into_inner());
        routing.set(&info.id, routes).map_err(|e| e.to_string())?;
        let patterns = routing
            .patterns(&info.id)
            .map(|p| p.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default();
        drop(routing);
        self.engine.set_handler(&info.id, info.config.concurrency, policy);
        Ok(patterns)
    }
}
