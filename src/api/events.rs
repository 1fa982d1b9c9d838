//! `GET /events` and `GET /events/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::bodies::{EventBody, EventList, EventShow};
use super::{ApiError, limit};
use crate::services::{EventsAsked, Redaction, Services};

/// Query of `GET /events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// A type, or a pattern of types (`crm.*`, `github.**`).
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// RFC 3339 time, or a duration back from now like `6h`.
    since: Option<String>,
    until: Option<String>,
    /// `newest` (the default) or `oldest`.
    order: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// `true`: only events that matched no handler.
    #[serde(default)]
    unrouted: bool,
}

/// `GET /events?type=&since=&until=&order=newest|oldest&limit=&cursor=&unrouted=true`:
/// newest first unless asked, `next_cursor` for the next page.
pub async fn list(
    State(services): State<Arc<Services>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let asked = EventsAsked {
        types: q.event_type.as_deref(),
        since: q.since.as_deref(),
        until: q.until.as_deref(),
        order: q.order.as_deref(),
        cursor: q.cursor.as_deref(),
        unrouted: q.unrouted,
        limit: limit(q.limit)?,
    };
    let filter = services.event_filter(&asked).await?;
    Ok(Json(services.events(&filter).await?.into()))
}

/// `GET /events/{id}`: the event with its deliveries and the previous versions of its data.
pub async fn show(State(services): State<Arc<Services>>, Path(id): Path<String>) -> Result<Json<EventShow>, ApiError> {
    Ok(Json(services.event(&id).await?.into()))
}

/// `PATCH /events/{id}`: a JSON merge patch (RFC 7386) on the event's `data`, durable before
/// the answer; the previous data is kept in its history, and `changed` says whether there was
/// anything to change (a patch that changes nothing makes no version). Deliveries that run later (retries,
/// replays) see the new data.
pub async fn edit(
    State(services): State<Arc<Services>>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(media, "application/merge-patch+json" | "application/json") {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the patch as application/merge-patch+json",
        ));
    }
    let patch: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the patch is not valid JSON: {e}")))?;
    let edited = services.edit(&id, &patch, super::actor(&headers)).await?;
    let body = serde_json::json!({ "event": EventBody::from(edited.record), "changed": edited.changed });
    Ok(Json(body))
}

/// `DELETE /events/{id}`: removes the event with every delivery, attempt, captured log and
/// history version.
pub async fn delete(
    State(services): State<Arc<Services>>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    services.delete(&id, super::actor(&headers)).await?;
    Ok(Json(serde_json::json!({ "deleted": id })))
}

/// Body of `POST /events/{id}/redact`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactRequest {
    /// `data.a.b` paths to remove.
    #[serde(default)]
    fields: Vec<String>,
    /// Remove the whole payload (type, id and time stay).
    #[serde(default)]
    payload: bool,
}

/// `POST /events/{id}/redact`: removes fields (or the payload) from the event, its history and
/// every captured log, fetch record and error that holds them.
pub async fn redact(
    State(services): State<Arc<Services>>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<RedactRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    let redaction = Redaction::new(request.fields, request.payload)?;
    services.redact(&id, &redaction, super::actor(&headers)).await?;
    Ok(Json(serde_json::json!({ "redacted": id })))
}
