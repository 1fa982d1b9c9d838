//! The admin API: read-only views of events, deliveries, handlers, health and metrics.
//! One file per resource; every endpoint works on [`Services`] and answers errors with
//! eddy's one HTTP error type, [`ApiError`] (in `http`, shared with ingest).

pub mod bulk;
pub mod deliveries;
pub mod events;
pub mod replays;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;

use crate::http::ApiError;
use crate::services::Services;

/// Most rows one listing returns.
pub const MAX_LIMIT: usize = 1000;
/// Rows a listing returns when the client does not say.
pub const DEFAULT_LIMIT: usize = 100;

/// `GET /healthz`: no token needed. `503` while the store refuses writes (see
/// [`crate::store::Store::failure`]): eddy then accepts nothing until it is restarted.
pub async fn healthz(State(services): State<Arc<Services>>) -> Result<Json<serde_json::Value>, ApiError> {
    match services.store.failure() {
        None => Ok(Json(serde_json::json!({ "status": "ok" }))),
        Some(cause) => Err(crate::store::StoreError::Unavailable { cause }.into()),
    }
}

/// `GET /handlers`: every handler with its routes and load error, if any.
pub async fn handlers(State(services): State<Arc<Services>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "handlers": services.handlers.statuses() }))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(services): State<Arc<Services>>) -> impl IntoResponse {
    let body = services
        .metrics
        .render(services.store.queue_depth(), services.handlers.live_isolates());
    ([("content-type", "text/plain; version=0.0.4")], body)
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

impl From<crate::services::RepairError> for ApiError {
    fn from(e: crate::services::RepairError) -> Self {
        use crate::services::RepairError;
        match e {
            RepairError::Ambiguous => Self::unprocessable("invalid_redact", e.to_string()),
            RepairError::Field(_) => Self::unprocessable("invalid_field", e.to_string()),
            RepairError::NoEvent(id) => Self::not_found("event", &id),
            RepairError::NoDelivery(id) => Self::not_found("delivery", &id),
            RepairError::BackfillFilter => Self::unprocessable("invalid_backfill", e.to_string()),
            RepairError::UnknownHandler(_) => Self::unprocessable("unknown_handler", e.to_string()),
            RepairError::NoFilter => Self::unprocessable("no_filter", e.to_string()),
            RepairError::Where(_) => Self::unprocessable("invalid_where", e.to_string()),
            RepairError::Store(e) => e.into(),
        }
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
