//! V8 glue: bootstrapping an isolate made from the snapshot, evaluating the handler module,
//! and moving values across the boundary. Everything that needs a V8 scope is here.

use std::path::Path;
use std::task::Poll;
use std::time::Duration;

use deno_core::error::{CoreError, CoreErrorKind, JsError};
use deno_core::{JsRuntime, ModuleSpecifier, serde_v8, v8};

use super::LoadError;
use super::isolate::poll_event_loop;
use super::watchdog::{Meter, Termination};
use eddy_runtime_js::Secrets;

/// Errors in the glue itself or in evaluating the handler module.
#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    #[error("{0}")]
    Core(#[from] CoreError),
    #[error("{}", .0.exception_message)]
    Js(#[from] Box<JsError>),
    #[error("internal: {0}")]
    Shape(&'static str),
    #[error("handler module did not finish loading within {0:?} (a top-level await that never settles?)")]
    LoadTimeout(Duration),
    #[error("handler module never finished loading: its top-level await can never settle")]
    Stalled,
    #[error("{0}")]
    Stopped(String),
    #[error("cannot convert value: {0}")]
    Convert(#[from] serde_v8::Error),
}

impl GlueError {
    /// A load error, located at `file:line:col` when the JS error says where.
    pub fn into_load_error(self, root: &Path) -> LoadError {
        match self {
            GlueError::Core(core) => match *core.0 {
                CoreErrorKind::Js(js) => located(&js, root),
                other => LoadError::new(other.to_string()),
            },
            GlueError::Js(js) => located(&js, root),
            GlueError::Stopped(why) => LoadError::new(why),
            other => LoadError::new(other.to_string()),
        }
    }
}

fn located(js: &JsError, root: &Path) -> LoadError {
    let message = with_hint(js.exception_message.trim_start_matches("Uncaught ").to_owned());
    let frame = js
        .frames
        .iter()
        .find(|f| f.file_name.as_deref().is_some_and(|n| n.starts_with("file:")));
    match frame {
        Some(f) => LoadError::located(
            display_file(f.file_name.as_deref().unwrap_or_default(), root),
            f.line_number.unwrap_or(0) as u32,
            f.column_number.unwrap_or(0) as u32,
            message,
        ),
        None => LoadError::new(message),
    }
}

/// `message` with a hint when it is what CommonJS gives when loaded as the ES module a
/// handler is.
fn with_hint(message: String) -> String {
    const COMMONJS: [&str; 3] = [
        "module is not defined",
        "exports is not defined",
        "require is not defined",
    ];
    if !COMMONJS.iter().any(|m| message.contains(m)) {
        return message;
    }
    format!(
        "{message} (handlers are ES modules, not CommonJS: write `export default async function (event, ctx) {{ ... }}` \
         instead of module.exports, and `import` instead of require)"
    )
}

/// `file:///abs/handlers/x.js` as a path relative to the current folder where possible.
pub fn display_file(url: &str, root: &Path) -> String {
    let Some(path) = ModuleSpecifier::parse(url).ok().and_then(|u| u.to_file_path().ok()) else {
        return url.to_owned();
    };
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    match path.strip_prefix(&canonical_root) {
        Ok(rel) => root.join(rel).display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// The JS entry points an isolate keeps after bootstrap.
pub struct EntryPoints {
    /// `invoke(id, eventJson, deliveryId, attempt, idempotencyKey, eventVersion)`.
    pub invoke: v8::Global<v8::Function>,
    /// `inspectModule(namespace)`: checks exports, returns the config as JSON.
    pub inspect: v8::Global<v8::Function>,
    /// `configure(name, secrets)`.
    pub configure: v8::Global<v8::Function>,
    /// `endInvocation(id)`: cancels the timers invocation `id` left behind.
    pub end: v8::Global<v8::Function>,
}

/// Runs the snapshot's bootstrap once: removes `Deno` and friends, returns the entry points.
pub fn bootstrap(runtime: &mut JsRuntime) -> Result<EntryPoints, GlueError> {
    let entries = runtime.execute_script("ext:eddy/bootstrap", "globalThis.__eddyBootstrap()")?;
    deno_core::scope!(scope, runtime);
    let entries = v8::Local::new(scope, entries);
    let entries = v8::Local::<v8::Array>::try_from(entries).map_err(|_| GlueError::Shape("bootstrap result"))?;
    let get = |i| {
        entries
            .get_index(scope, i)
            .and_then(|f| v8::Local::<v8::Function>::try_from(f).ok())
            .map(|f| v8::Global::new(scope, f))
            .ok_or(GlueError::Shape("bootstrap entry point"))
    };
    Ok(EntryPoints {
        invoke: get(0)?,
        inspect: get(1)?,
        configure: get(2)?,
        end: get(3)?,
    })
}

/// Loads and evaluates the handler module under a CPU budget and a wall-clock limit, then
/// checks its exports and returns its config as JSON.
pub async fn evaluate_handler(
    runtime: &mut JsRuntime,
    meter: &Meter,
    main: &ModuleSpecifier,
    inspect: &v8::Global<v8::Function>,
    cpu_limit: Duration,
) -> Result<String, GlueError> {
    meter.start(0, cpu_limit);
    let result = evaluate_module(runtime, meter, main, cpu_limit).await;
    meter.finish(0);
    if let Some(why) = meter.termination() {
        return Err(GlueError::Stopped(describe_termination(why, "while loading")));
    }
    let namespace = runtime.get_module_namespace(result?)?;
    let exports = {
        deno_core::scope!(scope, runtime);
        let ns: v8::Local<v8::Value> = v8::Local::new(scope, namespace).into();
        v8::Global::new(scope, ns)
    };
    let config = meter.busy(|| runtime.call_with_args(inspect, &[exports])).await?;
    read_value(runtime, config)
}

/// Hands the handler its name and secrets (once, after its config passed validation).
pub async fn configure(
    runtime: &mut JsRuntime,
    configure: &v8::Global<v8::Function>,
    handler: &str,
    secrets: &Secrets,
) -> Result<(), GlueError> {
    let args = {
        deno_core::scope!(scope, runtime);
        let name = serde_v8::to_v8(scope, handler)?;
        let secrets: std::collections::BTreeMap<&str, &str> = secrets.pairs().collect();
        let secrets = serde_v8::to_v8(scope, secrets)?;
        [v8::Global::new(scope, name), v8::Global::new(scope, secrets)]
    };
    runtime.call_with_args(configure, &args).await?;
    Ok(())
}

/// The arguments of one `invoke` call.
pub struct InvokeArgs<'a> {
    pub id: u32,
    pub event_json: &'a str,
    pub delivery_id: &'a str,
    pub attempt: u32,
    pub idempotency_key: &'a str,
    pub event_version: u32,
}

/// Starts one invocation. `invoke` itself only builds `ctx` and calls the handler, so it
/// returns at once; the end is reported through `op_eddy_invocation_done`.
pub fn call_invoke(
    runtime: &mut JsRuntime,
    invoke: &v8::Global<v8::Function>,
    args: &InvokeArgs<'_>,
) -> Result<(), GlueError> {
    deno_core::scope!(scope, runtime);
    v8::tc_scope!(let tc, scope);
    let argv = [
        v8::Integer::new_from_unsigned(tc, args.id).into(),
        js_string(tc, args.event_json)?,
        js_string(tc, args.delivery_id)?,
        v8::Integer::new_from_unsigned(tc, args.attempt).into(),
        js_string(tc, args.idempotency_key)?,
        v8::Integer::new_from_unsigned(tc, args.event_version).into(),
    ];
    let function = v8::Local::new(tc, invoke);
    let receiver = v8::undefined(tc).into();
    if function.call(tc, receiver, &argv).is_some() {
        return Ok(());
    }
    if tc.is_execution_terminating() {
        return Err(GlueError::Stopped("execution was terminated".into()));
    }
    let message = tc.exception().map(|e| e.to_rust_string_lossy(tc)).unwrap_or_default();
    Err(GlueError::Stopped(format!("invoke threw: {message}")))
}

/// Cancels the timers and intervals invocation `id` left behind (a no-op for one that
/// cleared them already).
pub fn call_end(runtime: &mut JsRuntime, end: &v8::Global<v8::Function>, id: u32) -> Result<(), GlueError> {
    deno_core::scope!(scope, runtime);
    v8::tc_scope!(let tc, scope);
    let argv = [v8::Integer::new_from_unsigned(tc, id).into()];
    let function = v8::Local::new(tc, end);
    let receiver = v8::undefined(tc).into();
    if function.call(tc, receiver, &argv).is_some() {
        return Ok(());
    }
    Err(GlueError::Stopped("endInvocation did not finish".into()))
}

async fn evaluate_module(
    runtime: &mut JsRuntime,
    meter: &Meter,
    main: &ModuleSpecifier,
    cpu_limit: Duration,
) -> Result<deno_core::ModuleId, GlueError> {
    let id = runtime.load_main_es_module(main).await?;
    let mut evaluation = Box::pin(meter.busy(|| runtime.mod_evaluate(id)));
    // The wall-clock limit on loading is generous: it only catches top-level awaits on
    // timers or fetches that never end.
    let wall_limit = cpu_limit.max(Duration::from_secs(10));
    let drive = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = evaluation.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(GlueError::from));
        }
        match poll_event_loop(runtime, meter, cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Ready(Ok(())) => match evaluation.as_mut().poll(cx) {
                Poll::Ready(r) => Poll::Ready(r.map_err(GlueError::from)),
                Poll::Pending => Poll::Ready(Err(GlueError::Stalled)),
            },
            Poll::Pending => Poll::Pending,
        }
    });
    tokio::time::timeout(wall_limit, drive)
        .await
        .map_err(|_| GlueError::LoadTimeout(wall_limit))??;
    Ok(id)
}

/// A human description of why an isolate was stopped.
pub fn describe_termination(why: Termination, when: &str) -> String {
    match why {
        Termination::CpuLimit { limit_ms } => {
            format!("stopped {when}: used more than {limit_ms} ms of CPU time")
        }
        Termination::HeapLimit { limit_mb } => {
            format!("stopped {when}: reached the heap limit of {limit_mb} MiB")
        }
        Termination::ArrayBuffers { limit_mb } => {
            format!("stopped {when}: its ArrayBuffers reached the limit of {limit_mb} MiB ([runtime] buffer_limit_mb)")
        }
    }
}

fn js_string<'s>(scope: &mut v8::PinScope<'s, '_>, text: &str) -> Result<v8::Local<'s, v8::Value>, GlueError> {
    v8::String::new(scope, text)
        .map(v8::Local::<v8::Value>::from)
        .ok_or(GlueError::Shape("string too large for V8"))
}

/// Reads a value returned from JavaScript.
pub fn read_value<T: serde::de::DeserializeOwned>(
    runtime: &mut JsRuntime,
    value: v8::Global<v8::Value>,
) -> Result<T, GlueError> {
    deno_core::scope!(scope, runtime);
    let value = v8::Local::new(scope, value);
    Ok(serde_v8::from_v8(scope, value)?)
}
