//! Events in: `POST /events`, verified webhooks (`POST /webhooks/{source}`) and the
//! API-observing proxy. Each parses and validates before anything is written, routes each
//! event, stores it with its deliveries, and answers only once that is durable (group commit).

mod hooks;
mod parse;
pub mod proxy;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

pub use hooks::{WebhookSource, WebhookSources, post_webhook};
pub use parse::{DEFAULT_SOURCE, events_from_request};

use crate::event::Event;
use crate::http::ApiError;
use crate::services::Services;
use crate::store::Ingested;

/// What the intakes share: the services they store through, and how they read requests.
pub struct Intake {
    pub services: Arc<Services>,
    /// Webhook senders, for `POST /webhooks/{source}`.
    pub sources: WebhookSources,
    /// Largest body accepted (`[ingest] max_body_bytes`).
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive (`POST /events`, webhooks).
    pub body_timeout: Duration,
    /// Whether ingest waits for the disk before answering (`[ingest] durable_ack`).
    pub durable_ack: bool,
}

/// `POST /events`: 202 `{ "ids": [...], "duplicates": [...] }` once durable, `duplicates`
/// naming the ids accepted before (stored then, not again now); 200 when every event was one.
pub async fn post_events(
    State(intake): State<Arc<Intake>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&intake, &headers, body).await?;
    let events = events_from_request(&headers, &bytes)?;
    for event in &events {
        check_not_reserved(&intake, event)?;
    }
    let ingested = accept(&intake, events).await?;
    let all_duplicates = ingested.iter().all(|i| matches!(i, Ingested::Duplicate { .. }));
    let ids: Vec<&str> = ingested.iter().map(Ingested::id).collect();
    let duplicates: Vec<&str> = ingested
        .iter()
        .filter(|i| matches!(i, Ingested::Duplicate { .. }))
        .map(Ingested::id)
        .collect();
    let status = if all_duplicates {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let body = serde_json::json!({ "ids": ids, "duplicates": duplicates });
    Ok((status, Json(body)).into_response())
}

/// Refuses, before anything is written, an event posted with an id or `source` that only
/// eddy's own intakes give: `<source>:...` ids of a configured webhook source (else a post
/// could take the id of that source's next genuine delivery, which would then be dropped as
/// a duplicate), and `eddy/...` sources other than the default one, which handlers may trust
/// to mean "verified by eddy".
fn check_not_reserved(intake: &Intake, event: &Event) -> Result<(), ApiError> {
    if let Some(owner) = intake.sources.owner_of(&event.id) {
        return Err(ApiError::unprocessable(
            "reserved_id",
            format!(
                "event id {:?} belongs to webhook source {owner:?}: ids \"{owner}:...\" are given only to its verified webhooks",
                event.id
            ),
        ));
    }
    if event.source.starts_with("eddy/") && event.source != DEFAULT_SOURCE {
        return Err(ApiError::unprocessable(
            "reserved_source",
            format!(
                "source {:?} is reserved: sources under \"eddy/\" are set by eddy's own intakes (webhooks, proxy)",
                event.source
            ),
        ));
    }
    Ok(())
}

/// Routes and stores `events` with their deliveries; returns once that is durable (unless
/// `[ingest] durable_ack = false`).
pub async fn accept(intake: &Intake, events: Vec<Event>) -> Result<Vec<Ingested>, ApiError> {
    Ok(intake.services.ingest(events, intake.durable_ack).await?)
}

/// The body, refused with 413 as soon as it is known to be over `[ingest] max_body_bytes`,
/// and with 408 if it takes longer than `body_timeout_ms` to arrive.
pub(crate) async fn read_body(intake: &Intake, headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = intake.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {limit} bytes ([ingest] max_body_bytes)"),
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    match tokio::time::timeout(intake.body_timeout, axum::body::to_bytes(body, limit)).await {
        Ok(read) => read.map_err(|_| too_large()),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {} ms ([ingest] body_timeout_ms)",
                intake.body_timeout.as_millis()
            ),
        )),
    }
}
