//! Isolation under abuse: handlers that spin, leak or hang, and third parties that hang,
//! drop connections, answer 503 storms, rate-limit or trickle, all at once, while a
//! healthy handler keeps delivering and ingest keeps acknowledging.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

use crate::server_support::TestServer;

/// A third party having a bad day; `/ok` is the one route that behaves.
async fn start_bad_api() -> (String, String, Arc<AtomicUsize>) {
    let ok_calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/ok",
            post(|State(n): State<Arc<AtomicUsize>>| async move {
                n.fetch_add(1, Ordering::Relaxed);
                "ok"
            }),
        )
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
        .with_state(ok_calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // Accepts, reads a little, and drops the connection without answering.
    let rude = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reset = format!("http://{}/", rude.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = rude.accept().await {
            let mut buf = [0u8; 64];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
        }
    });
    (base, reset, ok_calls)
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

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_handler_keeps_delivering_while_its_neighbours_misbehave() {
    let (base, reset, ok_calls) = start_bad_api().await;
    let data = tempfile::tempdir().unwrap();
    let handlers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/neighbours");
    let server = TestServer::start(&handlers, data.path(), "[runtime]\nheap_limit_mb = 64\n").await;
    let mut bad_ids = Vec::new();
    let mut healthy = Vec::new();
    for round in 0..5 {
        for (kind, _) in BAD {
            bad_ids.push((
                kind,
                server
                    .send(json!({"type": kind, "data": {"base": base, "reset": reset}}))
                    .await,
            ));
        }
        for _ in 0..4 {
            let sent = Instant::now();
            healthy.push((
                server
                    .send(json!({"type": "healthy", "data": {"base": base, "round": round}}))
                    .await,
                sent,
            ));
        }
    }
    let mut latencies = Vec::new();
    for (id, sent) in &healthy {
        server.wait_for_status(id, "healthy", "succeeded").await;
        latencies.push(sent.elapsed());
    }
    assert_eq!(
        ok_calls.load(Ordering::Relaxed),
        healthy.len(),
        "each healthy event reached the API once"
    );
    latencies.sort();
    eprintln!(
        "healthy deliveries, ingest to success: p50 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies.last().unwrap()
    );

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
    assert!(
        metrics.contains(&format!("eddy_attempts_total{{outcome=\"dead\"}} {}", bad_ids.len())),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "eddy_attempts_total{{outcome=\"succeeded\"}} {}",
            healthy.len()
        )),
        "{metrics}"
    );
    server.stop().await;
}
