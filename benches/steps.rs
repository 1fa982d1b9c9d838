//! What durable steps save: two handlers make the same three CRM calls for every event (create
//! a contact, open a deal, notify), one plainly and one with each call in `ctx.step`. The
//! notify call fails the first time for every event, so each delivery is retried once; then
//! every delivery is replayed. The fake CRM counts the calls each handler made.
//!
//! Run it with `cargo bench --bench steps`.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;

const EVENTS: usize = 200;

#[derive(Default)]
struct Crm {
    /// Calls per handler.
    calls: Mutex<HashMap<String, usize>>,
    /// (handler, event) pairs whose notify failed once already.
    failed_once: Mutex<HashSet<(String, String)>>,
}

impl Crm {
    fn calls(&self, handler: &str) -> usize {
        self.calls.lock().unwrap().get(handler).copied().unwrap_or(0)
    }
}

async fn call(
    State(crm): State<Arc<Crm>>,
    UrlPath((handler, what, event)): UrlPath<(String, String, String)>,
) -> (StatusCode, &'static str) {
    *crm.calls.lock().unwrap().entry(handler.clone()).or_default() += 1;
    if what == "notify" && crm.failed_once.lock().unwrap().insert((handler, event)) {
        return (StatusCode::BAD_GATEWAY, "{}");
    }
    (StatusCode::OK, r#"{"id":1}"#)
}

async fn start_crm() -> (Arc<Crm>, String) {
    let crm = Arc::new(Crm::default());
    let app = Router::new()
        .route("/{handler}/{what}/{event}", axum::routing::post(call))
        .with_state(crm.clone());
    let base = crate::support::serve_loopback(app).await;
    (crm, base)
}

/// `plain.js` makes the three calls; `stepped.js` makes each in a step.
fn write_handlers(dir: &Path) {
    let head = "export const on = \"work\";\n\
        export const config = { allowNet: [\"127.0.0.1\"], retry: { schedule: [\"10ms\"] } };\n";
    let call = "const call = async (what) => {\n\
          const res = await fetch(`${e.data.base}/${ctx.handler}/${what}/${e.id}`, { method: \"POST\" });\n\
          if (!res.ok) throw new Error(`${what} answered ${res.status}`);\n\
          return await res.json();\n};\n";
    let plain = format!(
        "{head}export default async (e, ctx) => {{\n{call}\
         await call(\"contacts\");\nawait call(\"deals\");\nawait call(\"notify\");\n}};\n"
    );
    let stepped = format!(
        "{head}export default async (e, ctx) => {{\n{call}\
         await ctx.step(\"contact\", () => call(\"contacts\"));\n\
         await ctx.step(\"deal\", () => call(\"deals\"));\n\
         await ctx.step(\"notify\", () => call(\"notify\"));\n}};\n"
    );
    std::fs::create_dir_all(dir).expect("handlers folder");
    std::fs::write(dir.join("plain.js"), plain).expect("handler");
    std::fs::write(dir.join("stepped.js"), stepped).expect("handler");
}

/// Polls `GET {url}{path}` until `done` holds for its JSON, at most two minutes.
async fn wait_for(http: &reqwest::Client, url: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(answer) = http.get(url).send().await
            && let Ok(bytes) = answer.bytes().await
            && let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && done(&json)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting on {url}");
}

async fn succeeded(http: &reqwest::Client, url: &str, handler: &str) -> usize {
    let list = format!("{url}/deliveries?status=succeeded&handler={handler}&limit=1000");
    let answer = http.get(list).send().await.expect("list");
    let json: serde_json::Value = serde_json::from_slice(&answer.bytes().await.expect("body")).expect("json");
    json["deliveries"].as_array().map_or(0, Vec::len)
}

fn main() {
    let (runtime, folder) = support::begin("steps");
    println!(
        "{EVENTS} events, each delivered to 2 handlers that make 3 calls (contact, deal, notify); \
         notify fails once per event, so each delivery is retried once; then every delivery is replayed\n"
    );
    let (first, replay) = runtime.block_on(run(folder.path()));
    println!(
        "| handler | calls, deliveries with their retry | calls, replay of every delivery | per delivery, in all |"
    );
    println!("|---|--:|--:|--:|");
    for handler in ["plain", "stepped"] {
        let (a, b) = (first[handler], replay[handler]);
        let per = (a + b) as f64 / EVENTS as f64;
        println!("| {handler} | {a} | {b} | {per:.1} |");
    }
    let saved = first["plain"] + replay["plain"] - first["stepped"] - replay["stepped"];
    println!(
        "\ncalls saved by steps: {saved} of {}",
        first["plain"] + replay["plain"]
    );
    support::machine::print_end();
}

async fn run(folder: &Path) -> (HashMap<&'static str, usize>, HashMap<&'static str, usize>) {
    let (crm, base) = start_crm().await;
    write_handlers(&folder.join("handlers"));
    // Notify's failures are on cue, not a reason to stop calling the CRM.
    let server = support::in_process::start_project(folder, "[breaker]\nfailures = 100000\n", 2).await;
    let http = support::load::http_client();
    let body = support::load::work_events(EVENTS, &base);
    let posted = support::load::post_json(&http, &format!("{}/events", server.url), body).await;
    assert!(posted.ok(), "the events were not accepted");
    let deadline = Instant::now() + Duration::from_secs(120);
    for handler in ["plain", "stepped"] {
        while succeeded(&http, &server.url, handler).await < EVENTS {
            if Instant::now() > deadline {
                let url = format!("{}/deliveries?handler={handler}&limit=3", server.url);
                let answer = http.get(url).send().await.expect("list").bytes().await.expect("body");
                panic!(
                    "{handler}'s deliveries did not all succeed: {}",
                    String::from_utf8_lossy(&answer)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let first = HashMap::from([("plain", crm.calls("plain")), ("stepped", crm.calls("stepped"))]);
    for handler in ["plain", "stepped"] {
        let request = serde_json::json!({"status": "succeeded", "handler": handler});
        let answer = http
            .post(format!("{}/replays", server.url))
            .header("content-type", "application/json")
            .body(request.to_string())
            .send()
            .await
            .expect("replay");
        let job: serde_json::Value = serde_json::from_slice(&answer.bytes().await.expect("body")).expect("job");
        let id = job["id"].as_str().expect("a job id").to_owned();
        let url = format!("{}/replays/{id}?outcomes=true", server.url);
        wait_for(&http, &url, |j| {
            j["state"] == "done" && j["outcomes"]["waiting"] == 0 && j["outcomes"]["succeeded"] == EVENTS
        })
        .await;
    }
    let replay = HashMap::from([
        ("plain", crm.calls("plain") - first["plain"]),
        ("stepped", crm.calls("stepped") - first["stepped"]),
    ]);
    server.stop().await;
    (first, replay)
}
