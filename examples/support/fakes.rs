//! Stand-ins for the services the examples talk to: real HTTP servers on 127.0.0.1:0 that
//! answer the way the real services do (auth, errors, rate limits, idempotency), so the
//! example handlers run unchanged against them and against the real thing. Each records
//! what it received, so a scenario can check the outcome rather than trust the logs.
//!
//! - [`FakeSlack`]: `chat.postMessage` and `chat.update` of the Slack Web API.
//! - [`send_github_webhook`]: delivers a payload signed the way GitHub signs webhooks.
//! - [`FakeCrm`]: a contacts API with bearer auth, `Idempotency-Key` and a 429 rate limit.
//! - [`AccountsApi`]: the "own API" of the crm-sync example, in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use ring::hmac;
use serde_json::{Map, Value, json};

type Shared<T> = Arc<Mutex<T>>;

/// A fake's state stays usable after a panic elsewhere: every update is one whole step.
fn lock<T>(shared: &Mutex<T>) -> MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves `router` on a fresh loopback port for as long as the tokio runtime lives.
async fn serve(router: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

/// An HTTP client for loopback servers. Proxy settings in the environment are ignored:
/// a proxy would not reach 127.0.0.1 of this machine.
pub fn local_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

// ---------------------------------------------------------------- Slack

/// One message as the fake Slack keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    pub ts: String,
    /// The parent's `ts` for a reply in a thread.
    pub thread_ts: Option<String>,
    pub text: String,
    /// How many times `chat.update` changed it.
    pub edits: u32,
}

/// One Web API call: the method, the HTTP status and the result (`ok`, or the error code).
#[derive(Debug, Clone)]
pub struct SlackCall {
    pub method: String,
    pub status: u16,
    pub result: String,
}

#[derive(Default)]
struct SlackState {
    token: String,
    channels: BTreeMap<String, Vec<SlackMessage>>,
    posted: u64,
    rate_limit_next: u32,
    calls: Vec<SlackCall>,
}

/// The Slack Web API's `chat.postMessage` and `chat.update`, JSON bodies, bot token auth.
/// Errors come as HTTP 200 `{ ok: false, error }`, a rate limit as HTTP 429 with
/// `Retry-After`, as Slack does.
#[derive(Clone)]
pub struct FakeSlack {
    pub url: String,
    state: Shared<SlackState>,
}

impl FakeSlack {
    /// Starts a workspace that knows `channels` and accepts the bot token `token`.
    pub async fn start(token: &str, channels: &[&str]) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(SlackState {
            token: token.to_owned(),
            channels: channels.iter().map(|c| (c.to_string(), Vec::new())).collect(),
            ..SlackState::default()
        }));
        let router = Router::new()
            .route("/api/{method}", post(slack_call))
            .with_state(state.clone());
        Ok(Self {
            url: serve(router).await?,
            state,
        })
    }

    /// Answers the next `calls` calls with 429, as Slack does past a method's rate tier.
    pub fn rate_limit_next(&self, calls: u32) {
        lock(&self.state).rate_limit_next = calls;
    }

    /// Every message of `channel`, roots and replies, in the order they were posted.
    pub fn messages(&self, channel: &str) -> Vec<SlackMessage> {
        lock(&self.state).channels.get(channel).cloned().unwrap_or_default()
    }

    /// The replies in the thread under the message `ts`.
    pub fn thread(&self, channel: &str, ts: &str) -> Vec<SlackMessage> {
        let replies = self.messages(channel).into_iter();
        replies.filter(|m| m.thread_ts.as_deref() == Some(ts)).collect()
    }

    pub fn calls(&self) -> Vec<SlackCall> {
        lock(&self.state).calls.clone()
    }
}

async fn slack_call(
    State(slack): State<Shared<SlackState>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&slack);
    let (status, answer) = state.answer(&method, &headers, &body);
    let result = match answer["error"].as_str() {
        Some(error) => error.to_owned(),
        None => "ok".to_owned(),
    };
    let call = SlackCall {
        method,
        status: status.as_u16(),
        result,
    };
    state.calls.push(call);
    let mut response = json_response(status, &answer);
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

impl SlackState {
    fn answer(&mut self, method: &str, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Value) {
        let failed = |error: &str| json!({ "ok": false, "error": error });
        if self.rate_limit_next > 0 {
            self.rate_limit_next -= 1;
            return (StatusCode::TOO_MANY_REQUESTS, failed("ratelimited"));
        }
        let result = match bearer(headers) {
            None => Err("not_authed"),
            Some(token) if token != self.token => Err("invalid_auth"),
            Some(_) => match serde_json::from_slice::<Value>(body) {
                Err(_) => Err("invalid_json"),
                Ok(args) if method == "chat.postMessage" => self.post(&args),
                Ok(args) if method == "chat.update" => self.update(&args),
                Ok(_) => return (StatusCode::NOT_FOUND, failed("unknown_method")),
            },
        };
        (StatusCode::OK, result.unwrap_or_else(failed))
    }

    fn channel(&mut self, args: &Value) -> Result<(String, &mut Vec<SlackMessage>), &'static str> {
        let name = args["channel"].as_str().unwrap_or_default();
        let messages = self.channels.get_mut(name).ok_or("channel_not_found")?;
        Ok((name.to_owned(), messages))
    }

    fn post(&mut self, args: &Value) -> Result<Value, &'static str> {
        self.posted += 1;
        // Unique and increasing, shaped like Slack's "<unix seconds>.<microseconds>".
        let ts = format!(
            "{}.{:06}",
            1_700_000_000 + self.posted / 10_000,
            (self.posted % 10_000) * 100
        );
        let (channel, messages) = self.channel(args)?;
        let text = args["text"].as_str().filter(|t| !t.is_empty()).ok_or("no_text")?;
        let thread_ts = args["thread_ts"].as_str().map(str::to_owned);
        // Stricter than Slack, which would post to the channel instead: a wrong parent is a bug.
        if let Some(parent) = &thread_ts
            && !messages.iter().any(|m| &m.ts == parent && m.thread_ts.is_none())
        {
            return Err("thread_not_found");
        }
        let message = SlackMessage {
            ts: ts.clone(),
            thread_ts: thread_ts.clone(),
            text: text.to_owned(),
            edits: 0,
        };
        messages.push(message);
        let message = json!({ "type": "message", "bot_id": "B0FAKE", "text": text, "ts": ts, "thread_ts": thread_ts });
        Ok(json!({ "ok": true, "channel": channel, "ts": ts, "message": message }))
    }

    fn update(&mut self, args: &Value) -> Result<Value, &'static str> {
        let (channel, messages) = self.channel(args)?;
        let ts = args["ts"].as_str().unwrap_or_default();
        let message = messages.iter_mut().find(|m| m.ts == ts).ok_or("message_not_found")?;
        let text = args["text"].as_str().filter(|t| !t.is_empty()).ok_or("no_text")?;
        message.text = text.to_owned();
        message.edits += 1;
        let shown = json!({ "type": "message", "bot_id": "B0FAKE", "text": text, "ts": ts });
        Ok(json!({ "ok": true, "channel": channel, "ts": ts, "text": text, "message": shown }))
    }
}

// ---------------------------------------------------------------- GitHub

/// A fresh `X-GitHub-Delivery` value (GitHub uses a GUID).
pub fn github_delivery_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// POSTs `payload` to `url` as GitHub delivers webhook `event`: the headers GitHub sends,
/// and both signatures (`X-Hub-Signature-256`, and the legacy SHA-1 one) over exactly the
/// bytes sent. Returns the status and the JSON answer (null when it is not JSON).
pub async fn send_github_webhook(
    url: &str,
    secret: &str,
    event: &str,
    delivery: &str,
    payload: &Value,
) -> anyhow::Result<(u16, Value)> {
    let body = serde_json::to_vec(payload)?;
    let sign = |algorithm| hex(hmac::sign(&hmac::Key::new(algorithm, secret.as_bytes()), &body).as_ref());
    let response = local_client()
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/7e5b2f1")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-github-hook-id", "482615901")
        .header("x-github-hook-installation-target-type", "repository")
        .header("x-github-hook-installation-target-id", "700148813")
        .header(
            "x-hub-signature",
            format!("sha1={}", sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY)),
        )
        .header("x-hub-signature-256", format!("sha256={}", sign(hmac::HMAC_SHA256)))
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
    Ok((status, answer))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------- CRM

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

// ---------------------------------------------------------------- accounts API

/// One exchange of the accounts API, with the body exactly as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiExchange {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: String,
}

#[derive(Default)]
struct AccountsState {
    accounts: BTreeMap<u64, Value>,
    last_id: u64,
    log: Vec<ApiExchange>,
}

/// A tiny accounts API kept in memory: `POST /accounts` (201), `GET`, `PATCH` (200, merged)
/// and `DELETE` (204) on `/accounts/{id}`. Accounts are `{ id, name, email, plan, version }`;
/// `version` goes up with every change.
#[derive(Clone)]
pub struct AccountsApi {
    pub url: String,
    state: Shared<AccountsState>,
}

impl AccountsApi {
    pub async fn start() -> anyhow::Result<Self> {
        let state = Shared::default();
        let router = Router::new().fallback(any(accounts_call)).with_state(state.clone());
        Ok(Self {
            url: serve(router).await?,
            state,
        })
    }

    /// Everything it answered, in order.
    pub fn exchanges(&self) -> Vec<ApiExchange> {
        lock(&self.state).log.clone()
    }
}

async fn accounts_call(State(api): State<Shared<AccountsState>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let mut state = lock(&api);
    let (status, answer) = state.answer(&method, uri.path(), &body);
    let text = answer.as_ref().map(Value::to_string).unwrap_or_default();
    state.log.push(ApiExchange {
        method: method.to_string(),
        path: uri.path().to_owned(),
        status: status.as_u16(),
        body: text.clone(),
    });
    let Some(answer) = answer else {
        return status.into_response();
    };
    let mut response = json_response(status, &answer);
    if status == StatusCode::CREATED
        && let Ok(location) = format!("/accounts/{}", answer["id"]).parse()
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

impl AccountsState {
    fn answer(&mut self, method: &Method, path: &str, body: &[u8]) -> (StatusCode, Option<Value>) {
        let error = |status, message: &str| (status, Some(json!({ "error": message })));
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (collection, id) = match segments.as_slice() {
            ["accounts"] => (true, None),
            ["accounts", id] => (false, id.parse::<u64>().ok()),
            _ => return error(StatusCode::NOT_FOUND, "no such endpoint"),
        };
        let fields = serde_json::from_slice::<Map<String, Value>>(body).unwrap_or_default();
        if collection {
            return match *method {
                Method::POST => self.create(fields),
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "use POST /accounts"),
            };
        }
        let Some(account) = id.and_then(|id| self.accounts.get_mut(&id)) else {
            return error(StatusCode::NOT_FOUND, "no such account");
        };
        match *method {
            Method::GET => (StatusCode::OK, Some(account.clone())),
            Method::PATCH => {
                for name in ["name", "email", "plan"]
                    .into_iter()
                    .filter(|n| fields.contains_key(*n))
                {
                    account[name] = fields[name].clone();
                }
                account["version"] = json!(account["version"].as_u64().unwrap_or(0) + 1);
                (StatusCode::OK, Some(account.clone()))
            }
            Method::DELETE => {
                id.map(|id| self.accounts.remove(&id));
                (StatusCode::NO_CONTENT, None)
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET, PATCH or DELETE"),
        }
    }

    fn create(&mut self, fields: Map<String, Value>) -> (StatusCode, Option<Value>) {
        let text = |name: &str| fields.get(name).and_then(Value::as_str).filter(|t| !t.is_empty());
        let (Some(name), Some(email)) = (text("name"), text("email")) else {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(json!({ "error": "name and email are required" })),
            );
        };
        self.last_id += 1;
        let plan = text("plan").unwrap_or("free");
        let account = json!({ "id": self.last_id, "name": name, "email": email, "plan": plan, "version": 1 });
        self.accounts.insert(self.last_id, account.clone());
        (StatusCode::CREATED, Some(account))
    }
}
