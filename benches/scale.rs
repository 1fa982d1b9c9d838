//! Scaling benchmark: `cargo bench --bench scale` (`EDDY_SCALE_MAX=100000` for a quick run).
//!
//! 1. Fills a durable store through the store API, in ingest batches, to 10k, 100k and 1M
//!    events (most deliveries succeeded, some dead, some waiting for a retry; several handlers
//!    and types; 30 simulated days), and at each size times the reads that must not grow with
//!    it: queue depth, each handler's queue head, one handler's due entries, listings, a
//!    replay selection and a read by id.
//! 2. Runs the real server in-process on 127.0.0.1 and measures durable ingest throughput and
//!    acknowledgement latency with 1 to 64 concurrent clients, on an empty store and on the
//!    filled one.
//! 3. Fills a new store with 400k small unrouted events (`EDDY_SCALE_DISK_EVENTS` for another
//!    number) and prints the bytes each takes on disk, as written and after compaction, against
//!    the size of its JSON.
//!
//! After each fill it prints the process's resident memory against `[store] cache_mb` (the
//! default, or `EDDY_SCALE_CACHE_MB`).
//!
//! Figures only, no assertions: the caches are warm and the clients share the machine's cores
//! with the server.

#[path = "scale/disk.rs"]
mod disk;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use eddy::config::Config;
use eddy::event::Event;
use eddy::store::{AttemptRecord, DeliveryFilter, DeliveryStatus, EventFilter, NewEvent, NextStep, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::load::{Phases, drive};
use support::{machine, percentiles, us};

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
/// Events per ingest call; all of one batch share a received time.
const BATCH: usize = 100;
/// Simulated time between two events: 1M events span 30 days.
const STEP_MS: u64 = 2_592;
/// Event types, each with the handlers it routes to; the last is routed nowhere.
const ROUTES: [(&str, &[&str]); 6] = [
    ("order.created", &["crm.sync", "billing.invoice"]),
    ("order.paid", &["billing.invoice", "slack.notify"]),
    ("user.signup", &["crm.sync", "mail.welcome"]),
    ("github.push", &["slack.notify"]),
    ("invoice.sent", &["crm.sync"]),
    ("audit.ping", &[]),
];
/// Timed runs per read and size.
const RUNS: usize = 200;
const CLIENTS: [usize; 4] = [1, 4, 16, 64];
const PHASE: Duration = Duration::from_secs(4);
const HOUR_MS: u64 = 3_600_000;

fn main() {
    let max = std::env::var("EDDY_SCALE_MAX")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(SIZES[2]);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("filled");
    machine::print_start("scaling", dir.path());
    println!();
    println!("store reads: p50 and p99 in µs over {RUNS} runs (warm cache)");
    let mut fill = Fill::new();
    {
        let store = Store::open(&data, cache_mb() << 20).expect("store");
        println!("[store] cache_mb = {}", cache_mb());
        for size in SIZES.into_iter().filter(|s| *s <= max) {
            let started = Instant::now();
            fill.up_to(&store, size);
            tokio.block_on(store.commit()).expect("commit");
            let took = started.elapsed().as_secs_f64();
            println!(
                "\n{size} events, {} deliveries (filled in {took:.0} s)",
                fill.deliveries
            );
            print_memory();
            reads(&store, &fill);
        }
    }
    tokio.block_on(reopen(&data));
    tokio.block_on(async {
        println!("\ndurable ingest of single events by concurrent clients (phases of {PHASE:?})");
        println!(
            "{:<22} {:>8} {:>10} {:>10} {:>10}",
            "store", "clients", "events/s", "ack p50", "ack p99"
        );
        ingest(dir.path(), &dir.path().join("empty"), "empty").await;
        ingest(dir.path(), &data, &format!("{} events", fill.events)).await;
    });
    disk::measure(dir.path(), cache_mb() << 20, &tokio);
    machine::print_end();
}

/// `[store] cache_mb` of the run: `EDDY_SCALE_CACHE_MB`, else eddy's default.
fn cache_mb() -> u64 {
    std::env::var("EDDY_SCALE_CACHE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| eddy::config::StoreConfig::default().cache_mb)
}

/// This process's resident memory now and at its peak: the store is its one large user.
fn print_memory() {
    if let Some(rss) = support::procs::rss(std::process::id()) {
        println!(
            "resident memory: {:.0} MiB now, {:.0} MiB peak (cache_mb {})",
            rss.now_kib as f64 / 1024.0,
            rss.peak_kib as f64 / 1024.0,
            cache_mb()
        );
    }
}

/// Fills the store, keeping what the reads need to know about it.
struct Fill {
    rng: StdRng,
    events: usize,
    deliveries: usize,
    /// The simulated received time of the next batch.
    clock_ms: u64,
    /// Some ids of stored events, for reads by id.
    sample: Vec<String>,
}

impl Fill {
    fn new() -> Self {
        Self {
            rng: StdRng::seed_from_u64(7),
            events: 0,
            deliveries: 0,
            // 40 simulated days ago: retries set in the future stay out of the engine's way.
            clock_ms: eddy::clock::now_ms() - 40 * 24 * HOUR_MS,
            sample: Vec::new(),
        }
    }

    fn up_to(&mut self, store: &Store, size: usize) {
        while self.events < size {
            let batch: Vec<NewEvent> = (0..BATCH).map(|_| self.event()).collect();
            let at = self.clock_ms;
            self.clock_ms += STEP_MS * BATCH as u64;
            for ingested in store.ingest(batch, at).expect("ingest") {
                let eddy::store::Ingested::New { id, deliveries } = ingested else {
                    continue;
                };
                if self.rng.gen_ratio(1, 100) {
                    self.sample.push(id);
                }
                self.deliveries += deliveries.len();
                for delivery in deliveries {
                    self.finish(store, &delivery, at);
                }
            }
        }
    }

    fn event(&mut self) -> NewEvent {
        let (kind, handlers) = ROUTES[self.rng.gen_range(0..ROUTES.len())];
        self.events += 1;
        let data = serde_json::json!({
            "id": self.events, "email": format!("user{}@example.com", self.events),
            "plan": "pro", "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
        });
        let value = serde_json::json!({ "type": kind, "source": "bench", "data": data });
        NewEvent {
            event: Event::from_value(value, "bench").expect("event"),
            handlers: handlers.iter().map(|h| (*h).into()).collect(),
        }
    }

    /// 90% succeed, 5% are dead, 5% wait for a retry far in the future.
    fn finish(&mut self, store: &Store, id: &str, at: u64) {
        let roll = self.rng.gen_range(0..100);
        let next = match roll {
            0..90 => NextStep::Succeeded,
            90..95 => NextStep::Dead {
                error: "Error: crm answered 422".into(),
                holds_key: true,
            },
            _ => NextStep::Retry {
                due_ms: eddy::clock::now_ms() + 365 * 24 * HOUR_MS,
                error: "Error: crm answered 503".into(),
            },
        };
        let handler = store.delivery(id).expect("read").expect("stored").handler;
        let mut claimed = store.claim(&handler, at, id, at + 5).expect("claim").expect("queued");
        let attempt = AttemptRecord {
            n: 1,
            started_ms: at + 5,
            duration_ms: 12.5,
            succeeded: next == NextStep::Succeeded,
            report: serde_json::json!({"outcome": "ok", "logs": [{"level": "log", "message": "synced"}]}),
            replay: false,
            event_version: Some(1),
            recorded_steps: false,
        };
        store
            .finish_attempt(&mut claimed, &attempt, next, at + 18)
            .expect("finish");
    }
}

/// Times every read at the store's current size and prints one line per read.
fn reads(store: &Store, fill: &Fill) {
    let end_ms = fill.clock_ms;
    let page = |filter: EventFilter| store.list_events(&EventFilter { limit: 50, ..filter }).expect("list");
    let replay = DeliveryFilter {
        event_type: Some("order.created".into()),
        since_ms: Some(end_ms - 6 * HOUR_MS),
        until_ms: Some(end_ms),
        limit: 1000,
        ..dead_of("crm.sync")
    };
    let mut rng = StdRng::seed_from_u64(11);
    let rows: Vec<(&str, Read)> = vec![
        ("queue depth", Box::new(|| store.queue_depth())),
        (
            "queue heads (one per handler)",
            Box::new(|| store.queue_heads().expect("heads").len()),
        ),
        (
            "due of one handler, 256 entries",
            Box::new(|| store.due("crm.sync", u64::MAX, 256).expect("due").len()),
        ),
        (
            "due of one handler, nothing due",
            Box::new(|| store.due("crm.sync", end_ms, 256).expect("due").len()),
        ),
        (
            "events of a type, page 1",
            Box::new(|| page(typed("user.signup", None)).len()),
        ),
        (
            "events of a type, last hour",
            Box::new(|| page(typed("user.signup", Some(end_ms - HOUR_MS))).len()),
        ),
        (
            "dead deliveries of a handler",
            Box::new(|| store.list_deliveries(&dead_of("crm.sync")).expect("list").len()),
        ),
        (
            "replay set: handler+type+6h",
            Box::new(|| store.list_deliveries(&replay).expect("list").len()),
        ),
        (
            "event by id",
            Box::new(|| {
                let id = &fill.sample[rng.gen_range(0..fill.sample.len())];
                store.event(id).expect("event").map_or(0, |_| 1)
            }),
        ),
    ];
    for (name, mut read) in rows {
        let found = read();
        let (p50, p99) = percentiles(&mut (0..RUNS).map(|_| timed(&mut read)).collect::<Vec<_>>());
        println!("  {name:<30} {:>9.1} {:>9.1}   ({found} found)", us(p50), us(p99));
    }
}

/// The first page of dead deliveries to `handler`.
fn dead_of(handler: &str) -> DeliveryFilter {
    DeliveryFilter {
        status: Some(DeliveryStatus::Dead),
        handler: Some(handler.into()),
        limit: 50,
        ..Default::default()
    }
}

/// One timed read; it answers how many things it found.
type Read<'a> = Box<dyn FnMut() -> usize + 'a>;

fn typed(kind: &str, since_ms: Option<u64>) -> EventFilter {
    EventFilter {
        since_ms,
        ..EventFilter::of_type(kind)
    }
}

fn timed(read: &mut impl FnMut() -> usize) -> Duration {
    let started = Instant::now();
    std::hint::black_box(read());
    started.elapsed()
}

/// Serves `data` with a trivial handler and runs one load phase per client count.
async fn ingest(dir: &Path, data: &Path, label: &str) {
    let handlers = dir.join("handlers");
    std::fs::create_dir_all(&handlers).expect("handlers");
    std::fs::write(handlers.join("bench.event.js"), "export default async function () {}\n").expect("handler");
    let text = format!(
        "handlers = {:?}\ndata = {:?}\n[store]\ncache_mb = {}\n",
        handlers.display().to_string(),
        data.display().to_string(),
        cache_mb()
    );
    let config = Config::parse(&text, &dir.join("eddy.toml")).expect("config");
    // The previous phase's isolate threads may still hold the store for a moment.
    drop(open_when_free(&config.data).await);
    let server = support::in_process::start(config).await;
    let url = format!("{}/events", server.url);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for clients in CLIENTS {
        let (rate, mut latencies) = load(&url, clients).await;
        let (p50, p99) = percentiles(&mut latencies);
        println!(
            "{label:<22} {clients:>8} {rate:>10.0} {:>8.2}ms {:>8.2}ms",
            us(p50) / 1000.0,
            us(p99) / 1000.0
        );
    }
    server.stop().await;
}

/// Opens the store once the previous handle's threads have let go of its folder.
/// Times opening the filled store as a start after a crash does (its files copied aside
/// first) and as one after a clean stop does (sealed: opened as they are).
async fn reopen(data: &Path) {
    let bytes: u64 = std::fs::read_dir(data)
        .expect("data folder")
        .flatten()
        .filter_map(|e| e.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()))
        .sum();
    let timed = || async {
        let started = Instant::now();
        drop(open_when_free(data).await);
        started.elapsed().as_secs_f64()
    };
    let after_crash = timed().await;
    assert!(
        Store::seal(data, Duration::from_secs(10)).await.expect("seal"),
        "store still open"
    );
    let after_clean_stop = timed().await;
    println!(
        "
opening the filled store ({:.0} MiB of files): {after_crash:.2} s after a crash (files copied \
         aside first), {after_clean_stop:.2} s after a clean stop",
        bytes as f64 / (1024.0 * 1024.0)
    );
}

async fn open_when_free(data: &Path) -> Store {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Store::open(data, cache_mb() << 20) {
            Ok(store) => return store,
            Err(e) if e.to_string().contains("in use") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Posts single events from `clients` tasks for [`PHASE`]; returns events/s and latencies.
async fn load(url: &str, clients: usize) -> (f64, Vec<Duration>) {
    let phases = Phases {
        clients,
        warmup: Duration::ZERO,
        measure: PHASE,
    };
    let body = r#"{"type":"bench.event","data":{"order":42,"items":["a","b"]}}"#;
    let load = drive(url, body, &phases).await;
    (load.rate(&phases, 1), load.latencies)
}
