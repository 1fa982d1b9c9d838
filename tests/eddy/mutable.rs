//! Mutable events end to end: edit then replay, delete and redact with nothing left behind
//! (through the API, and on disk after compaction), bulk operations by filter, and retention.

use serde_json::{Value, json};

use crate::repair::post_json;
use crate::server_support::*;
use crate::support::grep;

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_event_is_replayed_with_its_new_data() {
    let (data, handlers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let handler = r#"export default async (event, ctx) => {
  console.log(`key ${ctx.idempotencyKey} version ${ctx.eventVersion}`);
  if (!event.data.email.includes("@")) throw new NonRetryableError(`bad email ${event.data.email}`);
  console.log(`welcome ${event.data.email}`);
};
"#;
    std::fs::write(handlers.path().join("user.signup.js"), handler).unwrap();
    let server = TestServer::start(handlers.path(), data.path(), "").await;
    let id = server
        .send(json!({"type": "user.signup", "data": {"email": "ada.example.com", "plan": "pro"}}))
        .await;
    let dead = server.wait_for_status(&id, "user.signup", "dead").await;
    let delivery = dead["delivery"]["id"].as_str().unwrap().to_owned();

    let patch = json!({"email": "ada@example.com"}).to_string();
    let (status, edited) = server
        .patch(&format!("/events/{id}"), "application/merge-patch+json", patch)
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (&edited["event"]["version"], &edited["changed"]),
        (&json!(2), &json!(true))
    );
    // The same patch again changes nothing: no version, no history, no audit entry.
    let audited = server.get("/audit").await["audit"].as_array().map_or(0, Vec::len);
    assert!(audited >= 1, "the first edit was audited");
    let same = json!({"email": "ada@example.com"}).to_string();
    let (status, again) = server
        .patch(&format!("/events/{id}"), "application/merge-patch+json", same)
        .await;
    assert_eq!(
        (status, &again["changed"], &again["event"]["version"]),
        (200, &json!(false), &json!(2))
    );
    assert_eq!(
        server.get("/audit").await["audit"].as_array().map_or(0, Vec::len),
        audited
    );
    let event = server.get(&format!("/events/{id}")).await;
    assert_eq!(
        event["event"]["event"]["data"],
        json!({"email": "ada@example.com", "plan": "pro"})
    );
    assert_eq!(event["history"][0]["data"]["email"], "ada.example.com");

    post_json(&server, &format!("/deliveries/{delivery}/replay"), json!({})).await;
    let done = server.wait_for_status(&id, "user.signup", "succeeded").await;
    let logs = |n: usize| -> Vec<Value> {
        let lines = done["attempts"][n]["report"]["logs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        lines.into_iter().map(|l| l["message"].clone()).collect()
    };
    assert_eq!(logs(0), [json!(format!("key {id}:user.signup version 1"))]);
    // The edited event is a new version: its idempotency key changes with it.
    assert_eq!(
        logs(1),
        [
            json!(format!("key {id}:user.signup:v2 version 2")),
            json!("welcome ada@example.com")
        ]
    );

    let (status, _) = server
        .patch("/events/nope", "application/merge-patch+json", "{}".to_owned())
        .await;
    assert_eq!(status, 404);
    let (status, answer) = server
        .patch(
            &format!("/events/{id}"),
            "application/merge-patch+json",
            "{oops".to_owned(),
        )
        .await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_json")));
    let (status, _) = server
        .patch(&format!("/events/{id}"), "text/plain", "{}".to_owned())
        .await;
    assert_eq!(status, 415);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_event_leaves_no_trace_after_compaction() {
    let data = tempfile::tempdir().unwrap();
    let folder = data.path().join("store");
    let (server, _handlers) = signup_server(&folder).await;
    let marker = "erase-me-4b7d1c@example.com";
    let gone = server
        .send(json!({"type": "user.signup", "data": {"email": marker}}))
        .await;
    let kept = server
        .send(json!({"type": "user.signup", "data": {"email": "stays@example.com"}}))
        .await;
    server.wait_for_status(&gone, "user.signup", "succeeded").await;
    server.wait_for_status(&kept, "user.signup", "succeeded").await;
    // The marker is also written into the event's history by an edit.
    let (status, edited) = server
        .patch(
            &format!("/events/{gone}"),
            "application/json",
            json!({"note": marker}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["event"]["version"], 2, "{edited}");
    let deleted = reqwest::Client::new()
        .delete(server.url(&format!("/events/{gone}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(
        reqwest::get(server.url(&format!("/events/{gone}")))
            .await
            .unwrap()
            .status()
            == 404
    );
    let audit = server.get("/audit").await;
    assert_eq!(audit["audit"][0]["action"], "delete");
    assert!(!audit.to_string().contains(marker), "the audit log holds no data");
    let server = server.restart("").await;
    server.stop().await;

    compact_when_free(&folder).await;
    let found = grep(&folder, marker.as_bytes());
    assert!(found.is_empty(), "the marker is still in {found:?}");
    assert!(!grep(&folder, b"stays@example.com").is_empty(), "other events are kept");
}

/// A server storing in `folder` whose `user.signup` handler logs the event's email; keep the
/// returned folder of handlers alive as long as the server.
async fn signup_server(folder: &std::path::Path) -> (TestServer, tempfile::TempDir) {
    let handlers = tempfile::tempdir().unwrap();
    let logger = "export default async (e) => console.log(`hi ${e.data.email}`);\n";
    std::fs::write(handlers.path().join("user.signup.js"), logger).unwrap();
    (TestServer::start(handlers.path(), folder, "").await, handlers)
}

/// Compacts `folder` once a stopped server's isolate threads have let go of it (a moment
/// after the stop).
async fn compact_when_free(folder: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match eddy::store::Store::compact(folder, 64 << 20) {
            Ok(_) => return,
            Err(e) if e.to_string().contains("in use") && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("compaction: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redacted_field_is_unreadable_through_eddy_and_gone_after_compaction() {
    let data = tempfile::tempdir().unwrap();
    let folder = data.path().join("store");
    let (server, _handlers) = signup_server(&folder).await;
    let marker = "redact-me-91ab3e@example.com";
    let id = server
        .send(json!({"type": "user.signup", "data": {"email": marker, "plan": "pro"}}))
        .await;
    server.wait_for_status(&id, "user.signup", "succeeded").await;
    let (status, _) = post_json(
        &server,
        &format!("/events/{id}/redact"),
        json!({"fields": ["data.email"]}),
    )
    .await;
    assert_eq!(status, 200);
    let event = server.get(&format!("/events/{id}")).await;
    assert_eq!(event["event"]["event"]["data"], json!({"plan": "pro"}));
    assert_eq!(event["event"]["redacted"], json!(["data.email"]));
    let delivery = server.delivery(&id, "user.signup").await;
    assert_eq!(delivery["attempts"][0]["report"]["logs"][0]["message"], "hi [redacted]");
    for path in [
        format!("/events/{id}"),
        "/events".into(),
        "/deliveries".into(),
        "/audit".into(),
    ] {
        assert!(
            !server.get(&path).await.to_string().contains(marker),
            "{path} still shows the value"
        );
    }
    let (status, answer) = post_json(&server, &format!("/events/{id}/redact"), json!({"fields": ["a..b"]})).await;
    assert_eq!((status, answer["error"].as_str()), (422, Some("invalid_field")));
    // `data.` may be left out, as with `eddy events edit --set`.
    let (status, _) = post_json(&server, &format!("/events/{id}/redact"), json!({"fields": ["email"]})).await;
    assert_eq!(status, 200);
    server.stop().await;
    compact_when_free(&folder).await;
    assert!(grep(&folder, marker.as_bytes()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_removes_expired_deliveries_and_events_and_counts_them() {
    let (data, handlers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(handlers.path().join("tick.js"), "export default async () => {};\n").unwrap();
    let config = "[retention]\nsucceeded_deliveries = \"100ms\"\nevents = \"400ms\"\ninterval_ms = 50";
    let server = TestServer::start(handlers.path(), data.path(), config).await;
    let id = server.send(json!({"type": "tick"})).await;
    let delivery = server.wait_for_status(&id, "tick", "succeeded").await["delivery"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .wait_until("the event expired", |s| {
            let path = format!("/events/{id}");
            async move { reqwest::get(s.url(&path)).await.unwrap().status() == 404 }
        })
        .await;
    assert_eq!(
        reqwest::get(server.url(&format!("/deliveries/{delivery}")))
            .await
            .unwrap()
            .status(),
        404
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("eddy_retention_removed_total{kind=\"deliveries\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("eddy_retention_removed_total{kind=\"events\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_delete_and_redact_by_filter_with_dry_runs() {
    let (data, handlers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = TestServer::start(handlers.path(), data.path(), "").await;
    let mut ids = Vec::new();
    for (user, email) in [("u1", "a@x.io"), ("u1", "b@x.io"), ("u2", "c@x.io")] {
        ids.push(
            server
                .send(json!({"type": "user.updated", "data": {"user_id": user, "email": email}}))
                .await,
        );
    }
    let forget_u1 = json!({"where": {"data.user_id": "u1"}, "dry_run": true});
    let (status, dry) = post_json(&server, "/events-bulk/delete", forget_u1).await;
    assert_eq!((status, dry["count"].as_u64()), (200, Some(2)), "{dry}");
    assert_eq!(
        server.get("/events").await["events"].as_array().unwrap().len(),
        3,
        "a dry run changes nothing"
    );
    let (_, done) = post_json(&server, "/events-bulk/delete", json!({"where": {"data.user_id": "u1"}})).await;
    assert_eq!(done["count"], 2);
    let left = server.get("/events").await;
    assert_eq!(left["events"].as_array().unwrap().len(), 1);
    assert_eq!(left["events"][0]["event"]["id"], ids[2].as_str());

    let redact = json!({"type": "user.updated", "where": {"data.user_id": "u2"}, "fields": ["data.email"]});
    let (_, done) = post_json(&server, "/events-bulk/redact", redact).await;
    assert_eq!(done["count"], 1);
    let event = server.get(&format!("/events/{}", ids[2])).await;
    assert_eq!(event["event"]["event"]["data"], json!({"user_id": "u2"}));
    let audit = server.get("/audit").await.to_string();
    assert!(audit.contains("bulk_redact") && audit.contains("bulk_delete"));
    assert!(!audit.contains("c@x.io"), "the audit log holds no data");

    // Bulk routes live outside /events/, so any id stays reachable there.
    server.send(json!({"type": "x", "id": "bulk-delete"})).await;
    assert_eq!(
        server.get("/events/bulk-delete").await["event"]["event"]["id"],
        "bulk-delete"
    );

    let (status, refused) = post_json(&server, "/events-bulk/delete", json!({})).await;
    assert_eq!((status, refused["error"].as_str()), (422, Some("no_filter")));
    let (status, refused) = post_json(&server, "/events-bulk/delete", json!({"where": {"user_id": "u2"}})).await;
    assert_eq!((status, refused["error"].as_str()), (422, Some("invalid_where")));
    server.stop().await;
}
