//! Isolation under abuse: handlers that spin, leak or hang, and third parties that hang,
//! drop connections, answer 503 storms, rate-limit or trickle, all at once, while a
//! healthy handler keeps delivering and ingest keeps acknowledging.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use crate::server_support::TestServer;

/// What the bad third party counts, and the gate `/hold` waits on.
#[derive(Default)]
struct Calls {
    ok: AtomicUsize,
    held: AtomicUsize,
    release: tokio::sync::watch::Sender<bool>,
}

/// Answers once the test releases the held calls.
async fn hold(State(calls): State<Arc<Calls>>) -> &'static str {
    calls.held.fetch_add(1, Ordering::SeqCst);
    let _ = calls.release.subscribe().wait_for(|released| *released).await;
    "released"
}

/// A third party having a bad day; `/ok` is the one route that behaves.
/// The misbehaving API's routes, the address of a listener that drops every connection, and
/// the calls counted.
async fn start_bad_api() -> (Router, String, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let app = Router::new()
        .route(
            "/ok",
            post(|State(calls): State<Arc<Calls>>| async move {
                calls.ok.fetch_add(1, Ordering::SeqCst);
                "ok"
            }),
        )
        .route("/hold", post(hold))
        .route("/hang", post(std::future::pending::<&'static str>))
        .route(
            "/status/{code}",
            post(|UrlPath(code): UrlPath<u16>| async move { StatusCode::from_u16(code).unwrap_or(StatusCode::OK) }),
        )
        .route(
            "/limited",
            post(|| async { (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down") }),
        )
        .route("/trickle", post(|| async { Body::from_stream(trickle()) }))
        .with_state(calls.clone());
    // Accepts, reads a little, and drops the connection without answering.
    let rude = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reset = format!("http://{}/", rude.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = rude.accept().await {
            let mut buf = [0u8; 64];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
        }
    });
    (app, reset, calls)
}

/// Serves `app` on a port of its own; its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn trickle() -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(0, |n| async move {
        if n == 100 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok(Bytes::from_static(b".")), n + 1))
    })
}

const BAD: [(&str, &str); 8] = [
    ("abuse.spin", "cpu_limit"),
    ("abuse.leak", "heap_limit"),
    ("abuse.hang", "timeout"),
    ("api.hang", "timeout"),
    ("api.reset", "error"),
    ("api.storm", "error"),
    ("api.limited", "retry_after"),
    ("api.trickle", "timeout"),
];

/// Events of the neighbour that holds every worker it may have until released.
const HELD: usize = HANDLER_CONCURRENCY + 4;
/// Attempts of one handler running at once (the default `handler_concurrency`).
const HANDLER_CONCURRENCY: usize = 64;

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_handler_keeps_delivering_while_its_neighbours_misbehave() {
    let (app, reset, calls) = start_bad_api().await;
    let base = serve(app.clone()).await;
    // Each misbehaving call on a port of its own: a host's pause (after a 429) and its
    // circuit (after 5xx) hold every call to it, by design (`[limits]`), so a shared host
    // would make the events meet there rather than in eddy's workers.
    let data = tempfile::tempdir().unwrap();
    let handlers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/neighbours");
    let server = TestServer::start(&handlers, data.path(), "[runtime]\nheap_limit_mb = 64\n").await;
    let mut held = Vec::new();
    for _ in 0..HELD {
        held.push(server.send(json!({"type": "abuse.hold", "data": {"base": base}})).await);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while calls.held.load(Ordering::SeqCst) < HANDLER_CONCURRENCY {
        assert!(
            std::time::Instant::now() < deadline,
            "the holding neighbour never took all its workers"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut bad_ids = Vec::new();
    let mut healthy = Vec::new();
    for round in 0..5 {
        for (kind, _) in BAD {
            bad_ids.push((
                kind,
                server
                    .send(json!({"type": kind, "data": {"base": serve(app.clone()).await, "reset": reset}}))
                    .await,
            ));
        }
        for _ in 0..4 {
            healthy.push(
                server
                    .send(json!({"type": "healthy", "data": {"base": base, "round": round}}))
                    .await,
            );
        }
    }
    // Every healthy event is delivered while the holding neighbour keeps all its workers
    // busy: it cannot finish before the test releases it.
    for id in &healthy {
        server.wait_for_status(id, "healthy", "succeeded").await;
    }
    assert_eq!(
        calls.ok.load(Ordering::SeqCst),
        healthy.len(),
        "each healthy event reached the API once"
    );
    assert_eq!(
        calls.held.load(Ordering::SeqCst),
        HANDLER_CONCURRENCY,
        "the holding neighbour used all its workers, and no more"
    );
    for id in &held {
        let delivery = server.delivery(id, "hold").await;
        let status = &delivery["delivery"]["status"];
        assert!(status == "running" || status == "pending", "still held: {delivery}");
    }
    calls.release.send_replace(true);
    for id in &held {
        server.wait_for_status(id, "hold", "succeeded").await;
    }
    for (kind, id) in &bad_ids {
        // Each kind of abuse has a handler of its own: one handler's isolate failing takes
        // its own interleaved invocations with it, never another handler's.
        let handler = kind.strip_prefix("abuse.").unwrap_or("api");
        let done = server.wait_for_status(id, handler, "dead").await;
        let expected = BAD
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, failure)| *failure)
            .unwrap();
        let attempts = done["attempts"].as_array().cloned().unwrap_or_default();
        assert!(attempts.len() >= 2, "{kind} was retried: {done}");
        let kinds: Vec<&Value> = attempts.iter().map(|a| &a["report"]["outcome"]["kind"]).collect();
        assert!(
            kinds.iter().all(|k| *k == expected),
            "{kind}: expected every attempt to fail with {expected}, got {kinds:?}"
        );
    }
    let metrics = server.metrics().await;
    let attempts = |outcome| crate::support::metric_sum(&metrics, "eddy_attempts_total", &[("outcome", outcome)]);
    assert_eq!(attempts("dead"), bad_ids.len() as u64, "{metrics}");
    assert_eq!(attempts("succeeded"), (healthy.len() + held.len()) as u64, "{metrics}");
    server.stop().await;
}
