//! Everything an invocation produces is bounded: errors, console lines, fetch records and
//! the stored attempt, each cut with a marker that says what was dropped.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::server_support::TestServer;
use crate::support::*;
use eddy::runtime::{MAX_MESSAGE_BYTES, MAX_REPORT_BYTES, MAX_STACK_BYTES, Outcome};

fn bounds_handlers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounds")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_20_mib_error_is_stored_within_the_bound() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&bounds_handlers(), data.path(), "").await;
    let id = server.send(json!({ "type": "huge.error", "data": {} })).await;
    let delivery = server.wait_for_status(&id, "huge.error", "dead").await;
    let attempt = &delivery["attempts"][0];
    let stored = serde_json::to_vec(attempt).unwrap().len();
    assert!(stored < MAX_REPORT_BYTES, "stored attempt is {stored} bytes");
    let outcome = &attempt["report"]["outcome"];
    let message = outcome["message"].as_str().unwrap();
    let cut = 20 * 1024 * 1024 - MAX_MESSAGE_BYTES;
    assert!(
        message.ends_with(&format!("…[truncated {cut} bytes]")),
        "{}",
        &message[MAX_MESSAGE_BYTES..]
    );
    assert!(message.len() < MAX_MESSAGE_BYTES + 40);
    let stack = outcome["stack"].as_str().unwrap();
    assert!(
        stack.len() < MAX_STACK_BYTES + 40 && stack.contains("…[truncated "),
        "{}",
        stack.len()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn console_lines_and_fetch_records_are_capped_with_a_count_of_the_dropped() {
    let api = FakeApi::start().await;
    let rt = runtime_with(&bounds_handlers(), LOOPBACK_CONFIG);
    load(&rt, "many.outputs").await;
    let report = invoke(&rt, "many.outputs", json!({ "base": api.base() })).await;
    assert!(matches!(report.outcome, Outcome::Success), "{:?}", report.outcome);
    let capture = &report.capture;
    assert_eq!(capture.logs.len(), 1001);
    assert_eq!(capture.logs[999].message, "line 999");
    assert_eq!(
        capture.logs[1000].message,
        "…[dropped 9000 console lines and 400 fetch records: capture limit reached]"
    );
    assert_eq!(capture.fetches.len(), 100);
    assert!(
        capture.fetches[99].url.ends_with("/text?n=99"),
        "{}",
        capture.fetches[99].url
    );
    assert_eq!((capture.dropped_logs, capture.dropped_fetches), (9000, 400));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        (json["dropped_logs"].as_u64(), json["dropped_fetches"].as_u64()),
        (Some(9000), Some(400))
    );
}
