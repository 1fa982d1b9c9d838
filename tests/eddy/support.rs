//! Shared test support: a runtime over the fixture handlers and a fake third-party API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, patch, post};
use axum::{Json, Router};
use eddy::config::Config;
use eddy::event::{Event, new_id};
use eddy::runtime::{HandlerInfo, HandlerPool, InvocationReport, InvocationRequest, LoadError, Runtime};
use eddy::store::Store;
use serde_json::{Value, json};

/// Copies the folder `from`, with everything under it, to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The fixture handlers folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/handlers")
}

/// Config text used by most tests: loopback exempted so the fake API is reachable.
pub const LOOPBACK_CONFIG: &str = "[net]\nallow_private = [\"127.0.0.1/32\"]\nmax_response_bytes = 65536\n[runtime]\ncpu_limit_ms = 2000\nheap_limit_mb = 64\n";

/// A runtime with the handler versions a test loaded, by id (as `eddy run` holds its one).
pub struct TestRuntime {
    runtime: Runtime,
    handlers: Mutex<HashMap<String, HandlerPool>>,
}

impl std::ops::Deref for TestRuntime {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}

impl TestRuntime {
    /// Loads handler `id` from `file`; a version loaded before under `id` is replaced.
    pub async fn load(&self, id: &str, file: &Path) -> Result<HandlerInfo, LoadError> {
        let pool = self.runtime.prepare(id, file).await?;
        let info = HandlerInfo::clone(&pool.info);
        self.handlers.lock().unwrap().insert(id.to_owned(), pool);
        Ok(info)
    }

    /// Runs `request` through the version of `id` loaded last.
    pub async fn invoke(&self, id: &str, request: InvocationRequest) -> InvocationReport {
        let pool = self.handlers.lock().unwrap().get(id).cloned();
        let pool = pool.unwrap_or_else(|| panic!("{id} was not loaded"));
        self.runtime.run(&pool, request).await
    }

    /// Isolates alive now across the loaded versions.
    pub fn live_isolates(&self) -> usize {
        self.handlers
            .lock()
            .unwrap()
            .values()
            .map(HandlerPool::live_isolates)
            .sum()
    }
}

/// A runtime over `root` with the given config text and a temporary store.
pub fn runtime_with(root: &Path, config_text: &str) -> Arc<TestRuntime> {
    let config = Config::parse(config_text, Path::new("eddy.toml")).expect("test config parses");
    let store = Store::temporary().expect("temporary store");
    let runtime = Runtime::new(&config, root, Arc::new(store)).expect("runtime starts");
    Arc::new(TestRuntime {
        runtime,
        handlers: Mutex::default(),
    })
}

/// A runtime over the fixture handlers.
pub fn runtime() -> Arc<TestRuntime> {
    runtime_with(&fixtures(), LOOPBACK_CONFIG)
}

/// Loads fixture `id` (path under the handlers folder without `.js`).
pub async fn load(rt: &TestRuntime, id: &str) {
    let file = rt.root().join(format!("{id}.js"));
    if let Err(e) = rt.load(id, &file).await {
        panic!("{id} should load: {e}");
    }
}

/// Runs one event with `data` through handler `id`.
pub async fn invoke(rt: &TestRuntime, id: &str, data: Value) -> InvocationReport {
    let event = Event::from_value(json!({ "type": "test.event", "data": data }), "tests").expect("valid event");
    let request = InvocationRequest {
        idempotency_key: format!("{}:{id}", event.id),
        event_version: 1,
        event,
        delivery_id: new_id(),
        attempt: 1,
        recalled_steps: Default::default(),
    };
    rt.invoke(id, request).await
}

/// All console messages of a report, one per line.
pub fn logs(report: &InvocationReport) -> String {
    report
        .capture
        .logs
        .iter()
        .map(|l| l.message.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Panics with the whole report unless it succeeded.
pub fn assert_ok(report: &InvocationReport) {
    assert!(report.outcome.is_success(), "expected success, got {report:#?}");
}

/// One request the fake API received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// Shared state of the fake API.
#[derive(Default)]
pub struct FakeState {
    pub seen: Mutex<Vec<Seen>>,
    /// Requests the CRM route should answer with 429 before succeeding.
    pub rate_limit_next: AtomicUsize,
    in_flight: AtomicUsize,
    /// Requests seen per flaky key.
    pub flaky_calls: Mutex<HashMap<String, usize>>,
    pub max_in_flight: AtomicUsize,
    /// `GET /gate` answers only once this is true (see [`FakeApi::open_gate`]).
    gate: tokio::sync::watch::Sender<bool>,
}

/// A fake third-party API on 127.0.0.1: a CRM that checks bearer tokens and rate limits,
/// plus echo, redirect, large and slow routes.
pub struct FakeApi {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
}

/// The bearer token the fake CRM accepts.
pub const CRM_TOKEN: &str = "crm-test-token-5c1e";

impl FakeApi {
    pub async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/contacts/{id}", patch(crm_patch))
            .route("/echo", any(echo))
            .route("/text", get(|| async { "plain text" }))
            .route("/bytes", get(|| async { (0..=255u8).collect::<Vec<u8>>() }))
            .route("/big", get(|| async { vec![b'x'; 200_000] }))
            .route("/redirect", any(redirect))
            .route("/loop", get(|| async { (StatusCode::FOUND, [("location", "/loop")]) }))
            .route("/slow", get(slow))
            .route("/gate", get(gate))
            .route("/flaky/{key}", any(flaky))
            .route("/record/{id}", post(recorded))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                record_every_request,
            ))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake api");
        let addr = listener.local_addr().expect("fake api address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, state }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Requests received so far whose path and query start with `prefix`.
    pub fn hits(&self, prefix: &str) -> usize {
        self.seen().iter().filter(|s| s.path.starts_with(prefix)).count()
    }

    /// Waits (at most 20 s) until `n` requests starting with `prefix` have arrived.
    pub async fn wait_for_hits(&self, prefix: &str, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.hits(prefix) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "the fake API never got {n} requests to {prefix}: {:#?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets every request to `/gate`, waiting or to come, be answered.
    pub fn open_gate(&self) {
        self.state.gate.send_replace(true);
    }
}

/// Answers once the test opens the gate: a handler calling it stays running until then.
async fn gate(State(state): State<Arc<FakeState>>) -> &'static str {
    let mut open = state.gate.subscribe();
    let _ = open.wait_for(|open| *open).await;
    "open"
}

/// Records every request, whatever its path (even one no route serves), so a test can tell
/// that nothing reached the API at all.
async fn record_every_request(State(state): State<Arc<FakeState>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    next.run(Request::from_parts(parts, axum::body::Body::from(body))).await
}

async fn crm_patch(
    State(state): State<Arc<FakeState>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {CRM_TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "bad token"}))).into_response();
    }
    if state.rate_limit_next.load(Ordering::SeqCst) > 0 {
        state.rate_limit_next.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")], "slow down").into_response();
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Json(json!({ "id": id, "synced": true, "name": sent["name"] })).into_response()
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    Json(json!({
        "method": method.as_str(),
        "query": uri.query().unwrap_or(""),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "body_len": body.len(),
    }))
}

async fn redirect(Query(q): Query<HashMap<String, String>>) -> Response {
    let to = q.get("to").cloned().unwrap_or_else(|| "/text".into());
    (StatusCode::FOUND, [("location", to)]).into_response()
}

async fn slow(State(state): State<Arc<FakeState>>, Query(q): Query<HashMap<String, String>>) -> &'static str {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let ms = q.get("ms").and_then(|m| m.parse().ok()).unwrap_or(100);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    "slow"
}

/// Counts a delivery of event `id`.
async fn recorded(State(state): State<Arc<FakeState>>, UrlPath(id): UrlPath<String>) -> &'static str {
    *state.flaky_calls.lock().unwrap().entry(id).or_default() += 1;
    "ok"
}

/// Fails the first `fail` requests for a key (with `status`, 429 carrying `retry-after: 2`),
/// then succeeds.
async fn flaky(
    State(state): State<Arc<FakeState>>,
    UrlPath(key): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let fail: usize = q.get("fail").and_then(|f| f.parse().ok()).unwrap_or(0);
    let status: u16 = q.get("status").and_then(|s| s.parse().ok()).unwrap_or(500);
    let calls = {
        let mut calls = state.flaky_calls.lock().unwrap();
        let n = calls.entry(key).or_default();
        *n += 1;
        *n
    };
    if calls > fail {
        return (StatusCode::OK, "ok").into_response();
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = q.get("retry_after").cloned().unwrap_or_else(|| "2".into());
    (status, [("retry-after", retry_after)], "failing on purpose").into_response()
}

/// A TCP listener that only counts connections: the target of requests that must be refused.
pub struct Tripwire {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

impl Tripwire {
    pub async fn start(ip: &str) -> Option<Self> {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.ok()?;
        let addr = listener.local_addr().ok()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        Some(Self { addr, connections })
    }

    pub fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Sends `request` to `addr` exactly as written (clients would normalise odd targets) and
/// returns the status and JSON body of the answer (0 and null when there is none).
pub fn raw_http(addr: SocketAddr, request: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The `eddy` binary without the caller's `EDDY_*` variables or `RUST_LOG` (an exported
/// `EDDY_API_TOKEN` or `EDDY_SERVER` would change what it does): a test sets what it needs
/// itself. Its log lines are the `eddy: ...` ones people read (stderr is a pipe here, which
/// would make them JSON); the tests of the JSON lines ask for them.
pub fn eddy_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_eddy"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("EDDY_") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG").env("EDDY_LOG_FORMAT", "pretty");
    command
}

/// Files under `dir` holding `needle`.
pub fn grep(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            hits.extend(grep(&path, needle));
        } else if std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
            hits.push(path);
        }
    }
    hits
}

/// The sum of the samples of `name` in Prometheus text `metrics` whose labels include every
/// one of `labels` (`[("outcome", "dead")]`), over all their other labels.
pub fn metric_sum(metrics: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|rest| rest.split_once("} "))
        .filter(|(set, _)| {
            labels
                .iter()
                .all(|(k, v)| set.split(',').any(|l| l == format!("{k}=\"{v}\"")))
        })
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .sum::<f64>() as u64
}
