//! When attempts run: `[delivery] retry_schedule` from the config, the wait a
//! `RetryAfterError` asks for, and `[delivery] max_concurrency` across handlers. Times are
//! read from the recorded attempts, never from how fast the test ran.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::hold_api::HoldApi;
use crate::server_support::TestServer;

fn handlers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scheduling")
}

/// Start time and end time (start plus duration) of each recorded attempt, in ms.
fn attempt_times(delivery: &Value) -> Vec<(f64, f64)> {
    delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| {
            let start = a["started_ms"].as_f64().expect("started_ms");
            (start, start + a["duration_ms"].as_f64().expect("duration_ms"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_schedule_from_the_config_spaces_the_attempts_then_the_delivery_dies() {
    let data = tempfile::tempdir().unwrap();
    // Increasing delays, so a schedule applied out of order or repeating its first entry
    // spaces the third attempt too closely; jitter is +-20%.
    let extra = "[delivery]\nretry_schedule = [\"200ms\", \"1500ms\"]\n";
    let server = TestServer::start(&handlers(), data.path(), extra).await;
    let id = server.send(json!({"type": "fail.always", "data": {}})).await;
    let dead = server.wait_for_status(&id, "fail.always", "dead").await;
    let times = attempt_times(&dead);
    assert_eq!(times.len(), 3, "the first attempt and one per delay: {dead:#}");
    assert_eq!(dead["delivery"]["attempts"], 3);
    for (n, (delay, (before, after))) in [200.0, 1500.0].iter().zip(times.iter().zip(&times[1..])).enumerate() {
        let gap = after.0 - before.1;
        assert!(
            gap >= delay * 0.8,
            "attempt {} came {gap} ms after the previous one ended, the schedule says {delay} ms +-20%",
            n + 2
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_error_delays_the_next_attempt_as_asked() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&handlers(), data.path(), "").await;
    let delay_ms = 1500.0;
    let id = server
        .send(json!({"type": "wait.asked", "data": {"delayMs": delay_ms}}))
        .await;
    // While it waits: queued for no sooner than asked.
    let pending = server.wait_for_status(&id, "wait.asked", "pending").await;
    let first = attempt_times(&pending);
    if let [(_, failed_at)] = first[..] {
        let due = pending["delivery"]["next_attempt_ms"].as_f64().expect("a due time");
        // Times are whole milliseconds, the attempt's duration is not: allow the rounding.
        let wait = due - failed_at;
        assert!(
            wait >= delay_ms - 1.0,
            "due {wait} ms after the failure; it asked for {delay_ms} ms"
        );
    }
    let done = server.wait_for_status(&id, "wait.asked", "succeeded").await;
    let times = attempt_times(&done);
    assert_eq!(times.len(), 2, "{done:#}");
    let waited = times[1].0 - times[0].1;
    assert!(
        waited >= delay_ms - 1.0,
        "the second attempt came {waited} ms after the first failed; it asked for {delay_ms} ms"
    );
    assert_eq!(
        done["attempts"][0]["report"]["outcome"]["name"], "RetryAfterError",
        "{done:#}"
    );
    server.stop().await;
}

/// A wait the handler asks for (`RetryAfterError`) or the API asks for (`429` with
/// `Retry-After`) reschedules without using up the retry schedule, up to `MAX_DEFERRALS`.
#[tokio::test(flavor = "multi_thread")]
async fn asked_waits_do_not_use_up_the_retry_schedule_up_to_a_bound() {
    let api = crate::support::FakeApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&handlers(), data.path(), "").await;
    let asked = server.send(json!({"type": "defer.asked", "data": {"asks": 3}})).await;
    let throttled = server
        .send(json!({"type": "defer.api", "data": {"base": api.base(), "fail": 3}}))
        .await;
    for (id, handler) in [(&asked, "defer.asked"), (&throttled, "defer.api")] {
        let done = server.wait_for_status(id, handler, "succeeded").await;
        assert_eq!(
            attempt_times(&done).len(),
            4,
            "three waits asked for, then success: {done:#}"
        );
    }
    // A handler that always asks to wait goes dead once the waits run out and then the
    // schedule: MAX_DEFERRALS deferred attempts, then the two the schedule allows.
    let forever = server
        .send(json!({"type": "defer.asked", "data": {"asks": 1000}}))
        .await;
    let dead = server.wait_for_status(&forever, "defer.asked", "dead").await;
    assert_eq!(
        attempt_times(&dead).len(),
        eddy::delivery::MAX_DEFERRALS as usize + 2,
        "{dead:#}"
    );
    server.stop().await;
}

/// Two handlers with per-handler limits of 8 and 16 share a global limit of 3: with twelve
/// deliveries held by the fake API, exactly three are ever in flight at once.
#[tokio::test(flavor = "multi_thread")]
async fn max_concurrency_caps_attempts_across_handlers_exactly() {
    const LIMIT: usize = 3;
    let api = HoldApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let extra = format!("[delivery]\nmax_concurrency = {LIMIT}\nhandler_concurrency = 8\n");
    let server = TestServer::start(&handlers(), data.path(), &extra).await;
    let ids: Vec<String> = send_shared(&server, &api, 6).await;
    api.wait_in_flight(LIMIT).await;
    // Time for a fourth to start if the limit let it: the engine rescans every 50 ms.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(api.max_in_flight(), LIMIT, "arrived: {:?}", api.arrived());
    api.open();
    for id in &ids {
        server.wait_for_status(id, "work.shared", "succeeded").await;
        server.wait_for_status(id, "work.shared/second", "succeeded").await;
    }
    assert_eq!(api.finished().len(), 12);
    assert_eq!(api.max_in_flight(), LIMIT, "never more than the limit");
    server.stop().await;
}

async fn send_shared(server: &TestServer, api: &HoldApi, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(
            server
                .send(json!({"type": "work.shared", "data": {"base": api.base()}}))
                .await,
        );
    }
    ids
}

/// Hundreds of deliveries of a handler at its limit, due before another handler's one, do
/// not keep that one waiting: the queue is read per handler, so a backlog hides nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_handlers_backlog_does_not_hold_up_another_handler() {
    const BACKLOG: usize = 300;
    let api = HoldApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&handlers(), data.path(), "[delivery]\nhandler_concurrency = 2\n").await;
    post_shared_batch(&server, &api, BACKLOG).await;
    // Both work.shared handlers are at their limits (2 and 16) with the rest of the backlog due.
    api.wait_in_flight(18).await;
    let quick = server.send(json!({"type": "quick.one", "data": {}})).await;
    server.wait_for_status(&quick, "quick.one", "succeeded").await;
    assert_eq!(api.max_in_flight(), 18, "the backlog stayed within its limits");
    api.open();
    server.stop().await;
}

/// With one attempt allowed at a time, two handlers with work due take turns: the permit
/// goes round the handlers rather than to the first one until its queue is empty.
#[tokio::test(flavor = "multi_thread")]
async fn handlers_take_turns_at_the_global_limit() {
    let api = HoldApi::start().await;
    api.open();
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&handlers(), data.path(), "[delivery]\nmax_concurrency = 1\n").await;
    post_shared_batch(&server, &api, 4).await;
    server
        .wait_until("every delivery ran", |_| async { api.finished().len() == 8 })
        .await;
    let order: Vec<bool> = api.arrived().iter().map(|key| key.ends_with("-second")).collect();
    let seconds_in_first_half = order[..4].iter().filter(|second| **second).count();
    assert_eq!(
        seconds_in_first_half, 2,
        "calls in arrival order (true: the second handler): {order:?}"
    );
    server.stop().await;
}

/// Posts `n` work.shared events in one request (both of its handlers call `api`).
async fn post_shared_batch(server: &TestServer, api: &HoldApi, n: usize) {
    let events: Vec<Value> = (0..n)
        .map(|_| json!({"type": "work.shared", "data": {"base": api.base()}}))
        .collect();
    let (status, answer) = server
        .post("/events", "application/json", Value::Array(events).to_string())
        .await;
    assert_eq!(status, 202, "{answer}");
}
