//! `fetch` against a fake third-party API on loopback.

use std::sync::atomic::Ordering;

use serde_json::json;

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
    let text = serde_json::to_string(&report).unwrap();
    assert!(!text.contains(CRM_TOKEN), "the token must not appear in the report");
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
    assert!(api.seen().is_empty());
}
