//! Limits per destination host, shared by every handler (`[limits."host"]`, `[breaker]`):
//! two handlers calling one fake API together are held to its rate and concurrency, a `429`
//! with `Retry-After` pauses every handler's calls to it, and consecutive `5xx` open its
//! circuit until a probe after the cool-down; `GET /limits` shows each.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::server_support::TestServer;

/// How the fake API answers.
const OK: u8 = 0;
const TOO_MANY_ONCE: u8 = 1;
const FAILING: u8 = 2;

#[derive(Default)]
struct Api {
    /// When each call arrived.
    arrived: Mutex<Vec<Instant>>,
    in_flight: AtomicUsize,
    most_at_once: AtomicUsize,
    mode: AtomicU8,
}

async fn call(State(api): State<Arc<Api>>) -> impl IntoResponse {
    api.arrived.lock().unwrap().push(Instant::now());
    let now = api.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    api.most_at_once.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    api.in_flight.fetch_sub(1, Ordering::SeqCst);
    match api.mode.load(Ordering::SeqCst) {
        TOO_MANY_ONCE => {
            api.mode.store(OK, Ordering::SeqCst);
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response()
        }
        FAILING => StatusCode::BAD_GATEWAY.into_response(),
        _ => StatusCode::OK.into_response(),
    }
}

/// The fake API on 127.0.0.1, and its base URL.
async fn start_api() -> (Arc<Api>, String) {
    let api = Arc::new(Api::default());
    let app = Router::new()
        .route("/call", axum::routing::post(call))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (api, base)
}

/// Two handlers that call the API once per event, failing when it does not answer 2xx.
async fn start(dir: &std::path::Path, extra: &str) -> TestServer {
    let handlers = dir.join("handlers");
    std::fs::create_dir_all(&handlers).unwrap();
    let handler = "export const on = \"work\";\nexport const config = { allowNet: [\"127.0.0.1\"], retry: { schedule: [\"50ms\"] } };\n\
        export default async (e) => {\n  const res = await fetch(`${e.data.base}/call`, { method: \"POST\" })\n\
            .catch((err) => { console.log(`fetch failed: ${err.code}`); throw err; });\n\
          if (!res.ok) throw new Error(`the API answered ${res.status}`);\n};\n";
    for name in ["first.js", "second.js"] {
        std::fs::write(handlers.join(name), handler).unwrap();
    }
    TestServer::start(&handlers, &dir.join("data"), extra).await
}

async fn send_work(server: &TestServer, base: &str, n: usize) {
    for i in 0..n {
        server
            .send(json!({"id": format!("w{i}"), "type": "work", "data": {"base": base}}))
            .await;
    }
}

async fn succeeded(server: &TestServer) -> usize {
    server.get("/deliveries?status=succeeded").await["deliveries"]
        .as_array()
        .map_or(0, Vec::len)
}

fn host_of(limits: &Value, rule: &str) -> Value {
    let hosts = limits["limits"].as_array().cloned().unwrap_or_default();
    hosts
        .into_iter()
        .find(|h| h["rule"] == rule || h["host"].as_str().is_some_and(|h| h.starts_with(rule)))
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn handlers_together_keep_to_a_hosts_rate_and_concurrency() {
    let (api, base) = start_api().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        "[limits.\"127.0.0.1\"]\nrate = \"20/s\"\nburst = 2\nconcurrency = 1\n",
    )
    .await;
    let shown = host_of(&server.get("/limits").await, "127.0.0.1");
    assert_eq!(
        (
            shown["rate"].as_f64(),
            shown["burst"].as_u64(),
            shown["concurrency"].as_u64()
        ),
        (None, None, None),
        "no host is known before its first call"
    );
    send_work(&server, &base, 5).await;
    server
        .wait_until("ten calls succeed", |s| async move { succeeded(s).await == 10 })
        .await;
    let arrived = api.arrived.lock().unwrap().clone();
    assert_eq!(arrived.len(), 10);
    // Two may go at once, then one every 50 ms: the last arrives at least 400 ms after the first.
    let spread = arrived
        .iter()
        .max()
        .unwrap()
        .duration_since(*arrived.iter().min().unwrap());
    assert!(spread >= Duration::from_millis(380), "10 calls at 20/s took {spread:?}");
    assert_eq!(
        api.most_at_once.load(Ordering::SeqCst),
        1,
        "concurrency = 1 across both handlers"
    );
    let shown = host_of(&server.get("/limits").await, "127.0.0.1");
    assert_eq!(shown["rate"], 20.0, "{shown}");
    assert_eq!(
        (
            shown["burst"].as_u64(),
            shown["concurrency"].as_u64(),
            shown["breaker"].as_str()
        ),
        (Some(2), Some(1), Some("closed"))
    );
    // The attempts that waited for their turn say how long, in their fetch records.
    let mut waited = Vec::new();
    for delivery in server.get("/deliveries?status=succeeded").await["deliveries"]
        .as_array()
        .unwrap()
    {
        let shown = server
            .get(&format!("/deliveries/{}", delivery["id"].as_str().unwrap()))
            .await;
        waited.extend(shown["attempts"][0]["report"]["fetches"][0]["waited_ms"].as_f64());
    }
    assert!(
        waited.iter().any(|w| *w >= 40.0),
        "some calls waited a 50 ms token: {waited:?}"
    );
    let page = reqwest::get(server.url("/ui/handlers"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"id="destinations""#) && page.contains("20/s"),
        "the dashboard shows the host: {page}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_pauses_every_handlers_calls_to_the_host() {
    let (api, base) = start_api().await;
    api.mode.store(TOO_MANY_ONCE, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    // One call at a time, so the second handler's call is not already on its way.
    let server = start(dir.path(), "[limits.\"127.0.0.1\"]\nconcurrency = 1\n").await;
    send_work(&server, &base, 1).await;
    server
        .wait_until("both handlers' deliveries succeed", |s| async move {
            succeeded(s).await == 2
        })
        .await;
    let mut arrived = api.arrived.lock().unwrap().clone();
    arrived.sort();
    // The 429 came first; the other handler's call and the retry both waited out its second.
    assert_eq!(arrived.len(), 3, "{arrived:?}");
    let gap = arrived[1].duration_since(arrived[0]);
    assert!(
        gap >= Duration::from_millis(900),
        "the next call came {gap:?} after the 429"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn consecutive_failures_open_the_circuit_until_a_probe_after_the_cool_down() {
    let (api, base) = start_api().await;
    api.mode.store(FAILING, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let limits = "[limits.\"127.0.0.1\"]\nconcurrency = 1\n[breaker]\nfailures = 2\ncool_down = \"1s\"\n";
    let server = start(dir.path(), limits).await;
    send_work(&server, &base, 3).await;
    server
        .wait_until("every delivery is dead", |s| async move {
            s.get("/deliveries?status=dead").await["deliveries"]
                .as_array()
                .map_or(0, Vec::len)
                == 6
        })
        .await;
    // Two calls failed; every attempt after them failed at once, without calling.
    assert_eq!(api.arrived.lock().unwrap().len(), 2);
    let dead = server.get("/deliveries?status=dead&error=circuit").await["deliveries"].clone();
    let error = dead[0]["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("circuit is open until"), "{error}");
    let shown = host_of(&server.get("/limits").await, "127.0.0.1");
    assert_eq!(
        (shown["breaker"].as_str(), shown["consecutive_failures"].as_u64()),
        (Some("open"), Some(2)),
        "{shown}"
    );
    let id = dead[0]["id"].as_str().unwrap();
    let attempts = server.get(&format!("/deliveries/{id}")).await["attempts"].to_string();
    assert!(attempts.contains("fetch failed: ERR_CIRCUIT_OPEN"), "{attempts}");
    let host = shown["host"].as_str().unwrap().to_owned();
    let metrics = server.metrics().await;
    assert_eq!(
        crate::support::metric_sum(&metrics, "eddy_host_circuit_open", &[("host", &host)]),
        1,
        "{metrics}"
    );

    api.mode.store(OK, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = server
        .post("/replays", "application/json", json!({"status": "dead"}).to_string())
        .await;
    assert_eq!(status, 202);
    server
        .wait_until("the replays succeed through the probe", |s| async move {
            succeeded(s).await == 6
        })
        .await;
    let shown = host_of(&server.get("/limits").await, "127.0.0.1");
    assert_eq!(shown["breaker"], "closed", "{shown}");
    let metrics = server.metrics().await;
    assert_eq!(
        crate::support::metric_sum(&metrics, "eddy_host_circuit_open", &[("host", &host)]),
        0,
        "{metrics}"
    );
    server.stop().await;
}
