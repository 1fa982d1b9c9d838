//! Limits: CPU, heap, wall clock, uncaught errors; a stopped isolate is replaced and the
//! next event runs normally.

use serde_json::json;

use crate::support::*;
use eddy::runtime::{FailureKind, Outcome};

fn failure_kind(report: &eddy::runtime::InvocationReport) -> FailureKind {
    match &report.outcome {
        Outcome::Failure(f) => f.kind,
        Outcome::Success => panic!("expected a failure: {report:?}"),
    }
}

/// Runs `mode` through `handler` (`limits`, or `limits_roomy` where the CPU and wall-clock
/// limits are not what is tested), then shows the handler works again.
async fn misbehave_then_recover_in(handler: &str, mode: &str, expected: FailureKind) {
    let rt = runtime();
    load(&rt, handler).await;
    let report = invoke(&rt, handler, json!({"mode": mode})).await;
    assert_eq!(failure_kind(&report), expected, "{mode}: {report:?}");
    let healthy = invoke(&rt, handler, json!({})).await;
    assert_ok(&healthy);
    assert_eq!(logs(&healthy), "healthy");
    if matches!(expected, FailureKind::CpuLimit | FailureKind::HeapLimit) {
        // A limit stops the isolate: the healthy call was the first of a fresh one.
        let next = invoke(&rt, handler, json!({"mode": "count"})).await;
        assert_ok(&next);
        assert_eq!(
            logs(&next),
            "call 2 of this isolate",
            "{mode}: a fresh isolate took over"
        );
    }
}

async fn misbehave_then_recover(mode: &str, expected: FailureKind) {
    misbehave_then_recover_in("limits", mode, expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_loop_is_stopped_by_the_cpu_limit() {
    misbehave_then_recover("spin", FailureKind::CpuLimit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn microtask_loop_is_stopped_by_the_cpu_limit() {
    misbehave_then_recover("spin_microtasks", FailureKind::CpuLimit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_memory_terminates_the_isolate_not_the_process() {
    misbehave_then_recover_in("limits_roomy", "oom", FailureKind::HeapLimit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn array_buffers_outside_the_heap_are_limited_too() {
    // Caught or not, a refused buffer stops the isolate as the heap limit does.
    misbehave_then_recover("buffers", FailureKind::HeapLimit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn buffers_the_allocator_cannot_count_are_not_available() {
    let rt = runtime();
    load(&rt, "limits").await;
    let report = invoke(&rt, "limits", json!({"mode": "buffer_kinds"})).await;
    assert_ok(&report);
    assert_eq!(logs(&report), "RangeError undefined undefined true");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_promise_that_never_settles_times_out() {
    misbehave_then_recover("hang", FailureKind::Timeout).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uncaught_error_outside_the_handler_fails_the_invocation() {
    misbehave_then_recover("uncaught", FailureKind::Crashed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn console_output_is_bounded() {
    let rt = runtime();
    load(&rt, "limits_roomy").await;
    let report = invoke(&rt, "limits_roomy", json!({"mode": "log_flood"})).await;
    assert_ok(&report);
    let kept: usize = report.capture.logs.iter().map(|l| l.message.len()).sum();
    assert!(kept <= 64 * 1024, "kept {kept} bytes");
    let marker = report.capture.logs.last().map(|l| l.message.as_str());
    let dropped = report.capture.dropped_logs;
    assert_eq!(
        marker,
        Some(format!("…[dropped {dropped} console lines: capture limit reached]").as_str())
    );
    assert_eq!(report.capture.logs.len() - 1 + dropped, 10_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn code_left_running_after_an_invocation_is_stopped_too() {
    let rt = runtime();
    load(&rt, "limits_roomy").await;
    assert_ok(&invoke(&rt, "limits_roomy", json!({"mode": "background_spin"})).await);
    // The busy loop's timer was due in 10 ms; the next call waits 200 ms on a timer of its
    // own in the same isolate. Had the leftover timer survived, it would have fired first and
    // spun until a CPU limit stopped the isolate: this call would fail, or run in a new one.
    let next = invoke(&rt, "limits_roomy", json!({"mode": "count"})).await;
    assert_ok(&next);
    assert_eq!(logs(&next), "call 2 of this isolate");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_promise_chain_left_spinning_is_charged_to_its_invocation() {
    // Without a timer the chain never lets the poll end, so the invocation that left it is
    // still in flight and pays for it; its isolate is replaced.
    misbehave_then_recover("leftover_chain", FailureKind::CpuLimit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn work_left_running_across_many_short_polls_is_charged_until_its_isolate_is_replaced() {
    let rt = runtime();
    load(&rt, "limits").await;
    assert_ok(&invoke(&rt, "limits", json!({"mode": "leftover_signal_timers"})).await);
    // Each poll is short; together they pass the handler's 300 ms CPU limit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while rt.live_isolates() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the leftover loop was never stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let healthy = invoke(&rt, "limits", json!({})).await;
    assert_ok(&healthy);
    assert_eq!(logs(&healthy), "healthy");
}

#[tokio::test(flavor = "multi_thread")]
async fn timers_a_module_starts_while_loading_end_with_the_load() {
    let rt = runtime();
    load(&rt, "load_interval").await;
    let report = invoke(&rt, "load_interval", json!({})).await;
    assert_ok(&report);
    assert_eq!(logs(&report), "stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_isolate_does_not_take_healthy_invocations_down_twice() {
    let rt = runtime();
    load(&rt, "limits").await;
    for _ in 0..3 {
        assert_eq!(
            failure_kind(&invoke(&rt, "limits", json!({"mode": "spin"})).await),
            FailureKind::CpuLimit
        );
        // The stopped isolate is gone: a fresh one runs the next event, as its first.
        let next = invoke(&rt, "limits", json!({"mode": "count"})).await;
        assert_ok(&next);
        assert_eq!(logs(&next), "call 1 of this isolate");
    }
    // ...and stays: one isolate, the last replacement, is alive and keeps serving.
    assert_eq!(
        rt.live_isolates(),
        1,
        "stopped isolates are gone, and none was started needlessly"
    );
    let next = invoke(&rt, "limits", json!({"mode": "count"})).await;
    assert_eq!(logs(&next), "call 2 of this isolate");
}

#[tokio::test(flavor = "multi_thread")]
async fn load_errors_name_file_line_and_column() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken");
    let rt = runtime_with(
        &root,
        "[runtime]\ncpu_limit_ms = 300\n[secrets]\nallow = [\"TEST_NEVER_*\"]\n",
    );
    let cases = [
        ("syntax", "syntax.js:2:13: SyntaxError: Unexpected token ';'"),
        ("no_default", "a handler must `export default` a function"),
        ("bad_config", "unknown field `allownet`"),
        ("missing_secret", "secret TEST_NEVER_SET is not set"),
        (
            "ungranted_secret",
            "secret CRM_TOKEN is not granted: add \"CRM_TOKEN\" to [secrets] allow in eddy.toml",
        ),
        (
            "own_secret",
            "secret EDDY_API_TOKEN can never be granted to a handler: EDDY_* variables are eddy's own",
        ),
        ("top_level_throw", "top_level_throw.js:1:20: SyntaxError"),
        ("top_level_spin", "used more than 300 ms of CPU time"),
    ];
    for (id, expected) in cases {
        let err = rt.load(id, &root.join(format!("{id}.js"))).await.expect_err(id);
        assert!(err.render().contains(expected), "{id}: {}", err.render());
    }
    assert!(rt.load("good", &root.join("good.js")).await.is_ok());
}
