//! Runtime benchmark: `cargo bench --bench runtime`. Prints, for this machine:
//! - isolate from snapshot: `JsRuntime` creation from eddy's startup snapshot, p50/p99;
//! - cold start, loading a handler into a new isolate (thread, isolate, bootstrap, module
//!   evaluation, config), p50/p99, two ways: loads back to back, where each waits for the
//!   isolate the runtime makes ahead of the next load; and loads 10 ms apart, each with its
//!   handler's first invocation, where that isolate is ready (`src/runtime/spare.rs`);
//! - warm overhead: invoking a trivial handler on a warm isolate, end to end through the
//!   runtime facade (including the hand-off to the isolate thread and back) and inside the
//!   isolate thread alone, p50/p99;
//! - a warm invocation that writes one state key (`ctx.state.set`; the write is in the store
//!   when the invocation returns and reaches the disk with the next flush), p50/p99;
//! - resident memory per idle isolate, from the process RSS before and after loading many;
//! - 1,000 distinct handlers loaded at once (`EDDY_BENCH_HANDLERS` changes the number): time
//!   to load them all, resident memory, and one invocation of each;
//! - the whole `eddy run` process on a trivial handler against `deno run` of the same module
//!   (Deno from the npm registry, as the peers bench installs it), 20 paired runs.

#[path = "peers/deno.rs"]
mod deno;
#[path = "runtime/process.rs"]
mod process;
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deno_core::{JsRuntime, RuntimeOptions};
use eddy::config::Config;
use eddy::event::Event;
use eddy::runtime::{HandlerPool, InvocationRequest, Runtime};
use eddy::store::Store;
use support::{machine, ms, percentiles, us};

const COLD_SAMPLES: usize = 200;
const WARM_SAMPLES: usize = 20_000;

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    // The state store of the invocation that writes a key is in the temporary folder.
    machine::print_start("runtime", &std::env::temp_dir());
    tokio.block_on(isolate_creation());
    tokio.block_on(handlers());
    tokio.block_on(many_handlers());
    let eddy = support::eddy::binary();
    // CARGO_BIN_EXE_eddy is <target dir>/<profile>/eddy; Deno goes where the peers bench puts it.
    let work = eddy.ancestors().nth(2).expect("target dir").join("peers");
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers");
    process::compare(&eddy, deno::install_deno(&peers, &work));
    machine::print_end();
}

async fn isolate_creation() {
    let mut samples = Vec::with_capacity(COLD_SAMPLES);
    for _ in 0..COLD_SAMPLES {
        let started = Instant::now();
        let runtime = JsRuntime::new(RuntimeOptions {
            startup_snapshot: Some(eddy::runtime::STARTUP_SNAPSHOT),
            residual_lazy_js_sources: eddy::runtime::LAZY_SOURCES,
            extensions: eddy::runtime::extensions(),
            ..Default::default()
        });
        samples.push(started.elapsed());
        drop(runtime);
    }
    let (p50, p99) = percentiles(&mut samples);
    println!(
        "isolate from snapshot ({} KiB, {COLD_SAMPLES} samples): p50 {:.2} ms, p99 {:.2} ms",
        eddy::runtime::STARTUP_SNAPSHOT.len() / 1024,
        ms(p50),
        ms(p99)
    );
}

async fn handlers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("handlers");
    std::fs::create_dir(&root).expect("handlers dir");
    std::fs::write(
        root.join("trivial.js"),
        "export default async function (event, ctx) {}\n",
    )
    .expect("write");
    for i in 0..COLD_SAMPLES {
        let code = "export default async function (event) { return event.id; }\n";
        std::fs::write(root.join(format!("h{i}.js")), code).expect("write");
    }
    let rt = Arc::new(runtime(&root));
    let trivial = rt.prepare("trivial", &root.join("trivial.js")).await.expect("load");
    std::fs::write(
        root.join("stateful.js"),
        "export default async function (event, ctx) { await ctx.state.set(`k${event.data.n % 100}`, event.data); }\n",
    )
    .expect("write");
    let stateful = rt.prepare("stateful", &root.join("stateful.js")).await.expect("load");

    let rss_before = rss_bytes();
    let mut cold = Vec::with_capacity(COLD_SAMPLES);
    // Kept loaded, so the resident memory below counts their isolates.
    let mut idle = Vec::with_capacity(COLD_SAMPLES);
    for i in 0..COLD_SAMPLES {
        let id = format!("h{i}");
        let started = Instant::now();
        idle.push(rt.prepare(&id, &root.join(format!("{id}.js"))).await.expect("load"));
        cold.push(started.elapsed());
    }
    let rss_after = rss_bytes();
    let per_isolate = rss_after.saturating_sub(rss_before) as f64 / COLD_SAMPLES as f64;
    let (p50, p99) = percentiles(&mut cold);
    println!(
        "cold start, handler loads back to back, each into a new isolate ({COLD_SAMPLES} samples): p50 {:.2} ms, p99 {:.2} ms",
        ms(p50),
        ms(p99)
    );

    let event = Event::from_json(r#"{"type":"bench.event","data":{"n":1}}"#, "bench").expect("event");
    let request = InvocationRequest {
        event,
        delivery_id: "d".into(),
        attempt: 1,
        idempotency_key: "k".into(),
        event_version: 1,
        recalled_steps: Default::default(),
    };
    spaced_cold_starts(&rt, &root, &request, &mut idle).await;
    for _ in 0..1000 {
        rt.run(&trivial, request.clone()).await;
    }
    let mut end_to_end = Vec::with_capacity(WARM_SAMPLES);
    let mut inside = Vec::with_capacity(WARM_SAMPLES);
    for _ in 0..WARM_SAMPLES {
        let started = Instant::now();
        let report = rt.run(&trivial, request.clone()).await;
        end_to_end.push(started.elapsed());
        inside.push(Duration::from_secs_f64(report.duration_ms / 1000.0));
        assert!(report.outcome.is_success());
    }
    let (p50, p99) = percentiles(&mut end_to_end);
    println!(
        "warm invocation, trivial handler, end to end ({WARM_SAMPLES} samples): p50 {:.1} us, p99 {:.1} us",
        us(p50),
        us(p99)
    );
    let (p50, p99) = percentiles(&mut inside);
    println!(
        "warm invocation, trivial handler, inside the isolate thread: p50 {:.1} us, p99 {:.1} us",
        us(p50),
        us(p99)
    );
    state_writes(&rt, &stateful).await;
    println!(
        "resident memory per idle isolate: {:.2} MiB ({} isolates, RSS {:.1} -> {:.1} MiB)",
        per_isolate / 1048576.0,
        COLD_SAMPLES,
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0
    );
}

/// Loads apart in time, as a server meets them (a reload, an isolate added to a busy
/// handler): the runtime has had time to make the isolate of the next load ahead (see
/// `src/runtime/spare.rs`). Each sample is the load and the handler's first invocation.
async fn spaced_cold_starts(rt: &Runtime, root: &Path, request: &InvocationRequest, kept: &mut Vec<HandlerPool>) {
    let mut samples = Vec::with_capacity(COLD_SAMPLES);
    for i in 0..COLD_SAMPLES {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let started = Instant::now();
        let pool = rt
            .prepare(&format!("spaced{i}"), &root.join(format!("h{i}.js")))
            .await
            .expect("load");
        let report = rt.run(&pool, request.clone()).await;
        samples.push(started.elapsed());
        assert!(report.outcome.is_success());
        kept.push(pool);
    }
    let (p50, p99) = percentiles(&mut samples);
    println!(
        "cold start, loads 10 ms apart: handler load and first invocation ({COLD_SAMPLES} samples): p50 {:.2} ms, p99 {:.2} ms",
        ms(p50),
        ms(p99)
    );
}

/// Invocations that each write one of 100 state keys.
async fn state_writes(rt: &Runtime, stateful: &HandlerPool) {
    const SAMPLES: usize = 5_000;
    let mut samples = Vec::with_capacity(SAMPLES);
    for n in 0..SAMPLES + 500 {
        let text = format!(r#"{{"type":"bench.event","data":{{"n":{n}}}}}"#);
        let request = InvocationRequest {
            event: Event::from_json(&text, "bench").expect("event"),
            delivery_id: "d".into(),
            attempt: 1,
            idempotency_key: "k".into(),
            event_version: 1,
            recalled_steps: Default::default(),
        };
        let started = Instant::now();
        let report = rt.run(stateful, request).await;
        if n >= 500 {
            samples.push(started.elapsed());
        }
        assert!(report.outcome.is_success(), "{report:?}");
    }
    let (p50, p99) = percentiles(&mut samples);
    println!(
        "warm invocation writing one state key, end to end ({SAMPLES} samples): p50 {:.1} us, p99 {:.1} us",
        us(p50),
        us(p99)
    );
}

async fn many_handlers() {
    let count: usize = std::env::var("EDDY_BENCH_HANDLERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("handlers");
    std::fs::create_dir(&root).expect("handlers dir");
    for i in 0..count {
        // Distinct code per handler, so nothing is shared between them but the snapshot.
        let code = format!("const ME = {i};\nexport default async function (event) {{ return ME + event.data.n; }}\n");
        std::fs::write(root.join(format!("h{i}.js")), code).expect("write");
    }
    let rt = Arc::new(runtime(&root));
    let rss_before = rss_bytes();
    let started = Instant::now();
    let mut handlers = Vec::with_capacity(count);
    for i in 0..count {
        let id = format!("h{i}");
        handlers.push(rt.prepare(&id, &root.join(format!("{id}.js"))).await.expect("load"));
    }
    let loaded = started.elapsed();
    let rss_loaded = rss_bytes();
    let event = Event::from_json(r#"{"type":"bench.event","data":{"n":1}}"#, "bench").expect("event");
    let request = InvocationRequest {
        event,
        delivery_id: "d".into(),
        attempt: 1,
        idempotency_key: "k".into(),
        event_version: 1,
        recalled_steps: Default::default(),
    };
    let mut first = Vec::with_capacity(count);
    for handler in &handlers {
        let started = Instant::now();
        let report = rt.run(handler, request.clone()).await;
        first.push(started.elapsed());
        assert!(report.outcome.is_success());
    }
    let (p50, p99) = percentiles(&mut first);
    println!(
        "{count} distinct handlers: loaded in {:.2} s ({:.2} ms each), RSS {:.1} -> {:.1} MiB \
         ({:.2} MiB each); first invocation of each p50 {:.1} us, p99 {:.1} us; {} isolates live",
        loaded.as_secs_f64(),
        ms(loaded) / count as f64,
        rss_before as f64 / 1048576.0,
        rss_loaded as f64 / 1048576.0,
        rss_loaded.saturating_sub(rss_before) as f64 / 1048576.0 / count as f64,
        us(p50),
        us(p99),
        handlers.iter().map(HandlerPool::live_isolates).sum::<usize>()
    );
}

fn runtime(root: &Path) -> Runtime {
    let config = Config::parse("", Path::new("eddy.toml")).expect("config");
    let store = Store::temporary().expect("store");
    Runtime::new(&config, root, std::sync::Arc::new(store)).expect("runtime")
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
