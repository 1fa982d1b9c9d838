//! Hostile clients: connections that never finish their headers or bodies, more
//! connections than allowed, and a thousand clients racing to post the same event.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server_support::{TestServer, pipeline_handlers};

const LIMITS: &str = "[ingest]\nheader_timeout_ms = 300\nbody_timeout_ms = 300\nmax_connections = 64\n";

/// Reads until the server closes the connection (at most 10 s); returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept a stalled connection open");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_that_stall_their_headers_are_closed_while_others_are_served() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&pipeline_handlers(), data.path(), LIMITS).await;
    let mut stalled = Vec::new();
    for _ in 0..40 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        // Slowloris: a request line and one header, then nothing.
        stream
            .write_all(b"POST /events HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .unwrap();
        stalled.push(stream);
    }
    stalled.push(TcpStream::connect(server.addr).await.unwrap());
    // Meanwhile a well-behaved client is served as usual.
    let id = server.send(json!({"type": "orders.created", "data": {}})).await;
    assert!(!id.is_empty());
    let started = Instant::now();
    for stream in &mut stalled {
        read_until_closed(stream).await;
    }
    eprintln!("41 stalled connections closed after {:?}", started.elapsed());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stops_arriving_is_answered_408_and_nothing_is_stored() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&pipeline_handlers(), data.path(), LIMITS).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head =
        "POST /events HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(br#"{"type": "orders.cr"#).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(
        server.get("/events").await["events"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    server.stop().await;
}

/// Sends `GET /healthz` on `stream` (kept alive) and waits at most `wait` for the status line.
async fn healthz_on(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    answer_within(stream, wait).await
}

/// The first bytes the server sends on `stream` within `wait`, if any.
async fn answer_within(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(_) => panic!("the server closed the connection without answering"),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_wait_instead_of_exhausting_the_server() {
    const LIMIT: usize = 4;
    let data = tempfile::tempdir().unwrap();
    // A long header timeout: held connections keep their slots for the whole test.
    let limits = format!("[ingest]\nheader_timeout_ms = 60000\nmax_connections = {LIMIT}\n");
    let server = TestServer::start(&pipeline_handlers(), data.path(), &limits).await;
    // Each held connection is served once (so the server has accepted it), then kept open.
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let answer = healthz_on(&mut stream, Duration::from_secs(20)).await;
        assert!(
            answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")),
            "a held connection is served"
        );
        held.push(stream);
    }
    // At the limit, one more connection gets no answer...
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let early = healthz_on(&mut extra, Duration::from_secs(2)).await;
    assert_eq!(early, None, "served beyond max_connections = {LIMIT}");
    // ...until a held one closes and frees its slot.
    drop(held.pop());
    let late = answer_within(&mut extra, Duration::from_secs(20)).await;
    assert!(
        late.is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "served once a slot is free"
    );
    drop((held, extra));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_clients_posting_one_event_store_one_copy() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&pipeline_handlers(), data.path(), "").await;
    let url = server.url("/events");
    let body = json!({"type": "orders.created", "id": "same-order", "data": {"n": 1}}).to_string();
    let http = reqwest::Client::new();
    let posts: Vec<_> = (0..1000)
        .map(|_| {
            let request = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone());
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for post in posts {
        let status = post.await.unwrap().expect("every client gets an answer");
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        [(200, 999), (202, 1)].into_iter().collect(),
        "one 202, then duplicates"
    );
    let listed = server.get("/events").await;
    assert_eq!(listed["events"].as_array().map(Vec::len), Some(1), "{listed}");
    let event = server.get("/events/same-order").await;
    let handlers = ["orders.created", "orders.created/audit"];
    assert_eq!(
        event["deliveries"].as_array().map(Vec::len),
        Some(handlers.len()),
        "{event}"
    );
    server.stop().await;
}
