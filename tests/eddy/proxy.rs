//! The API-observing proxy: requests and answers pass unchanged, writes answered 2xx
//! become events, and the upstream failing never costs more than that request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{patch, post};
use serde_json::{Value, json};

use crate::server_support::{TestServer, pipeline_handlers};

/// A small "own API": what it saw, and routes with known answers.
#[derive(Default)]
struct Upstream {
    seen: Mutex<Vec<(String, HeaderMap, usize)>>,
    /// Lets `/stream` send its second half.
    go_on: tokio::sync::Notify,
}

async fn start_upstream() -> (SocketAddr, Arc<Upstream>) {
    let state = Arc::new(Upstream::default());
    let app = Router::new()
        .route("/accounts", post(create))
        .route("/accounts/{id}", patch(update).get(show))
        .route("/upload", post(upload))
        .route("/fail", post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route("/stream", axum::routing::get(stream))
        .layer(axum::extract::DefaultBodyLimit::max(8 * 1024 * 1024))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, state)
}

fn remember(state: &Upstream, what: &str, headers: &HeaderMap, len: usize) {
    state.seen.lock().unwrap().push((what.to_owned(), headers.clone(), len));
}

async fn create(State(s): State<Arc<Upstream>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    remember(&s, "create", &headers, body.len());
    let mut account: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    account["id"] = json!("a1");
    (StatusCode::CREATED, [("x-upstream", "yes")], axum::Json(account))
}

async fn update(
    State(s): State<Arc<Upstream>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    remember(&s, "update", &headers, body.len());
    let mut account: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    account["id"] = json!(id);
    axum::Json(account)
}

async fn show(Path(id): Path<String>) -> impl IntoResponse {
    axum::Json(json!({ "id": id }))
}

/// Echoes the length of a (large, streamed) body and a checksum of it.
async fn upload(State(s): State<Arc<Upstream>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    remember(&s, "upload", &headers, body.len());
    let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
    axum::Json(json!({ "len": body.len(), "sum": sum }))
}

/// Sends "first;" at once and "second" only when the test says so: a proxy that buffered
/// the answer would never deliver the first half in time.
async fn stream(State(s): State<Arc<Upstream>>) -> axum::body::Body {
    let halves = futures::stream::unfold(0, move |step| {
        let s = s.clone();
        async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(Bytes::from("first;")), 1)),
                1 => {
                    s.go_on.notified().await;
                    Some((Ok(Bytes::from("second")), 2))
                }
                _ => None,
            }
        }
    });
    axum::body::Body::from_stream(halves)
}

async fn start(upstream: SocketAddr) -> (TestServer, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let extra = format!(
        "[proxy]\nupstream = \"http://{upstream}\"\nlisten = \"127.0.0.1:0\"\nexclude = [\"/upload\"]\nmax_capture_bytes = 4096\n"
    );
    (TestServer::start(&pipeline_handlers(), data.path(), &extra).await, data)
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

fn proxied(server: &TestServer, path: &str) -> String {
    format!("http://{}{path}", server.proxy_addr.expect("the proxy runs"))
}

async fn events_of(server: &TestServer, kind: &str) -> Vec<Value> {
    let listed = server.get(&format!("/events?type={kind}")).await;
    let records = listed["events"].as_array().cloned().unwrap_or_default();
    records.into_iter().map(|r| r["event"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_passes_unchanged_and_becomes_an_event() {
    let (upstream, seen) = start_upstream().await;
    let (server, _data) = start(upstream).await;
    let http = reqwest::Client::new();
    let response = http
        .patch(proxied(&server, "/accounts/1?notify=yes&tag=a&tag=b"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer user-token")
        .body(r#"{"plan":"pro"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(json_of(response).await, json!({"plan": "pro", "id": "1"}));
    {
        let seen = seen.seen.lock().unwrap();
        let (_, headers, _) = &seen[0];
        assert_eq!(headers["authorization"], "Bearer user-token", "end-to-end headers pass");
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    }
    server
        .wait_until("the event is recorded", |s| async move {
            !events_of(s, "accounts.patch").await.is_empty()
        })
        .await;
    let event = &events_of(&server, "accounts.patch").await[0];
    assert_eq!(event["source"], "eddy/proxy");
    assert_eq!(
        event["data"],
        json!({
            "path": "/accounts/1",
            "params": { "id": "1" },
            "query": { "notify": "yes", "tag": ["a", "b"] },
            "request": { "plan": "pro" },
            "response": { "status": 200, "body": { "plan": "pro", "id": "1" } },
        })
    );

    let created = http
        .post(proxied(&server, "/accounts"))
        .header("content-type", "application/json")
        .body(json!({"name": "Ada"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            created.status().as_u16(),
            created.headers()["x-upstream"].to_str().unwrap()
        ),
        (201, "yes")
    );
    server
        .wait_until("the create is recorded", |s| async move {
            !events_of(s, "accounts.post").await.is_empty()
        })
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_failures_and_excluded_paths_are_forwarded_but_not_recorded() {
    let (upstream, seen) = start_upstream().await;
    let (server, _data) = start(upstream).await;
    let http = reqwest::Client::new();
    let read = http.get(proxied(&server, "/accounts/9")).send().await.unwrap();
    assert_eq!(json_of(read).await, json!({"id": "9"}));
    let failed = http.post(proxied(&server, "/fail")).send().await.unwrap();
    assert_eq!(
        (failed.status().as_u16(), failed.text().await.unwrap()),
        (500, "boom".to_owned())
    );
    // 3 MiB streamed through, excluded from recording: arrives whole.
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let sum: u64 = big.iter().map(|b| u64::from(*b)).sum();
    let upload = http.post(proxied(&server, "/upload")).body(big).send().await.unwrap();
    assert_eq!(json_of(upload).await, json!({"len": 3 * 1024 * 1024, "sum": sum}));
    // A recorded write whose body is over max_capture_bytes: forwarded whole, recorded without it.
    let long_name = "x".repeat(10_000);
    let created = http
        .post(proxied(&server, "/accounts"))
        .header("content-type", "application/json")
        .body(json!({"name": long_name}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(json_of(created).await["name"].as_str().map(str::len), Some(10_000));
    server
        .wait_until("the create is recorded", |s| async move {
            !events_of(s, "accounts.post").await.is_empty()
        })
        .await;
    let event = &events_of(&server, "accounts.post").await[0];
    assert_eq!(
        (&event["data"]["request"], &event["data"]["truncated"]),
        (&Value::Null, &json!(["request", "response"]))
    );
    let all = server.get("/events").await;
    assert_eq!(
        all["events"].as_array().map(Vec::len),
        Some(1),
        "only the create: {all}"
    );
    assert_eq!(
        seen.seen.lock().unwrap().len(),
        2,
        "the upload and the create reached the API"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_upstream_is_a_502_with_a_reason() {
    // Bind then drop: nothing listens on this port any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (server, _data) = start(closed).await;
    let response = reqwest::Client::new()
        .patch(proxied(&server, "/accounts/1"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let answer = json_of(response).await;
    assert_eq!(answer["error"], "upstream_unreachable", "{answer}");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("eddy_proxy_requests_total{outcome=\"upstream_failed\"} 1"),
        "{metrics}"
    );
    assert!(
        server.get("/events").await["events"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_stream_through_as_the_upstream_sends_them() {
    let (upstream, state) = start_upstream().await;
    let (server, _data) = start(upstream).await;
    let mut response = reqwest::get(proxied(&server, "/stream")).await.unwrap();
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), response.chunk()).await;
    assert_eq!(
        first
            .expect("the first half arrives before the rest exists")
            .unwrap()
            .as_deref(),
        Some(&b"first;"[..])
    );
    state.go_on.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"second");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_command_forwards_and_records() {
    use std::io::{BufRead, BufReader};
    let (upstream, _state) = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("handlers")).unwrap();
    let upstream_url = format!("http://{upstream}");
    let mut child = crate::support::eddy_command()
        .args([
            "proxy",
            "--upstream",
            &upstream_url,
            "--listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("eddy proxy starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let (mut api, mut proxy) = (None, None);
    while api.is_none() || proxy.is_none() {
        let line = lines.next().expect("eddy says where it listens");
        let addr = |prefix: &str| {
            line.strip_prefix(prefix)
                .and_then(|r| r.split(' ').next())
                .map(str::to_owned)
        };
        api = api.or_else(|| addr("eddy: listening on http://"));
        proxy = proxy.or_else(|| addr("eddy: proxy on http://"));
    }
    std::thread::spawn(move || lines.for_each(drop));
    let (api, proxy) = (api.unwrap(), proxy.unwrap());
    let answer = reqwest::Client::new()
        .patch(format!("http://{proxy}/accounts/42"))
        .header("content-type", "application/json")
        .body(r#"{"plan":"team"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(answer).await, json!({"plan": "team", "id": "42"}));
    let mut recorded = Value::Null;
    for _ in 0..400 {
        let listed = reqwest::get(format!("http://{api}/events?type=accounts.patch"))
            .await
            .unwrap();
        recorded = json_of(listed).await;
        if recorded["events"].as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        recorded["events"][0]["event"]["data"]["params"],
        json!({"id": "42"}),
        "{recorded}"
    );
}
