//! Loading a handler into an isolate, in two steps: a [`Blank`] isolate, made from the
//! snapshot and bootstrapped, which does not depend on the handler (so it can be made ahead,
//! see `spare.rs`); then the handler given to it: its state, module, config, secrets and
//! network grant.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use deno_core::{JsRuntime, RuntimeOptions, v8};
use eddy_runtime_js::net::AllowNet;
use eddy_runtime_js::{HostState, Secrets};

use super::handler::HandlerConfig;
use super::isolate::{Isolate, IsolateSpec, Loaded, end_invocation};
use super::loader::HandlerLoader;
use super::memory::{self, Budget};
use super::state::StoreState;
use super::watchdog::{Meter, Termination};
use super::{LoadError, snapshot};
use crate::config::RuntimeConfig;

/// What `inspectModule` reports about the module's exports.
#[derive(serde::Deserialize)]
struct Exports {
    config: serde_json::Value,
    on: serde_json::Value,
}

/// An isolate made from the snapshot and bootstrapped, with no handler yet: everything in an
/// isolate that does not depend on the handler.
pub struct Blank {
    runtime: JsRuntime,
    meter: Arc<Meter>,
    entry: super::js::EntryPoints,
    /// The runtime's module loader, kept to name the handler's main module.
    loader: HandlerLoader,
}

impl Blank {
    /// Makes one for the handlers under `root` (every handler it is given lies there), held
    /// to `settings`, in `rt`: the runtime
    /// that will drive it (V8 posts its delayed tasks to the runtime it was made in).
    pub fn make(rt: &tokio::runtime::Runtime, settings: &RuntimeConfig, root: &Path) -> Result<Self, LoadError> {
        let _entered = rt.enter();
        let loader = HandlerLoader::new(root)
            .map_err(|e| LoadError::new(format!("cannot open handlers folder {}: {e}", root.display())))?;
        let (mut runtime, meter) = new_runtime(settings, loader.clone())?;
        let entry = super::js::bootstrap(&mut runtime).map_err(|e| LoadError::new(e.to_string()))?;
        Ok(Self {
            runtime,
            meter,
            entry,
            loader,
        })
    }

    /// Gives it the handler of `spec`: its state, module, config, secrets and network grant.
    pub async fn load(self, spec: &IsolateSpec) -> Result<(Isolate, Loaded), LoadError> {
        let Self {
            mut runtime,
            meter,
            entry,
            loader,
        } = self;
        let main = loader
            .main_specifier(&spec.file)
            .map_err(|e| LoadError::new(e.to_string()))?;
        put_host_state(spec, &mut runtime);
        let load_limit = Duration::from_millis(spec.shared.settings.cpu_limit_ms);
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
        let isolate = Isolate {
            runtime,
            meter,
            invoke: entry.invoke,
            end: entry.end,
            spec: spec.clone(),
        };
        Ok((isolate, loaded))
    }
}

/// A runtime from the startup snapshot with the heap limit and the CPU meter.
fn new_runtime(settings: &RuntimeConfig, loader: HandlerLoader) -> Result<(JsRuntime, Arc<Meter>), LoadError> {
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
    Ok((runtime, meter))
}

/// The handler's side of the ops: its state namespace, no secrets or network yet (given once
/// its config is checked), and the module load as invocation 0.
fn put_host_state(spec: &IsolateSpec, runtime: &mut JsRuntime) {
    let settings = &spec.shared.settings;
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
