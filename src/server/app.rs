//! What the routes share, built once over the store: the services, the intake over them,
//! and the server's own settings. Only the composition root ([`super::run`]) builds it;
//! the endpoints take the part they need ([`Services`] or [`Intake`]) through `FromRef`,
//! so neither `api` nor `ingest` knows this type.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::routes::{Access, ROUTES};
use super::{ServerError, edge};
use crate::api;
use crate::config::Config;
use crate::dashboard::{self, Ui};
use crate::delivery::{DeliverySettings, Engine, Replays};
use crate::http::{ApiError, HttpLimits};
use crate::ingest::{Intake, WebhookSources};
use crate::metrics::Metrics;
use crate::runtime::Runtime;
use crate::services::{Handlers, Services};
use crate::store::{Retention, SharedStore};

/// The state of the routes; cheap to clone (the router holds one).
#[derive(Clone)]
pub struct App {
    pub services: Arc<Services>,
    pub intake: Arc<Intake>,
    /// Header timeout and connection limit of the API's (and the proxy's) listener.
    pub http_limits: HttpLimits,
    pub retention: Retention,
    pub retention_every: Duration,
    api_token: Option<String>,
    /// The dashboard's sessions.
    pub ui: Arc<Ui>,
}

impl FromRef<App> for Arc<Services> {
    fn from_ref(app: &App) -> Self {
        app.services.clone()
    }
}

impl FromRef<App> for Arc<Ui> {
    fn from_ref(app: &App) -> Self {
        app.ui.clone()
    }
}

impl FromRef<App> for Arc<Intake> {
    fn from_ref(app: &App) -> Self {
        app.intake.clone()
    }
}

/// Builds the application: runtime, engine and handlers over `store`.
pub fn build(config: &Config, store: SharedStore) -> Result<App, ServerError> {
    let services = Arc::new(services(config, store)?);
    let intake = Intake {
        services: services.clone(),
        sources: WebhookSources::resolve(&config.sources, &config.handlers)?,
        max_body_bytes: config.ingest.max_body_bytes,
        body_timeout: Duration::from_millis(config.ingest.body_timeout_ms),
        durable_ack: config.ingest.durable_ack,
    };
    Ok(App {
        services,
        intake: Arc::new(intake),
        http_limits: HttpLimits {
            header_timeout: Duration::from_millis(config.ingest.header_timeout_ms),
            max_connections: config.ingest.max_connections,
            drain: Duration::from_millis(config.delivery.grace_period_ms),
        },
        retention: Retention {
            succeeded_deliveries: config.retention.succeeded_deliveries,
            dead_deliveries: config.retention.dead_deliveries,
            events: config.retention.events,
        },
        retention_every: Duration::from_millis(config.retention.interval_ms),
        api_token: config.api_token.clone(),
        ui: Arc::new(Ui::new(config.api_token.clone())),
    })
}

/// The runtime, the delivery engine and the handler registry over `store`.
fn services(config: &Config, store: SharedStore) -> Result<Services, ServerError> {
    let runtime = Arc::new(Runtime::new(config, &config.handlers, store.clone())?);
    let settings = DeliverySettings::new(&config.delivery);
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::new(store.clone(), runtime.clone(), settings, metrics.clone());
    Ok(Services {
        handlers: Handlers::new(&config.handlers, runtime.clone(), engine.clone()),
        replays: Replays::new(store.clone(), engine.clone()),
        store,
        runtime,
        engine,
        metrics,
    })
}

/// The HTTP routes: exactly [`ROUTES`], those with [`Access::Token`] behind the token check
/// and the dashboard's behind its sign-in (and, without a token, all of them behind the
/// loopback check).
pub fn router(app: App) -> Router {
    let (mut open, mut guarded) = (Router::new(), Router::new());
    let (mut pages, mut sign_in) = (Router::new(), Router::new());
    for route in ROUTES {
        let (path, endpoint) = (route.path, route.endpoint());
        match route.access {
            Access::Open => open = open.route(path, endpoint),
            Access::Token => guarded = guarded.route(path, endpoint),
            Access::Dashboard => pages = pages.route(path, endpoint),
            Access::SignIn => sign_in = sign_in.route(path, endpoint),
        }
    }
    let guarded = guarded.route_layer(axum::middleware::from_fn_with_state(app.clone(), require_token));
    let pages = pages.route_layer(axum::middleware::from_fn_with_state(app.ui.clone(), dashboard::admit));
    let dashboard = pages.merge(sign_in).route_layer(axum::middleware::from_fn_with_state(
        app.clone(),
        loopback_without_token,
    ));
    open.merge(guarded)
        .merge(dashboard)
        .fallback(api::not_found)
        .with_state(app)
}

/// Without a token, only requests addressed to a loopback name ([`edge::check_host`]).
async fn loopback_without_token(State(app): State<App>, request: Request, next: Next) -> Result<Response, ApiError> {
    if app.api_token.is_none() {
        edge::check_host(&request)?;
    }
    Ok(next.run(request).await)
}

/// With a token, every guarded endpoint needs it; without one, the request must be
/// addressed to a loopback name ([`edge::check_host`]).
async fn require_token(State(app): State<App>, request: Request, next: Next) -> Result<Response, ApiError> {
    let Some(token) = &app.api_token else {
        edge::check_host(&request)?;
        return Ok(next.run(request).await);
    };
    let given = crate::http::bearer(request.headers());
    if !given.is_some_and(|g| crate::http::same_secret(g.as_bytes(), token.as_bytes())) {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs Authorization: Bearer <token>",
        ));
    }
    Ok(next.run(request).await)
}
