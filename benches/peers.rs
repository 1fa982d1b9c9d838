//! Peers benchmark: `cargo bench --bench peers`. One workload, `benches/peers/handler.js`
//! (post the event to an API, then count it in `ctx.state`), run in one go through:
//! - eddy (`eddy serve`, the binary cargo builds for this benchmark), durable: every 202 waits
//!   for the flush to disk, the handler runs after the answer in its isolate, with retries.
//!   It runs with `[delivery] handler_concurrency = 64` and `[runtime] invocations_per_isolate =
//!   32` (two isolates), the concurrency at which the peers run the handler;
//! - eddy with flush-before-ack off (`[ingest] durable_ack = false`), skipped with the reason
//!   when the eddy built does not know that key;
//! - the same handler file served by Deno (`Deno.serve`) and by Node.js (`node:http`), run
//!   before the answer, nothing stored, no retries. Deno is installed from the npm registry into
//!   `target/peers/` at the version `benches/peers/package.json` pins; Node.js is the `node` on
//!   `PATH`.
//!
//! Each server is its own process on 127.0.0.1 and gets the same load from this process:
//! [`PHASES`] clients posting single events back to back, a warm-up and then a measured window.
//! The handler posts to a fake API served by this process, which counts completed runs. The
//! table: ingest answers per second and their latency p50/p99, handler runs per second (for
//! eddy they happen after the answer; for the peers before it), the server's CPU time per
//! handler run over the measured window, resident memory (peak, and at the end of the load),
//! and eddy's durable figures divided by each other row's. The whole
//! table is measured `EDDY_BENCH_RUNS` times (default 3), and each cell gives the median and
//! the range (lowest–highest) over the runs; a ratio is taken within each run first.

#[path = "peers/api.rs"]
mod api;
#[path = "peers/deno.rs"]
mod deno;
#[path = "peers/report.rs"]
mod report;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use api::FakeApi;
use report::{Figures, Row};
use support::cpu::CpuTime;
use support::load::Phases;
use support::procs::{self, Launch, Server};

/// The load every server gets.
const PHASES: Phases = Phases {
    clients: 64,
    warmup: Duration::from_secs(3),
    measure: Duration::from_secs(10),
};
/// The longest eddy gets after the load to run the handler for every accepted event.
const DRAIN: Duration = Duration::from_secs(60);
/// The event type; eddy routes it to `handlers/bench.call.js`, a copy of `handler.js`.
const EVENT_TYPE: &str = "bench.call";
/// Runs of the whole table unless `EDDY_BENCH_RUNS` says otherwise: the spread of three shows
/// how far one run's figures can be trusted on a shared machine.
const DEFAULT_RUNS: usize = 3;

/// The rows of the table, in order; the first is the one the ratios divide.
#[derive(Clone, Copy)]
enum Peer {
    Eddy,
    EddyFlushOff,
    Deno,
    Node,
}

impl Peer {
    const ALL: [Peer; 4] = [Peer::Eddy, Peer::EddyFlushOff, Peer::Deno, Peer::Node];

    fn label(self) -> &'static str {
        match self {
            Peer::Eddy => "eddy (durable)",
            Peer::EddyFlushOff => "eddy (flush-before-ack off)",
            Peer::Deno => "Deno",
            Peer::Node => "Node.js",
        }
    }

    fn launch(self, setup: &Setup) -> Result<Launch, String> {
        let js = |program: PathBuf, args: &[&str], env| Launch {
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
            cwd: setup.peers.clone(),
            env,
            hold_stdin: true,
            dir: None,
        };
        match self {
            Peer::Eddy => eddy_launch(setup, true),
            Peer::EddyFlushOff => eddy_launch(setup, false),
            Peer::Deno => Ok(js(
                setup.deno.clone()?,
                &["run", "--allow-net=127.0.0.1", "--no-prompt", "deno_server.js"],
                vec![
                    ("DENO_DIR", setup.work.join("deno-dir").display().to_string()),
                    ("DENO_NO_UPDATE_CHECK", "1".into()),
                    ("DENO_NO_PACKAGE_JSON", "1".into()),
                ],
            )),
            Peer::Node => Ok(js("node".into(), &["node_server.js"], vec![])),
        }
    }
}

/// Where things are.
struct Setup {
    /// `benches/peers/`: the handler and the JS servers.
    peers: PathBuf,
    /// `target/peers/`: Deno's install, eddy's data folders while they run.
    work: PathBuf,
    eddy: PathBuf,
    deno: Result<PathBuf, String>,
}

impl Setup {
    fn new() -> Setup {
        let eddy = support::eddy::binary();
        // CARGO_BIN_EXE_eddy is <target dir>/<profile>/eddy.
        let work = eddy.ancestors().nth(2).expect("target dir").join("peers");
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers");
        std::fs::create_dir_all(&work).expect("target/peers");
        let deno = deno::install_deno(&peers, &work);
        Setup {
            peers,
            work,
            eddy,
            deno,
        }
    }
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    tokio.block_on(run());
}

async fn run() {
    let setup = Setup::new();
    let api = FakeApi::start().await;
    let runs = support::runs(DEFAULT_RUNS);
    print_facts(&setup, runs);
    let body = serde_json::json!({
        "type": EVENT_TYPE,
        "data": { "url": api.url, "order": 42, "items": ["a", "b"] },
    })
    .to_string();
    let mut rows: Vec<Row> = Peer::ALL
        .iter()
        .map(|peer| Row {
            label: peer.label(),
            runs: Vec::new(),
        })
        .collect();
    // Round by round rather than server by server, so a change in the machine's load over the
    // benchmark touches every server alike.
    for round in 1..=runs {
        for (peer, row) in Peer::ALL.into_iter().zip(&mut rows) {
            eprintln!("run {round} of {runs}: measuring {}", peer.label());
            row.runs.push(measure(peer, &setup, &api, &body).await);
        }
    }
    report::print(&rows);
    support::machine::print_end();
}

fn print_facts(setup: &Setup, runs: usize) {
    support::machine::print_start("peers", &setup.work);
    let deno = match &setup.deno {
        Ok(deno) => procs::version(deno, &["--version"]),
        Err(e) => format!("deno unavailable: {e}"),
    };
    println!(
        "{} ({}), {deno}, Node.js {}",
        procs::version(&setup.eddy, &["--version"]),
        setup.eddy.display(),
        procs::version(Path::new("node"), &["--version"])
    );
    println!(
        "{} clients posting single events, {} s warm-up then {} s measured, per server and run; \
         {runs} runs (EDDY_BENCH_RUNS), each server once per run\n",
        PHASES.clients,
        PHASES.warmup.as_secs(),
        PHASES.measure.as_secs()
    );
}

/// Starts `peer`, loads it, and for eddy waits until every accepted event has been handled.
async fn measure(peer: Peer, setup: &Setup, api: &FakeApi, body: &str) -> Result<Figures, String> {
    let launch = peer.launch(setup)?;
    let server = tokio::task::block_in_place(|| Server::start(launch))?;
    if matches!(peer, Peer::Eddy | Peer::EddyFlushOff) {
        // eddy prints its address before it loads its handlers; an event posted meanwhile
        // would be routed to no handler and never reach the fake API.
        support::eddy::wait_for_handler(&server.url, EVENT_TYPE).await?;
    }
    let before = api.hits();
    // The fake API's count and the CPU time used over the measured window only: the warm-up
    // is left out.
    let counting = async {
        tokio::time::sleep(PHASES.warmup).await;
        let first = (api.hits(), cpu_now(&server));
        tokio::time::sleep(PHASES.measure).await;
        let last = (api.hits(), cpu_now(&server));
        (last.0 - first.0, cpu_between(first.1, last.1))
    };
    let url = format!("{}/events", server.url);
    let (mut load, (runs, cpu)) = tokio::join!(support::load::drive(&url, body, &PHASES), counting);
    let rss = server.rss();
    let mut notes = Vec::new();
    if let Some((server_cpu, bench_cpu)) = &cpu {
        notes.push(format!(
            "CPU over the measured window: the server {}; this benchmark's clients and fake API {}",
            server_cpu.describe(PHASES.measure),
            bench_cpu.describe(PHASES.measure)
        ));
    }
    if load.errors > 0 {
        let first = load.first_error.as_deref().unwrap_or("?");
        notes.push(format!(
            "{} requests of the measured window failed, the first: {first}",
            load.errors
        ));
    }
    if matches!(peer, Peer::Eddy | Peer::EddyFlushOff) {
        notes.extend(eddy_after_load(&server, api, before, load.accepted).await);
    }
    let (p50, p99) = support::percentiles(&mut load.latencies);
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(Figures {
        rate: load.rate(&PHASES, 1),
        p50_ms: p50.as_secs_f64() * 1000.0,
        p99_ms: p99.as_secs_f64() * 1000.0,
        runs_rate: runs as f64 / PHASES.measure.as_secs_f64(),
        cpu_us_per_run: cpu
            .filter(|_| runs > 0)
            .map(|(server, _)| server.total.as_secs_f64() * 1e6 / runs as f64),
        rss_mib: rss.map(|r| (mib(r.peak_kib), mib(r.now_kib))),
        notes,
    })
}

/// The CPU time used so far by the server and by this process.
fn cpu_now(server: &Server) -> Option<(CpuTime, CpuTime)> {
    Some((CpuTime::read(server.pid()?)?, CpuTime::read(std::process::id())?))
}

/// What the server and this process used between two readings.
fn cpu_between(first: Option<(CpuTime, CpuTime)>, last: Option<(CpuTime, CpuTime)>) -> Option<(CpuTime, CpuTime)> {
    let ((server0, bench0), (server1, bench1)) = (first?, last?);
    Some((server1.since(&server0), bench1.since(&bench0)))
}

/// eddy answers before the handler runs: how far behind it was when the load stopped, how
/// long it took to catch up, and how its attempts went.
async fn eddy_after_load(server: &Server, api: &FakeApi, before: u64, accepted: u64) -> Vec<String> {
    let behind = accepted.saturating_sub(api.hits() - before);
    let started = Instant::now();
    while api.hits() - before < accepted && started.elapsed() < DRAIN {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (left, drain) = (accepted.saturating_sub(api.hits() - before), started.elapsed());
    let whole = PHASES.warmup + PHASES.measure + drain;
    let mut notes = vec![match left {
        0 => format!(
            "{accepted} events accepted; {behind} were waiting for their handler run when the load stopped, \
             and ran in the next {:.1} s ({:.0} runs/s without ingest load); from the first request to the \
             last run: {:.0} events/s",
            drain.as_secs_f64(),
            behind as f64 / drain.as_secs_f64(),
            accepted as f64 / whole.as_secs_f64()
        ),
        _ => format!(
            "{accepted} events accepted; {behind} were waiting for their handler run when the load stopped, \
             {left} still were {} s later",
            DRAIN.as_secs()
        ),
    }];
    notes.extend(support::eddy::attempt_counts(&server.url).await);
    notes
}

/// eddy with the handler as `handlers/bench.call.js`, loopback exempted from the network
/// policy (the fake API is on 127.0.0.1), and its data folder under `target/peers/`.
fn eddy_launch(setup: &Setup, durable: bool) -> Result<Launch, String> {
    let dir = tempfile::Builder::new()
        .prefix("eddy-")
        .tempdir_in(&setup.work)
        .map_err(|e| e.to_string())?;
    let handlers = dir.path().join("handlers");
    std::fs::create_dir(&handlers).map_err(|e| e.to_string())?;
    std::fs::copy(
        setup.peers.join("handler.js"),
        handlers.join(format!("{EVENT_TYPE}.js")),
    )
    .map_err(|e| e.to_string())?;
    // eddy at its defaults: up to 64 attempts of the handler at once, as Deno and Node.js run
    // it for up to 64 requests at once.
    let mut config = String::from(
        "handlers = \"handlers\"\ndata = \"data\"\nlisten = \"127.0.0.1:0\"\n\n\
         [net]\nallow_private = [\"127.0.0.1/32\"]\n",
    );
    if !durable {
        config.push_str("\n[ingest]\ndurable_ack = false\n");
    }
    support::eddy::launch(dir, &config)
}
