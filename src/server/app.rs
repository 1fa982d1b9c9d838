//! The application the routes share: built once over the store, then served. Only the
//! composition root ([`super::run`]) builds one.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::handlers::Handlers;
use super::routes::{Access, ROUTES};
use super::{ServerError, edge, http};
use crate::api::{self, ApiError};
use crate::config::Config;
use crate::delivery::{DeliverySettings, Engine, Replays, RetryPolicy};
use crate::ingest::WebhookSources;
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::store::{Retention, Store};

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
    pub(super) retention: Retention,
    pub(super) retention_every: Duration,
}

impl App {
    /// The routing table in use.
    pub fn routing(&self) -> std::sync::RwLockReadGuard<'_, crate::router::RoutingTable> {
        self.handlers.routing()
    }
}

/// Builds the application: runtime, engine and handlers over `store`. Reads no environment:
/// the caller puts `EDDY_API_TOKEN` into `config` (see `cli::serve`), so an embedding (the
/// tests) gets exactly the config it passes.
pub(super) fn build(config: &Config, config_path: &std::path::Path, store: Store) -> Result<Arc<App>, ServerError> {
    let runtime = Arc::new(Runtime::new(config, config_path, &config.handlers, store.clone())?);
    let settings = DeliverySettings {
        max_concurrency: config.delivery.max_concurrency,
        default_policy: RetryPolicy::parse(&config.delivery.retry_schedule)?,
        default_concurrency: config.delivery.handler_concurrency,
        grace: Duration::from_millis(config.delivery.grace_period_ms),
    };
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::new(store.clone(), runtime.clone(), settings, metrics.clone());
    let [succeeded_deliveries, dead_deliveries, events] = config
        .retention
        .ages()
        .map_err(|key| ServerError::Retention(key.to_owned()))?;
    let retention = Retention {
        succeeded_deliveries,
        dead_deliveries,
        events,
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
pub(super) fn router(app: Arc<App>) -> Router {
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
