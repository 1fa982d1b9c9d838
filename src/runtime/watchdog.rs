//! CPU limits: one process-wide watchdog thread that stops JavaScript which has run too long.
//!
//! Each isolate thread marks when it enters and leaves JavaScript (one poll of its event loop)
//! in a [`Meter`]. An invocation is charged all busy time of its isolate while it is in
//! flight: exact when it runs alone, and an over-estimate, never an under-estimate, when
//! several invocations interleave. Past the limit the watchdog calls `terminate_execution`,
//! which is the only thing that can interrupt a `while (true) {}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use deno_core::v8;

/// How often the watchdog looks; a busy loop runs at most this much past its limit.
const TICK: Duration = Duration::from_millis(5);

/// Why an isolate was stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Termination {
    /// An invocation (or the module load) used more CPU time than allowed.
    CpuLimit { limit_ms: u64 },
    /// The isolate reached its heap limit.
    HeapLimit { limit_mb: u64 },
    /// The isolate's ArrayBuffers reached their limit (`[runtime] buffer_limit_mb`).
    ArrayBuffers { limit_mb: u64 },
}

/// Busy-time bookkeeping of one isolate, shared with the watchdog.
pub struct Meter {
    epoch: Instant,
    /// Total nanoseconds spent inside JavaScript.
    busy_ns: AtomicU64,
    /// Nanoseconds since `epoch` when the current poll began, plus one; zero when idle.
    poll_start: AtomicU64,
    /// In-flight budgets: (invocation id, busy_ns at its start, limit in ns).
    budgets: Mutex<Vec<(u32, u64, u64)>>,
    /// CPU time JavaScript may use while no invocation is in flight, from when the last one
    /// started until the next one starts.
    idle_limit_ns: AtomicU64,
    /// `busy_ns` when the last invocation started: what runs after it ended is charged from
    /// here, across polls, so a chain of short polls cannot run forever either.
    idle_from_ns: AtomicU64,
    /// Set once, by whoever stops the isolate first.
    termination: Mutex<Option<Termination>>,
    isolate: v8::IsolateHandle,
}

impl Meter {
    /// A meter for `isolate`, registered with the watchdog; `idle_limit` bounds JavaScript
    /// that runs while no invocation is in flight.
    pub fn register(isolate: v8::IsolateHandle, idle_limit: Duration) -> Arc<Self> {
        let meter = Arc::new(Self {
            idle_limit_ns: AtomicU64::new(idle_limit.as_nanos() as u64),
            epoch: Instant::now(),
            busy_ns: AtomicU64::new(0),
            idle_from_ns: AtomicU64::new(0),
            poll_start: AtomicU64::new(0),
            budgets: Mutex::new(Vec::new()),
            termination: Mutex::new(None),
            isolate,
        });
        watchdog().register(&meter);
        meter
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Runs `f` (which enters JavaScript) and charges its time as busy.
    pub fn busy<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = self.now_ns();
        self.poll_start.store(start + 1, Ordering::SeqCst);
        let out = f();
        self.poll_start.store(0, Ordering::SeqCst);
        self.busy_ns
            .fetch_add(self.now_ns().saturating_sub(start), Ordering::SeqCst);
        out
    }

    /// Changes the idle limit (once the handler's own CPU limit is known).
    pub fn set_idle_limit(&self, limit: Duration) {
        self.idle_limit_ns.store(limit.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Starts charging invocation `id` against `limit`.
    pub fn start(&self, id: u32, limit: Duration) {
        let busy = self.busy_ns.load(Ordering::SeqCst);
        self.idle_from_ns.store(busy, Ordering::SeqCst);
        lock(&self.budgets).push((id, busy, limit.as_nanos() as u64));
    }

    /// Stops charging invocation `id`.
    pub fn finish(&self, id: u32) {
        lock(&self.budgets).retain(|b| b.0 != id);
    }

    /// Why the isolate was stopped, if it was.
    pub fn termination(&self) -> Option<Termination> {
        *lock(&self.termination)
    }

    /// Stops the isolate for `why` (the first reason wins).
    pub fn terminate(&self, why: Termination) {
        let mut slot = lock(&self.termination);
        if slot.is_none() {
            *slot = Some(why);
        }
        self.isolate.terminate_execution();
    }

    fn check(&self) {
        let start = self.poll_start.load(Ordering::SeqCst);
        if start == 0 {
            return;
        }
        let in_poll = self.now_ns().saturating_sub(start - 1);
        let busy_now = self.busy_ns.load(Ordering::SeqCst) + in_poll;
        let budgets = lock(&self.budgets);
        let over = if budgets.is_empty() {
            // Code left running by invocations that already ended (a promise chain; their
            // timers are cleared when they end): it is charged together, from the start of
            // the last invocation, against the idle limit.
            let idle_limit = self.idle_limit_ns.load(Ordering::SeqCst);
            let idle_used = busy_now.saturating_sub(self.idle_from_ns.load(Ordering::SeqCst));
            (idle_used > idle_limit).then_some(idle_limit)
        } else {
            budgets
                .iter()
                .find(|(_, at_start, limit)| busy_now.saturating_sub(*at_start) > *limit)
                .map(|(_, _, limit)| *limit)
        };
        drop(budgets);
        if let Some(limit_ns) = over {
            self.terminate(Termination::CpuLimit {
                limit_ms: limit_ns / 1_000_000,
            });
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Watchdog {
    meters: Mutex<Vec<Weak<Meter>>>,
}

impl Watchdog {
    fn register(&self, meter: &Arc<Meter>) {
        lock(&self.meters).push(Arc::downgrade(meter));
    }

    fn run(&self) {
        loop {
            std::thread::sleep(TICK);
            let live: Vec<Arc<Meter>> = {
                let mut meters = lock(&self.meters);
                meters.retain(|w| w.strong_count() > 0);
                meters.iter().filter_map(Weak::upgrade).collect()
            };
            for meter in live {
                meter.check();
            }
        }
    }
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let dog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            meters: Mutex::new(Vec::new()),
        }));
        std::thread::Builder::new()
            .name("eddy-watchdog".into())
            .spawn(|| dog.run())
            .expect("the watchdog thread must start: without it CPU limits do not hold");
        dog
    })
}
