//! Abuse benchmark: `cargo bench --bench abuse`. Figures only, no assertions. Runs the release
//! `eddy serve` as a child process (temp data folder, loopback, port 0) and prints:
//!
//! (a) its resident memory under hostile clients, with `[ingest]` limits set explicitly
//! (shorter timeouts than the defaults, so each phase sees several of them expire):
//! slowloris heads, bodies far over `max_body_bytes` (chunked, and announced by
//! Content-Length), deeply nested JSON just under the limit, and bodies that trickle slower
//! than `body_timeout_ms`. Memory is sampled every 50 ms: baseline, peak per phase and a
//! second after it; each phase also counts how its requests ended and how a well-behaved
//! client posting 4 events a second fared beside them. A last event shows whether the server
//! still answers.
//!
//! (b) a healthy handler's ingest-to-success latency (from its delivery records) at 20
//! events/s, alone and while the abusive handlers of `tests/fixtures/neighbours/` (spin,
//! leak, hang, and third parties that hang, reset, answer 503, rate-limit or trickle) get 8
//! events/s, with the server's peak memory in each phase.
//!
//! `EDDY_ABUSE_HOSTILE_S` (default 5) and `EDDY_ABUSE_NEIGHBOURS_S` (default 10) set the
//! phase lengths in seconds. The clients run in this process and share the machine's cores
//! with the server, so the header gives the load average at the start and the end.

#[path = "abuse/hostile.rs"]
mod hostile;
#[path = "abuse/neighbours.rs"]
mod neighbours;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hostile::{Attack, Plan};
use support::load::{Pace, Posted, REQUEST_TIMEOUT, paced, post_json};
use support::procs::{RssSampler, Server};
use support::{machine, ms, percentiles};

/// The `[ingest]` limits of part (a).
const MAX_BODY_BYTES: usize = 1024 * 1024;
const HEADER_TIMEOUT_MS: u64 = 2_000;
const BODY_TIMEOUT_MS: u64 = 3_000;
const MAX_CONNECTIONS: usize = 256;
/// Clients of the phases that hold connections open: well beyond the connection limit.
const HOLDERS: usize = 500;
/// Clients of the phases that send large bodies.
const SENDERS: usize = 64;
const MIB: usize = 1024 * 1024;
/// How long after a phase its "after" memory is read.
const SETTLE: Duration = Duration::from_secs(1);
/// The well-behaved client's rate during each hostile phase, events per second.
const PROBE_RATE: f64 = 4.0;
const NORMAL_EVENT: &str = r#"{"type":"bench.event","data":{"order":42}}"#;

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    // Both parts keep their data folders in the system's temporary folder.
    machine::print_start("abuse", &std::env::temp_dir());
    tokio.block_on(async {
        if let Err(e) = hostile_clients(seconds("EDDY_ABUSE_HOSTILE_S", 5)).await {
            println!("(a) skipped: {e}");
        }
        if let Err(e) = neighbours::run(seconds("EDDY_ABUSE_NEIGHBOURS_S", 10)).await {
            println!("(b) skipped: {e}");
        }
    });
    println!();
    machine::print_end();
}

fn seconds(var: &str, default: u64) -> Duration {
    let secs = std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    Duration::from_secs(secs)
}

/// Part (a): one server, one phase per kind of hostile client, then one normal event.
async fn hostile_clients(phase: Duration) -> Result<(), String> {
    let server = start_server()?;
    support::eddy::wait_for_handlers(&server.url, 1).await?;
    let addr: SocketAddr = server
        .url
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("{e}"))?;
    println!(
        "\n(a) hostile clients, phases of {} s; [ingest] max_body_bytes = {MAX_BODY_BYTES}, \
         header_timeout_ms = {HEADER_TIMEOUT_MS}, body_timeout_ms = {BODY_TIMEOUT_MS}, \
         max_connections = {MAX_CONNECTIONS}",
        phase.as_secs()
    );
    println!("baseline RSS {}", mib(server.rss().map(|r| r.now_kib)));
    for (n, (what, clients, plan)) in phases().into_iter().enumerate() {
        println!("{}. {what}: {clients} clients", n + 1);
        run_phase(&server, addr, (clients, plan), phase).await;
    }
    let url = format!("{}/events", server.url);
    let last = post_json(&fresh_connections(), &url, NORMAL_EVENT.to_owned()).await;
    println!(
        "afterwards, one normal event: {} (status {}, {:.1} ms); RSS {}",
        if last.ok() { "acknowledged" } else { "NOT acknowledged" },
        last.status.map_or("none".to_owned(), |s| s.to_string()),
        ms(last.latency),
        mib(server.rss().map(|r| r.now_kib))
    );
    Ok(())
}

/// Each phase: what it does, how many clients, and what each client sends.
fn phases() -> Vec<(String, usize, Plan)> {
    let slow = Duration::from_millis(250);
    let stream = |chunked| Plan::Stream {
        len: 64 * MIB,
        chunk: 64 * 1024,
        pause: Duration::ZERO,
        chunked,
    };
    vec![
        (
            "slowloris, a header byte every 250 ms, never finished".into(),
            HOLDERS,
            Plan::EndlessHead { pause: slow },
        ),
        (
            "64 MiB bodies, chunked, as fast as possible".into(),
            SENDERS,
            stream(true),
        ),
        (
            format!("64 MiB bodies, Content-Length: {}, as fast as possible", 64 * MIB),
            SENDERS,
            stream(false),
        ),
        (
            format!("JSON arrays nested {NESTED_DEPTH} deep, {} bytes", nested_json().len()),
            SENDERS,
            Plan::Whole { body: nested_json() },
        ),
        (
            "1 KiB bodies (Content-Length) sent a byte every 250 ms".into(),
            HOLDERS,
            Plan::Stream {
                len: 1024,
                chunk: 1,
                pause: slow,
                chunked: false,
            },
        ),
    ]
}

/// The nesting of [`nested_json`]: the depth that fits in the body limit with a little room.
const NESTED_DEPTH: usize = (MAX_BODY_BYTES - 64 - NESTED_FRAME.0.len() - NESTED_FRAME.1.len()) / 2;
const NESTED_FRAME: (&str, &str) = (r#"{"type":"x","data":"#, "}");

/// `{"type":"x","data":[[[...]]]}`, just under the body limit.
fn nested_json() -> Arc<[u8]> {
    let (open, close) = NESTED_FRAME;
    format!("{open}{}{}{close}", "[".repeat(NESTED_DEPTH), "]".repeat(NESTED_DEPTH))
        .into_bytes()
        .into()
}

/// Runs one hostile phase beside the well-behaved client and prints its figures.
async fn run_phase(server: &Server, addr: SocketAddr, (clients, plan): (usize, Plan), phase: Duration) {
    let sampler = server.pid().map(RssSampler::start);
    let http = fresh_connections();
    let url = format!("{}/events", server.url);
    let until = Instant::now() + phase;
    let (mut attack, probes) = tokio::join!(
        hostile::attack(addr, clients, plan, until),
        paced(probe(&http, &url), phase)
    );
    let peak = match sampler {
        Some(sampler) => sampler.stop().await,
        None => None,
    };
    tokio::time::sleep(SETTLE).await;
    println!(
        "   RSS peak {}, {} s after {}",
        mib(peak),
        SETTLE.as_secs(),
        mib(server.rss().map(|r| r.now_kib))
    );
    print_attack(&mut attack);
    print_probes(&probes);
}

fn print_attack(attack: &mut Attack) {
    let (p50, _) = percentiles(&mut attack.ended_after);
    let ended = match attack.ended_after.iter().max() {
        Some(max) => format!("those that ended took p50 {:.0} ms, max {:.0} ms", ms(p50), ms(*max)),
        None => "none ended within the phase".into(),
    };
    println!("   {} requests: {}; {ended}", attack.requests(), attack.outcomes_text());
}

fn print_probes(probes: &[Posted]) {
    let mut latencies: Vec<Duration> = probes.iter().filter(|p| p.ok()).map(|p| p.latency).collect();
    let (p50, _) = percentiles(&mut latencies);
    let max = latencies.iter().max().copied().unwrap_or_default();
    let failed: Vec<String> = probes
        .iter()
        .filter(|p| !p.ok())
        .map(|p| p.status.map_or("no answer".into(), |s| s.to_string()))
        .collect();
    let failed = match failed.is_empty() {
        true => String::new(),
        false => format!("; failed: {}", failed.join(", ")),
    };
    println!(
        "   well-behaved client, {PROBE_RATE} events/s on new connections: {} of {} acknowledged, \
         p50 {:.1} ms, max {:.1} ms{failed}",
        latencies.len(),
        probes.len(),
        ms(p50),
        ms(max)
    );
}

/// A new connection per request, like a new client would open: a kept-alive one would hold a
/// slot of the connection limit and skip the queue the hostile clients make.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client")
}

fn probe<'a>(http: &'a reqwest::Client, url: &'a str) -> Pace<'a, impl FnMut(usize) -> String> {
    Pace {
        http,
        url,
        rate: PROBE_RATE,
        body: |_| NORMAL_EVENT.to_owned(),
    }
}

/// eddy with a trivial handler and the limits above.
fn start_server() -> Result<Server, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let handlers = dir.path().join("handlers");
    std::fs::create_dir(&handlers).map_err(|e| e.to_string())?;
    std::fs::write(handlers.join("bench.event.js"), "export default async function () {}\n")
        .map_err(|e| e.to_string())?;
    let config = format!(
        "handlers = \"handlers\"\ndata = \"data\"\nlisten = \"127.0.0.1:0\"\n\n[ingest]\n\
         max_body_bytes = {MAX_BODY_BYTES}\nheader_timeout_ms = {HEADER_TIMEOUT_MS}\n\
         body_timeout_ms = {BODY_TIMEOUT_MS}\nmax_connections = {MAX_CONNECTIONS}\n"
    );
    let launch = support::eddy::launch(dir, &config)?;
    tokio::task::block_in_place(|| Server::start(launch))
}

/// KiB as MiB for the report; "?" when the memory could not be read.
fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}
