//! Handler behaviour: the JS environment, ctx, state, console capture, outcomes, isolation.

use serde_json::json;

use crate::server_support::TestServer;
use crate::support::*;
use eddy::runtime::FailureKind;

#[tokio::test(flavor = "multi_thread")]
async fn web_globals_behave_and_host_globals_are_absent() {
    let rt = runtime();
    load(&rt, "globals").await;
    assert_ok(&invoke(&rt, "globals", json!({})).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn web_crypto_matches_published_vectors() {
    let rt = runtime();
    load(&rt, "web_crypto").await;
    let report = invoke(&rt, "web_crypto", json!({})).await;
    assert_ok(&report);
    assert_eq!(logs(&report), "web crypto ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_classes_follow_the_standard() {
    let rt = runtime();
    load(&rt, "web_fetch_classes").await;
    assert_ok(&invoke(&rt, "web_fetch_classes", json!({})).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_options_follow_the_standard() {
    let rt = runtime();
    load(&rt, "web_request_options").await;
    assert_ok(&invoke(&rt, "web_request_options", json!({})).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn synchronous_handlers_work_and_fail_like_async_ones() {
    let rt = runtime();
    load(&rt, "sync_handler").await;
    let report = invoke(&rt, "sync_handler", json!({})).await;
    assert_ok(&report);
    assert_eq!(logs(&report), "sync ok");
    let report = invoke(&rt, "sync_handler", json!({"fail": true})).await;
    let eddy::runtime::Outcome::Failure(f) = &report.outcome else {
        panic!("must fail")
    };
    assert_eq!((f.kind, f.message.as_str()), (FailureKind::Error, "sync failure"));
}

#[tokio::test(flavor = "multi_thread")]
async fn helper_modules_can_be_imported() {
    let rt = runtime();
    load(&rt, "uses_helper").await;
    let report = invoke(&rt, "uses_helper", json!({"word": "sync"})).await;
    assert_ok(&report);
    assert_eq!(logs(&report), "SYNC!");
}

#[tokio::test(flavor = "multi_thread")]
async fn state_is_durable_per_handler_and_private() {
    let (dir, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (fixture, handler) in [("state", "state.count"), ("state_peek", "state.peek")] {
        let from = fixtures().join(format!("{fixture}.js"));
        std::fs::copy(from, dir.path().join(format!("{handler}.js"))).unwrap();
    }
    let server = TestServer::start(dir.path(), data.path(), "").await;
    assert_eq!(run_once(&server, "state.count").await, "runs 1");
    assert_eq!(run_once(&server, "state.count").await, "runs 2");
    assert_eq!(run_once(&server, "state.peek").await, r#"{"listed":[]}"#);
    // A new server over the same data folder, once the first has let go of it.
    let server = server.restart("").await;
    assert_eq!(
        run_once(&server, "state.count").await,
        "runs 3",
        "the state outlived the restart"
    );
    assert_eq!(run_once(&server, "state.peek").await, r#"{"listed":[]}"#);
    server.stop().await;
}

/// Sends one event of type `handler` and returns the first console line of its attempt.
async fn run_once(server: &TestServer, handler: &str) -> String {
    let id = server.send(json!({"type": handler})).await;
    let done = server.wait_for_status(&id, handler, "succeeded").await;
    done["attempts"][0]["report"]["logs"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn console_is_captured_with_levels_and_secrets_redacted() {
    let rt = runtime();
    load(&rt, "console_levels").await;
    let report = invoke(&rt, "console_levels", json!({})).await;
    assert_ok(&report);
    let levels: Vec<_> = report.capture.logs.iter().map(|l| l.level.as_str()).collect();
    assert_eq!(levels, ["debug", "info", "log", "warn", "error", "log"]);
    assert_eq!(report.capture.logs[2].message, "log line { n: 1 }");
    assert!(
        report
            .capture
            .logs
            .iter()
            .all(|l| l.time.ends_with('Z') && l.time.len() == 24)
    );
    assert_eq!(report.capture.logs[5].message, "token is [secret:TEST_SECRET]");

    let failed = invoke(&rt, "console_levels", json!({"fail": true})).await;
    let text = serde_json::to_string(&failed).unwrap();
    assert!(!text.contains("s3cr3t-value-91"), "secret leaked: {text}");
    assert!(text.contains("failed with [secret:TEST_SECRET]"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn outcomes_carry_kind_stack_and_retry_hints() {
    let rt = runtime();
    load(&rt, "outcomes").await;
    assert_ok(&invoke(&rt, "outcomes", json!({"mode": "ok"})).await);
    let cases = [
        ("error", FailureKind::Error, "Error", "plain failure"),
        (
            "non_retryable",
            FailureKind::NonRetryable,
            "NonRetryableError",
            "bad event, never retry",
        ),
        (
            "retry_after",
            FailureKind::RetryAfter,
            "RetryAfterError",
            "come back later",
        ),
        ("string", FailureKind::Error, "Error", "a string was thrown"),
        ("reject", FailureKind::Error, "TypeError", "rejected"),
        (
            "recursion",
            FailureKind::Error,
            "RangeError",
            "Maximum call stack size exceeded",
        ),
    ];
    for (mode, kind, name, message) in cases {
        let report = invoke(&rt, "outcomes", json!({"mode": mode})).await;
        let eddy::runtime::Outcome::Failure(f) = &report.outcome else {
            panic!("{mode} should fail: {report:?}");
        };
        assert_eq!(
            (f.kind, f.name.as_str(), f.message.as_str()),
            (kind, name, message),
            "{mode}"
        );
        assert_eq!(f.is_retryable(), mode != "non_retryable", "{mode}");
        if mode != "string" {
            let stack = f.stack.as_deref().unwrap_or_default();
            assert!(
                stack.contains("outcomes.js:"),
                "{mode}: stack names file, line and column: {stack}"
            );
            assert!(
                !stack.contains("ext:eddy"),
                "{mode}: runtime frames are hidden: {stack}"
            );
        }
    }
    let report = invoke(&rt, "outcomes", json!({"mode": "retry_after"})).await;
    let eddy::runtime::Outcome::Failure(f) = report.outcome else {
        unreachable!()
    };
    assert_eq!(f.retry_after(), Some(std::time::Duration::from_secs(30)));
}

#[tokio::test(flavor = "multi_thread")]
async fn prototype_pollution_does_not_cross_handlers() {
    let rt = runtime();
    load(&rt, "pollute").await;
    load(&rt, "observe").await;
    assert_ok(&invoke(&rt, "pollute", json!({})).await);
    let report = invoke(&rt, "observe", json!({})).await;
    assert_ok(&report);
    assert_eq!(logs(&report), r#"{"map":2,"json":1,"fetch":"fetch"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn interleaved_invocations_keep_their_own_logs() {
    let api = FakeApi::start().await;
    let rt = runtime();
    load(&rt, "concurrent").await;
    let runs = (0..8).map(|_| {
        let rt = rt.clone();
        let base = api.base();
        tokio::spawn(async move { invoke(&rt, "concurrent", json!({"base": base, "ms": 150})).await })
    });
    for run in futures::future::join_all(runs).await {
        let report = run.unwrap();
        assert_ok(&report);
        let lines: Vec<_> = report.capture.logs.iter().map(|l| l.message.clone()).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let id = lines[0].strip_prefix("start ").expect("start line");
        assert_eq!(lines[1], format!("end {id}"));
        assert_eq!(report.capture.fetches.len(), 1);
    }
    let overlap = api.state.max_in_flight.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        overlap >= 2,
        "invocations of one handler ran one at a time (max in flight {overlap})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn interleaving_stops_at_the_per_isolate_limit() {
    let api = FakeApi::start().await;
    let config = format!("{LOOPBACK_CONFIG}isolates_per_handler = 1\ninvocations_per_isolate = 2\n");
    let rt = runtime_with(&fixtures(), &config);
    load(&rt, "concurrent").await;
    let runs = (0..6).map(|_| {
        let rt = rt.clone();
        let base = api.base();
        tokio::spawn(async move { invoke(&rt, "concurrent", json!({"base": base, "ms": 100})).await })
    });
    for run in futures::future::join_all(runs).await {
        assert_ok(&run.unwrap());
    }
    assert_eq!(api.state.max_in_flight.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(rt.live_isolates(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_isolate_at_its_limit_takes_the_next_job_after_going_idle() {
    // One invocation fills the isolate; it ends, and the next arrives only later, when the
    // isolate has nothing left to run.
    let config = format!("{LOOPBACK_CONFIG}isolates_per_handler = 1\ninvocations_per_isolate = 1\n");
    let rt = runtime_with(&fixtures(), &config);
    load(&rt, "sync_handler").await;
    for n in 0..3 {
        let report = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            invoke(&rt, "sync_handler", json!({})),
        )
        .await
        .unwrap_or_else(|_| panic!("invocation {n} was never started"));
        assert_ok(&report);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_run_of_short_invocations_never_stalls() {
    // Each job arrives while the isolate still watches its channel after the last one: more
    // of them than one turn of its thread may take (a tokio task's budget is 128), and none
    // may be left waiting. Each takes microseconds; a second means it sat in the channel.
    let rt = runtime();
    load(&rt, "sync_handler").await;
    for n in 0..1000 {
        let report = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            invoke(&rt, "sync_handler", json!({})),
        )
        .await
        .unwrap_or_else(|_| panic!("invocation {n} waited more than a second"));
        assert_ok(&report);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handler_loaded_into_an_isolate_made_ahead_is_that_handler_alone() {
    let rt = runtime();
    load(&rt, "state").await;
    assert_eq!(
        rt.loads_on_isolates_made_ahead(),
        0,
        "the first load makes its own isolate"
    );
    // The first load started an isolate for the next one, which takes it.
    load(&rt, "state_peek").await;
    assert_eq!(rt.loads_on_isolates_made_ahead(), 1);
    assert_ok(&invoke(&rt, "state", json!({})).await);
    let peek = invoke(&rt, "state_peek", json!({})).await;
    assert_ok(&peek);
    assert_eq!(
        logs(&peek),
        r#"{"listed":[]}"#,
        "it has its own state, not the first handler's"
    );
}
