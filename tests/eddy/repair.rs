//! Replay and backfill end to end: a handler fixed after its deliveries went dead, single and
//! concurrent replays, dry runs, paced jobs that can be cancelled, and backfills.

use serde_json::{Value, json};

use crate::server_support::*;
use crate::support::FakeApi;

const BROKEN: &str = "export default async (event) => { throw new NonRetryableError(`bug on ${event.id}`); };\n";
/// A fix that stays running until the test opens the fake API's gate.
const GATED_FIX: &str = "export const config = { allowNet: [\"127.0.0.1\"] };
export default async (event) => { await fetch(`${event.data.base}/gate`); };\n";
const FIXED: &str = "export default async (event) => { console.log(`fixed ${event.id}`); }; // fixed\n";

pub async fn post_json(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    server.post(path, "application/json", body.to_string()).await
}

async fn wait_job(server: &TestServer, id: &str, state: &str) -> Value {
    server
        .wait_until("the job finishes", |s| {
            let path = format!("/replays/{id}");
            async move { s.get(&path).await["state"] == state }
        })
        .await;
    server.get(&format!("/replays/{id}")).await
}

/// A server whose `orders.created` handler is broken, with `n` dead deliveries.
async fn dead_deliveries(n: usize) -> (TestServer, Vec<String>, tempfile::TempDir, tempfile::TempDir) {
    dead_deliveries_with(n, json!({})).await
}

/// [`dead_deliveries`] of events carrying `data`.
async fn dead_deliveries_with(
    n: usize,
    data: Value,
) -> (TestServer, Vec<String>, tempfile::TempDir, tempfile::TempDir) {
    let (folder, handlers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(handlers.path().join("orders.created.js"), BROKEN).unwrap();
    let server = TestServer::start(handlers.path(), folder.path(), "").await;
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(server.send(json!({"type": "orders.created", "data": data})).await);
    }
    for id in &ids {
        server.wait_for_status(id, "orders.created", "dead").await;
    }
    (server, ids, folder, handlers)
}

/// Replaces the broken handler with `code` and waits until the new version is in use.
async fn fix(server: &TestServer, handlers: &std::path::Path, code: &str) {
    let loaded_at = |h: Value| h["handlers"][0]["loaded_at"].clone();
    let before = loaded_at(server.get("/handlers").await);
    std::fs::write(handlers.join("orders.created.js"), code).unwrap();
    server
        .wait_until("the fixed handler is in use", |s| {
            let before = before.clone();
            async move { loaded_at(s.get("/handlers").await) != before }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_handler_and_a_filtered_bulk_replay_recover_dead_deliveries() {
    let (server, ids, _data, handlers) = dead_deliveries(3).await;
    fix(&server, handlers.path(), FIXED).await;

    let (status, dry) = post_json(
        &server,
        "/replays",
        json!({"handler": "orders.created", "error": "bug on", "dry_run": true}),
    )
    .await;
    assert_eq!((status, dry["count"].as_u64()), (200, Some(3)), "{dry}");
    let still = server.delivery(&ids[0], "orders.created").await;
    assert_eq!(still["delivery"]["status"], "dead", "a dry run changes nothing");

    let (status, job) = post_json(
        &server,
        "/replays",
        json!({"status": "dead", "handler": "orders.created"}),
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let job = wait_job(&server, job["id"].as_str().unwrap(), "done").await;
    assert_eq!(
        (job["total"].as_u64(), job["queued"].as_u64()),
        (Some(3), Some(3)),
        "{job}"
    );
    for id in &ids {
        let done = server.wait_for_status(id, "orders.created", "succeeded").await;
        let attempts = done["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "the first attempt stays in the history");
        assert_eq!(
            (attempts[0]["replay"].as_bool(), attempts[1]["replay"].as_bool()),
            (Some(false), Some(true))
        );
        assert_eq!(attempts[1]["report"]["logs"][0]["message"], format!("fixed {id}"));
    }
    let audit = server.get("/audit").await;
    assert_eq!(audit["audit"][0]["action"], "replay_job");
    assert_eq!(audit["audit"][0]["actor"], "api");
    server.stop().await;
}

/// Fails every attempt, retryable, with one retry 100 ms later.
const FLAKY_FOREVER: &str = "export const config = { retry: { schedule: [\"100ms\"] } };
export default async () => { throw new Error(`still down`); };\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_delivery_follows_the_retry_schedule_again() {
    let (folder, handlers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(handlers.path().join("orders.created.js"), FLAKY_FOREVER).unwrap();
    let server = TestServer::start(handlers.path(), folder.path(), "").await;
    let id = server.send(json!({"type": "orders.created", "data": {}})).await;
    let dead = server.wait_for_status(&id, "orders.created", "dead").await;
    assert_eq!(
        dead["attempts"].as_array().unwrap().len(),
        2,
        "the first delivery: two attempts"
    );
    let delivery = dead["delivery"]["id"].as_str().unwrap().to_owned();
    let (status, _) = post_json(&server, &format!("/deliveries/{delivery}/replay"), json!({})).await;
    assert_eq!(status, 202);
    // The replay gets the schedule again: its failed first attempt is retried, not dead.
    server
        .wait_until("the replay made its two attempts", |s| {
            let id = id.clone();
            async move {
                let d = s.delivery(&id, "orders.created").await;
                d["delivery"]["status"] == "dead" && d["attempts"].as_array().map_or(0, Vec::len) == 4
            }
        })
        .await;
    let done = server.delivery(&id, "orders.created").await;
    let replays: Vec<&Value> = done["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["replay"])
        .collect();
    assert_eq!(
        replays,
        [&json!(false), &json!(false), &json!(true), &json!(false)],
        "{done:#}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replaying_one_delivery_twice_at_once_runs_it_once() {
    let api = FakeApi::start().await;
    let (server, ids, _data, handlers) = dead_deliveries_with(1, json!({"base": api.base()})).await;
    // The replay stays running until the gate opens, so both requests find it queued or running.
    fix(&server, handlers.path(), GATED_FIX).await;
    let delivery = server.delivery(&ids[0], "orders.created").await["delivery"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/deliveries/{delivery}/replay");
    let (a, b) = tokio::join!(
        post_json(&server, &path, json!({})),
        post_json(&server, &path, json!({}))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 202], "{a:?} {b:?}");
    api.wait_for_hits("/gate", 1).await;
    api.open_gate();
    let done = server.wait_for_status(&ids[0], "orders.created", "succeeded").await;
    assert_eq!(done["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(api.hits("/gate"), 1, "the replay ran once");
    let (missing, answer) = post_json(&server, "/deliveries/nope/replay", json!({})).await;
    assert_eq!((missing, answer["error"].as_str()), (404, Some("not_found")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paced_replay_lets_new_events_through_and_can_be_cancelled() {
    let (server, _ids, _data, handlers) = dead_deliveries(12).await;
    std::fs::write(handlers.path().join("live.js"), "export default async () => {};\n").unwrap();
    fix(&server, handlers.path(), FIXED).await;
    // One item every 4 s: the job is still running long after the steps below, however
    // loaded the machine.
    let (_, job) = post_json(&server, "/replays", json!({"handler": "orders.created", "rate": 0.25})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    // While the job trickles, a new event goes straight through.
    let live = server.send(json!({"type": "live"})).await;
    server.wait_for_status(&live, "live", "succeeded").await;
    assert_eq!(server.get(&format!("/replays/{id}")).await["state"], "running");
    let (status, _) = server_delete(&server, &format!("/replays/{id}")).await;
    assert_eq!(status, 200);
    let job = wait_job(&server, &id, "cancelled").await;
    let queued = job["queued"].as_u64().unwrap();
    assert!((1..12).contains(&queued), "cancelled part way: {job}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_runs_stored_events_through_a_new_handler_once() {
    let (data, handlers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(
        handlers.path().join("placeholder.js"),
        "export default async () => {};\n",
    )
    .unwrap();
    let server = TestServer::start(handlers.path(), data.path(), "").await;
    let mut ids = Vec::new();
    for n in [1, 2] {
        ids.push(server.send(json!({"type": "signup.done", "data": n})).await);
    }
    let late = "export const on = \"signup.done\";\nexport default async (e) => console.log(`late ${e.data}`);\n";
    std::fs::write(handlers.path().join("late.js"), late).unwrap();
    server
        .wait_until("the new handler is loaded", |s| async move {
            s.get("/handlers").await["handlers"]
                .as_array()
                .is_some_and(|h| h.iter().any(|h| h["id"] == "late"))
        })
        .await;
    let request = json!({"backfill": true, "handler": "late", "type": "signup.done"});
    let (_, dry) = post_json(
        &server,
        "/replays",
        json!({"backfill": true, "handler": "late", "type": "signup.done", "dry_run": true}),
    )
    .await;
    assert_eq!(dry["count"], 2, "{dry}");
    let (_, job) = post_json(&server, "/replays", request.clone()).await;
    let job = wait_job(&server, job["id"].as_str().unwrap(), "done").await;
    assert_eq!(job["queued"], 2, "{job}");
    for id in &ids {
        server.wait_for_status(id, "late", "succeeded").await;
    }
    // The events have their delivery now: a dry run counts none, and the job takes none.
    let (_, dry) = post_json(
        &server,
        "/replays",
        json!({"backfill": true, "handler": "late", "type": "signup.*", "dry_run": true}),
    )
    .await;
    assert_eq!(dry["count"], 0, "{dry}");
    let (_, again) = post_json(&server, "/replays", request).await;
    let again = wait_job(&server, again["id"].as_str().unwrap(), "done").await;
    assert_eq!(
        (again["total"].as_u64(), again["queued"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );

    // Without a type, the handler's routes say which events it takes.
    let later = "export const on = [\"signup.*\", \"other.x\"];\nexport default async () => {};\n";
    std::fs::write(handlers.path().join("later.js"), later).unwrap();
    server
        .wait_until("the second handler is loaded", |s| async move {
            s.get("/handlers").await["handlers"]
                .as_array()
                .is_some_and(|h| h.iter().any(|h| h["id"] == "later"))
        })
        .await;
    let routed = json!({"backfill": true, "handler": "later"});
    let (_, dry) = post_json(
        &server,
        "/replays",
        json!({"backfill": true, "handler": "later", "dry_run": true}),
    )
    .await;
    assert_eq!(dry["count"], 2, "{dry}");
    let (_, job) = post_json(&server, "/replays", routed).await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_job(&server, &id, "done").await["queued"], 2);
    let path = format!("/replays/{id}?outcomes=true");
    server
        .wait_until("both backfilled deliveries succeed", |s| {
            let path = path.clone();
            async move { s.get(&path).await["outcomes"]["succeeded"] == 2 }
        })
        .await;
    let outcomes = server.get(&path).await["outcomes"].clone();
    assert_eq!(
        outcomes,
        json!({"succeeded": 2, "failed_again": 0, "waiting": 0, "gone": 0, "followed": 2})
    );
    let (status, refused) = post_json(
        &server,
        "/replays",
        json!({"backfill": true, "handler": "nope", "type": "x"}),
    )
    .await;
    assert_eq!((status, refused["error"].as_str()), (422, Some("unknown_handler")));
    server.stop().await;
}

#[tokio::test]
async fn a_bulk_replay_is_checked_before_it_is_previewed_or_started() {
    let (folder, handlers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = TestServer::start(handlers.path(), folder.path(), "").await;
    let refusals = [
        (json!({"status": "pending"}), "invalid_status"),
        (json!({"status": "bogus"}), "invalid_status"),
        (json!({"rate": 0}), "invalid_rate"),
        (json!({"rate": -1.5}), "invalid_rate"),
        (json!({"backfill": true, "type": "x"}), "invalid_backfill"),
        (json!({"backfill": true}), "invalid_backfill"),
    ];
    for (request, error) in refusals {
        for dry_run in [true, false] {
            let mut request = request.clone();
            request["dry_run"] = json!(dry_run);
            let (status, refused) = post_json(&server, "/replays", request.clone()).await;
            assert_eq!(
                (status, refused["error"].as_str()),
                (422, Some(error)),
                "{request}: {refused}"
            );
        }
    }
    let missing = reqwest::get(server.url("/replays/nope")).await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let missing: Value = serde_json::from_slice(&missing.bytes().await.unwrap()).unwrap();
    assert_eq!(missing["error"], "not_found", "{missing}");
    let (status, cancelled) = server_delete(&server, "/replays/nope").await;
    assert_eq!(
        (status, cancelled["error"].as_str()),
        (404, Some("not_found")),
        "{cancelled}"
    );
    server.stop().await;
}

async fn server_delete(server: &TestServer, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new().delete(server.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null),
    )
}
