//! `eddy serve` end to end: ingest, routing, delivery, retries, dead deliveries, restarts,
//! hot reload, bad input, auth, against a fake third-party API on loopback.

use serde_json::{Value, json};

use crate::server_support::*;
use crate::support::FakeApi;

async fn server() -> (TestServer, FakeApi, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&pipeline_handlers(), data.path(), "").await;
    (server, FakeApi::start().await, data)
}

fn order(api: &FakeApi, fail: u32, status: u16) -> Value {
    json!({ "type": "orders.created", "data": { "base": api.base(), "fail": fail, "status": status } })
}

fn attempts(delivery: &Value) -> &Vec<Value> {
    delivery["attempts"].as_array().expect("attempts")
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_until_the_api_recovers() {
    let (server, api, _data) = server().await;
    let id = server.send(order(&api, 2, 500)).await;
    let done = server.wait_for_status(&id, "orders.created", "succeeded").await;
    let tries = attempts(&done);
    assert_eq!(tries.len(), 3);
    let first = &tries[0]["report"];
    assert_eq!(first["outcome"]["message"], "api answered 500");
    assert!(
        first["outcome"]["stack"]
            .as_str()
            .unwrap_or_default()
            .contains("orders.created.js:")
    );
    assert_eq!(first["logs"][0]["message"], "attempt 1: 500");
    assert_eq!(first["fetches"][0]["status"], 500);
    assert_eq!(tries[2]["report"]["logs"][0]["message"], "attempt 3: 200");
    // The other handler of the type got its own delivery and succeeded at once.
    let audit = server.wait_for_status(&id, "orders.created/audit", "succeeded").await;
    assert_eq!(attempts(&audit).len(), 1);
    // Every attempt called the fake API with the same, non-empty idempotency key.
    let calls: Vec<_> = api
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with(&format!("/flaky/{id}?")))
        .collect();
    assert_eq!(calls.len(), 3, "one call per attempt: {calls:#?}");
    let keys: Vec<_> = calls.iter().map(|s| s.headers.get("idempotency-key")).collect();
    let first = keys[0].expect("the first attempt sent an idempotency key");
    assert!(!first.is_empty(), "the idempotency key is not empty");
    assert!(
        keys.iter().all(|k| *k == Some(first)),
        "the idempotency key is stable across attempts: {keys:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_after_the_schedule_runs_out_or_at_once_when_non_retryable() {
    let (server, api, _data) = server().await;
    let exhausted = server.send(order(&api, 99, 503)).await;
    let refused = server.send(order(&api, 99, 422)).await;
    let dead = server.wait_for_status(&exhausted, "orders.created", "dead").await;
    assert_eq!(attempts(&dead).len(), 4, "1 attempt + 3 scheduled retries");
    assert_eq!(dead["delivery"]["last_error"], "Error: api answered 503");
    let dead = server.wait_for_status(&refused, "orders.created", "dead").await;
    assert_eq!(attempts(&dead).len(), 1);
    assert_eq!(
        dead["delivery"]["last_error"],
        "NonRetryableError: the API refuses this order"
    );
    let listed = server.get("/deliveries?status=dead&handler=orders.created").await;
    assert_eq!(listed["deliveries"].as_array().unwrap().len(), 2);
    // Newest first unless asked; filtered by error text and time.
    let ids = |listed: Value| {
        let deliveries = listed["deliveries"].as_array().cloned().unwrap_or_default();
        deliveries
            .iter()
            .map(|d| d["event_id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(server.get("/deliveries?status=dead&handler=orders.created").await),
        [refused.clone(), exhausted.clone()]
    );
    assert_eq!(
        ids(server.get("/deliveries?order=oldest&handler=orders.created").await),
        [exhausted.clone(), refused.clone()]
    );
    assert_eq!(
        ids(server
            .get("/deliveries?error=refuses%20this&handler=orders.created")
            .await),
        [refused]
    );
    assert!(ids(server.get("/deliveries?until=1h&handler=orders.created").await).is_empty());
    assert_eq!(
        ids(server.get("/deliveries?since=1h&handler=orders.created").await).len(),
        2
    );
    let sideways = reqwest::get(server.url("/deliveries?order=sideways")).await.unwrap();
    assert_eq!(sideways.status(), 400);
    let body: Value = serde_json::from_slice(&sideways.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_query", "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_error_sets_the_next_delay() {
    let (server, api, _data) = server().await;
    let id = server.send(order(&api, 1, 429)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let pending = loop {
        let d = server.delivery(&id, "orders.created").await;
        if d["delivery"]["attempts"] == 1 {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the first attempt never finished: {d:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let started = attempts(&pending)[0]["started_ms"].as_u64().unwrap();
    let next = pending["delivery"]["next_attempt_ms"].as_u64().unwrap();
    assert!(
        next >= started + 2000,
        "retry-after: 2 means at least 2 s later ({started} -> {next})"
    );
    assert!(next <= started + 3000, "and not much more ({started} -> {next})");
    let done = server.wait_for_status(&id, "orders.created", "succeeded").await;
    assert_eq!(attempts(&done).len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unrouted_events_are_kept_and_patterns_route() {
    let (server, _api, _data) = server().await;
    let lonely = server.send(json!({"type": "nobody.listens", "data": 1})).await;
    let shipped = server.send(json!({"type": "orders.eu.shipped"})).await;
    let billed = server.send(json!({"type": "billing.invoice.paid"})).await;
    let event = server.get(&format!("/events/{lonely}")).await;
    assert_eq!(event["deliveries"], json!([]));
    assert_eq!(event["event"]["event"]["data"], 1);
    let listed = server.get("/events?type=nobody.listens").await;
    assert_eq!(listed["events"][0]["event"]["id"], lonely.as_str());
    let unrouted = server.get("/events?unrouted=true").await;
    let ids: Vec<_> = unrouted["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["id"].clone())
        .collect();
    assert_eq!(ids, [json!(lonely)], "only the unrouted event is listed as unrouted");
    for id in [shipped, billed] {
        server.wait_for_status(&id, "wildcard", "succeeded").await;
    }
    let handlers = server.get("/handlers").await;
    let wildcard = handlers["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == "wildcard")
        .unwrap()
        .clone();
    assert_eq!(wildcard["routes"], json!(["orders.*.shipped", "billing.**"]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_before_anything_is_written() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&pipeline_handlers(), data.path(), "[ingest]\nmax_body_bytes = 2048").await;
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("application/json", b"{not json".to_vec(), 400, "invalid_json"),
        ("application/json", vec![b'{', 0xff, b'}'], 400, "invalid_utf8"),
        ("application/json", deep.into_bytes(), 422, "too_deep"),
        ("application/json", vec![b' '; 4096], 413, "too_large"),
        ("text/csv", b"a,b".to_vec(), 415, "unsupported_media_type"),
        ("application/json", br#"{"data": 1}"#.to_vec(), 422, "missing_type"),
        (
            "application/json",
            br#"{"type": "bad type"}"#.to_vec(),
            422,
            "invalid_type",
        ),
        (
            "application/json",
            br#"[{"type": "ok"}, {"type": ""}]"#.to_vec(),
            422,
            "invalid_type",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let (got, answer) = server.post("/events", content_type, body).await;
        assert_eq!((got, answer["error"].as_str()), (status, Some(code)), "{answer}");
        assert!(answer["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(server.get("/events").await["events"], json!([]), "nothing was written");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_are_accepted_once_and_batches_and_cloudevents_work() {
    let (server, _api, _data) = server().await;
    let event = json!({"type": "nobody.listens", "id": "order-42"}).to_string();
    let (first, answer) = server.post("/events", "application/json", event.clone()).await;
    assert_eq!(answer, json!({"ids": ["order-42"], "duplicates": []}));
    assert_eq!(first, 202);
    let (again, answer) = server.post("/events", "application/json", event).await;
    assert_eq!(
        (again, answer),
        (200, json!({"ids": ["order-42"], "duplicates": ["order-42"]}))
    );
    let batch = json!([{"type": "a", "id": "b1"}, {"type": "b", "id": "b2"}]).to_string();
    let (status, answer) = server
        .post("/events", "application/cloudevents-batch+json", batch)
        .await;
    assert_eq!((status, answer["ids"].clone()), (202, json!(["b1", "b2"])));
    // A batch with some ids seen before: still 202, and the answer names those.
    let mixed = json!([{"type": "a", "id": "b1"}, {"type": "a", "id": "b3"}]).to_string();
    let (status, answer) = server.post("/events", "application/json", mixed).await;
    assert_eq!(
        (status, answer),
        (202, json!({"ids": ["b1", "b3"], "duplicates": ["b1"]}))
    );
    assert_eq!(server.get("/events").await["events"].as_array().unwrap().len(), 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_protects_everything_but_healthz() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&pipeline_handlers(), data.path(), "api_token = \"s3cret-token\"").await;
    let client = reqwest::Client::new();
    for path in ["/events", "/deliveries", "/handlers", "/metrics"] {
        let status = client.get(server.url(path)).send().await.unwrap().status();
        assert_eq!(status, 401, "{path}");
        let wrong = client
            .get(server.url(path))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(wrong, 401, "{path}");
    }
    let posted = client
        .post(server.url("/events"))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(posted, 401);
    assert_eq!(client.get(server.url("/healthz")).send().await.unwrap().status(), 200);
    let metrics = client
        .get(server.url("/metrics"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().contains("eddy_events_ingested_total 0"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_in_the_middle_of_a_retry_schedule_resumes_it() {
    let data = tempfile::tempdir().unwrap();
    let handlers = tempfile::tempdir().unwrap();
    let slow_retry = r#"export const config = { allowNet: ["127.0.0.1"], retry: { schedule: ["1s"] } };
export default async function (event, ctx) {
  const res = await fetch(`${event.data.base}/flaky/${event.id}?fail=1`);
  if (!res.ok) throw new Error(`api answered ${res.status}`);
}
"#;
    std::fs::write(handlers.path().join("orders.created.js"), slow_retry).unwrap();
    let api = FakeApi::start().await;
    let server = TestServer::start(handlers.path(), data.path(), "").await;
    let id = server.send(order(&api, 1, 500)).await;
    server
        .wait_until("the first attempt failed", |s| {
            let id = id.clone();
            async move { s.delivery(&id, "orders.created").await["delivery"]["attempts"] == 1 }
        })
        .await;
    let server = server.restart("").await;
    let done = server.wait_for_status(&id, "orders.created", "succeeded").await;
    assert_eq!(attempts(&done).len(), 2, "the retry ran once, after the restart");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_handlers_are_used_without_a_restart_and_broken_ones_keep_the_last_good_version() {
    let data = tempfile::tempdir().unwrap();
    let handlers = tempfile::tempdir().unwrap();
    let file = handlers.path().join("greet.js");
    std::fs::write(&file, "export default async () => console.log('version one');\n").unwrap();
    let server = TestServer::start(handlers.path(), data.path(), "").await;
    let first = server.send(json!({"type": "greet"})).await;
    let done = server.wait_for_status(&first, "greet", "succeeded").await;
    assert_eq!(attempts(&done)[0]["report"]["logs"][0]["message"], "version one");

    std::fs::write(
        &file,
        "export default async () => console.log('version two, longer');\n",
    )
    .unwrap();
    server
        .wait_until("version two is used", |s| async move {
            let id = s.send(json!({"type": "greet"})).await;
            let done = s.wait_for_status(&id, "greet", "succeeded").await;
            attempts(&done)[0]["report"]["logs"][0]["message"] == "version two, longer"
        })
        .await;

    std::fs::write(&file, "export default async () => {\n  this is not javascript\n};\n").unwrap();
    server
        .wait_until("the load error is reported", |s| async move {
            s.get("/handlers").await["handlers"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("greet.js:2:"))
        })
        .await;
    let handler = server.get("/handlers").await["handlers"][0].clone();
    assert_eq!(handler["loaded"], true, "the last good version stays in use: {handler}");
    let id = server.send(json!({"type": "greet"})).await;
    let done = server.wait_for_status(&id, "greet", "succeeded").await;
    assert_eq!(
        attempts(&done)[0]["report"]["logs"][0]["message"],
        "version two, longer"
    );
    server.stop().await;
}

const SLOW_HANDLER: &str = r#"export const config = { allowNet: ["127.0.0.1"], concurrency: 1 };
export default async function (event) {
  const res = await fetch(`${event.data.base}/slow?ms=${event.data.ms}`);
  if (!res.ok) throw new Error(`api answered ${res.status}`);
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_runs_at_most_its_concurrency_at_once() {
    let (data, handlers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(handlers.path().join("jobs.run.js"), SLOW_HANDLER).unwrap();
    let api = FakeApi::start().await;
    let server = TestServer::start(handlers.path(), data.path(), "").await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            server
                .send(json!({"type": "jobs.run", "data": {"base": api.base(), "ms": 60}}))
                .await,
        );
    }
    for id in &ids {
        server.wait_for_status(id, "jobs.run", "succeeded").await;
    }
    assert_eq!(api.state.max_in_flight.load(std::sync::atomic::Ordering::SeqCst), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_lets_attempts_in_flight_finish() {
    let (data, handlers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(handlers.path().join("jobs.run.js"), SLOW_HANDLER).unwrap();
    let api = FakeApi::start().await;
    let server = TestServer::start(handlers.path(), data.path(), "").await;
    let id = server
        .send(json!({"type": "jobs.run", "data": {"base": api.base(), "ms": 400}}))
        .await;
    // In flight: the handler's call has reached the API, which answers 400 ms later.
    api.wait_for_hits("/slow", 1).await;
    let server = server.restart("").await;
    let done = server.delivery(&id, "jobs.run").await;
    assert_eq!(
        done["delivery"]["status"], "succeeded",
        "finished within the grace period: {done}"
    );
    assert_eq!(attempts(&done).len(), 1);
    let metrics = server.metrics().await;
    assert!(metrics.contains("eddy_queue_depth 0"), "{metrics}");
    server.stop().await;
}
