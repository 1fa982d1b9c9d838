//! `[ingest] durable_ack`: with `true` (the default) a 202 means the event is on disk, so a
//! kill -9 just after it loses nothing; with `false` the 202 comes before the flush, the
//! event is still delivered, and only the store's flush interval (sled flushes every 500 ms)
//! is at risk: what was acknowledged longer ago than that survives a kill -9. Repairs (edit,
//! redact, delete, replay of one delivery) answer only once they are on disk.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::child::Serve;
use crate::crash::crash_config;
use crate::support::FakeApi;

/// Events posted by each of the clients.
const PER_CLIENT: usize = 50;
const CLIENTS: usize = 4;

/// Posts `CLIENTS * PER_CLIENT` events for the crash fixture (which reports each to the
/// fake API); every one must be acknowledged.
async fn post_all(addr: &str, api: &FakeApi) -> HashSet<String> {
    let clients = (0..CLIENTS).map(|c| {
        let (addr, base) = (addr.to_owned(), api.base());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut ids = Vec::new();
            for n in 0..PER_CLIENT {
                let id = format!("d-c{c}-{n}");
                let body = json!({"type": "orders.created", "id": id, "data": {"base": base}});
                let answer = http
                    .post(format!("http://{addr}/events"))
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("eddy answers");
                assert_eq!(answer.status(), 202, "{id}");
                ids.push(id);
            }
            ids
        })
    });
    let mut acked = HashSet::new();
    for client in clients.collect::<Vec<_>>() {
        acked.extend(client.await.expect("client"));
    }
    acked
}

/// Waits (at most 60 s) until the fake API has seen each of `ids`.
async fn wait_delivered(api: &FakeApi, ids: &HashSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = api.state.flaky_calls.lock().unwrap().clone();
        let missing: Vec<_> = ids.iter().filter(|id| !seen.contains_key(*id)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} events never delivered: {missing:?}",
            missing.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The delivery statuses of the stored events, failing for any event that is missing.
async fn stored_statuses(addr: &str, ids: &HashSet<String>) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for id in ids {
        let answer = http.get(format!("http://{addr}/events/{id}")).send().await.unwrap();
        assert_eq!(answer.status(), 200, "acknowledged event {id} is gone after a kill -9");
        let event: Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
        assert_eq!(event["event"]["event"]["id"], id.as_str(), "{event:#}");
        statuses.push(event["deliveries"][0]["status"].as_str().unwrap_or_default().to_owned());
    }
    statuses
}

fn config(dir: &std::path::Path, durable_ack: bool) -> std::path::PathBuf {
    let config = crash_config(dir);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}[ingest]\ndurable_ack = {durable_ack}\n")).unwrap();
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn durable_ack_false_delivers_and_keeps_what_is_older_than_the_flush_interval() {
    let api = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), false);
    let (eddy, addr) = Serve::start(&config).await;
    let acked = post_all(&addr, &api).await;
    wait_delivered(&api, &acked).await;
    // Four of sled's flush intervals: nothing acknowledged or recorded is that recent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    eddy.kill_9();

    let (eddy, addr) = Serve::start(&config).await;
    let statuses = stored_statuses(&addr, &acked).await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    // The successes were on disk too: nothing ran again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = api.state.flaky_calls.lock().unwrap().clone();
    let again: Vec<_> = calls.iter().filter(|(_, n)| **n > 1).collect();
    assert!(again.is_empty(), "delivered twice: {again:?}");
    drop(eddy);
}

#[tokio::test(flavor = "multi_thread")]
async fn durable_ack_true_keeps_every_event_acknowledged_just_before_a_kill_9() {
    let api = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), true);
    let (eddy, addr) = Serve::start(&config).await;
    let acked = post_all(&addr, &api).await;
    // No wait: the last 202 came a moment ago.
    eddy.kill_9();

    let (eddy, addr) = Serve::start(&config).await;
    stored_statuses(&addr, &acked).await;
    wait_delivered(&api, &acked).await;
    drop(eddy);
}

/// `GET /events/{id}`: the status and the JSON body.
async fn event(http: &reqwest::Client, addr: &str, id: &str) -> (u16, Value) {
    let answer = http.get(format!("http://{addr}/events/{id}")).send().await.unwrap();
    let status = answer.status().as_u16();
    (
        status,
        serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap_or_default(),
    )
}

/// Sends `request` and checks it was answered 200.
async fn ok(request: reqwest::RequestBuilder, what: &str) {
    let answer = request.send().await.unwrap();
    assert_eq!(answer.status(), 200, "{what}");
}

/// Repairs answer once they are on disk, as ingest does: edits, redactions and deletes made
/// just before a kill -9 are all there after the restart.
#[tokio::test(flavor = "multi_thread")]
async fn repairs_answered_just_before_a_kill_9_are_kept() {
    let api = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), true);
    let (eddy, addr) = Serve::start(&config).await;
    let mut ids: Vec<String> = post_all(&addr, &api).await.into_iter().collect();
    ids.sort();
    let http = reqwest::Client::new();
    let (edited, rest) = ids.split_at(ids.len() / 2);
    let (redacted, deleted) = rest.split_at(rest.len() / 2);
    for id in redacted {
        let redact = http
            .post(format!("http://{addr}/events/{id}/redact"))
            .header("content-type", "application/json")
            .body(r#"{"fields": ["data.base"]}"#);
        ok(redact, &format!("redaction of {id}")).await;
    }
    for id in deleted {
        ok(
            http.delete(format!("http://{addr}/events/{id}")),
            &format!("delete of {id}"),
        )
        .await;
    }
    // The edits last: a commit after them would carry them to disk too.
    for id in edited {
        let patch = http
            .patch(format!("http://{addr}/events/{id}"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"edited": true}"#);
        ok(patch, &format!("edit of {id}")).await;
    }
    eddy.kill_9();

    let (eddy, addr) = Serve::start(&config).await;
    for id in edited {
        let (_, found) = event(&http, &addr, id).await;
        assert_eq!(
            found["event"]["event"]["data"]["edited"], true,
            "edit of {id} kept: {found:#}"
        );
    }
    for id in redacted {
        let (_, found) = event(&http, &addr, id).await;
        let data = &found["event"]["event"]["data"];
        assert!(
            data.is_object() && data.get("base").is_none(),
            "redaction of {id} kept: {found:#}"
        );
    }
    for id in deleted {
        assert_eq!(event(&http, &addr, id).await.0, 404, "delete of {id} kept");
    }
    drop(eddy);
}

/// A replay answered 202 just before a kill -9 runs after the restart: the queued delivery
/// was on disk before the answer.
#[tokio::test(flavor = "multi_thread")]
async fn replays_answered_just_before_a_kill_9_run_after_the_restart() {
    let api = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), true);
    let (eddy, addr) = Serve::start(&config).await;
    let acked = post_all(&addr, &api).await;
    wait_delivered(&api, &acked).await;
    let http = reqwest::Client::new();
    for id in &acked {
        let (_, found) = event(&http, &addr, id).await;
        let delivery = found["deliveries"][0]["id"].as_str().expect("a delivery").to_owned();
        let replay = http.post(format!("http://{addr}/deliveries/{delivery}/replay"));
        let answer = replay.send().await.unwrap();
        assert_eq!(answer.status(), 202, "replay of {delivery}");
    }
    eddy.kill_9();

    let (eddy, _addr) = Serve::start(&config).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let calls = api.state.flaky_calls.lock().unwrap().clone();
        let once: Vec<&String> = acked
            .iter()
            .filter(|id| calls.get(*id).is_none_or(|n| *n < 2))
            .collect();
        if once.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{} replays lost: {once:?}", once.len());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    drop(eddy);
}
