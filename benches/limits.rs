//! What a host under `[limits."host"]` receives: two handlers call one fake API for every
//! event, as fast as eddy delivers them, and the API counts what arrives. The rate it sees in
//! each second and the most calls it has at once are printed against the limits.
//!
//! Run it with `cargo bench --bench limits`; `EDDY_BENCH_RUNS` sets how many runs (default 3).

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;

/// Events posted per run; each is one call by each of the two handlers.
const EVENTS: usize = 300;
const RATE: f64 = 100.0;
const BURST: u32 = 10;
const CONCURRENCY: usize = 4;

#[derive(Default)]
struct Api {
    arrived: Mutex<Vec<Instant>>,
    in_flight: AtomicUsize,
    most_at_once: AtomicUsize,
}

async fn call(State(api): State<Arc<Api>>) -> &'static str {
    api.arrived.lock().unwrap().push(Instant::now());
    let now = api.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    api.most_at_once.fetch_max(now, Ordering::SeqCst);
    // An API that takes its time, so the concurrency limit has something to hold.
    tokio::time::sleep(Duration::from_millis(25)).await;
    api.in_flight.fetch_sub(1, Ordering::SeqCst);
    "ok"
}

async fn start_api() -> (Arc<Api>, String) {
    let api = Arc::new(Api::default());
    let app = Router::new()
        .route("/call", axum::routing::post(call))
        .with_state(api.clone());
    let base = crate::support::serve_loopback(app).await;
    (api, base)
}

/// Two handlers that call the API once per event.
fn write_handlers(dir: &Path) {
    let handler = "export const on = \"work\";\nexport const config = { allowNet: [\"127.0.0.1\"] };\n\
        export default async (e) => {\n  const res = await fetch(`${e.data.base}/call`, { method: \"POST\" });\n\
          if (!res.ok) throw new Error(`the API answered ${res.status}`);\n};\n";
    std::fs::create_dir_all(dir).expect("handlers folder");
    for name in ["first.js", "second.js"] {
        std::fs::write(dir.join(name), handler).expect("handler");
    }
}

/// The most calls that arrived within any one second.
fn most_in_a_second(arrived: &[Instant]) -> usize {
    let mut most = 0;
    let mut from = 0;
    for (to, at) in arrived.iter().enumerate() {
        while at.duration_since(arrived[from]) >= Duration::from_secs(1) {
            from += 1;
        }
        most = most.max(to - from + 1);
    }
    most
}

struct Run {
    /// Calls per second from the first to the last, the burst left out.
    steady: f64,
    most_in_a_second: usize,
    most_at_once: usize,
}

async fn run_once(folder: &Path) -> Run {
    let (api, base) = start_api().await;
    write_handlers(&folder.join("handlers"));
    let limits = format!("[limits.\"127.0.0.1\"]\nrate = \"{RATE}/s\"\nburst = {BURST}\nconcurrency = {CONCURRENCY}\n");
    let server = support::in_process::start_project(folder, &limits, 2).await;
    let http = support::load::http_client();
    let body = support::load::work_events(EVENTS, &base);
    let posted = support::load::post_json(&http, &format!("{}/events", server.url), body).await;
    assert!(posted.ok(), "the events were not accepted");
    let deadline = Instant::now() + Duration::from_secs(120);
    while api.arrived.lock().unwrap().len() < 2 * EVENTS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
    let mut arrived = api.arrived.lock().unwrap().clone();
    arrived.sort();
    assert_eq!(arrived.len(), 2 * EVENTS, "every call arrived within two minutes");
    let span = arrived[arrived.len() - 1].duration_since(arrived[0]).as_secs_f64();
    Run {
        steady: (arrived.len() as f64 - f64::from(BURST)) / span,
        most_in_a_second: most_in_a_second(&arrived),
        most_at_once: api.most_at_once.load(Ordering::SeqCst),
    }
}

fn main() {
    let (runtime, folder) = support::begin("limits");
    let runs = support::runs(3);
    println!(
        "{} events, each called by 2 handlers; [limits.\"127.0.0.1\"] rate = \"{RATE}/s\", burst = {BURST}, \
         concurrency = {CONCURRENCY}; the API answers after 25 ms; {runs} runs\n",
        EVENTS
    );
    let mut results = Vec::new();
    for n in 0..runs {
        let dir = folder.path().join(format!("run{n}"));
        results.push(runtime.block_on(run_once(&dir)));
    }
    let of = |f: fn(&Run) -> f64| results.iter().map(f).collect::<Vec<f64>>();
    println!("| | limit | received (median, lowest–highest) |");
    println!("|---|--:|--:|");
    println!(
        "| calls per second after the burst | {RATE} | {} |",
        support::format_spread(&of(|r| r.steady), 1)
    );
    println!(
        "| most calls in any one second | {} | {} |",
        RATE + f64::from(BURST),
        support::format_spread(&of(|r| r.most_in_a_second as f64), 0)
    );
    println!(
        "| most calls at once | {CONCURRENCY} | {} |",
        support::format_spread(&of(|r| r.most_at_once as f64), 0)
    );
    support::machine::print_end();
}
