//! `eddy serve`: the composition root. Opens nothing itself: it is handed the store and a
//! bound listener, wires ingest, the admin API, the handlers and the delivery engine, and
//! runs until the shutdown signal, then drains.

pub mod edge;
mod handlers;
pub mod http;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use handlers::{HandlerStatus, Handlers, RELOAD_EVERY};
pub use routes::{Access, ROUTES, Route, Verb};

use crate::api::{self, ApiError};
use crate::config::Config;
use crate::delivery::{DeliverySettings, Engine, Replays, RetryPolicy};
use crate::ingest::WebhookSources;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::store::{Retention, Store};

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
}

/// What every request handler shares.
pub struct App {
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub engine: Arc<Engine>,
    pub replays: Arc<Replays>,
    pub handlers: Handlers,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive (`POST /events`, webhooks).
    pub body_timeout: Duration,
    /// Whether ingest waits for the disk before answering (`[ingest] durable_ack`).
    pub durable_ack: bool,
    /// Header timeout and connection limit of the API's (and the proxy's) listener.
    pub http_limits: http::HttpLimits,
    /// Webhook senders, for `POST /webhooks/{source}`.
    pub sources: WebhookSources,
    api_token: Option<String>,
    retention: Retention,
    retention_every: Duration,
}

impl App {
    /// The handlers in use (routes, versions, status), as one snapshot.
    pub fn routing(&self) -> Arc<crate::delivery::Registry> {
        self.handlers.snapshot()
    }
}

/// Refuses an API `listen` address that is not loopback when there is no token, unless
/// `[api] allow_no_token` says so; the proxy's own listener has no admin endpoints and is
/// not checked.
pub fn check_exposure(config: &Config) -> Result<(), ServerError> {
    let has_token = config.api_token.is_some();
    Ok(edge::check_listen(config.listen, has_token, config.api.allow_no_token)?)
}

/// Builds the application: runtime, engine and handlers over `store`. Reads no environment:
/// the caller puts `EDDY_API_TOKEN` into `config` (see `cli::serve`), so an embedding (the
/// tests) gets exactly the config it passes.
pub fn app(config: &Config, store: Store) -> Result<Arc<App>, ServerError> {
    check_exposure(config)?;
    if !config.handlers.is_dir() {
        return Err(ServerError::NoHandlers(config.handlers.clone()));
    }
    let runtime = Arc::new(Runtime::new(config, &config.handlers, store.clone())?);
    let settings = DeliverySettings {
        max_concurrency: config.delivery.max_concurrency,
        default_policy: RetryPolicy::new(config.delivery.retry_schedule.clone()),
        default_concurrency: config.delivery.handler_concurrency,
        grace: Duration::from_millis(config.delivery.grace_period_ms),
    };
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::new(store.clone(), runtime.clone(), settings, metrics.clone());
    let retention = Retention {
        succeeded_deliveries: config.retention.succeeded_deliveries,
        dead_deliveries: config.retention.dead_deliveries,
        events: config.retention.events,
    };
    Ok(Arc::new(App {
        handlers: Handlers::new(&config.handlers, runtime.clone(), engine.clone()),
        replays: Replays::new(store.clone(), engine.clone()),
        store,
        runtime,
        engine,
        metrics,
        max_body_bytes: config.ingest.max_body_bytes,
        body_timeout: Duration::from_millis(config.ingest.body_timeout_ms),
        durable_ack: config.ingest.durable_ack,
        http_limits: http::HttpLimits {
            header_timeout: Duration::from_millis(config.ingest.header_timeout_ms),
            max_connections: config.ingest.max_connections,
            drain: Duration::from_millis(config.delivery.grace_period_ms),
        },
        sources: WebhookSources::resolve(&config.sources, &config.handlers)?,
        api_token: config.api_token.clone(),
        retention,
        retention_every: Duration::from_millis(config.retention.interval_ms),
    }))
}

/// The HTTP routes: exactly [`ROUTES`], those with [`Access::Token`] behind the token check.
pub fn router(app: Arc<App>) -> Router {
    let (mut open, mut guarded) = (Router::new(), Router::new());
    for route in ROUTES {
        match route.access {
            Access::Open => open = open.route(route.path, route.endpoint()),
            Access::Token => guarded = guarded.route(route.path, route.endpoint()),
        }
    }
    let guarded = guarded.route_layer(axum::middleware::from_fn_with_state(app.clone(), require_token));
    open.merge(guarded).fallback(api::not_found).with_state(app)
}

/// With a token, every guarded endpoint needs it; without one, the request must be
/// addressed to a loopback name ([`edge::check_host`]).
async fn require_token(State(app): State<Arc<App>>, request: Request, next: Next) -> Result<Response, ApiError> {
    let Some(token) = &app.api_token else {
        edge::check_host(&request)?;
        return Ok(next.run(request).await);
    };
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs Authorization: Bearer <token>",
        ));
    }
    Ok(next.run(request).await)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Loads the handlers, then serves `listener` and delivers until `shutdown` turns true;
/// stops intake first, then lets attempts in flight finish within the grace period.
pub async fn run(app: Arc<App>, listener: TcpListener, shutdown: watch::Receiver<bool>) -> Result<(), ServerError> {
    // Before any handler runs: the admin API must not be reachable through a wildcard grant.
    app.runtime.own_listener(listener.local_addr()?);
    for error in app.handlers.scan().await {
        eprintln!("eddy: {error}");
    }
    let engine = tokio::spawn(app.engine.clone().run(shutdown.clone()));
    let reload = tokio::spawn(reload_loop(app.clone(), shutdown.clone()));
    let retention = tokio::spawn(retention_loop(app.clone()));
    http::serve(listener, router(app.clone()), app.http_limits, shutdown).await?;
    reload.abort();
    retention.abort();
    engine.await.map_err(std::io::Error::other)??;
    Ok(())
}

async fn reload_loop(app: Arc<App>, shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        tokio::time::sleep(handlers::RELOAD_EVERY).await;
        for error in app.handlers.scan().await {
            eprintln!("eddy: {error} (the last good version stays in use)");
        }
    }
}

/// Removes expired deliveries and events every `retention_every`.
async fn retention_loop(app: Arc<App>) {
    loop {
        tokio::time::sleep(app.retention_every).await;
        let store = app.store.clone();
        let retention = app.retention;
        let now = crate::clock::now_ms();
        match tokio::task::spawn_blocking(move || store.expire(&retention, now)).await {
            Ok(Ok(expired)) => app.metrics.expired(expired.deliveries, expired.events),
            Ok(Err(e)) => eprintln!("eddy: retention: {e}"),
            Err(e) => eprintln!("eddy: retention: {e}"),
        }
    }
}
