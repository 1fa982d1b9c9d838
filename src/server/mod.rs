//! `eddy serve`: the composition root. [`run`] is handed the config, the bound listeners and
//! a shutdown signal; it opens the store, builds everything over it (runtime, delivery
//! engine, handlers, ingest, the admin API, the proxy), serves until the signal, drains, and
//! closes the store. The command line and the tests start the server only through it.

mod app;
pub mod edge;
pub mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use routes::{Access, ROUTES, Route, Verb};

use crate::config::{Config, ProxyConfig};
use crate::ingest::proxy::{self, Proxy};
use crate::services::{self, Services};
use crate::store::{Retention, SharedStore, Store};
use app::App;

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error("{0}")]
    Delivery(#[from] crate::delivery::DeliveryError),
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the handlers folder {0} does not exist (create it, or pass --handlers)")]
    NoHandlers(std::path::PathBuf),
    #[error("[sources]: {0}")]
    Sources(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    Exposed(#[from] edge::ExposedError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Proxy(#[from] proxy::ProxyError),
    #[error("the config has a [proxy] but no listener was bound for it")]
    NoProxyListener,
}

/// What [`run`] builds the server from.
pub struct Setup {
    /// Everything from `eddy.toml`, the flags and `EDDY_API_TOKEN`: the server reads no
    /// environment itself, so an embedding (the tests) gets exactly the config it passes.
    pub config: Config,
    /// Called once everything is built, before anything is served (`eddy dev`'s log).
    pub on_start: Option<OnStart>,
}

/// A look at the built services before the server serves.
pub type OnStart = Box<dyn FnOnce(&Arc<Services>) + Send>;

/// The sockets [`run`] serves, bound by the caller (so tests can bind port 0).
pub struct Listeners {
    /// The API's, on `listen`.
    pub api: TcpListener,
    /// The proxy's, on `[proxy] listen`: needed exactly when the config has a `[proxy]`.
    pub proxy: Option<TcpListener>,
}

/// How a server that started stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The store was closed and sealed: the next start opens it as it is.
    Sealed,
    /// Something still held the store at the end of the grace period (or after
    /// [`SEAL_WAIT`]): the next start checks it in full.
    StillInUse,
    /// The store failed while serving. It was neither flushed nor sealed (its sled handles
    /// are leaked, since sled's flush may never return after a failed write): the caller
    /// is to end the process.
    StoreFailed { cause: String },
}

/// How long a stopping server waits at most for the last user of the store to let go of it,
/// within what is left of the grace period.
pub const SEAL_WAIT: Duration = Duration::from_secs(3);

/// The checks that need nothing opened or bound: the API's exposure (a public `listen`
/// without a token, unless `[api] allow_no_token`; the proxy's listener has no admin
/// endpoints and is not checked) and the handlers folder. The caller runs them before
/// binding, so a refused start leaves nothing to check at the next one and fails on what
/// is wrong rather than on a busy port; [`run`] runs them again for callers that do not.
pub fn check(config: &Config) -> Result<(), ServerError> {
    let has_token = config.api_token.is_some();
    edge::check_listen(config.listen, has_token, config.api.allow_no_token)?;
    if !config.handlers.is_dir() {
        return Err(ServerError::NoHandlers(config.handlers.clone()));
    }
    Ok(())
}

/// Runs the server until `shutdown` resolves: opens the store, builds everything, serves
/// `listeners`, then stops intake, lets attempts in flight finish within the grace period
/// and seals the store. An error is a start (or stop) that went wrong; a failed store is
/// [`Stopped::StoreFailed`], not an error, since the server itself stopped as asked.
pub async fn run(
    setup: Setup,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Stopped, ServerError> {
    check(&setup.config)?;
    let store = Store::open(&setup.config.data, setup.config.store.cache_bytes())?;
    let data = setup.config.data.clone();
    let grace = Duration::from_millis(setup.config.delivery.grace_period_ms);
    // When the stop began: the whole stop, sealing included, fits in the grace period.
    let stop_began = Arc::new(std::sync::OnceLock::new());
    let began = stop_began.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = began.set(std::time::Instant::now());
    };
    let served = serve(setup, Arc::new(store.clone()), listeners, shutdown).await;
    let failure = store.failure();
    // The seal below waits for the last handle on the store to go. (A failed store's drop
    // leaks its sled handles instead of flushing them: see `Store`'s `Drop`.)
    drop(store);
    if let Some(cause) = failure {
        return Ok(Stopped::StoreFailed { cause });
    }
    served?;
    // A sealed store opens next time without being copied aside first. Attempts cut at the
    // end of the grace period still hold it, so waiting past that would only delay the exit.
    let left = stop_began
        .get()
        .map_or(SEAL_WAIT, |began| grace.saturating_sub(began.elapsed()));
    Ok(match Store::seal(&data, left.min(SEAL_WAIT)).await? {
        true => Stopped::Sealed,
        false => Stopped::StillInUse,
    })
}

/// Builds the app over `store` and serves it (and the proxy) until `shutdown`.
async fn serve(
    setup: Setup,
    store: SharedStore,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let Setup { config, on_start } = setup;
    let app = app::build(&config, store)?;
    tracing::info!(
        "listening on http://{} (handlers {}, data {})",
        listeners.api.local_addr()?,
        config.handlers.display(),
        config.data.display()
    );
    let signed_in = if config.api_token.is_some() {
        ", sign in with the API token"
    } else {
        ""
    };
    tracing::info!("dashboard at http://{}/ui{signed_in}", listeners.api.local_addr()?);
    if let Some(on_start) = on_start {
        on_start(&app.services);
    }
    let (stop, stopped) = watch::channel(false);
    let proxy = match (&config.proxy, listeners.proxy) {
        (Some(proxy_config), Some(listener)) => Some(start_proxy(proxy_config, &app, listener, stopped.clone())?),
        (Some(_), None) => return Err(ServerError::NoProxyListener),
        (None, _) => None,
    };
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let served = serve_api(app, listeners.api, stopped).await;
    let proxied = match proxy {
        Some(proxy) => proxy.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
        None => Ok(()),
    };
    served?;
    Ok(proxied?)
}

fn start_proxy(
    config: &ProxyConfig,
    app: &App,
    listener: TcpListener,
    stopped: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, ServerError> {
    let proxy = Proxy::start(config, app.intake.clone(), app.http_limits)?;
    let upstream = config.upstream.as_ref().map(ToString::to_string).unwrap_or_default();
    tracing::info!("proxy on http://{} -> {upstream}", listener.local_addr()?);
    Ok(tokio::spawn(proxy::serve(proxy, listener, stopped)))
}

/// Loads the handlers, then serves `listener` and delivers until `shutdown` turns true;
/// stops intake first, then lets attempts in flight finish within the grace period.
async fn serve_api(app: App, listener: TcpListener, shutdown: watch::Receiver<bool>) -> Result<(), ServerError> {
    let services = app.services.clone();
    // Before any handler runs: the admin API must not be reachable through a wildcard grant.
    services.runtime.own_listener(listener.local_addr()?);
    // Each load error is logged by the scan, as at every reload.
    services.handlers.scan().await;
    let engine = tokio::spawn(services.engine.clone().run(shutdown.clone()));
    let reload = tokio::spawn(reload_loop(services.clone(), shutdown.clone()));
    let retention = tokio::spawn(retention_loop(services, app.retention, app.retention_every));
    let limits = app.http_limits;
    crate::http::serve(listener, app::router(app), limits, shutdown).await?;
    reload.abort();
    retention.abort();
    engine.await.map_err(std::io::Error::other)??;
    Ok(())
}

async fn reload_loop(services: Arc<Services>, shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        tokio::time::sleep(services::RELOAD_EVERY).await;
        services.handlers.scan().await;
    }
}

/// Removes expired deliveries and events every `every`.
async fn retention_loop(services: Arc<Services>, retention: Retention, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match services.store.expire(&retention, crate::clock::now_ms()).await {
            Ok(expired) => services.metrics.expired(expired.deliveries, expired.events),
            Err(e) => tracing::error!("retention: {e}"),
        }
    }
}
