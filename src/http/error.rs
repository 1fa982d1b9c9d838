//! The one error type of eddy's HTTP endpoints: a status and `{ "error", "detail" }`, with
//! internals (store failures) reduced to a message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {error}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    /// A short, stable code (`invalid_json`, `not_found`, ...).
    pub error: &'static str,
    /// What was wrong, for people.
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            error,
            detail: detail.into(),
        }
    }

    pub fn bad_request(error: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, detail)
    }

    pub fn unprocessable(error: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, error, detail)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no {what} with id {id:?}"))
    }

    /// The store failed and refuses writes (see [`crate::store::Backend::failure`]).
    pub fn store_unavailable(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", detail.to_string())
    }

    /// A failure inside eddy; the detail says what failed without internals.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            // Not the request's fault, and not passing: it lasts until eddy restarts.
            crate::store::StoreError::Unavailable { .. } => Self::store_unavailable(e),
            other => Self::internal(format!("store: {other}")),
        }
    }
}

impl From<crate::services::ServiceError> for ApiError {
    fn from(e: crate::services::ServiceError) -> Self {
        use crate::services::ServiceError;
        // The codes are the API's contract: a client tells the errors apart by them.
        match e {
            ServiceError::Ambiguous => Self::unprocessable("invalid_redact", e.to_string()),
            ServiceError::Field(_) => Self::unprocessable("invalid_field", e.to_string()),
            ServiceError::NoEvent(id) => Self::not_found("event", &id),
            ServiceError::NoDelivery(id) => Self::not_found("delivery", &id),
            ServiceError::NoJob(id) => Self::not_found("replay job", &id),
            ServiceError::NotHolding(_) => Self::new(StatusCode::CONFLICT, "not_holding", e.to_string()),
            ServiceError::ReplayStatus => Self::unprocessable("invalid_status", e.to_string()),
            ServiceError::Rate => Self::unprocessable("invalid_rate", e.to_string()),
            ServiceError::BackfillFilter => Self::unprocessable("invalid_backfill", e.to_string()),
            ServiceError::FreshBackfill => Self::unprocessable("invalid_fresh", e.to_string()),
            ServiceError::UnknownHandler(_) => Self::unprocessable("unknown_handler", e.to_string()),
            ServiceError::NoFilter => Self::unprocessable("no_filter", e.to_string()),
            ServiceError::Where(_) => Self::unprocessable("invalid_where", e.to_string()),
            ServiceError::Query(detail) => Self::bad_request("invalid_query", detail),
            ServiceError::Stale { .. } => Self::new(StatusCode::CONFLICT, "stale_version", e.to_string()),
            ServiceError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "detail": self.detail });
        (self.status, Json(body)).into_response()
    }
}
