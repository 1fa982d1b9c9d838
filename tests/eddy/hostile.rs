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

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_wait_instead_of_exhausting_the_server() {
    let data = tempfile::tempdir().unwrap();
    let limits = "[ingest]\nheader_timeout_ms = 400\nmax_connections = 4\n";
    let server = TestServer::start(&pipeline_handlers(), data.path(), limits).await;
    // Four idle connections take every slot...
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // ...so a fifth request waits until the header timeout frees one, then is served.
    let answer = tokio::time::timeout(Duration::from_secs(10), reqwest::get(server.url("/healthz"))).await;
    assert_eq!(answer.expect("served once a slot is free").unwrap().status(), 200);
    for stream in &mut idle {
        read_until_closed(stream).await;
    }
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
