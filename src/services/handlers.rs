//! The handlers of a running server: found on disk, loaded into the runtime, routed, and
//! reloaded when their files change. A file that no longer loads keeps its last good
//! version; the error is kept for `GET /handlers`. Each scan puts everything it found in
//! the delivery registry in one swap.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::delivery::{Change, Engine, LoadedHandler, Registry, RetryPolicy, Version};
use crate::logs;
use crate::router::{self, HandlerFile};
use crate::runtime::{HandlerInfo, HandlerPool, Runtime};

/// How often handler files are checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_millis(500);

/// What `GET /handlers` shows of one handler.
#[derive(Debug, Clone)]
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
    /// Most attempts of the version in use running at once.
    pub concurrency: Option<usize>,
    /// The delays between its attempts.
    pub retry: Vec<std::time::Duration>,
    /// How long one attempt may take, and how much CPU time.
    pub timeout: Option<std::time::Duration>,
    pub cpu_limit: Option<std::time::Duration>,
    /// Where the version in use finds each event's order key, and what a dead delivery does
    /// to its key (`block` or `continue`), when it orders its deliveries.
    pub order_by: Option<(String, &'static str)>,
}

impl HandlerStatus {
    fn of(handler: &LoadedHandler) -> Self {
        let version = handler.version.as_deref();
        Self {
            id: handler.id.clone(),
            file: handler.file.clone(),
            routes: version.map_or_else(Vec::new, |v| v.routes.iter().map(|p| p.to_string()).collect()),
            loaded: version.is_some(),
            error: handler.error.clone(),
            loaded_at: version.map(|v| v.loaded_at.clone()),
            concurrency: version.map(|v| v.limits.concurrency),
            retry: version.map_or_else(Vec::new, |v| v.limits.policy.delays().to_vec()),
            timeout: version.map(|v| v.pool.info.timeout),
            cpu_limit: version.map(|v| v.pool.info.cpu_limit),
            order_by: version.and_then(|v| {
                let on_dead = match v.limits.on_dead {
                    crate::runtime::OnDead::Block => "block",
                    crate::runtime::OnDead::Continue => "continue",
                };
                Some((v.limits.order_by.as_ref()?.to_string(), on_dead))
            }),
        }
    }
}

/// Handlers on disk and in use.
pub struct Handlers {
    root: PathBuf,
    runtime: Arc<Runtime>,
    engine: Arc<Engine>,
    /// Helper modules as last seen; a change reloads every handler.
    helpers: std::sync::Mutex<Vec<(PathBuf, router::Stamp)>>,
    /// Files not loaded (TypeScript, CommonJS) already logged, so each is logged once.
    skipped: std::sync::Mutex<Vec<PathBuf>>,
}

impl Handlers {
    pub fn new(root: &Path, runtime: Arc<Runtime>, engine: Arc<Engine>) -> Self {
        Self {
            root: root.to_owned(),
            runtime,
            engine,
            helpers: std::sync::Mutex::new(Vec::new()),
            skipped: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The handlers in use now: routes, versions and status of one moment.
    pub fn snapshot(&self) -> Arc<Registry> {
        self.engine.registry().snapshot()
    }

    /// Every handler with its state.
    pub fn statuses(&self) -> Vec<HandlerStatus> {
        self.snapshot().handlers().map(|h| HandlerStatus::of(h)).collect()
    }

    /// Isolates alive now across the handler versions in use.
    pub fn live_isolates(&self) -> usize {
        self.snapshot().live_isolates()
    }

    /// Logs each file that looks like a handler but is not loaded, once.
    fn log_skipped(&self, skipped: Vec<PathBuf>) {
        let mut logged = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        for file in skipped.iter().filter(|f| !logged.contains(f)) {
            let reason = router::not_loaded_reason(file);
            tracing::warn!(target: logs::HANDLERS, file = %file.display(), "{}: {reason}", file.display());
        }
        *logged = skipped;
    }

    /// Loads new and changed files, drops removed ones, and puts all of it in use at once.
    /// Logs each load error, and returns them.
    pub async fn scan(&self) -> Vec<String> {
        let files = match router::discover_with_skipped(&self.root) {
            Ok((files, skipped)) => {
                self.log_skipped(skipped);
                files
            }
            Err(e) => {
                tracing::error!(target: logs::HANDLERS, "{e}");
                return vec![e.to_string()];
            }
        };
        let helpers = router::helper_stamps(&self.root).unwrap_or_default();
        let helpers_changed = {
            let mut seen = self.helpers.lock().unwrap_or_else(|e| e.into_inner());
            let changed = *seen != helpers;
            *seen = helpers;
            changed
        };
        // Only scans write the registry, so what it holds now is what this scan builds on.
        let before = self.snapshot();
        let mut changes: Vec<Change> = before
            .handlers()
            .filter(|h| !files.iter().any(|f| f.id == h.id))
            .map(|h| Change::Remove(h.id.clone()))
            .collect();
        let mut errors = Vec::new();
        for file in files {
            let known = before.get(&file.id);
            if known.is_some_and(|h| h.stamp == file.stamp) && !helpers_changed {
                continue;
            }
            let handler = self.load(&file, known.and_then(|h| h.version.clone())).await;
            if let Some(error) = &handler.error {
                let kept = match handler.version {
                    Some(_) => " (the last good version stays in use)",
                    None => "",
                };
                tracing::error!(
                    target: logs::HANDLERS,
                    handler = %file.id,
                    file = %file.path.display(),
                    "handler {} does not load: {error}{kept}",
                    file.id
                );
                errors.push(format!("{}: {error}", file.path.display()));
            }
            changes.push(Change::Set(handler));
        }
        self.engine.registry().apply(changes);
        errors
    }

    /// The handler entry for `file`: its new version, or `last_good` with the load error.
    async fn load(&self, file: &HandlerFile, last_good: Option<Arc<Version>>) -> LoadedHandler {
        let loaded = match self.runtime.prepare(&file.id, &file.path).await {
            Ok(pool) => self.version(pool),
            Err(e) => Err(e.render()),
        };
        let (version, error) = match loaded {
            Ok(version) => (Some(Arc::new(version)), None),
            Err(error) => (last_good, Some(error)),
        };
        LoadedHandler {
            id: file.id.clone(),
            file: file.path.clone(),
            stamp: file.stamp,
            error,
            version,
        }
    }

    /// A loaded module as a version to put in use, if its `on` and `config.retry` are valid.
    fn version(&self, pool: HandlerPool) -> Result<Version, String> {
        let (routes, policy) = check_exports(&pool.info)?;
        let limits = self.engine.limits(&pool.info.config, policy);
        Ok(Version {
            pool,
            routes,
            limits,
            loaded_at: crate::event::now_rfc3339(),
        })
    }
}

/// What a loaded handler's exports ask that the runtime does not check itself: its routes
/// (`export const on`) and its retry schedule (`config.retry`). `eddy check` runs this too,
/// so it refuses what `serve` would.
pub fn check_exports(info: &HandlerInfo) -> Result<(Vec<router::Pattern>, Option<RetryPolicy>), String> {
    let on = (!info.on.is_null()).then_some(&info.on);
    let routes = router::routes_from_export(on).map_err(|e| format!("export const on: {e}"))?;
    let routes: Vec<_> = router::resolve(&info.id, routes).map_err(|e| e.to_string())?;
    let policy = match &info.config.retry {
        Some(retry) => Some(RetryPolicy::parse(&retry.schedule).map_err(|e| format!("config.retry: {e}"))?),
        None => None,
    };
    Ok((routes, policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::delivery::DeliverySettings;
    use crate::metrics::Metrics;
    use crate::store::Store;

    /// The handlers of `dir/handlers` over a runtime and an engine that do not run: scans
    /// are run by the test.
    struct App {
        handlers: Handlers,
    }

    fn app(dir: &Path) -> App {
        let root = dir.join("handlers");
        std::fs::create_dir_all(&root).unwrap();
        let text = format!("handlers = {:?}\n", root.display().to_string());
        let config = Config::parse(&text, &dir.join("eddy.toml")).unwrap();
        let store: crate::store::SharedStore = Arc::new(Store::temporary().unwrap());
        let runtime = Arc::new(Runtime::new(&config, &root, store.clone()).unwrap());
        let settings = DeliverySettings::new(&config.delivery);
        let engine = Engine::new(store, runtime.clone(), settings, Arc::new(Metrics::default()));
        App {
            handlers: Handlers::new(&root, runtime, engine),
        }
    }

    /// Writes handler `id`; versions of one file differ in size, so the change is seen even
    /// within the file system's time resolution.
    fn write(dir: &Path, id: &str, code: &str) {
        std::fs::write(dir.join("handlers").join(format!("{id}.js")), code).unwrap();
    }

    fn patterns(version: &Version) -> Vec<String> {
        version.routes.iter().map(|p| p.to_string()).collect()
    }

    const V1: &str =
        "export const on = 'first.*';\nexport const config = { concurrency: 1 };\nexport default async () => {};\n";
    const V2: &str = "export const on = 'second.*';\nexport const config = { concurrency: 3 };\nexport default async () => {}; // v2\n";

    #[tokio::test]
    async fn a_snapshot_taken_before_a_reload_keeps_its_whole_old_version() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        write(dir.path(), "a", V1);
        assert!(app.handlers.scan().await.is_empty());
        let before = app.handlers.snapshot();
        write(dir.path(), "a", V2);
        assert!(app.handlers.scan().await.is_empty());
        let after = app.handlers.snapshot();

        let old = before.version("a").unwrap();
        assert_eq!(before.route("first.x"), ["a"]);
        assert!(before.route("second.x").is_empty());
        assert_eq!(patterns(&old), ["first.*"]);
        assert_eq!(old.pool.info.config.concurrency, Some(1));
        assert_eq!((old.limits.concurrency, old.limits.permits.available_permits()), (1, 1));

        let new = after.version("a").unwrap();
        assert!(!Arc::ptr_eq(&old, &new));
        assert_eq!(after.route("second.x"), ["a"]);
        assert!(after.route("first.x").is_empty());
        assert_eq!(patterns(&new), ["second.*"]);
        assert_eq!(new.pool.info.config.concurrency, Some(3));
        assert_eq!((new.limits.concurrency, new.limits.permits.available_permits()), (3, 3));
    }

    #[tokio::test]
    async fn a_failed_reload_keeps_the_last_good_version_with_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        write(dir.path(), "a", V1);
        assert!(app.handlers.scan().await.is_empty());
        let good = app.handlers.snapshot().version("a").unwrap();
        // One that does not parse, then one that loads but routes by an invalid `on`.
        for (broken, error) in [
            ("export default async () => {;\n", "SyntaxError"),
            (
                "export const on = 3;\nexport default async () => {};\n",
                "export const on",
            ),
        ] {
            write(dir.path(), "a", broken);
            let errors = app.handlers.scan().await;
            assert!(errors.len() == 1 && errors[0].contains(error), "{errors:?}");
            let now = app.handlers.snapshot();
            assert!(Arc::ptr_eq(&now.version("a").unwrap(), &good));
            assert_eq!(now.route("first.x"), ["a"]);
            let status = &app.handlers.statuses()[0];
            assert!(status.loaded && status.error.as_deref().is_some_and(|e| e.contains(error)));
            assert_eq!(
                (&status.routes[..], &status.loaded_at),
                (&["first.*".to_owned()][..], &Some(good.loaded_at.clone()))
            );
        }
        write(dir.path(), "a", V2);
        assert!(app.handlers.scan().await.is_empty());
        let status = &app.handlers.statuses()[0];
        assert!(status.loaded && status.error.is_none() && status.routes == ["second.*"]);
    }

    #[tokio::test]
    async fn a_removed_file_leaves_routes_and_status_in_the_same_swap() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        write(dir.path(), "a", V1);
        write(dir.path(), "b", V1);
        assert!(app.handlers.scan().await.is_empty());
        let before = app.handlers.snapshot();
        std::fs::remove_file(dir.path().join("handlers/a.js")).unwrap();
        assert!(app.handlers.scan().await.is_empty());
        let after = app.handlers.snapshot();

        assert_eq!(after.route("first.x"), ["b"]);
        assert!(after.get("a").is_none() && after.version("a").is_none());
        let ids: Vec<String> = app.handlers.statuses().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["b"]);
        assert_eq!(before.route("first.x"), ["a", "b"], "a snapshot taken before keeps it");
        assert!(before.version("a").is_some());
    }
}
