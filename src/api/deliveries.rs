//! `GET /deliveries` and `GET /deliveries/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::bodies::{DeliveryList, DeliveryShow};
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
) -> Result<Json<DeliveryList>, ApiError> {
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
    let filter = DeliveryFilter {
        status,
        handler: q.handler,
        event_type: q.event_type,
        after_id: q.cursor,
        limit: limit(q.limit)?,
        ..Default::default()
    };
    Ok(Json(services.deliveries(&filter).await?.into()))
}

/// `GET /deliveries/{id}`: the delivery with every attempt (outcome, error, logs, fetches).
pub async fn show(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryShow>, ApiError> {
    Ok(Json(services.delivery(&id).await?.into()))
}
