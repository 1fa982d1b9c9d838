//! One V8 isolate with one handler module loaded, owned by its own thread.
//!
//! `JsRuntime` is not `Send`, so each isolate lives on a dedicated thread with a
//! current-thread tokio runtime and receives work over a channel. The thread ends when the
//! channel closes or when the isolate is stopped (CPU or heap limit, uncaught error); the
//! pool then makes a fresh one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use deno_core::{JsRuntime, PollEventLoopOptions, v8};
use eddy_runtime_js::{Capture, HostState};
use tokio::sync::{mpsc, oneshot};

use super::blank::Blank;
use super::handler::HandlerConfig;
use super::invocation::Invocations;
use super::report::{InvocationReport, InvocationRequest};
use super::watchdog::Meter;
use super::{LoadError, Shared};

/// What an isolate needs to load its handler.
#[derive(Clone)]
pub struct IsolateSpec {
    pub handler: String,
    pub file: PathBuf,
    pub root: PathBuf,
    pub shared: Arc<Shared>,
}

/// Facts learnt while loading, reported to the pool.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: HandlerConfig,
    /// The module's `on` export, as JSON (null when absent).
    pub on: serde_json::Value,
    pub timeout: Duration,
    pub cpu_limit: Duration,
}

/// A unit of work for the isolate thread.
pub struct Job {
    pub request: InvocationRequest,
    pub reply: oneshot::Sender<Reply>,
}

/// The answer to a [`Job`].
pub enum Reply {
    /// The invocation ran (successfully or not).
    Done(InvocationReport),
    /// The isolate stopped before starting it; the pool may send it elsewhere.
    NotStarted(InvocationRequest),
}

/// The pool's handle on one isolate thread.
pub struct IsolateHandle {
    /// Closing it (dropping the handle) lets the thread finish its work and exit.
    tx: mpsc::UnboundedSender<Box<Job>>,
    pub inflight: Arc<AtomicUsize>,
    pub dead: Arc<AtomicBool>,
}

impl IsolateHandle {
    /// Queues `job`; gives it back if the thread is gone.
    pub fn send(&self, job: Box<Job>) -> Result<(), Box<Job>> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        self.tx.send(job).map_err(|e| {
            self.inflight.fetch_sub(1, Ordering::SeqCst);
            e.0
        })
    }

    /// False once the isolate was stopped or its thread ended.
    pub fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst) && !self.tx.is_closed()
    }
}

/// What an isolate thread is given: the handler to load, where to say how loading went, and
/// the jobs to serve once it is loaded.
pub struct Work {
    spec: IsolateSpec,
    loaded_tx: oneshot::Sender<Result<Loaded, LoadError>>,
    rx: mpsc::UnboundedReceiver<Box<Job>>,
    inflight: Arc<AtomicUsize>,
    dead: Arc<AtomicBool>,
}

/// Starts an isolate thread (or hands the handler to the one made ahead) and waits until the
/// handler is loaded.
pub async fn spawn(spec: IsolateSpec) -> Result<(IsolateHandle, Loaded), LoadError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (loaded_tx, loaded_rx) = oneshot::channel();
    let inflight = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let shared = spec.shared.clone();
    let work = Work {
        spec,
        loaded_tx,
        rx,
        inflight: inflight.clone(),
        dead: dead.clone(),
    };
    if let Err(work) = shared.spares.hand_over(work) {
        let name = format!("eddy-isolate:{}", work.spec.handler);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || thread_main(None, work))
            .map_err(|e| LoadError::new(format!("cannot start an isolate thread: {e}")))?;
    }
    shared.spares.refill();
    let loaded = loaded_rx
        .await
        .map_err(|_| LoadError::new("the isolate thread stopped while loading"))??;
    Ok((IsolateHandle { tx, inflight, dead }, loaded))
}

/// An isolate thread's life: loads `work`'s handler into the isolate made ahead (or a new
/// one), then serves its jobs until the channel closes or the isolate is stopped.
pub fn thread_main(made: Option<(tokio::runtime::Runtime, Result<Blank, LoadError>)>, work: Work) {
    let Work {
        spec,
        loaded_tx,
        rx,
        inflight,
        dead,
    } = work;
    let (rt, blank) = match made {
        Some(made) => made,
        None => match current_thread_runtime() {
            Ok(rt) => {
                let blank = Blank::make(&rt, &spec.shared.settings, &spec.root);
                (rt, blank)
            }
            Err(e) => {
                let _ = loaded_tx.send(Err(e));
                return;
            }
        },
    };
    let serve_dead = dead.clone();
    rt.block_on(async move {
        let loaded = match blank {
            Ok(blank) => blank.load(&spec).await,
            Err(e) => Err(e),
        };
        match loaded {
            Ok((isolate, loaded)) => {
                let _ = loaded_tx.send(Ok(loaded.clone()));
                isolate.serve(rx, loaded, inflight, serve_dead).await;
            }
            Err(e) => {
                let _ = loaded_tx.send(Err(e));
            }
        }
    });
    dead.store(true, Ordering::SeqCst);
}

/// The runtime an isolate thread drives its event loop with.
pub fn current_thread_runtime() -> Result<tokio::runtime::Runtime, LoadError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LoadError::new(format!("cannot start a tokio runtime: {e}")))
}

/// A live isolate with the handler's entry points.
pub struct Isolate {
    pub runtime: JsRuntime,
    pub meter: Arc<Meter>,
    pub invoke: v8::Global<v8::Function>,
    /// Ends what an invocation left behind (see [`end_invocation`]).
    pub end: v8::Global<v8::Function>,
    pub spec: IsolateSpec,
}

impl Isolate {
    async fn serve(
        self,
        mut rx: mpsc::UnboundedReceiver<Box<Job>>,
        loaded: Loaded,
        inflight: Arc<AtomicUsize>,
        dead: Arc<AtomicBool>,
    ) {
        let mut invocations = Invocations::new(self, loaded, inflight);
        std::future::poll_fn(|cx| {
            let turn = invocations.poll(cx, &mut rx);
            if turn.is_pending() && invocations.is_idle() && linger(&rx) {
                // A job came while lingering: the next turn takes it, with a fresh task budget.
                cx.waker().wake_by_ref();
            }
            turn
        })
        .await;
        // Mark the isolate dead before answering anyone, so no new job is sent here.
        dead.store(true, Ordering::SeqCst);
        invocations.fail_all_inflight();
        rx.close();
        while let Ok(job) = rx.try_recv() {
            invocations.release_queued();
            let _ = job.reply.send(Reply::NotStarted(job.request));
        }
    }
}

/// How long an idle isolate thread watches its channel before it sleeps: waking a sleeping
/// thread costs tens of microseconds on a virtual machine, more than a short handler runs.
const LINGER: Duration = Duration::from_micros(50);

/// Spins until a job is waiting (true) or [`LINGER`] has passed (false).
fn linger(rx: &mpsc::UnboundedReceiver<Box<Job>>) -> bool {
    let until = std::time::Instant::now() + LINGER;
    while rx.is_empty() {
        if std::time::Instant::now() >= until {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// A fresh, empty capture for a new invocation.
pub fn register_capture(runtime: &mut JsRuntime, id: u32, recalled: HashMap<String, String>) {
    let state = runtime.op_state();
    let mut state = state.borrow_mut();
    let host = state.borrow_mut::<HostState>();
    let mut capture = Capture::default();
    capture.recalled = recalled;
    host.captures.insert(id, capture);
    host.begin_invocation(id);
}

/// Ends the fetches invocation `id` still has in flight (their connections close) and
/// refuses the ones it would start later.
pub fn end_fetches(runtime: &mut JsRuntime, id: u32) {
    runtime
        .op_state()
        .borrow_mut()
        .borrow_mut::<HostState>()
        .end_invocation(id);
}

/// Ends everything invocation `id` started that is still pending: its fetches and its timers
/// and intervals, so no work of an ended invocation is left to use CPU or sockets. For ends
/// the JavaScript side did not see (a timeout, a host failure, the module load); an
/// invocation that settled in JavaScript cancelled its own timers then.
pub fn end_invocation(
    runtime: &mut JsRuntime,
    meter: &Meter,
    end: &v8::Global<v8::Function>,
    id: u32,
) -> Result<(), super::js::GlueError> {
    end_fetches(runtime, id);
    if meter.termination().is_some() {
        // A stopped isolate runs no more JavaScript; its timers go with it.
        return Ok(());
    }
    meter.busy(|| super::js::call_end(runtime, end, id))
}

/// Poll helper shared by load and serve: one poll of the event loop, charged as busy time.
pub fn poll_event_loop(
    runtime: &mut JsRuntime,
    meter: &Meter,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Result<(), deno_core::error::CoreError>> {
    meter.busy(|| runtime.poll_event_loop(cx, PollEventLoopOptions::default()))
}
