//! Hot reload of helpers: with `eddy serve` watching the handlers folder, a change to a
//! helper under `_lib/` (even one imported through another helper) is what the handlers
//! importing it run next, while a handler importing nothing keeps working through it,
//! including a delivery in flight at that moment.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::server_support::TestServer;

/// A fake API whose `/gate` answers only once the test opens it.
struct Gate {
    arrived: AtomicUsize,
    open: watch::Sender<bool>,
}

async fn start_gate() -> (String, Arc<Gate>) {
    let gate = Arc::new(Gate {
        arrived: AtomicUsize::new(0),
        open: watch::channel(false).0,
    });
    let app = Router::new().route("/gate", get(pass_gate)).with_state(gate.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, gate)
}

async fn pass_gate(State(gate): State<Arc<Gate>>) -> &'static str {
    let mut open = gate.open.subscribe();
    gate.arrived.fetch_add(1, Ordering::SeqCst);
    let _ = open.wait_for(|o| *o).await;
    "through"
}

/// The attempts' console lines of the delivery of `id` to `handler`, once it succeeded.
async fn logs_of(server: &TestServer, id: &str, handler: &str) -> Vec<String> {
    let done = server.wait_for_status(id, handler, "succeeded").await;
    let attempts = done["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "one attempt, which succeeded: {done:#}");
    let logs = attempts[0]["report"]["logs"].as_array().unwrap();
    logs.iter()
        .filter_map(|l| l["message"].as_str().map(str::to_owned))
        .collect()
}

/// `GET /handlers`' entry for `id`.
async fn status_of(server: &TestServer, id: &str) -> Value {
    let all = server.get("/handlers").await;
    let found = all["handlers"]
        .as_array()
        .and_then(|h| h.iter().find(|h| h["id"] == id))
        .cloned();
    found.unwrap_or_else(|| panic!("no handler {id} in {all}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_helper_is_run_by_its_importers_and_disturbs_no_other_handler() {
    let (base, gate) = start_gate().await;
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    crate::support::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reload"),
        &handlers,
    );
    let server = TestServer::start(&handlers, &dir.path().join("data"), "").await;

    let before = server.send(json!({"type": "greet", "data": {"name": "Ada"}})).await;
    assert_eq!(logs_of(&server, &before, "greet").await, ["hello v1 Ada"]);
    let loaded_before = status_of(&server, "greet").await["loaded_at"].clone();
    assert!(loaded_before.is_string(), "greet is loaded");

    // A delivery of the other handler is in flight, held at the gate, while the helper
    // that greet imports through _lib/greet.js changes.
    let held = server
        .send(json!({"type": "steady", "data": {"base": base, "n": 1}}))
        .await;
    server
        .wait_until("the steady delivery waits at the gate", |_| {
            let gate = gate.clone();
            async move { gate.arrived.load(Ordering::SeqCst) == 1 }
        })
        .await;
    std::fs::write(
        handlers.join("_lib/words.js"),
        "export const greeting = \"bonjour v2\";\n",
    )
    .unwrap();
    server
        .wait_until("greet is reloaded", |s| {
            let before = loaded_before.clone();
            async move { status_of(s, "greet").await["loaded_at"] != before }
        })
        .await;
    let greet = status_of(&server, "greet").await;
    assert_eq!(
        (&greet["loaded"], &greet["error"]),
        (&json!(true), &Value::Null),
        "{greet}"
    );

    let after = server.send(json!({"type": "greet", "data": {"name": "Grace"}})).await;
    assert_eq!(logs_of(&server, &after, "greet").await, ["bonjour v2 Grace"]);

    gate.open.send_replace(true);
    assert_eq!(logs_of(&server, &held, "steady").await, ["steady through 1"]);
    let next = server
        .send(json!({"type": "steady", "data": {"base": base, "n": 2}}))
        .await;
    assert_eq!(logs_of(&server, &next, "steady").await, ["steady through 2"]);
    let steady = status_of(&server, "steady").await;
    assert_eq!(
        (&steady["loaded"], &steady["error"]),
        (&json!(true), &Value::Null),
        "{steady}"
    );
    server.stop().await;
}
