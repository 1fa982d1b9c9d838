//! `GET /deliveries` and `GET /deliveries/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::{ApiError, limit};
use crate::services::Services;
use crate::store::{DeliveryFilter, DeliveryStatus};

/// Query of `GET /deliveries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    handler: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /deliveries?status=pending|running|succeeded|dead&handler=&type=&limit=&cursor=`.
pub async fn list(
    State(services): State<Arc<Services>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request("invalid_query", "status must be pending, running, succeeded or dead")
            })
        })
        .transpose()?;
    let limit = limit(q.limit)?;
    let filter = DeliveryFilter {
        status,
        handler: q.handler,
        event_type: q.event_type,
        after_id: q.cursor,
        limit,
        ..Default::default()
    };
    let deliveries = services.store.list_deliveries(&filter)?;
    let next = (deliveries.len() == limit)
        .then(|| deliveries.last().map(|d| d.id.clone()))
        .flatten();
    Ok(Json(
        serde_json::json!({ "deliveries": deliveries, "next_cursor": next }),
    ))
}

/// `GET /deliveries/{id}`: the delivery with every attempt (outcome, error, logs, fetches).
pub async fn show(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let delivery = services
        .store
        .delivery(&id)?
        .ok_or_else(|| ApiError::not_found("delivery", &id))?;
    let attempts = services.store.attempts(&id)?;
    Ok(Json(serde_json::json!({ "delivery": delivery, "attempts": attempts })))
}
