//! Per-key order (`config.orderBy`): a fake CRM that checks, per handler and account, that
//! changes arrive one at a time and in the order they were sent; a dead delivery that holds
//! its key (`blocked`, replayed after a fix, or skipped from the CLI), one that does not
//! (`onDead: "continue"`), a restart in between, and a backfill.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::server_support::TestServer;
use crate::support::copy_dir;

/// (handler, account)
type Key = (String, String);

#[derive(Default)]
struct Crm {
    /// The changes applied, per handler and account, as they arrived.
    applied: Mutex<HashMap<Key, Vec<u64>>>,
    in_flight: Mutex<HashMap<Key, usize>>,
    /// Calls that came while another of the same handler and account was in flight.
    overlaps: AtomicUsize,
    busy: AtomicUsize,
    most_busy: AtomicUsize,
}

impl Crm {
    fn applied(&self, handler: &str, account: &str) -> Vec<u64> {
        let key = (handler.to_owned(), account.to_owned());
        self.applied.lock().unwrap().get(&key).cloned().unwrap_or_default()
    }

    fn count(&self, handler: &str) -> usize {
        let applied = self.applied.lock().unwrap();
        applied
            .iter()
            .filter(|((h, _), _)| h == handler)
            .map(|(_, ns)| ns.len())
            .sum()
    }
}

async fn apply(State(crm): State<Arc<Crm>>, Json(body): Json<Value>) -> StatusCode {
    let text = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    let key = (
        text("handler"),
        body["account"].to_string().trim_matches('"').to_owned(),
    );
    {
        let mut in_flight = crm.in_flight.lock().unwrap();
        let n = in_flight.entry(key.clone()).or_default();
        *n += 1;
        if *n > 1 {
            crm.overlaps.fetch_add(1, Ordering::SeqCst);
        }
    }
    let busy = crm.busy.fetch_add(1, Ordering::SeqCst) + 1;
    crm.most_busy.fetch_max(busy, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(5)).await;
    crm.busy.fetch_sub(1, Ordering::SeqCst);
    *crm.in_flight.lock().unwrap().get_mut(&key).unwrap() -= 1;
    if body["fail"] == true {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let n = body["n"].as_u64().unwrap_or(u64::MAX);
    crm.applied.lock().unwrap().entry(key).or_default().push(n);
    StatusCode::OK
}

async fn start_crm() -> (Arc<Crm>, String) {
    let crm = Arc::new(Crm::default());
    let app = Router::new()
        .route("/apply", axum::routing::post(apply))
        .with_state(crm.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (crm, base)
}

/// The CRM's failures here are on cue, not a reason to stop calling it.
const NO_BREAKER: &str = "[breaker]\nfailures = 1000\n";

/// A server over a copy of the ordering fixtures (`sync.js` blocks on a dead delivery,
/// `audit.js` continues).
async fn start(dir: &Path) -> TestServer {
    let handlers = dir.join("handlers");
    copy_dir(&fixtures("ordering"), &handlers);
    TestServer::start(&handlers, &dir.join("data"), NO_BREAKER).await
}

fn fixtures(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Sends change `n` of `account` (event id `<account>-<n>`).
async fn change(server: &TestServer, base: &str, account: &str, n: u64, fail: bool) -> String {
    let mut data = json!({"base": base, "account": {"id": account}, "n": n});
    if fail {
        data["fail"] = json!(true);
    }
    server
        .send(json!({"id": format!("{account}-{n}"), "type": "accounts.updated", "data": data}))
        .await
}

async fn wait_for_count(server: &TestServer, crm: &Crm, handler: &str, n: usize) {
    server
        .wait_until(&format!("{handler} applied {n} changes"), |_| async move {
            crm.count(handler) >= n
        })
        .await;
}

fn id_of(delivery: &Value) -> String {
    delivery["delivery"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_runs_at_a_time_in_ingest_order_while_keys_run_side_by_side() {
    let (crm, base) = start_crm().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    // 20 changes to each of 10 accounts, each account's in a row, in one batch: unordered,
    // a handler would run several changes of one account at once.
    let events: Vec<Value> = (0..200u64)
        .map(|n| {
            let data = json!({"base": base, "account": {"id": format!("acct{}", n / 20)}, "n": n});
            json!({"id": format!("e{n}"), "type": "accounts.updated", "data": data})
        })
        .collect();
    let (status, answer) = server
        .post("/events", "application/json", Value::Array(events).to_string())
        .await;
    assert_eq!(status, 202, "{answer}");
    wait_for_count(&server, &crm, "sync", 200).await;
    wait_for_count(&server, &crm, "audit", 200).await;
    for handler in ["sync", "audit"] {
        for a in 0..10u64 {
            let expected: Vec<u64> = (a * 20..a * 20 + 20).collect();
            assert_eq!(crm.applied(handler, &format!("acct{a}")), expected, "{handler} acct{a}");
        }
    }
    assert_eq!(
        crm.overlaps.load(Ordering::SeqCst),
        0,
        "two changes of one account at once"
    );
    let most = crm.most_busy.load(Ordering::SeqCst);
    assert!(
        most > 1,
        "accounts apart never ran side by side (at most {most} at once)"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_delivery_blocks_its_key_across_a_restart_until_replayed_or_skipped() {
    let (crm, base) = start_crm().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    change(&server, &base, "x", 0, true).await;
    let dead = server.wait_for_status("x-0", "sync", "dead").await;
    assert_eq!(dead["delivery"]["in_line"], true, "{dead}");
    for n in 1..3 {
        change(&server, &base, "x", n, false).await;
        change(&server, &base, "y", n, false).await;
    }
    wait_for_count(&server, &crm, "sync", 2).await;
    assert_eq!(crm.applied("sync", "y"), [1, 2], "another key is not held");
    // The audit handler continues past its dead delivery.
    wait_for_count(&server, &crm, "audit", 4).await;
    assert_eq!(crm.applied("audit", "x"), [1, 2]);

    let handlers = server.get("/handlers").await;
    let declared = |id: &str| {
        let h = handlers["handlers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == id)
            .cloned();
        let h = h.unwrap_or_else(|| panic!("no {id} in {handlers}"));
        (h["order_by"].clone(), h["on_dead"].clone())
    };
    assert_eq!(declared("sync"), (json!("data.account.id"), json!("block")));
    assert_eq!(declared("audit"), (json!("data.account.id"), json!("continue")));

    let blocked = server.delivery("x-1", "sync").await;
    assert_eq!(blocked["delivery"]["status"], "blocked", "{blocked}");
    assert_eq!(blocked["blocked_by"], dead["delivery"]["id"], "{blocked}");
    let listed = server.get("/deliveries?status=blocked&handler=sync").await;
    assert_eq!(listed["deliveries"].as_array().map(Vec::len), Some(2), "{listed}");
    let metrics = server.metrics().await;
    let gauge = [("handler", "sync"), ("status", "blocked")];
    assert_eq!(crate::support::metric_sum(&metrics, "eddy_deliveries", &gauge), 2);

    // Still held after a restart; the fixed event, replayed, runs first.
    let server = server.restart(NO_BREAKER).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(crm.applied("sync", "x").is_empty());
    assert_eq!(server.delivery("x-2", "sync").await["delivery"]["status"], "blocked");
    let (status, _) = server
        .patch(
            "/events/x-0",
            "application/merge-patch+json",
            json!({"fail": null}).to_string(),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = server
        .post(&format!("/deliveries/{}/replay", id_of(&dead)), "application/json", "")
        .await;
    assert_eq!(status, 202, "{answer}");
    wait_for_count(&server, &crm, "sync", 5).await;
    assert_eq!(crm.applied("sync", "x"), [0, 1, 2]);

    // Skipped from the command line, a dead delivery lets its key move on.
    change(&server, &base, "z", 0, true).await;
    let dead = server.wait_for_status("z-0", "sync", "dead").await;
    change(&server, &base, "z", 1, false).await;
    server.wait_for_status("z-1", "sync", "blocked").await;
    let skip = |id: String| {
        let url = server.url("");
        tokio::task::spawn_blocking(move || {
            crate::support::eddy_command()
                .args(["deliveries", "skip", &id, "--server", &url])
                .output()
                .expect("eddy runs")
        })
    };
    let out = skip(id_of(&dead)).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("skipped"));
    server.wait_for_status("z-1", "sync", "succeeded").await;
    assert_eq!(crm.applied("sync", "z"), [1]);
    assert_eq!(server.delivery("z-0", "sync").await["delivery"]["status"], "dead");
    let again = skip(id_of(&dead)).await.unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("holds no key's line"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_runs_each_keys_events_in_ingest_order() {
    let (crm, base) = start_crm().await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    for n in 0..30u64 {
        change(&server, &base, &format!("b{}", n % 3), n, false).await;
    }
    wait_for_count(&server, &crm, "sync", 30).await;
    server.stop().await;
    copy_dir(&fixtures("ordering-late"), &dir.path().join("handlers"));
    let server = TestServer::start(&dir.path().join("handlers"), &dir.path().join("data"), "").await;
    let request = json!({"backfill": true, "handler": "late"});
    let (status, job) = server.post("/replays", "application/json", request.to_string()).await;
    assert_eq!(status, 202, "{job}");
    wait_for_count(&server, &crm, "late", 30).await;
    for a in 0..3u64 {
        let expected: Vec<u64> = (0..10).map(|i| i * 3 + a).collect();
        assert_eq!(crm.applied("late", &format!("b{a}")), expected);
    }
    assert_eq!(crm.overlaps.load(Ordering::SeqCst), 0);
    server.stop().await;
}
