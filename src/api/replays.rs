//! Repair endpoints: `POST /deliveries/{id}/replay`, `POST /replays` (filter, dry run, rate,
//! backfill), `GET /replays/{id}` (progress), `DELETE /replays/{id}` (cancel), `GET /audit`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::bodies::{AuditBody, DeliveryBody, JobBody, bodies};
use super::{ApiError, actor, limit};
use crate::delivery::ReplayFilter;
use crate::services::{BulkReplay, Preview, ServiceError, Services, time_bound};
use crate::store::{DeliveryStatus, Replayed};

/// `POST /deliveries/{id}/replay`: 202 queued, 200 when it is already pending or running;
/// durable before the answer.
pub async fn replay_one(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<ReplayOne>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let fresh = query.fresh.unwrap_or(false);
    let (status, word) = match services.replay(&id, fresh, actor(&headers)).await? {
        Replayed::Queued => (StatusCode::ACCEPTED, "queued"),
        // `replay` answers a missing delivery with an error.
        Replayed::AlreadyQueued | Replayed::NotFound => (StatusCode::OK, "already_queued"),
    };
    Ok((status, Json(serde_json::json!({ "delivery": id, "status": word }))).into_response())
}

/// `POST /deliveries/{id}/replay?fresh=true`: the delivery forgets its steps' results.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayOne {
    fresh: Option<bool>,
}

/// `POST /deliveries/{id}/skip`: a dead delivery its key waits for leaves the key's line.
pub async fn skip(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    services.skip(&id, actor(&headers)).await?;
    Ok(Json(serde_json::json!({ "delivery": id, "status": "skipped" })).into_response())
}

/// Body of `POST /replays`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    status: Option<String>,
    handler: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// RFC 3339 time or a duration ago (`6h`).
    since: Option<String>,
    until: Option<String>,
    error: Option<String>,
    #[serde(default)]
    dry_run: bool,
    /// Items per second.
    rate: Option<f64>,
    /// Create deliveries to `handler` for stored events of `type` instead of replaying.
    #[serde(default)]
    backfill: bool,
    /// Replays: every step runs again (the results they recorded are forgotten).
    #[serde(default)]
    fresh: bool,
}

/// `POST /replays`: a dry run (count and first rows) or a background job (202).
pub async fn start(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut body) = body.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    // The filter fields may sit at the top level or under "filter"; both read the same.
    if let Some(serde_json::Value::Object(nested)) = body.as_object_mut().and_then(|b| b.remove("filter"))
        && let Some(top) = body.as_object_mut()
    {
        for (key, value) in nested {
            top.entry(key).or_insert(value);
        }
    }
    let request: ReplayRequest =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    let bulk = BulkReplay {
        filter: filter_of(&request)?,
        rate: request.rate,
        backfill: request.backfill,
        fresh: request.fresh,
    };
    if request.dry_run {
        return Ok(Json(dry_run(services.preview_replay(&bulk).await?)).into_response());
    }
    let job = services.start_replay(bulk, actor(&headers)).await?;
    Ok((StatusCode::ACCEPTED, Json(JobBody::from(job))).into_response())
}

fn filter_of(request: &ReplayRequest) -> Result<ReplayFilter, ApiError> {
    let status = request
        .status
        .as_deref()
        .map(|s| DeliveryStatus::parse(s).ok_or_else(|| ApiError::from(ServiceError::ReplayStatus)))
        .transpose()?;
    Ok(ReplayFilter {
        status,
        handler: request.handler.clone(),
        event_type: request.event_type.clone(),
        since_ms: request.since.as_deref().map(|t| time_bound("since", t)).transpose()?,
        until_ms: request.until.as_deref().map(|t| time_bound("until", t)).transpose()?,
        error: request.error.clone(),
        ..ReplayFilter::default()
    })
}

fn dry_run(preview: Preview) -> serde_json::Value {
    match preview {
        Preview::Backfill { count, first } => {
            serde_json::json!({ "dry_run": true, "kind": "backfill", "count": count, "first": first })
        }
        Preview::Replay { count, first } => {
            let first: Vec<DeliveryBody> = bodies(first);
            serde_json::json!({ "dry_run": true, "kind": "replay", "count": count, "first": first })
        }
    }
}

/// Query of `GET /replays/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    /// Also say where the deliveries the job queued stand now.
    #[serde(default)]
    outcomes: bool,
}

/// `GET /replays/{id}?outcomes=true`: progress, and with `outcomes` how the queued
/// deliveries fared (`succeeded`, `failed_again`, `waiting`, `gone`, of `followed`).
pub async fn show(
    State(services): State<Arc<Services>>,
    Path(id): Path<String>,
    query: Result<Query<JobQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let job = JobBody::from(services.replay_job(&id)?);
    let mut body = serde_json::to_value(job).map_err(ApiError::internal)?;
    if q.outcomes {
        body["outcomes"] = serde_json::to_value(services.replay_outcomes(&id).await?).map_err(ApiError::internal)?;
    }
    Ok(Json(body))
}

/// `DELETE /replays/{id}`: cancel; the job stops before its next item.
pub async fn cancel(State(services): State<Arc<Services>>, Path(id): Path<String>) -> Result<Json<JobBody>, ApiError> {
    Ok(Json(services.cancel_replay(&id)?.into()))
}

/// Query of `GET /audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<usize>,
}

/// `GET /audit?limit=`: newest first.
pub async fn audit(
    State(services): State<Arc<Services>>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let entries: Vec<AuditBody> = bodies(services.audit_log(limit(q.limit)?).await?);
    Ok(Json(serde_json::json!({ "audit": entries })))
}
