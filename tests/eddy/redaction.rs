//! Redaction wherever eddy stores what it captured: a granted secret is never in an attempt
//! record, a listing, the CLI's output or the data folder; and after `eddy events redact
//! --all` an event's values are gone from the event, its history, every attempt of its
//! deliveries and, once compacted, the data folder.

use std::path::Path;
use std::time::{Duration, Instant};

use percent_encoding::utf8_percent_encode;
use serde_json::{Value, json};

use crate::repair::post_json;
use crate::secrets::COMPONENT;
use crate::server_support::TestServer;
use crate::support::{FakeApi, grep};

/// A secret whose percent-encoded and JSON forms differ from the value as written.
const SECRET: &str = "tok/en \"leak\" é&42";

/// `value` as written, as `encodeURIComponent` and the URL parser write it, and JSON-escaped.
fn forms(value: &str) -> Vec<String> {
    let component = utf8_percent_encode(value, COMPONENT).to_string();
    let url = url::Url::parse(&format!("http://h/?raw={value}")).unwrap();
    let parsed = url.query().unwrap().trim_start_matches("raw=").to_owned();
    let json = serde_json::to_string(value).unwrap();
    let mut all = vec![value.to_owned(), component, parsed, json[1..json.len() - 1].to_owned()];
    all.dedup();
    all
}

/// Panics if `text` (from `place`) holds any of `forms`.
fn assert_absent(place: &str, text: &str, forms: &[String]) {
    for form in forms {
        assert!(!text.contains(form.as_str()), "{form:?} is in {place}: {text}");
    }
}

/// A server over a copy of fixture `redaction/<handler>.js`, with a `.env` granting
/// `LEAK_TOKEN`; keep the returned folder alive as long as the server.
async fn start(handler: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    std::fs::create_dir(&handlers).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/redaction/{handler}.js"));
    std::fs::copy(fixture, handlers.join(format!("{handler}.js"))).unwrap();
    let dotenv = format!("LEAK_TOKEN='{SECRET}'\n");
    std::fs::write(dir.path().join(".env"), dotenv).unwrap();
    let config = "[secrets]\nallow = [\"LEAK_TOKEN\"]\n";
    let server = TestServer::start(&handlers, &dir.path().join("data"), config).await;
    (server, dir)
}

/// `eddy <args> --server <server>` with no token in its environment; exit code and stdout.
async fn cli(server: &TestServer, args: &[&str]) -> (Option<i32>, String) {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.extend(["--server".to_owned(), server.url("")]);
    let out =
        tokio::task::spawn_blocking(move || crate::support::eddy_command().args(&args).output().expect("eddy runs"))
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    (out.status.code(), stdout)
}

/// Every way to read what is stored about event `id` and delivery `delivery`: the API's
/// views and listings, and the CLI's tables and JSON. (place, text) pairs.
async fn stored_views(server: &TestServer, id: &str, delivery: &str) -> Vec<(String, String)> {
    let mut views = Vec::new();
    for path in [
        format!("/events/{id}"),
        format!("/deliveries/{delivery}"),
        "/events".to_owned(),
        "/deliveries".to_owned(),
        "/deliveries?status=dead".to_owned(),
        "/deliveries?status=succeeded".to_owned(),
    ] {
        views.push((format!("GET {path}"), server.get(&path).await.to_string()));
    }
    for args in [
        vec!["events", "show", id],
        vec!["events", "list"],
        vec!["events", "list", "--json"],
        vec!["deliveries", "show", delivery],
        vec!["deliveries", "show", delivery, "--json"],
        vec!["deliveries", "list"],
        vec!["deliveries", "list", "--json"],
    ] {
        let place = format!("eddy {}", args.join(" "));
        views.push((place, cli(server, &args).await.1));
    }
    views
}

#[tokio::test(flavor = "multi_thread")]
async fn a_granted_secret_is_in_no_stored_form_of_an_attempt() {
    let api = FakeApi::start().await;
    let (server, dir) = start("leak.secret").await;
    let id = server
        .send(json!({"type": "leak.secret", "data": {"base": api.base()}}))
        .await;
    let dead = server.wait_for_status(&id, "leak.secret", "dead").await;
    let delivery = dead["delivery"]["id"].as_str().unwrap().to_owned();
    let secret_forms = forms(SECRET);

    let marker = "[secret:LEAK_TOKEN]";
    let report = &dead["attempts"][0]["report"];
    let logs: Vec<&str> = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert_eq!(logs.len(), 3, "{report:#}");
    assert!(logs[0].contains(marker) && logs[1].contains(marker), "{logs:?}");
    assert_eq!(
        report["fetches"][0]["status"], 200,
        "the secret really went out: {report:#}"
    );
    let url = report["fetches"][0]["url"].as_str().unwrap();
    assert_eq!(url.matches(marker).count(), 2, "both query values: {url}");
    let outcome = &report["outcome"];
    for text in [&outcome["message"], &outcome["stack"], &outcome["causes"][0]["message"]] {
        assert!(text.as_str().is_some_and(|t| t.contains(marker)), "{outcome:#}");
    }
    assert_eq!(outcome["properties"]["detail"], marker, "{outcome:#}");
    let last_error = dead["delivery"]["last_error"].as_str().unwrap_or_default();
    assert!(last_error.contains(marker), "{:#}", dead["delivery"]);

    for (place, text) in stored_views(&server, &id, &delivery).await {
        assert_absent(&place, &text, &secret_forms);
    }
    let data = server.data.clone();
    server.stop().await;
    for form in &secret_forms {
        let found = grep(&data, form.as_bytes());
        assert!(found.is_empty(), "{form:?} is on disk in {found:?}");
    }
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn redact_all_leaves_no_form_of_the_payload_anywhere() {
    let api = FakeApi::start().await;
    let (server, _dir) = start("user.profile").await;
    let first = "ada.lovelace+pii@example.com";
    let second = "ada \"countess\" byron+2@example.org";
    let id = server
        .send(json!({"type": "user.profile", "data": {"email": first, "base": api.base()}}))
        .await;
    let done = server.wait_for_status(&id, "user.profile", "succeeded").await;
    assert_eq!(done["attempts"].as_array().map(Vec::len), Some(2), "{done:#}");
    let delivery = done["delivery"]["id"].as_str().unwrap().to_owned();
    // A second version of the data, run through the handler too.
    let patch = json!({"email": second}).to_string();
    let (status, _) = server
        .patch(&format!("/events/{id}"), "application/merge-patch+json", patch)
        .await;
    assert_eq!(status, 200);
    let (status, _) = post_json(&server, &format!("/deliveries/{delivery}/replay"), json!({})).await;
    assert_eq!(status, 202);
    server
        .wait_until("the replay ran", |s| {
            let path = format!("/deliveries/{delivery}");
            async move {
                let shown = s.get(&path).await;
                shown["attempts"].as_array().map(Vec::len) == Some(3) && shown["delivery"]["status"] == "succeeded"
            }
        })
        .await;
    let before = server.get(&format!("/deliveries/{delivery}")).await.to_string();
    let encoded = utf8_percent_encode(first, COMPONENT).to_string();
    assert!(
        before.contains(first) && before.contains(&encoded),
        "stored before: {before}"
    );

    let (_, said) = cli(&server, &["events", "redact", &id, "--all"]).await;
    assert_eq!(said.trim(), format!("{id} redacted"));

    let event = server.get(&format!("/events/{id}")).await;
    assert_eq!(event["event"]["event"]["data"], Value::Null, "{event:#}");
    assert_eq!(event["event"]["redacted"], json!(["data"]));
    let history = event["history"].as_array().expect("history");
    assert!(
        !history.is_empty() && history.iter().all(|v| v["data"].is_null()),
        "{event:#}"
    );
    let shown = server.get(&format!("/deliveries/{delivery}")).await;
    let attempts = shown["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["report"]["logs"][0]["message"], "syncing [redacted]");
    let error = attempts[0]["report"]["outcome"]["message"].as_str().unwrap_or_default();
    assert_eq!(error, "crm refused [redacted]", "{:#}", attempts[0]);

    let all_forms: Vec<String> = forms(first).into_iter().chain(forms(second)).collect();
    for (place, text) in stored_views(&server, &id, &delivery).await {
        assert_absent(&place, &text, &all_forms);
    }
    let data = server.data.clone();
    server.stop().await;
    compact_when_free(&data).await;
    for form in &all_forms {
        let found = grep(&data, form.as_bytes());
        assert!(found.is_empty(), "{form:?} is on disk in {found:?} after compaction");
    }
}

/// Compacts `folder` once a stopped server's isolate threads have let go of it.
async fn compact_when_free(folder: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match eddy::store::Store::compact(folder, 64 << 20) {
            Ok(_) => return,
            Err(e) if e.to_string().contains("in use") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("compaction: {e}"),
        }
    }
}
