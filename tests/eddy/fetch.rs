//! `fetch` against a fake third-party API on loopback.

use std::sync::atomic::Ordering;

use serde_json::json;

use crate::server_support::TestServer;
use crate::support::*;
use eddy::runtime::{FailureKind, Outcome};

#[tokio::test(flavor = "multi_thread")]
async fn fetch_sends_and_receives_every_body_kind() {
    let api = FakeApi::start().await;
    let rt = runtime();
    load(&rt, "fetch_features").await;
    let report = invoke(&rt, "fetch_features", json!({"base": api.base()})).await;
    assert_ok(&report);
    let first = &report.capture.fetches[0];
    assert_eq!((first.method.as_str(), first.status), ("POST", Some(200)));
    assert_eq!(first.url, format!("{}/echo?q=1", api.base()));
    assert!(
        report.capture.fetches.iter().any(|f| f.status == Some(302)),
        "redirect hops are recorded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_follow_the_fetch_standard() {
    let api = FakeApi::start().await;
    let rt = runtime();
    load(&rt, "fetch_redirect_rules").await;
    let report = invoke(
        &rt,
        "fetch_redirect_rules",
        json!({"base": api.base(), "port": api.addr.port()}),
    )
    .await;
    assert_ok(&report);
}

#[tokio::test(flavor = "multi_thread")]
async fn crm_sync_uses_secrets_state_and_retry_after() {
    let api = FakeApi::start().await;
    let rt = runtime();
    load(&rt, "crm_sync").await;
    api.state.rate_limit_next.store(1, Ordering::SeqCst);
    let data = json!({"base": api.base(), "id": 42, "name": "Ada"});
    let limited = invoke(&rt, "crm_sync", data.clone()).await;
    let Outcome::Failure(f) = &limited.outcome else {
        panic!("429 must fail: {limited:?}")
    };
    assert_eq!((f.kind, f.retry_after_ms), (FailureKind::RetryAfter, Some(7000)));
    let report = invoke(&rt, "crm_sync", data).await;
    assert_ok(&report);
    assert_eq!(logs(&report), "synced contact 42 attempt 1");
    let seen = api.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "PATCH");
    assert_eq!(seen[1].path, "/contacts/42");
    assert_eq!(seen[1].headers["authorization"], format!("Bearer {CRM_TOKEN}"));
    assert!(seen[1].headers["idempotency-key"].ends_with(":crm_sync"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&seen[1].body).unwrap()["name"],
        "Ada"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_net_limits_hosts_and_no_list_means_no_network() {
    let api = FakeApi::start().await;
    let rt = runtime();
    load(&rt, "fetch_allow").await;
    load(&rt, "no_network").await;
    let url = format!("{}/text", api.base());
    for id in ["fetch_allow", "no_network"] {
        let report = invoke(&rt, id, json!({"url": url})).await;
        let Outcome::Failure(f) = &report.outcome else {
            panic!("{id} must be refused")
        };
        assert_eq!(f.name, "TypeError", "{id}");
        assert!(f.message.contains("allowNet"), "{id}: {}", f.message);
    }
    let seen = api.seen();
    assert!(seen.is_empty(), "a refused fetch reached the API: {seen:#?}");
}

/// The value of `TEST_SECRET` in `tests/fixtures/.env`.
const TEST_SECRET: &str = "s3cr3t-value-91";
const SECRET_MARKER: &str = "[secret:TEST_SECRET]";

/// Asserts `text` holds the redaction marker and not the secret.
fn assert_redacted(what: &str, text: &str) {
    assert!(!text.contains(TEST_SECRET), "{what} holds the secret: {text}");
    assert!(text.contains(SECRET_MARKER), "{what} lacks {SECRET_MARKER}: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_in_a_fetch_url_console_output_or_an_error_is_redacted_in_the_report() {
    let api = FakeApi::start().await;
    let rt = runtime();
    load(&rt, "leak_secret").await;
    let report = invoke(&rt, "leak_secret", json!({"base": api.base()})).await;
    // The API did get the secret: only the report is redacted.
    let seen = api.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].path, format!("/echo?token={TEST_SECRET}"));
    let fetches = &report.capture.fetches;
    assert_eq!(fetches.len(), 2, "{fetches:#?}");
    assert_redacted("the fetch URL", &fetches[0].url);
    assert_redacted("the refused fetch's URL", &fetches[1].url);
    let refused = fetches[1].error.as_deref().expect("the refused fetch has an error");
    assert!(!refused.contains(TEST_SECRET), "{refused}");
    let logs = logs(&report);
    assert_redacted("console output", &logs);
    assert!(logs.contains("refused: "), "{logs}");
    assert!(!logs.contains(TEST_SECRET), "{logs}");
    let Outcome::Failure(f) = &report.outcome else {
        panic!("the handler throws: {report:?}")
    };
    assert_redacted("the error message", &f.message);
    assert_redacted("the error stack", f.stack.as_deref().unwrap_or_default());
    assert!(!serde_json::to_string(&report).unwrap().contains(TEST_SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_is_redacted_in_the_stored_attempt_report() {
    let api = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    std::fs::create_dir(&handlers).unwrap();
    std::fs::copy(fixtures().join("leak_secret.js"), handlers.join("secrets.leak.js")).unwrap();
    // Secrets are read from the `.env` beside the handlers folder.
    std::fs::write(dir.path().join(".env"), format!("TEST_SECRET={TEST_SECRET}\n")).unwrap();
    let server = TestServer::start(&handlers, &dir.path().join("data"), "").await;
    let id = server
        .send(json!({"type": "secrets.leak", "data": {"base": api.base()}}))
        .await;
    let dead = server.wait_for_status(&id, "secrets.leak", "dead").await;
    assert_eq!(api.seen().len(), 1, "the handler ran once and reached the API");
    let report = &dead["attempts"][0]["report"];
    assert_redacted(
        "the stored fetch URL",
        report["fetches"][0]["url"].as_str().unwrap_or_default(),
    );
    assert_redacted("the stored console output", &report["logs"].to_string());
    assert_redacted("the stored error", &report["outcome"].to_string());
    assert_redacted(
        "the delivery's last error",
        dead["delivery"]["last_error"].as_str().unwrap_or_default(),
    );
    assert!(!dead.to_string().contains(TEST_SECRET), "{dead:#}");
    server.stop().await;
}
