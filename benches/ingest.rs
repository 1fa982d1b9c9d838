//! Ingest benchmark: `cargo bench --bench ingest`. Runs the real server in-process on
//! 127.0.0.1 with a durable data folder and a trivial handler, then prints:
//! - durable ingest throughput with single events and with batches, many concurrent clients,
//!   and the acknowledgement latency p50/p99 of single events;
//! - under a paced load at half the single-event peak, the acknowledgement latency p50/p99 and
//!   the ingest-to-handler-start latency p50/p99;
//! - the store alone (`ingest/store_alone.rs`): what one delivered event costs the store with no
//!   HTTP and no handler, as an upper bound of every end-to-end figure.
//!
//! The clients run in the same process and share the machine's cores with the server.

#[path = "ingest/store_alone.rs"]
mod store_alone;
mod support;

use std::time::{Duration, Instant};

use eddy::config::Config;
use eddy::store::{Backend, DeliveryFilter};
use support::load::{Pace, Phases, drive, http_client, paced};
use support::{machine, ms, percentiles};

const CLIENTS: usize = 64;
const FEW_CLIENTS: usize = 8;
const BATCH_CLIENTS: usize = 8;
const BATCH: usize = 100;
const PHASE: Duration = Duration::from_secs(5);

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    tokio.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let handlers = dir.path().join("handlers");
    std::fs::create_dir(&handlers).expect("handlers");
    std::fs::write(handlers.join("bench.event.js"), "export default async function () {}\n").expect("handler");
    let text = format!("handlers = {:?}\ndata = \"data\"\n", handlers.display().to_string());
    let config = Config::parse(&text, &dir.path().join("eddy.toml")).expect("config");
    let server = support::in_process::start(config).await;
    let url = format!("{}/events", server.url);
    let store = server.store.clone();
    tokio::time::sleep(Duration::from_millis(500)).await;

    machine::print_start("ingest", dir.path());
    println!("durable: every 2xx is flushed to disk");
    let (single_rate, mut latencies) = load(&url, CLIENTS, 1).await;
    let (p50, p99) = percentiles(&mut latencies);
    println!(
        "single events, {CLIENTS} clients: {single_rate:.0} events/s, ack p50 {:.2} ms, p99 {:.2} ms",
        ms(p50),
        ms(p99)
    );
    let (few_rate, mut few_latencies) = load(&url, FEW_CLIENTS, 1).await;
    let (p50, p99) = percentiles(&mut few_latencies);
    println!(
        "single events, {FEW_CLIENTS} clients: {few_rate:.0} events/s, ack p50 {:.2} ms, p99 {:.2} ms",
        ms(p50),
        ms(p99)
    );
    let (batch_rate, _) = load(&url, BATCH_CLIENTS, BATCH).await;
    println!("batches of {BATCH}, {BATCH_CLIENTS} clients: {batch_rate:.0} events/s");
    let (backlog, drained) = drain(store.as_ref()).await;
    println!(
        "delivery of the backlog ({backlog} deliveries, trivial handler): {:.0} deliveries/s",
        backlog as f64 / drained.as_secs_f64()
    );

    start_latency(&url, store.as_ref(), single_rate / 2.0).await;
    drop(store);
    server.stop().await;
    store_alone::measure(dir.path()).await;
    machine::print_end();
}

/// Sends single events at `target` per second and prints how long their acknowledgements took
/// and how long they waited for their handler to start.
async fn start_latency(url: &str, store: &dyn Backend, target: f64) {
    let paced_from = eddy::clock::now_ms();
    let pace = Pace {
        http: &http_client(),
        url,
        rate: target,
        body: |_| body(1),
    };
    let posted = paced(pace, PHASE).await;
    let sent = posted.len();
    let mut acks: Vec<Duration> = posted
        .iter()
        .filter(|p| p.status.is_some_and(|s| (200..300).contains(&s)))
        .map(|p| p.latency)
        .collect();
    let acknowledged = acks.len();
    let (p50, p99) = percentiles(&mut acks);
    println!(
        "acknowledgement at {target:.0} events/s (half of peak, {acknowledged} of {sent} acknowledged): p50 {:.2} ms, p99 {:.2} ms",
        ms(p50),
        ms(p99)
    );
    drain(store).await;
    let mut starts = handler_start_latencies(store, paced_from).await;
    let (p50, p99) = percentiles(&mut starts);
    println!(
        "ingest to handler start at {target:.0} events/s (half of peak, {sent} events, {} started): p50 {:.0} ms, p99 {:.0} ms",
        starts.len(),
        ms(p50),
        ms(p99)
    );
}

/// Waits (at most 5 minutes) until the queue is empty; returns how many deliveries were
/// queued at the start and how long emptying took.
async fn drain(store: &dyn Backend) -> (usize, Duration) {
    let backlog = store.queue_depth();
    let started = Instant::now();
    while store.queue_depth() > 0 && started.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (backlog, started.elapsed())
}

/// Posts from `clients` tasks for [`PHASE`]; returns events/s and per-request latencies.
async fn load(url: &str, clients: usize, batch: usize) -> (f64, Vec<Duration>) {
    let phases = Phases {
        clients,
        warmup: Duration::ZERO,
        measure: PHASE,
    };
    let load = drive(url, &body(batch), &phases).await;
    (load.rate(&phases, batch), load.latencies)
}

/// Milliseconds from acceptance to the start of the first attempt, for events after `from_ms`.
async fn handler_start_latencies(store: &dyn Backend, from_ms: u64) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut filter = DeliveryFilter {
        limit: 1000,
        ..Default::default()
    };
    loop {
        let page = store.list_deliveries(&filter).await.expect("list");
        for d in &page {
            if d.created_ms < from_ms {
                continue;
            }
            if let Some(first) = store.attempts(&d.id).await.expect("attempts").first() {
                out.push(Duration::from_millis(first.started_ms.saturating_sub(d.created_ms)));
            }
        }
        match page.last() {
            Some(last) if page.len() == filter.limit => filter.after_id = Some(last.id.clone()),
            _ => break,
        }
    }
    out
}

fn body(batch: usize) -> String {
    let one = r#"{"type":"bench.event","data":{"order":42,"items":["a","b"]}}"#;
    if batch == 1 {
        one.to_owned()
    } else {
        format!("[{}]", vec![one; batch].join(","))
    }
}
