//! The store's own work for one delivered event, with no HTTP, no engine and no handler: what
//! a delivery of the peers workload asks of the store (the event ingested with one delivery,
//! the group commit, the claim, the event read back, one `ctx.state` write, the attempt
//! recorded), done back to back by many tasks on a durable store of its own. Every end-to-end
//! figure of eddy pays this, with the HTTP faces and the handler on top, so it bounds them.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eddy::event::Event;
use eddy::store::{AttemptRecord, Ingested, NewEvent, NextStep, StateQuota, Store};

const HANDLER: &str = "bench.call";
const TASKS: usize = 64;
const WARMUP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(5);
/// Kernel clock ticks per second in `/proc/self/stat` (`USER_HZ`, fixed at 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Time spent in each step of one event's life, summed over the events of one task.
#[derive(Default, Clone, Copy)]
struct Steps {
    events: u64,
    ingest: Duration,
    commit: Duration,
    claim: Duration,
    state: Duration,
    attempt: Duration,
}

/// Prints the rate of [`TASKS`] tasks, the CPU time per event, and one task's time per step.
pub async fn measure(dir: &Path) {
    let store = Arc::new(Store::open(&dir.join("store-alone"), 1024 << 20).expect("store"));
    let (rate, cpu_per_event) = many(&store, TASKS).await;
    println!(
        "the store alone, {TASKS} tasks (ingest, commit, claim, event read, state write, attempt): \
         {rate:.0} events/s, {:.0} µs of CPU per event",
        cpu_per_event * 1e6
    );
    let steps = one_task(&store).await;
    let each = |d: Duration| d.as_secs_f64() * 1e6 / steps.events.max(1) as f64;
    println!(
        "the store alone, 1 task, µs per event: ingest {:.1}, commit {:.1}, claim and event read {:.1}, \
         state write {:.1}, attempt {:.1}",
        each(steps.ingest),
        each(steps.commit),
        each(steps.claim),
        each(steps.state),
        each(steps.attempt)
    );
}

/// Events per second of `tasks` tasks over [`MEASURE`], and the process's CPU seconds per event.
async fn many(store: &Arc<Store>, tasks: usize) -> (f64, f64) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let (store, done, stop) = (store.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    deliver(&store, task, n, &mut Steps::default()).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(WARMUP).await;
    let (started, first, cpu_before) = (Instant::now(), done.load(Ordering::Relaxed), cpu_seconds());
    tokio::time::sleep(MEASURE).await;
    let (events, cpu) = (done.load(Ordering::Relaxed) - first, cpu_seconds() - cpu_before);
    let rate = events as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("store task");
    }
    (rate, cpu / events.max(1) as f64)
}

/// One task alone for [`MEASURE`], timing each step.
async fn one_task(store: &Store) -> Steps {
    let mut steps = Steps::default();
    let started = Instant::now();
    while started.elapsed() < MEASURE {
        steps.events += 1;
        deliver(store, 0, steps.events, &mut steps).await;
    }
    steps
}

/// One event's life in the store, as a delivery of the peers workload that succeeds at once.
async fn deliver(store: &Store, task: usize, n: u64, steps: &mut Steps) {
    let event = Event::from_value(
        serde_json::json!({"type": HANDLER, "data": {"url": "http://127.0.0.1:9/api", "task": task, "n": n}}),
        "bench",
    )
    .expect("event");
    let now = eddy::clock::now_ms();
    let mut at = Instant::now();
    let mut lap = |step: &mut Duration| {
        let now = Instant::now();
        *step += now - at;
        at = now;
    };
    let new = NewEvent {
        event,
        handlers: vec![HANDLER.into()],
    };
    let ingested = store.ingest(vec![new], now).expect("ingest");
    lap(&mut steps.ingest);
    store.commit().await.expect("commit");
    lap(&mut steps.commit);
    let Some(Ingested::New { deliveries, .. }) = ingested.first() else {
        panic!("event {task}/{n} was not new");
    };
    let mut delivery = store
        .claim(HANDLER, now, &deliveries[0], now)
        .expect("claim")
        .expect("claimed");
    store.event(&delivery.event_id).expect("event read").expect("event");
    lap(&mut steps.claim);
    let state = store.handler_state(HANDLER, StateQuota::UNLIMITED);
    state.set("count", &serde_json::json!(n)).expect("state write");
    lap(&mut steps.state);
    let attempt = AttemptRecord {
        n: 1,
        started_ms: now,
        duration_ms: 1.0,
        succeeded: true,
        report: serde_json::json!({"outcome": "ok", "logs": [],
            "fetches": [{"method": "POST", "url": "http://127.0.0.1:9/api", "status": 200, "ms": 0.4}]}),
        replay: false,
        event_version: Some(1),
        recorded_steps: false,
    };
    store
        .finish_attempt(&mut delivery, &attempt, NextStep::Succeeded, now)
        .expect("attempt");
    lap(&mut steps.attempt);
}

/// User and system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces: utime and
    // stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / TICKS_PER_SECOND
}
