//! `POST /webhooks/{source}`: a third party's webhook, verified by its signature (not by the
//! API token) and stored as an event whose id comes from the provider's delivery id, so a
//! redelivery is recognised as the same event.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Intake;
use super::webhook::{self, Inbound, Kind};
use crate::config::SourceConfig;
use crate::event::{Event, now_rfc3339, validate_type};
use crate::http::ApiError;
use crate::logs;
use crate::metrics::{UNKNOWN_SOURCE, WebhookOutcome};
use crate::store::Ingested;

/// Longest provider delivery id accepted (they are UUIDs or short tokens in practice): with
/// the longest source name (64) and the colon, an event id stays within its 256 bytes.
const MAX_DELIVERY_ID: usize = crate::event::MAX_ID_BYTES - 65;

/// One configured sender, with its secret read at start-up.
pub struct WebhookSource {
    pub kind: Kind,
    secret: String,
}

/// The configured senders by name.
#[derive(Default)]
pub struct WebhookSources(HashMap<String, WebhookSource>);

impl WebhookSources {
    /// Reads each source's secret from the environment or the `.env` beside `handlers`.
    pub fn resolve(
        sources: &std::collections::BTreeMap<String, SourceConfig>,
        handlers: &Path,
    ) -> Result<Self, crate::secrets::SecretError> {
        // eddy's own use: the grant of `[secrets] allow` is for handlers.
        let env = crate::secrets::SecretSource::load(handlers, crate::secrets::Grant::default())?;
        let mut resolved = HashMap::new();
        for (name, source) in sources {
            let secret = env.value(&source.secret_env, handlers)?;
            resolved.insert(
                name.clone(),
                WebhookSource {
                    kind: source.kind,
                    secret,
                },
            );
        }
        Ok(Self(resolved))
    }

    pub fn get(&self, name: &str) -> Option<&WebhookSource> {
        self.0.get(name)
    }

    /// The source whose ids `id` is in: ids `<source>:<anything>` belong to a configured
    /// source, and only its verified webhooks may store events under them.
    pub fn owner_of(&self, id: &str) -> Option<&str> {
        let (prefix, _) = id.split_once(':')?;
        self.0.get_key_value(prefix).map(|(name, _)| name.as_str())
    }
}

/// 202 `{ "id" }` when stored, 200 `{ "id", "duplicate": true }` for a redelivery,
/// 200 `{ "challenge" }` for Slack's handshake, 401 when the signature does not hold.
/// Every refusal is logged with the source and the reason.
pub async fn post_webhook(
    State(intake): State<Arc<Intake>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let answer = receive(&intake, &name, headers, body).await;
    if let Err(refusal) = &answer {
        // A server-side failure (the store) is not the sender's fault and is logged where
        // it happens.
        if refusal.status.is_client_error() {
            // Only configured names become labels or log fields: the URL's are anyone's to
            // choose (the refusal's detail quotes it, escaped).
            let source = match intake.sources.get(&name) {
                Some(_) => name.as_str(),
                None => UNKNOWN_SOURCE,
            };
            let metrics = &intake.services.metrics;
            metrics.webhook(source, WebhookOutcome::Rejected, Some(refusal.error));
            tracing::warn!(
                target: logs::WEBHOOKS,
                source = %source,
                reason = refusal.error,
                status = refusal.status.as_u16(),
                "webhook refused: {}",
                refusal.detail
            );
        }
    }
    answer
}

async fn receive(intake: &Intake, name: &str, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let Some(source) = intake.sources.get(name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!("no webhook source {name:?} is configured (add [sources.{name}] to eddy.toml)"),
        ));
    };
    // The size is checked before any HMAC is computed.
    let bytes = super::read_body(intake, &headers, body).await?;
    let now = crate::clock::now_secs();
    let inbound = webhook::verify(source.kind, &source.secret, &headers, &bytes, now).map_err(|e| {
        let status = if e.is_auth_failure() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::new(status, e.code(), e.to_string())
    })?;
    let (delivery_id, kind, data) = match inbound {
        Inbound::Challenge(challenge) => return Ok(Json(json!({ "challenge": challenge })).into_response()),
        Inbound::Event {
            delivery_id,
            kind,
            data,
        } => (delivery_id, kind, data),
    };
    let event = to_event(name, delivery_id, kind, data)?;
    let ingested = super::accept(intake, vec![event]).await?;
    let (status, body, outcome) = match &ingested[..] {
        [Ingested::New { id, .. }] => (StatusCode::ACCEPTED, json!({ "id": id }), WebhookOutcome::Accepted),
        [other] => (
            StatusCode::OK,
            json!({ "id": other.id(), "duplicate": true }),
            WebhookOutcome::Duplicate,
        ),
        _ => return Err(ApiError::internal("one webhook did not give one event")),
    };
    intake.services.metrics.webhook(name, outcome, None);
    Ok((status, Json(body)).into_response())
}

/// The event for a verified delivery: id `<source>:<delivery id>`, source `eddy/webhooks/<source>`.
fn to_event(source: &str, delivery_id: String, kind: String, data: serde_json::Value) -> Result<Event, ApiError> {
    if delivery_id.is_empty() || delivery_id.len() > MAX_DELIVERY_ID {
        return Err(ApiError::bad_request(
            "bad_delivery_id",
            format!("the delivery id must be 1 to {MAX_DELIVERY_ID} characters"),
        ));
    }
    validate_type(&kind).map_err(|e| ApiError::bad_request("invalid_type", e.to_string()))?;
    let event = Event {
        id: format!("{source}:{delivery_id}"),
        kind,
        source: format!("{WEBHOOK_SOURCE_PREFIX}{source}"),
        time: now_rfc3339(),
        subject: None,
        data,
    };
    event
        .validate()
        .map_err(|e| ApiError::bad_request("bad_delivery_id", e.to_string()))?;
    Ok(event)
}

/// The `source` of every webhook event starts with this, followed by the source's name.
const WEBHOOK_SOURCE_PREFIX: &str = "eddy/webhooks/";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_become_event_ids_and_types_are_checked() {
        let event = to_event("gh", "d-1".into(), "github.push".into(), json!({"a": 1})).unwrap();
        assert_eq!(
            (event.id.as_str(), event.source.as_str()),
            ("gh:d-1", "eddy/webhooks/gh")
        );
        assert_eq!(
            to_event("gh", "x".repeat(192), "github.push".into(), json!(null))
                .unwrap_err()
                .error,
            "bad_delivery_id"
        );
        let longest_name = "n".repeat(64);
        let longest = to_event(&longest_name, "x".repeat(191), "github.push".into(), json!(null)).unwrap();
        assert_eq!(longest.id.len(), crate::event::MAX_ID_BYTES);
        assert_eq!(
            to_event("gh", "d\u{1}".into(), "github.push".into(), json!(null))
                .unwrap_err()
                .error,
            "bad_delivery_id",
            "a control character from the provider"
        );
        assert_eq!(
            to_event("gh", "d".into(), "github.a b".into(), json!(null))
                .unwrap_err()
                .error,
            "invalid_type"
        );
    }
}
