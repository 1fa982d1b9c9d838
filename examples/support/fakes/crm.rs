//! A fake CRM contacts API: bearer auth, `Idempotency-Key` replays and a 429 rate limit.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use serde_json::{Map, Value, json};

use super::{Shared, bearer, json_response, lock, serve};

/// One request the CRM received and how it answered.
#[derive(Debug, Clone)]
pub struct CrmRequest {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub status: u16,
    /// Answered from the stored response of an earlier request with the same key.
    pub replayed: bool,
}

#[derive(Clone)]
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn error(status: StatusCode, error: &str, message: &str) -> Self {
        let body = json!({ "error": error, "message": message });
        Self { status, body }
    }
}

#[derive(Default)]
struct CrmState {
    token: String,
    throttle_left: u32,
    contacts: BTreeMap<String, Value>,
    created: u64,
    /// Idempotency key -> (what was asked, what was answered).
    keys: HashMap<String, ((String, Value), Answer)>,
    log: Vec<CrmRequest>,
}

/// A CRM's contacts API: `PUT /contacts/{external_id}` upserts (201 created, 200 updated),
/// `GET /contacts/{external_id}`, `GET /contacts`. Bearer token required (401 otherwise).
/// `Idempotency-Key` as payment APIs do it: the same key with the same request replays the
/// stored answer (`Idempotent-Replayed: true`), with a different one is refused (422).
/// The first `throttle_first` requests are answered 429 with `Retry-After: 1`.
#[derive(Clone)]
pub struct FakeCrm {
    pub url: String,
    state: Shared<CrmState>,
}

impl FakeCrm {
    pub async fn start(token: &str, throttle_first: u32) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(CrmState {
            token: token.to_owned(),
            throttle_left: throttle_first,
            ..CrmState::default()
        }));
        let router = Router::new().fallback(any(crm_call)).with_state(state.clone());
        Ok(Self {
            url: serve(router).await?,
            state,
        })
    }

    /// Every contact, in external id order.
    pub fn contacts(&self) -> Vec<Value> {
        lock(&self.state).contacts.values().cloned().collect()
    }

    pub fn contact(&self, external_id: &str) -> Option<Value> {
        lock(&self.state).contacts.get(external_id).cloned()
    }

    pub fn requests(&self) -> Vec<CrmRequest> {
        lock(&self.state).log.clone()
    }
}

async fn crm_call(
    State(crm): State<Shared<CrmState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&crm);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (answer, replayed) = state.answer(&method, uri.path(), &headers, key.as_deref(), &body);
    state.log.push(CrmRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        idempotency_key: key,
        status: answer.status.as_u16(),
        replayed,
    });
    let mut response = json_response(answer.status, &answer.body);
    let extra = match answer.status {
        StatusCode::TOO_MANY_REQUESTS => Some((header::RETRY_AFTER, "1")),
        _ if replayed => Some((header::HeaderName::from_static("idempotent-replayed"), "true")),
        _ => None,
    };
    if let Some((name, value)) = extra {
        response
            .headers_mut()
            .insert(name, header::HeaderValue::from_static(value));
    }
    response
}

impl CrmState {
    fn answer(
        &mut self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        key: Option<&str>,
        body: &[u8],
    ) -> (Answer, bool) {
        if bearer(headers) != Some(self.token.as_str()) {
            let message = "send Authorization: Bearer <token>";
            return (Answer::error(StatusCode::UNAUTHORIZED, "unauthorized", message), false);
        }
        if self.throttle_left > 0 {
            self.throttle_left -= 1;
            let message = "too many requests; retry after 1 s";
            return (
                Answer::error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message),
                false,
            );
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let found = |contact: Option<&Value>| match contact {
            Some(contact) => Answer {
                status: StatusCode::OK,
                body: contact.clone(),
            },
            None => Answer::error(StatusCode::NOT_FOUND, "not_found", "no such contact"),
        };
        let answer = match (method.as_str(), segments.as_slice()) {
            ("GET", ["contacts"]) => Answer {
                status: StatusCode::OK,
                body: json!({ "contacts": self.contacts.values().collect::<Vec<_>>() }),
            },
            ("GET", ["contacts", id]) => found(self.contacts.get(*id)),
            ("PUT", ["contacts", id]) => return self.put_contact(id, key, body),
            _ => Answer::error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
        };
        (answer, false)
    }

    fn put_contact(&mut self, external_id: &str, key: Option<&str>, body: &[u8]) -> (Answer, bool) {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            let message = "the body must be a JSON object";
            return (Answer::error(StatusCode::BAD_REQUEST, "invalid_json", message), false);
        };
        let asked = (format!("PUT /contacts/{external_id}"), Value::Object(fields.clone()));
        if let Some((earlier, answer)) = key.and_then(|k| self.keys.get(k)) {
            if *earlier != asked {
                let message = "this Idempotency-Key was used with a different request";
                return (
                    Answer::error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", message),
                    false,
                );
            }
            return (answer.clone(), true);
        }
        let answer = self.upsert(external_id, fields);
        if let Some(key) = key {
            self.keys.insert(key.to_owned(), (asked, answer.clone()));
        }
        (answer, false)
    }

    fn upsert(&mut self, external_id: &str, fields: Map<String, Value>) -> Answer {
        if fields
            .get("email")
            .is_some_and(|e| !e.as_str().is_some_and(|e| e.contains('@')))
        {
            return Answer::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "email is not an address",
            );
        }
        let created = !self.contacts.contains_key(external_id);
        if created {
            self.created += 1;
        }
        let id = format!("ct_{:04}", self.created);
        let contact = self
            .contacts
            .entry(external_id.to_owned())
            .or_insert_with(|| json!({ "id": id, "external_id": external_id, "revision": 0 }));
        for (name, value) in fields {
            if !matches!(name.as_str(), "id" | "external_id" | "revision") {
                contact[name] = value;
            }
        }
        contact["revision"] = json!(contact["revision"].as_u64().unwrap_or(0) + 1);
        let status = if created { StatusCode::CREATED } else { StatusCode::OK };
        Answer {
            status,
            body: contact.clone(),
        }
    }
}
