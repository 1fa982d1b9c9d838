//! What ingest promises while everything is healthy: a duplicate never runs a handler again,
//! ids are bounded plain text, and a handler's retry hint cannot wrap a due time.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::server_support::TestServer;
use crate::support::FakeApi;

fn handlers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/integrity")
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Posts `events` from `clients` concurrent clients, each its share in order; returns how
/// many answers had each status.
async fn post_all(server: &TestServer, events: Vec<Value>, clients: usize) -> std::collections::BTreeMap<u16, usize> {
    let http = reqwest::Client::new();
    let url = server.url("/events");
    let mut shares: Vec<Vec<String>> = vec![Vec::new(); clients];
    for (i, event) in events.into_iter().enumerate() {
        shares[i % clients].push(event.to_string());
    }
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::with_capacity(share.len());
                for body in share {
                    let response = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .expect("every post is answered");
                    statuses.push(response.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    let mut counted = std::collections::BTreeMap::new();
    for task in tasks {
        for status in task.await.unwrap() {
            *counted.entry(status).or_insert(0) += 1;
        }
    }
    counted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_clients_posting_one_id_among_other_events_run_its_handler_once() {
    let api = FakeApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&handlers(), data.path(), "").await;
    let (clients, per_client, others) = (32, 200, 320);
    let duplicate = json!({"type": "orders.placed", "id": "order-dup", "data": {"base": api.base()}});
    let mut events = vec![duplicate; clients * per_client];
    for n in 0..others {
        let other = json!({"type": "orders.placed", "id": format!("order-{n}"), "data": {"base": api.base()}});
        events.insert(n * 20 + 7, other);
    }
    let statuses = post_all(&server, events, clients).await;
    assert_eq!(
        statuses,
        [(200, clients * per_client - 1), (202, others + 1)]
            .into_iter()
            .collect(),
        "one 202 per distinct id, 200 for every duplicate"
    );
    server
        .wait_until("every delivery has finished", |s| async move {
            let done = s.get("/deliveries?status=succeeded&limit=1000").await;
            done["deliveries"].as_array().map(Vec::len) == Some(others + 1)
        })
        .await;
    // Once nothing is pending or running, nothing more can run.
    server
        .wait_until("no delivery is pending or running", |s| async move {
            let busy = s.get("/deliveries?status=pending").await["deliveries"].clone();
            let running = s.get("/deliveries?status=running").await["deliveries"].clone();
            busy == json!([]) && running == json!([])
        })
        .await;
    let runs = api.state.flaky_calls.lock().unwrap().clone();
    assert_eq!(runs.get("order-dup"), Some(&1), "the duplicated event ran once");
    assert_eq!(runs.len(), others + 1);
    assert!(runs.values().all(|&n| n == 1), "every event ran once: {runs:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_with_control_characters_empty_or_huge_are_refused_and_nothing_is_stored() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&handlers(), data.path(), "").await;
    server.send(json!({"type": "orders.note", "id": "victim"})).await;
    let huge = "x".repeat(1_000_000);
    let cases = [
        (json!({"type": "orders.note", "id": "victim\u{0}other"}), "invalid_id"),
        (json!({"type": "orders.note", "id": "victim\nother"}), "invalid_id"),
        (json!({"type": "orders.note", "id": ""}), "invalid_id"),
        (json!({"type": "orders.note", "id": "i".repeat(257)}), "invalid_id"),
        (json!({"type": "orders.note", "id": huge}), "invalid_id"),
        (json!({"type": "orders.note", "source": ""}), "invalid_source"),
        (json!({"type": "orders.note", "source": "a\u{0}b"}), "invalid_source"),
        (json!({"type": "orders.note", "time": "tomorrow"}), "invalid_time"),
    ];
    for (event, code) in cases {
        let (status, answer) = server.post("/events", "application/json", event.to_string()).await;
        assert_eq!((status, answer["error"].as_str()), (422, Some(code)), "{answer}");
        assert!(answer["detail"].as_str().is_some_and(|d| d.len() < 400), "{answer}");
    }
    let listed = server.get("/events").await;
    assert_eq!(
        listed["events"].as_array().map(Vec::len),
        Some(1),
        "only the victim: {listed}"
    );
    let (status, _) = server
        .post(
            "/events",
            "application/json",
            json!({"type": "orders.note", "id": "i".repeat(256)}).to_string(),
        )
        .await;
    assert_eq!(status, 202, "256 bytes is the longest id");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_of_1e300_ms_is_clamped_to_seven_days() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&handlers(), data.path(), "").await;
    let before = now_ms();
    let id = server
        .send(json!({"type": "orders.later", "data": {"delayMs": 1e300}}))
        .await;
    server
        .wait_until("the first attempt is recorded", |s| {
            let id = id.clone();
            async move {
                s.delivery(&id, "orders.later").await["attempts"]
                    .as_array()
                    .map(Vec::len)
                    == Some(1)
            }
        })
        .await;
    let delivery = server.delivery(&id, "orders.later").await["delivery"].clone();
    assert_eq!(delivery["status"], "pending", "{delivery}");
    let due = delivery["next_attempt_ms"].as_u64().expect("a due time");
    let week = 7 * 24 * 3600 * 1000;
    assert!(
        due >= before + week && due <= now_ms() + week,
        "due {due} is not 7 days after {before}"
    );
    server.stop().await;
}
