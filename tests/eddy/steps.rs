//! Durable steps (`ctx.step`): the rules one invocation keeps (recorded results, recall,
//! unique names, JSON only, the size budget, redaction), then end to end with a fake CRM: a
//! retry and a replay recall what ran, a fresh replay and an edited event run it again.

use std::collections::HashMap;

use eddy::event::{Event, new_id};
use eddy::runtime::{InvocationReport, InvocationRequest};
use serde_json::{Value, json};

use crate::support::{load, logs, runtime};

async fn run(case: &str, recalled: HashMap<String, String>) -> InvocationReport {
    let rt = runtime();
    load(&rt, "steps_rules").await;
    let event = Event::from_value(json!({"type": "t", "data": {"case": case}}), "tests").unwrap();
    let request = InvocationRequest {
        idempotency_key: format!("{}:steps_rules", event.id),
        event,
        delivery_id: new_id(),
        attempt: 1,
        event_version: 1,
        recalled_steps: recalled,
    };
    rt.invoke("steps_rules", request).await
}

fn steps(report: &InvocationReport) -> Value {
    serde_json::to_value(report).unwrap()["steps"].clone()
}

fn failure(report: &InvocationReport) -> String {
    let value = serde_json::to_value(&report.outcome).unwrap();
    format!(
        "{}: {}",
        value["name"].as_str().unwrap_or(""),
        value["message"].as_str().unwrap_or("")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_step_records_its_json_result_and_a_recorded_one_is_returned_without_running() {
    let report = run("plain", HashMap::new()).await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert_eq!(
        logs(&report).trim(),
        r#"{"a":{"id":1,"at":"1970-01-01T00:00:00.000Z"},"b":"two","none":null}"#,
        "a result comes back as JSON carries it"
    );
    let ran = steps(&report);
    let names: Vec<_> = ran
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].clone(), s["status"].clone()))
        .collect();
    assert_eq!(
        names,
        [
            (json!("a"), json!("ran")),
            (json!("b"), json!("ran")),
            (json!("nothing"), json!("ran"))
        ]
    );
    assert_eq!(ran[0]["result"], json!({"id": 1, "at": "1970-01-01T00:00:00.000Z"}));

    let recalled = HashMap::from([("a".to_owned(), r#"{"id":41}"#.to_owned())]);
    let report = run("plain", recalled).await;
    assert!(logs(&report).contains(r#""a":{"id":41}"#), "{}", logs(&report));
    let again = steps(&report);
    assert_eq!(
        (&again[0]["status"], &again[0].get("result")),
        (&json!("recalled"), &None)
    );
    assert_eq!(again[1]["status"], "ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_unique_results_are_json_within_budget_and_a_throw_is_not_recorded() {
    let twice = run("twice", HashMap::new()).await;
    assert!(
        failure(&twice).contains("this name was used already"),
        "{}",
        failure(&twice)
    );

    let thrown = run("throws", HashMap::new()).await;
    assert!(failure(&thrown).contains("the CRM said no"));
    let recorded = steps(&thrown);
    assert_eq!(recorded[0]["status"], "ran");
    assert_eq!(recorded[1]["status"], "failed");
    assert_eq!(
        recorded[1].get("result"),
        None,
        "a step that threw runs again next time"
    );
    assert!(recorded[1]["error"].as_str().unwrap().contains("the CRM said no"));

    let large = run("large", HashMap::new()).await;
    assert!(
        failure(&large).starts_with("RangeError: ctx.step(\"big\")"),
        "{}",
        failure(&large)
    );
    assert!(steps(&large).is_null(), "nothing was recorded");
    let crowded = HashMap::from([("other".to_owned(), format!("\"{}\"", "y".repeat(200 * 1024)))]);
    let plain = run("plain", crowded).await;
    assert!(
        plain.outcome.is_success(),
        "recalled results not taken count for nothing"
    );

    let not_json = run("not json", HashMap::new()).await;
    assert!(
        failure(&not_json).contains("must be JSON-serialisable"),
        "{}",
        failure(&not_json)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_in_a_result_is_recorded_redacted_and_returned_as_recorded() {
    let report = run("secret", HashMap::new()).await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert_eq!(steps(&report)[0]["result"], json!({"token": "[secret:TEST_SECRET]"}));
    assert!(logs(&report).contains("no secret"), "{}", logs(&report));
}

/// A CRM that numbers what it creates and fails `notify` while `failing` is above zero.
#[derive(Default)]
struct Crm {
    calls: std::sync::Mutex<HashMap<String, usize>>,
    notified: std::sync::Mutex<Vec<String>>,
    failing: std::sync::atomic::AtomicUsize,
}

impl Crm {
    fn calls(&self, path: &str) -> usize {
        self.calls.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn crm_call(
    axum::extract::State(crm): axum::extract::State<std::sync::Arc<Crm>>,
    uri: axum::http::Uri,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    use std::sync::atomic::Ordering;
    let path = uri.path().to_owned();
    let n = {
        let mut calls = crm.calls.lock().unwrap();
        let n = calls.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    if path == "/notify" {
        if crm.failing.load(Ordering::SeqCst) > 0 {
            crm.failing.fetch_sub(1, Ordering::SeqCst);
            return (axum::http::StatusCode::BAD_GATEWAY, axum::Json(json!({})));
        }
        crm.notified
            .lock()
            .unwrap()
            .push(uri.query().unwrap_or_default().to_owned());
    }
    (axum::http::StatusCode::OK, axum::Json(json!({ "id": n })))
}

async fn start_crm() -> (std::sync::Arc<Crm>, String) {
    let crm = std::sync::Arc::new(Crm::default());
    let app = axum::Router::new()
        .fallback(axum::routing::post(crm_call))
        .with_state(crm.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (crm, base)
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_and_replays_recall_steps_that_ran_until_a_fresh_replay_or_an_edit() {
    use crate::server_support::TestServer;
    let (crm, base) = start_crm().await;
    crm.failing.store(1, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    crate::support::copy_dir(&crate::support::fixtures().join("../steps"), &handlers);
    let server = TestServer::start(&handlers, &dir.path().join("data"), "").await;
    let id = server
        .send(json!({"id": "s1", "type": "signup.done", "data": {"base": base, "plan": "free"}}))
        .await;
    let done = server.wait_for_status(&id, "contacts", "succeeded").await;
    let counts = |crm: &Crm| [crm.calls("/contacts"), crm.calls("/deals"), crm.calls("/notify")];
    assert_eq!(counts(&crm), [1, 1, 2], "the retry ran only the step that failed");
    assert_eq!(
        crm.notified.lock().unwrap().last().unwrap(),
        "contact=1&deal=1&plan=free"
    );
    let second = &done["attempts"][1]["report"]["steps"];
    let outcomes: Vec<_> = second
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["recalled", "recalled", "ran"], "{second}");

    let delivery = done["delivery"]["id"].as_str().unwrap().to_owned();
    let replay = |fresh: bool| {
        let mut args = vec![
            "replay".to_owned(),
            delivery.clone(),
            "--server".to_owned(),
            server.url(""),
        ];
        if fresh {
            args.push("--fresh".into());
        }
        tokio::task::spawn_blocking(move || crate::support::eddy_command().args(&args).output().unwrap())
    };
    let attempts_done = |n: usize| {
        let path = format!("/deliveries/{delivery}");
        let server = &server;
        async move {
            server
                .wait_until(&format!("{n} attempts"), |s| {
                    let path = path.clone();
                    async move {
                        let d = s.get(&path).await;
                        d["attempts"].as_array().map_or(0, Vec::len) == n && d["delivery"]["status"] == "succeeded"
                    }
                })
                .await
        }
    };
    assert!(replay(false).await.unwrap().status.success());
    attempts_done(3).await;
    assert_eq!(counts(&crm), [1, 1, 2], "a replay recalls every step that ran");

    let fresh = replay(true).await.unwrap();
    assert!(fresh.status.success(), "{}", String::from_utf8_lossy(&fresh.stderr));
    attempts_done(4).await;
    assert_eq!(counts(&crm), [2, 2, 3], "a fresh replay runs every step again");
    assert_eq!(
        crm.notified.lock().unwrap().last().unwrap(),
        "contact=2&deal=2&plan=free"
    );

    let patch = json!({"plan": "pro"}).to_string();
    let (status, _) = server.patch("/events/s1", "application/merge-patch+json", patch).await;
    assert_eq!(status, 200);
    assert!(replay(false).await.unwrap().status.success());
    attempts_done(5).await;
    assert_eq!(counts(&crm), [3, 3, 4], "the edited event's steps run again");
    assert_eq!(
        crm.notified.lock().unwrap().last().unwrap(),
        "contact=3&deal=3&plan=pro"
    );
    assert!(replay(false).await.unwrap().status.success());
    attempts_done(6).await;
    assert_eq!(
        counts(&crm),
        [3, 3, 4],
        "and are recalled for that version from then on"
    );

    let (status, refused) = server
        .post(
            &format!("/deliveries/{delivery}/replay?fresh=maybe"),
            "application/json",
            "",
        )
        .await;
    assert_eq!((status, &refused["error"]), (400, &json!("invalid_query")), "{refused}");
    let both = json!({"backfill": true, "handler": "contacts", "fresh": true}).to_string();
    let (status, refused) = server.post("/replays", "application/json", both).await;
    assert_eq!((status, &refused["error"]), (422, &json!("invalid_fresh")), "{refused}");
    let page = reqwest::get(server.url(&format!("/ui/deliveries/{delivery}")))
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains("/replay?fresh=true") && page.contains("Replay fresh"),
        "{page}"
    );
    assert!(page.contains("recalled: its recorded result, not run again"), "{page}");
    server.stop().await;
}
