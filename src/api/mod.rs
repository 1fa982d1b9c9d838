//! The admin API: read-only views of events, deliveries, handlers, health and metrics.
//! One file per resource; every endpoint works on [`Services`] and answers errors with
//! eddy's one HTTP error type, [`ApiError`] (in `http`, shared with ingest).

pub mod bodies;
pub mod bulk;
pub mod deliveries;
pub mod events;
pub mod replays;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;

use bodies::{HandlerBody, LimitBody, bodies};

use crate::http::ApiError;
use crate::services::Services;

/// Most rows one listing returns.
pub const MAX_LIMIT: usize = 1000;
/// Rows a listing returns when the client does not say.
pub const DEFAULT_LIMIT: usize = 100;

/// `GET /healthz`: no token needed. `503` while the store refuses writes (see
/// [`crate::store::Backend::failure`]): eddy then accepts nothing until it is restarted.
pub async fn healthz(State(services): State<Arc<Services>>) -> Result<Json<serde_json::Value>, ApiError> {
    services.health()?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

/// `GET /handlers`: every handler with its routes and load error, if any.
pub async fn handlers(State(services): State<Arc<Services>>) -> Json<serde_json::Value> {
    let handlers: Vec<HandlerBody> = bodies(services.handler_statuses());
    Json(serde_json::json!({ "handlers": handlers }))
}

/// `GET /limits`: each destination host with a `[limits]` rule or something to show: its
/// rate, burst and concurrency, fetches in flight and waiting, the pause it asked for, and
/// its circuit (`closed`, `open`, `probing`).
pub async fn limits(State(services): State<Arc<Services>>) -> Json<serde_json::Value> {
    let limits: Vec<LimitBody> = bodies(services.host_limits());
    Json(serde_json::json!({ "limits": limits }))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(services): State<Arc<Services>>) -> Result<impl IntoResponse, ApiError> {
    let text = services.metrics_text().await?;
    Ok(([("content-type", "text/plain; version=0.0.4; charset=utf-8")], text))
}

/// Any other path.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no endpoint at {}", uri.path()),
    )
}

/// Who is asking: the CLI says so in `x-eddy-actor`; anything else is the API.
pub fn actor(headers: &axum::http::HeaderMap) -> &'static str {
    match headers.get("x-eddy-actor").and_then(|v| v.to_str().ok()) {
        Some("cli") => "cli",
        _ => "api",
    }
}

/// A `limit` query value, defaulted and capped.
pub fn limit(value: Option<usize>) -> Result<usize, ApiError> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(ApiError::bad_request("invalid_query", "limit must be at least 1")),
        Some(n) => Ok(n.min(MAX_LIMIT)),
    }
}
