//! When the disk fails under the store: the write that meets the error and every write after
//! it are answered `503 store_unavailable` at once (sled's flushes would never return),
//! `/healthz` says so, reads go on, the failure is logged once, and SIGTERM ends the process
//! by itself with exit code 3 instead of waiting for a flush that cannot finish. An attempt
//! whose record could not be written runs again once the disk is fixed and eddy restarted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::child::Serve;
use crate::hold_api::HoldApi;

/// The code `eddy serve` exits with when it stops with a failed store (see README).
const STORE_FAILED_EXIT: i32 = 3;

/// Posts `event` and returns the status and JSON body; a hang fails the test (30 s).
async fn post(addr: &str, event: &Value) -> (u16, Value) {
    let request = reqwest::Client::new()
        .post(format!("http://{addr}/events"))
        .header("content-type", "application/json")
        .body(event.to_string());
    answer(request).await
}

async fn get(addr: &str, path: &str) -> (u16, Value) {
    answer(reqwest::Client::new().get(format!("http://{addr}{path}"))).await
}

/// Sends `request`, expecting an answer within 30 s: a hang fails the test.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let answer = request
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("eddy answers promptly");
    let status = answer.status().as_u16();
    (
        status,
        serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap_or_default(),
    )
}

/// Makes sled's next large write fail as on a failing disk (for root too): sled keeps each
/// large value in a file of its own under `blobs/`, and a file now stands in that folder's place.
fn break_blobs(data: &Path) {
    let blobs = data.join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, "").unwrap();
}

/// Puts `blobs/` back as sled made it.
fn mend_blobs(data: &Path) {
    std::fs::remove_file(data.join("blobs")).unwrap();
    std::fs::create_dir(data.join("blobs")).unwrap();
}

/// A config over the lifecycle fixtures (a handler that waits at the [`HoldApi`]'s gate).
fn held_config(dir: &Path) -> PathBuf {
    let handlers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lifecycle");
    let text = format!(
        "handlers = {:?}\ndata = \"data\"\n[net]\nallow_private = [\"127.0.0.1/32\"]\n",
        handlers.display().to_string()
    );
    std::fs::write(dir.join("eddy.toml"), text).unwrap();
    dir.join("eddy.toml")
}

fn assert_unavailable(what: &str, (status, body): &(u16, Value)) {
    assert_eq!(*status, 503, "{what}: {body}");
    assert_eq!(body["error"], "store_unavailable", "{what}: {body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("Not a directory") && detail.contains("restart eddy after fixing the disk"),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_disk_error_writes_are_refused_at_once_and_sigterm_still_stops_eddy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("handlers")).unwrap();
    let config = dir.path().join("eddy.toml");
    let handlers = dir.path().join("handlers");
    std::fs::write(
        &config,
        format!("handlers = {:?}\ndata = \"data\"\n", handlers.display().to_string()),
    )
    .unwrap();
    let (serve, addr) = Serve::start(&config).await;
    let (status, body) = post(&addr, &json!({"type": "t", "id": "before"})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(get(&addr, "/healthz").await, (200, json!({"status": "ok"})));

    break_blobs(&dir.path().join("data"));
    let large = json!({"type": "t", "id": "large", "data": {"x": "x".repeat(400_000)}});
    assert_unavailable("the write that meets the error", &post(&addr, &large).await);
    assert_unavailable(
        "a small write after it",
        &post(&addr, &json!({"type": "t", "id": "after"})).await,
    );
    assert_unavailable("/healthz", &get(&addr, "/healthz").await);
    let (status, body) = get(&addr, "/events/before").await;
    assert_eq!(
        (status, &body["event"]["event"]["id"]),
        (200, &json!("before")),
        "reads go on: {body}"
    );

    serve.signal("TERM");
    let (exit, stderr) = serve.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(exit.code(), Some(STORE_FAILED_EXIT), "{stderr:#?}");
    let failed: Vec<&String> = stderr
        .iter()
        .filter(|l| l.starts_with("eddy: store failed: "))
        .collect();
    assert_eq!(failed.len(), 1, "logged once: {stderr:#?}");
    assert!(
        stderr
            .iter()
            .any(|l| l.starts_with("eddy: stopped without flushing the store")),
        "{stderr:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attempt_whose_record_cannot_be_written_runs_again_after_the_restart() {
    let api = HoldApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = held_config(dir.path());
    let (serve, addr) = Serve::start(&config).await;
    let held = json!({"type": "work.held", "id": "held", "data": {"base": api.base()}});
    assert_eq!(post(&addr, &held).await.0, 202);
    api.wait_in_flight(1).await;

    break_blobs(&dir.path().join("data"));
    let large = json!({"type": "other", "id": "large", "data": {"x": "x".repeat(400_000)}});
    assert_unavailable("the write that meets the error", &post(&addr, &large).await);
    api.open();
    let line = serve.wait_for_line("eddy: cannot record attempt 1 of delivery").await;
    assert!(line.contains("store unavailable"), "{line}");
    serve.signal("TERM");
    let (exit, stderr) = serve.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(exit.code(), Some(STORE_FAILED_EXIT), "{stderr:#?}");
    let unrecorded = stderr.iter().filter(|l| l.starts_with("eddy: cannot record")).count();
    assert_eq!(unrecorded, 1, "one attempt, logged once: {stderr:#?}");

    mend_blobs(&dir.path().join("data"));
    let (serve, addr) = Serve::start(&config).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, event) = get(&addr, "/events/held").await;
        if event["deliveries"][0]["status"] == "succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never delivered again: {event:#}\n{:#?}",
            serve.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = api.arrived().iter().filter(|k| *k == "held").count();
    assert_eq!(calls, 2, "ran once before the failure and once after the restart");
}
