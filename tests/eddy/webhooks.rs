//! `POST /webhooks/{source}`: signatures checked over the raw bytes, redeliveries
//! deduplicated, nothing stored for a request that fails the check.

use base64::Engine as _;
use ring::hmac;
use serde_json::{Value, json};

use crate::server_support::{TestServer, pipeline_handlers};

const SECRET: &str = "whook-test-secret-7d2";
const SOURCES: &str = r#"
[sources.gh]
kind = "github"
secret_env = "EDDY_TEST_WEBHOOK_SECRET"
[sources.slack]
kind = "slack"
secret_env = "EDDY_TEST_WEBHOOK_SECRET"
[sources.stripe]
kind = "stripe"
secret_env = "EDDY_TEST_WEBHOOK_SECRET"
[sources.std]
kind = "standard"
secret_env = "EDDY_TEST_STANDARD_SECRET"
[ingest]
max_body_bytes = 2048
"#;

fn mac_hex(key: &[u8], message: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn start() -> (TestServer, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    (
        TestServer::start(&pipeline_handlers(), data.path(), SOURCES).await,
        data,
    )
}

async fn post(server: &TestServer, source: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(server.url(&format!("/webhooks/{source}")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn github_headers(body: &[u8], delivery: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "x-hub-signature-256",
            format!("sha256={}", mac_hex(SECRET.as_bytes(), body)),
        ),
        ("x-github-event", "pull_request".into()),
        ("x-github-delivery", delivery.into()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_github_delivery_is_stored_once_and_a_forged_one_not_at_all() {
    let (server, _data) = start().await;
    let body = json!({"action": "opened", "number": 7}).to_string();
    let (status, answer) = post(&server, "gh", &github_headers(body.as_bytes(), "d-1"), body.as_bytes()).await;
    assert_eq!((status, &answer), (202, &json!({"id": "gh:d-1"})));
    let event = server.get("/events/gh:d-1").await["event"]["event"].clone();
    assert_eq!(event["type"], "github.pull_request.opened", "{event}");
    assert_eq!(event["source"], "eddy/webhooks/gh");
    assert_eq!(event["data"]["number"], 7);

    let (status, answer) = post(&server, "gh", &github_headers(body.as_bytes(), "d-1"), body.as_bytes()).await;
    assert_eq!((status, &answer), (200, &json!({"id": "gh:d-1", "duplicate": true})));

    // Signed for one body, sent with another: refused, and nothing is stored.
    let forged = json!({"action": "closed", "number": 7}).to_string();
    let (status, answer) = post(
        &server,
        "gh",
        &github_headers(body.as_bytes(), "d-2"),
        forged.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("bad_signature")),
        "{answer}"
    );
    let sha1_only = [
        ("x-hub-signature", "sha1=0000".to_owned()),
        ("x-github-event", "push".into()),
    ];
    let (status, answer) = post(&server, "gh", &sha1_only, body.as_bytes()).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("sha1_only")), "{answer}");
    let listed = server.get("/events").await;
    assert_eq!(listed["events"].as_array().map(Vec::len), Some(1), "{listed}");
    let metrics = server.metrics().await;
    let webhooks = |outcome| crate::support::metric_sum(&metrics, "eddy_webhooks_total", &[("outcome", outcome)]);
    assert_eq!((webhooks("rejected"), webhooks("duplicate")), (2, 1), "{metrics}");
    let sha1 = [("source", "gh"), ("reason", "sha1_only")];
    assert_eq!(
        crate::support::metric_sum(&metrics, "eddy_webhook_rejections_total", &sha1),
        1,
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_sources_and_oversized_bodies_are_refused_before_any_check() {
    let (server, _data) = start().await;
    let (status, answer) = post(&server, "gitlab", &[], b"{}").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("unknown_source")),
        "{answer}"
    );
    let big = vec![b' '; 4096];
    let (status, answer) = post(&server, "gh", &github_headers(&big, "d-big"), &big).await;
    assert_eq!((status, answer["error"].as_str()), (413, Some("too_large")), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_stripe_and_standard_webhooks_verify_and_name_their_events() {
    let (server, _data) = start().await;
    let ts = now().to_string();
    let slack_sig = |body: &str, ts: &str| {
        format!(
            "v0={}",
            mac_hex(SECRET.as_bytes(), format!("v0:{ts}:{body}").as_bytes())
        )
    };
    let challenge = json!({"type": "url_verification", "challenge": "ch-42"}).to_string();
    let headers = [
        ("x-slack-request-timestamp", ts.clone()),
        ("x-slack-signature", slack_sig(&challenge, &ts)),
    ];
    assert_eq!(
        post(&server, "slack", &headers, challenge.as_bytes()).await,
        (200, json!({"challenge": "ch-42"}))
    );
    let message = json!({"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}).to_string();
    let stale = (now() - 400).to_string();
    let headers = [
        ("x-slack-request-timestamp", stale.clone()),
        ("x-slack-signature", slack_sig(&message, &stale)),
    ];
    let (status, answer) = post(&server, "slack", &headers, message.as_bytes()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("stale_timestamp")),
        "{answer}"
    );
    let headers = [
        ("x-slack-request-timestamp", ts.clone()),
        ("x-slack-signature", slack_sig(&message, &ts)),
    ];
    assert_eq!(
        post(&server, "slack", &headers, message.as_bytes()).await,
        (202, json!({"id": "slack:Ev1"}))
    );

    let invoice = json!({"id": "evt_1", "type": "invoice.paid"}).to_string();
    let good = mac_hex(SECRET.as_bytes(), format!("{ts}.{invoice}").as_bytes());
    let header = format!("t={ts},v1={},v1={good}", "0".repeat(64));
    assert_eq!(
        post(&server, "stripe", &[("stripe-signature", header)], invoice.as_bytes()).await,
        (202, json!({"id": "stripe:evt_1"}))
    );

    let key = base64::engine::general_purpose::STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    let order = json!({"type": "orders.created", "data": {"n": 1}}).to_string();
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        format!("msg_1.{ts}.{order}").as_bytes(),
    );
    let headers = [
        ("webhook-id", "msg_1".to_owned()),
        ("webhook-timestamp", ts.clone()),
        (
            "webhook-signature",
            format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(tag.as_ref())),
        ),
    ];
    assert_eq!(
        post(&server, "std", &headers, order.as_bytes()).await,
        (202, json!({"id": "std:msg_1"}))
    );
    for (id, kind) in [
        ("slack:Ev1", "slack.app_mention"),
        ("stripe:evt_1", "stripe.invoice.paid"),
        ("std:msg_1", "orders.created"),
    ] {
        assert_eq!(
            server.get(&format!("/events/{id}")).await["event"]["event"]["type"],
            kind
        );
    }
    // A verified event is routed like any other: the orders.created fixtures get deliveries.
    let routed = server.get("/events/std:msg_1").await;
    assert!(
        routed["deliveries"].as_array().is_some_and(|d| !d.is_empty()),
        "{routed}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_whose_secret_is_not_set_stops_start_up_with_its_name() {
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "handlers = {:?}\ndata = {:?}\n[sources.gh]\nkind = \"github\"\nsecret_env = \"EDDY_TEST_NOT_SET_ANYWHERE\"\n",
        pipeline_handlers().display().to_string(),
        data.path().display().to_string()
    );
    let config = eddy::config::Config::parse(&text, std::path::Path::new("/eddy.toml")).unwrap();
    let listeners = eddy::server::Listeners {
        api: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        proxy: None,
    };
    let setup = eddy::server::Setup { config, on_start: None };
    let error = eddy::server::run(setup, listeners, std::future::pending())
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("EDDY_TEST_NOT_SET_ANYWHERE"), "{error}");
    let bad = eddy::config::Config::parse(
        "[sources.gh]\nkind = \"gitlab\"\nsecret_env = \"X\"\n",
        std::path::Path::new("e.toml"),
    )
    .unwrap_err();
    assert!(bad.to_string().contains("gitlab"), "{bad}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_posted_event_cannot_take_the_id_or_source_of_a_webhook_source() {
    let (server, _data) = start().await;
    let taken = [
        (
            json!({"type": "github.pull_request.opened", "id": "gh:d-next"}),
            "reserved_id",
        ),
        (json!({"type": "slack.message", "id": "slack:Ev1"}), "reserved_id"),
        (
            json!({"type": "github.push", "source": "eddy/webhooks/gh"}),
            "reserved_source",
        ),
        (
            json!({"type": "github.push", "source": "eddy/proxy"}),
            "reserved_source",
        ),
    ];
    for (event, code) in taken {
        let (status, answer) = server.post("/events", "application/json", event.to_string()).await;
        assert_eq!((status, answer["error"].as_str()), (422, Some(code)), "{answer}");
    }
    let (status, _) = server
        .post(
            "/events",
            "application/cloudevents+json",
            json!({"type": "a", "id": "gh:d-next", "specversion": "1.0"}).to_string(),
        )
        .await;
    assert_eq!(status, 422, "CloudEvents requests are held to the same rule");
    // Ids that only look alike, and the default source, stay free.
    server.send(json!({"type": "a", "id": "github:d-next"})).await;
    server
        .send(json!({"type": "a", "id": "gh-d-next", "source": "eddy/http"}))
        .await;

    let body = json!({"action": "opened", "number": 8}).to_string();
    let (status, answer) = post(
        &server,
        "gh",
        &github_headers(body.as_bytes(), "d-next"),
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, &answer),
        (202, &json!({"id": "gh:d-next"})),
        "the genuine delivery is stored"
    );
    let event = server.get("/events/gh:d-next").await["event"]["event"].clone();
    assert_eq!(
        (event["source"].as_str(), event["data"]["number"].as_u64()),
        (Some("eddy/webhooks/gh"), Some(8))
    );
    server.stop().await;
}
