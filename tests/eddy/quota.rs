//! Operator ceilings: `[state]` quotas on `ctx.state`, `[runtime]` ceilings on what a
//! handler's `config` may ask for, and config numbers that could wrap.

use std::path::Path;

use serde_json::{Value, json};

use crate::cli::{eddy, text};
use crate::support::*;

fn ceilings() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ceilings")
}

#[tokio::test(flavor = "multi_thread")]
async fn state_set_rejects_over_the_quota_with_quota_exceeded_error() {
    let config = format!("{LOOPBACK_CONFIG}[state]\nmax_bytes_per_handler = 200\nmax_keys_per_handler = 5\n");
    let rt = runtime_with(&fixtures(), &config);
    load(&rt, "state_quota").await;
    let report = invoke(&rt, "state_quota", json!({})).await;
    assert_ok(&report);
    let seen: Value = serde_json::from_str(&logs(&report)).expect("one JSON line");
    assert_eq!(seen["stored"], 5, "{seen}");
    let refusal = |message: &str| {
        json!({
            "name": "QuotaExceededError",
            "isDOMException": true,
            "message": format!("ctx.state.set: state quota exceeded: {message}"),
        })
    };
    assert_eq!(
        seen["keys"],
        refusal("[state] max_keys_per_handler is 5; this handler's state holds 5 keys and this set would add one")
    );
    assert_eq!(
        seen["bytes"],
        refusal(
            "[state] max_bytes_per_handler is 200 bytes; this handler's state uses 23 bytes and this set would make it 219"
        )
    );
}

#[test]
fn check_refuses_limits_above_the_ceilings_naming_key_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("eddy.toml");
    let settings =
        "[runtime]\ntimeout_ms = 1000\ncpu_limit_ms = 1000\nmax_timeout_ms = 5000\nmax_cpu_limit_ms = 2000\n";
    std::fs::write(&config, settings).unwrap();
    let handlers = ceilings().display().to_string();
    let out = eddy(&["check", "--handlers", &handlers], dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "over_timeout.js: config.timeoutMs is 5001, above the operator's ceiling [runtime] max_timeout_ms = 5000"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "over_cpu.js: config.cpuLimitMs is 2001, above the operator's ceiling [runtime] max_cpu_limit_ms = 2000"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("at_ceilings"), "{stdout}");
    assert!(stderr.contains("1 handler(s) loaded, 2 with errors"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn load_refuses_limits_above_the_ceilings_and_accepts_them_at_the_ceiling() {
    let root = ceilings();
    let settings =
        "[runtime]\ntimeout_ms = 1000\ncpu_limit_ms = 1000\nmax_timeout_ms = 5000\nmax_cpu_limit_ms = 2000\n";
    let rt = runtime_with(&root, settings);
    let err = rt
        .load("over_timeout", &root.join("over_timeout.js"))
        .await
        .unwrap_err();
    assert!(
        err.render().contains("config.timeoutMs is 5001") && err.render().contains("= 5000"),
        "{err}"
    );
    let info = rt.load("at_ceilings", &root.join("at_ceilings.js")).await.unwrap();
    assert_eq!(info.timeout.as_millis(), 5000);
    assert_eq!(info.cpu_limit.as_millis(), 2000);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_numbers_that_could_wrap_are_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_with(dir.path(), LOOPBACK_CONFIG);
    let cases = [
        ("timeoutMs", "Infinity", "Infinity"),
        ("timeoutMs", "-Infinity", "-Infinity"),
        ("timeoutMs", "NaN", "NaN"),
        ("timeoutMs", "-1", "-1"),
        ("timeoutMs", "1e300", "1e+300"),
        ("timeoutMs", "2 ** 64", "1.8446744073709552e+19"),
        ("timeoutMs", "1000.5", "1000.5"),
        ("cpuLimitMs", "Infinity", "Infinity"),
        ("cpuLimitMs", "NaN", "NaN"),
        ("cpuLimitMs", "-1", "-1"),
        ("cpuLimitMs", "1e300", "1e+300"),
        ("concurrency", "Infinity", "Infinity"),
        ("concurrency", "NaN", "NaN"),
        ("concurrency", "-1", "-1"),
        ("concurrency", "1e300", "1e+300"),
        ("concurrency", "2.5", "2.5"),
    ];
    for (n, (key, written, shown)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("h{n}.js"));
        let source = format!("export const config = {{ {key}: {written} }};\nexport default async () => {{}};\n");
        std::fs::write(&file, source).unwrap();
        let err = rt.load(&format!("h{n}"), &file).await.expect_err(written);
        let message = err.render();
        assert!(
            message.starts_with(&format!("config.{key} must be a whole number from 1 to ")),
            "{key}: {written}: {message}"
        );
        assert!(
            message.ends_with(&format!(", got {shown}")),
            "{key}: {written}: {message}"
        );
    }
}

#[test]
fn state_usage_is_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("eddy.toml"), "[state]\nmax_keys_per_handler = 2\n").unwrap();
    let handler = fixtures().join("state_grow.js").display().to_string();
    // Each run is a new process opening the same data folder.
    let run = |key: &str| {
        eddy(
            &[
                "run",
                &handler,
                "--event",
                &format!(r#"{{"type":"t","data":{{"key":"{key}"}}}}"#),
            ],
            dir.path(),
        )
    };
    for key in ["a", "b", "a"] {
        let out = run(key);
        assert_eq!(out.status.code(), Some(0), "{key}: {:?}", text(&out));
    }
    let out = run("c");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("QuotaExceededError: ctx.state.set: state quota exceeded: [state] max_keys_per_handler is 2; this handler's state holds 2 keys"),
        "{stdout}"
    );
}
