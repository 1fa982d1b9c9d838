//! Bulk delete and redact by filter: `POST /events-bulk/delete`, `POST /events-bulk/redact`,
//! with `dry_run` to see what would change. (Not under `/events/`, where any segment is an
//! event id.)

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::events::since_ms;
use super::{ApiError, actor};
use crate::clock::now_ms;
use crate::services::{Redaction, Services, is_data_path};
use crate::store::{AuditRecord, EventFilter, EventRecord};

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
    let ids = matching(&services, &request)?;
    if !request.dry_run {
        for id in &ids {
            services.store.delete_event(id)?;
        }
        finish(&services, &headers, "bulk_delete", &request, ids.len()).await?;
    }
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
    let ids = matching(&services, &request)?;
    if !request.dry_run {
        for id in &ids {
            services.store.redact_event(id, redaction.fields(), now_ms())?;
        }
        finish(&services, &headers, "bulk_redact", &request, ids.len()).await?;
    }
    Ok(Json(answer(&request, &ids)))
}

fn answer(request: &BulkRequest, ids: &[String]) -> Value {
    let first: Vec<&String> = ids.iter().take(FIRST).collect();
    serde_json::json!({ "dry_run": request.dry_run, "count": ids.len(), "first": first })
}

async fn finish(
    services: &Services,
    headers: &HeaderMap,
    action: &str,
    request: &BulkRequest,
    count: usize,
) -> Result<(), ApiError> {
    // The filter, not the data: matched values may be what is being erased.
    let detail = serde_json::json!({
        "type": request.event_type, "where": request.matches.keys().collect::<Vec<_>>(),
        "fields": request.fields, "payload": request.payload, "count": count,
    });
    let record = AuditRecord {
        at_ms: now_ms(),
        actor: actor(headers).into(),
        action: action.into(),
        target: "events".into(),
        detail,
    };
    services.store.audit(&record)?;
    services.store.commit().await?;
    Ok(())
}

/// Ids of the events matching the request; a filter is required so that a mistake cannot
/// take every event.
fn matching(services: &Services, request: &BulkRequest) -> Result<Vec<String>, ApiError> {
    if request.matches.is_empty() && request.event_type.is_none() {
        return Err(ApiError::unprocessable(
            "no_filter",
            "give where (and/or type) to choose events",
        ));
    }
    if let Some(bad) = request.matches.keys().find(|k| !is_data_path(k)) {
        return Err(ApiError::unprocessable(
            "invalid_where",
            format!("{bad:?}: where paths are under data"),
        ));
    }
    let until = request.until.as_deref().map(since_ms).transpose()?;
    let mut page = EventFilter {
        event_type: request.event_type.clone(),
        since_ms: request.since.as_deref().map(since_ms).transpose()?,
        limit: 1000,
        ..Default::default()
    };
    let mut ids = Vec::new();
    loop {
        let events = services.store.list_events(&page)?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(ids);
        };
        let keep = |e: &EventRecord| until.is_none_or(|u| e.received_ms < u) && matches_where(e, &request.matches);
        ids.extend(events.iter().filter(|e| keep(e)).map(|e| e.event.id.clone()));
        page.after_seq = Some(last);
    }
}

fn matches_where(record: &EventRecord, matches: &serde_json::Map<String, Value>) -> bool {
    matches.iter().all(|(path, expected)| {
        let found = path
            .split('.')
            .skip(1)
            .try_fold(&record.event.data, |node, key| node.get(key));
        found == Some(expected)
    })
}
