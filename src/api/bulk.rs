//! Bulk delete and redact by filter: `POST /events-bulk/delete`, `POST /events-bulk/redact`,
//! with `dry_run` to see what would change. (Not under `/events/`, where any segment is an
//! event id.)

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, actor};
use crate::services::{Redaction, Selection, Services, time_bound};

/// Rows a dry run lists.
const FIRST: usize = 20;

/// Which events a bulk operation takes, and for redactions what to remove.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// `{"data.user_id": "u1"}`: every path must equal its JSON value.
    #[serde(default, rename = "where")]
    matches: serde_json::Map<String, Value>,
    since: Option<String>,
    until: Option<String>,
    #[serde(default)]
    dry_run: bool,
    /// Redactions: paths under data.
    #[serde(default)]
    fields: Vec<String>,
    /// Redactions: the whole payload.
    #[serde(default)]
    payload: bool,
}

/// `POST /events-bulk/delete`.
pub async fn delete(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    body: Result<Json<BulkRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    let selection = selection(&request)?;
    let ids = match request.dry_run {
        true => services.select(&selection).await?,
        false => services.delete_all(&selection, actor(&headers)).await?,
    };
    Ok(Json(answer(&request, &ids)))
}

/// `POST /events-bulk/redact`.
pub async fn redact(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    body: Result<Json<BulkRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    let redaction = Redaction::new(request.fields.clone(), request.payload)?;
    let selection = selection(&request)?;
    let ids = match request.dry_run {
        true => services.select(&selection).await?,
        false => services.redact_all(&selection, &redaction, actor(&headers)).await?,
    };
    Ok(Json(answer(&request, &ids)))
}

/// The events the request names, its times read as `GET /events` reads them.
fn selection(request: &BulkRequest) -> Result<Selection, ApiError> {
    let selection = Selection::new(request.event_type.clone(), request.matches.clone())?;
    let until = request.until.as_deref().map(|t| time_bound("until", t)).transpose()?;
    let since = request.since.as_deref().map(|t| time_bound("since", t)).transpose()?;
    Ok(selection.received(since, until))
}

fn answer(request: &BulkRequest, ids: &[String]) -> Value {
    let first: Vec<&String> = ids.iter().take(FIRST).collect();
    serde_json::json!({ "dry_run": request.dry_run, "count": ids.len(), "first": first })
}
