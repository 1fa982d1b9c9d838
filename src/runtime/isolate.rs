//! One V8 isolate with one handler module loaded, owned by its own thread.
//!
//! `JsRuntime` is not `Send`, so each isolate lives on a dedicated thread with a
//! current-thread tokio runtime and receives work over a channel. The thread ends when the
//! channel closes or when the isolate is stopped (CPU or heap limit, uncaught error); the
//! pool then makes a fresh one.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use deno_core::{JsRuntime, PollEventLoopOptions, RuntimeOptions, v8};
use eddy_runtime_js::net::AllowNet;
use eddy_runtime_js::{Capture, HostState, Secrets};
use tokio::sync::{mpsc, oneshot};

use super::handler::HandlerConfig;
use super::invocation::Invocations;
use super::loader::HandlerLoader;
use super::memory::{self, Budget};
use super::report::{InvocationReport, InvocationRequest};
use super::state::StoreState;
use super::watchdog::{Meter, Termination};
use super::{LoadError, Shared, snapshot};

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

/// What `inspectModule` reports about the module's exports.
#[derive(serde::Deserialize)]
struct Exports {
    config: serde_json::Value,
    on: serde_json::Value,
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

/// Starts an isolate thread and waits until the handler is loaded.
pub async fn spawn(spec: IsolateSpec) -> Result<(IsolateHandle, Loaded), LoadError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (loaded_tx, loaded_rx) = oneshot::channel();
    let inflight = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let (thread_inflight, thread_dead) = (inflight.clone(), dead.clone());
    std::thread::Builder::new()
        .name(format!("eddy-isolate:{}", spec.handler))
        .spawn(move || thread_main(spec, loaded_tx, rx, thread_inflight, thread_dead))
        .map_err(|e| LoadError::new(format!("cannot start an isolate thread: {e}")))?;
    let loaded = loaded_rx
        .await
        .map_err(|_| LoadError::new("the isolate thread stopped while loading"))??;
    Ok((IsolateHandle { tx, inflight, dead }, loaded))
}

fn thread_main(
    spec: IsolateSpec,
    loaded_tx: oneshot::Sender<Result<Loaded, LoadError>>,
    rx: mpsc::UnboundedReceiver<Box<Job>>,
    inflight: Arc<AtomicUsize>,
    dead: Arc<AtomicBool>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = loaded_tx.send(Err(LoadError::new(format!("cannot start a tokio runtime: {e}"))));
            return;
        }
    };
    let serve_dead = dead.clone();
    rt.block_on(async move {
        match Isolate::create(&spec).await {
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
    async fn create(spec: &IsolateSpec) -> Result<(Self, Loaded), LoadError> {
        let settings = &spec.shared.settings;
        let loader = HandlerLoader::new(&spec.root)
            .map_err(|e| LoadError::new(format!("cannot open handlers folder {}: {e}", spec.root.display())))?;
        let main = loader
            .main_specifier(&spec.file)
            .map_err(|e| LoadError::new(e.to_string()))?;
        let (mut runtime, meter) = new_runtime(spec, loader)?;
        let entry = super::js::bootstrap(&mut runtime).map_err(|e| LoadError::new(e.to_string()))?;
        let load_limit = Duration::from_millis(settings.cpu_limit_ms);
        let config_json = super::js::evaluate_handler(&mut runtime, &meter, &main, &entry.inspect, load_limit)
            .await
            .map_err(|e| e.into_load_error(&spec.root))?;
        // Nothing the module started while loading outlives the load, so none of it ever runs
        // with the network grant and secrets given below.
        end_invocation(&mut runtime, &meter, &entry.end, 0).map_err(|e| LoadError::new(e.to_string()))?;
        let (loaded, secrets) = apply_config(spec, &mut runtime, &config_json)?;
        meter.set_idle_limit(loaded.cpu_limit);
        super::js::configure(&mut runtime, &entry.configure, &spec.handler, &secrets)
            .await
            .map_err(|e| LoadError::new(e.to_string()))?;
        let isolate = Self {
            runtime,
            meter,
            invoke: entry.invoke,
            end: entry.end,
            spec: spec.clone(),
        };
        Ok((isolate, loaded))
    }

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

/// A runtime from the startup snapshot with the heap limit, the CPU meter and a `HostState`
/// that grants nothing yet (no secrets, no network) while the module is evaluated.
fn new_runtime(spec: &IsolateSpec, loader: HandlerLoader) -> Result<(JsRuntime, Arc<Meter>), LoadError> {
    let settings = &spec.shared.settings;
    let heap_bytes = settings.heap_limit_mb as usize * 1024 * 1024;
    let buffers = Budget::new(settings.buffer_limit_mb as usize * 1024 * 1024);
    let create_params = v8::CreateParams::default()
        .heap_limits(0, heap_bytes)
        .array_buffer_allocator(memory::allocator(buffers.clone()));
    let mut runtime = JsRuntime::try_new(RuntimeOptions {
        startup_snapshot: Some(snapshot::STARTUP_SNAPSHOT),
        residual_lazy_js_sources: snapshot::LAZY_SOURCES,
        extensions: snapshot::extensions(),
        module_loader: Some(Rc::new(loader)),
        create_params: Some(create_params),
        ..Default::default()
    })
    .map_err(|e| LoadError::new(format!("cannot create an isolate: {e}")))?;
    let meter = Meter::register(
        runtime.v8_isolate().thread_safe_handle(),
        Duration::from_millis(settings.cpu_limit_ms),
    );
    // A refused buffer is a RangeError that JavaScript could catch; the isolate is stopped
    // instead, as at the heap limit. Weak: the allocator may outlive the meter.
    let buffer_meter = Arc::downgrade(&meter);
    let limit_mb = settings.buffer_limit_mb;
    buffers.on_exceeded(move || {
        if let Some(meter) = buffer_meter.upgrade() {
            meter.terminate(Termination::ArrayBuffers { limit_mb });
        }
    });
    let heap_meter = meter.clone();
    let limit_mb = settings.heap_limit_mb;
    runtime.add_near_heap_limit_callback(move |current, _initial| {
        heap_meter.terminate(Termination::HeapLimit { limit_mb });
        // Room for the termination to unwind; the isolate is discarded right after.
        current * 2
    });
    runtime.op_state().borrow_mut().put(HostState {
        state: std::rc::Rc::new(StoreState(
            spec.shared.store.handler_state(&spec.handler, spec.shared.state_quota),
        )),
        secrets: Arc::new(Secrets::default()),
        allow_net: AllowNet::default(),
        http: spec.shared.http.clone(),
        captures: Default::default(),
        max_log_bytes: settings.max_log_bytes,
        finished: Vec::new(),
        live: Default::default(),
    });
    // Loading is invocation 0: what it starts ends once the module is loaded.
    runtime
        .op_state()
        .borrow_mut()
        .borrow_mut::<HostState>()
        .begin_invocation(0);
    Ok((runtime, meter))
}

/// Reads the handler's config, resolves its secrets and network grant, and hands them to
/// the ops.
fn apply_config(
    spec: &IsolateSpec,
    runtime: &mut JsRuntime,
    exports_json: &str,
) -> Result<(Loaded, Arc<Secrets>), LoadError> {
    let exports: Exports = serde_json::from_str(exports_json).map_err(|e| LoadError::new(e.to_string()))?;
    let config = HandlerConfig::from_json(&exports.config.to_string(), (&spec.shared.settings).into())
        .map_err(|e| LoadError::new(e.to_string()))?;
    let allow_net = AllowNet::parse(&config.allow_net).map_err(|e| LoadError::new(format!("config.allowNet: {e}")))?;
    let secrets = spec
        .shared
        .secret_source
        .resolve(&config.secrets, &spec.root)
        .map_err(|e| LoadError::new(e.to_string()))?;
    let secrets = Arc::new(secrets);
    let settings = &spec.shared.settings;
    let timeout = config.timeout(settings.timeout_ms);
    let cpu_limit = config.cpu_limit(settings.cpu_limit_ms, timeout);
    {
        let state = runtime.op_state();
        let mut state = state.borrow_mut();
        let host = state.borrow_mut::<HostState>();
        host.secrets = secrets.clone();
        host.allow_net = allow_net;
    }
    let loaded = Loaded {
        config,
        on: exports.on,
        timeout,
        cpu_limit,
    };
    Ok((loaded, secrets))
}

/// A fresh, empty capture for a new invocation.
pub fn register_capture(runtime: &mut JsRuntime, id: u32) {
    let state = runtime.op_state();
    let mut state = state.borrow_mut();
    let host = state.borrow_mut::<HostState>();
    host.captures.insert(id, Capture::default());
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
