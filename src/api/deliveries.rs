//! `GET /deliveries` and `GET /deliveries/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::bodies::{DeliveryList, DeliveryShow};
use super::{ApiError, limit};
use crate::services::{DeliveriesAsked, Services, delivery_filter};

/// Query of `GET /deliveries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    handler: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Text the last error contains.
    error: Option<String>,
    /// RFC 3339 time, or a duration back from now like `6h`.
    since: Option<String>,
    until: Option<String>,
    /// `newest` (the default) or `oldest`.
    order: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /deliveries?status=pending|blocked|running|succeeded|dead&handler=&type=&error=&since=&until=&order=newest|oldest&limit=&cursor=`:
/// newest first unless asked, by when each delivery was created.
pub async fn list(
    State(services): State<Arc<Services>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeliveryList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let filter = delivery_filter(&DeliveriesAsked {
        status: q.status.as_deref(),
        handler: q.handler.as_deref(),
        event_type: q.event_type.as_deref(),
        error: q.error.as_deref(),
        since: q.since.as_deref(),
        until: q.until.as_deref(),
        order: q.order.as_deref(),
        cursor: q.cursor.as_deref(),
        limit: limit(q.limit)?,
    })?;
    Ok(Json(services.deliveries(&filter).await?.into()))
}

/// `GET /deliveries/{id}`: the delivery with every attempt (outcome, error, logs, fetches).
pub async fn show(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryShow>, ApiError> {
    Ok(Json(services.delivery(&id).await?.into()))
}
