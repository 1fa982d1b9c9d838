//! The serve loop of one isolate: starts invocations as jobs arrive, drives the event loop,
//! enforces wall-clock limits, and turns results into reports.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use deno_core::error::{CoreError, JsError};
use deno_core::v8;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::isolate::{Isolate, Job, Loaded, Reply, poll_event_loop, register_capture};
use super::js;
use super::ops::HostState;
use super::report::{FailureKind, HandlerFailure, InvocationReport, Outcome};

type CallFuture = Pin<Box<dyn Future<Output = Result<v8::Global<v8::Value>, Box<JsError>>>>>;

struct InFlight {
    id: u32,
    call: CallFuture,
    deadline: Pin<Box<tokio::time::Sleep>>,
    started: Instant,
    started_at: String,
    reply: oneshot::Sender<Reply>,
}

/// The `info` argument of the JS `invoke` function.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InvokeInfo<'a> {
    invocation: u32,
    handler: &'a str,
    delivery_id: &'a str,
    attempt: u32,
    idempotency_key: &'a str,
    secrets: std::collections::BTreeMap<&'a str, &'a str>,
}

/// What the JS `invoke` resolves with.
#[derive(Deserialize)]
struct InvokeResult {
    ok: bool,
    error: Option<JsFailure>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsFailure {
    kind: FailureKind,
    retry_after_ms: Option<f64>,
    name: String,
    message: String,
    stack: Option<String>,
}

/// All invocations in flight on one isolate.
pub struct Invocations {
    isolate: Isolate,
    loaded: Loaded,
    inflight: Vec<InFlight>,
    queued: Arc<AtomicUsize>,
    next_id: u32,
    closing: bool,
    /// Why the isolate must go, once known; in-flight invocations fail with it.
    stopped: Option<(FailureKind, String)>,
}

impl Invocations {
    pub fn new(isolate: Isolate, loaded: Loaded, queued: Arc<AtomicUsize>) -> Self {
        Self {
            isolate,
            loaded,
            inflight: Vec::new(),
            queued,
            next_id: 1,
            closing: false,
            stopped: None,
        }
    }

    /// One turn of the loop; ready when the isolate must go (stopped, or no more work).
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        rx: &mut mpsc::UnboundedReceiver<Box<Job>>,
    ) -> Poll<()> {
        while !self.closing {
            match rx.poll_recv(cx) {
                Poll::Ready(Some(job)) => self.start(job),
                Poll::Ready(None) => self.closing = true,
                Poll::Pending => break,
            }
        }
        let looped = poll_event_loop(&mut self.isolate.runtime, &self.isolate.meter, cx);
        if let Some(why) = self.isolate.meter.termination() {
            let kind = match why {
                super::watchdog::Termination::CpuLimit { .. } => FailureKind::CpuLimit,
                super::watchdog::Termination::HeapLimit { .. } => FailureKind::HeapLimit,
            };
            self.stopped = Some((kind, js::describe_termination(why, "during the invocation")));
            return Poll::Ready(());
        }
        if let Poll::Ready(Err(e)) = looped {
            self.stopped = Some((FailureKind::Crashed, uncaught_message(&e)));
            return Poll::Ready(());
        }
        self.poll_inflight(cx);
        if self.closing && self.inflight.is_empty() {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn poll_inflight(&mut self, cx: &mut Context<'_>) {
        let mut i = 0;
        while i < self.inflight.len() {
            let meter = &self.isolate.meter;
            let entry = &mut self.inflight[i];
            if let Poll::Ready(result) = meter.busy(|| entry.call.as_mut().poll(cx)) {
                let entry = self.inflight.swap_remove(i);
                let outcome = self.outcome(result);
                self.finish(entry, outcome);
            } else if entry.deadline.as_mut().poll(cx).is_ready() {
                let entry = self.inflight.swap_remove(i);
                let limit = self.loaded.timeout.as_millis();
                let failure = HandlerFailure::host(
                    FailureKind::Timeout,
                    format!("handler did not finish within {limit} ms"),
                );
                self.finish(entry, Outcome::Failure(failure));
            } else {
                i += 1;
            }
        }
    }

    fn start(&mut self, job: Box<Job>) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let started = Instant::now();
        let started_at = crate::event::now_rfc3339();
        register_capture(&mut self.isolate.runtime, id);
        self.isolate.meter.start(id, self.loaded.cpu_limit);
        let call = self.call(id, &job);
        let deadline = Box::pin(tokio::time::sleep(self.loaded.timeout));
        let entry = InFlight {
            id,
            call,
            deadline,
            started,
            started_at,
            reply: job.reply,
        };
        self.inflight.push(entry);
    }

    fn call(&mut self, id: u32, job: &Job) -> CallFuture {
        let request = &job.request;
        let event_json = match serde_json::to_string(&request.event) {
            Ok(json) => json,
            Err(e) => return failed_call(format!("event cannot be serialised: {e}")),
        };
        let secrets = {
            let state = self.isolate.runtime.op_state();
            let state = state.borrow();
            state.borrow::<HostState>().secrets.clone()
        };
        let info = InvokeInfo {
            invocation: id,
            handler: &self.isolate.spec.handler,
            delivery_id: &request.delivery_id,
            attempt: request.attempt,
            idempotency_key: &request.idempotency_key,
            secrets: secrets.pairs().collect(),
        };
        let runtime = &mut self.isolate.runtime;
        match js::invoke_args(runtime, &self.isolate.handler_fn, &event_json, &info) {
            Ok(args) => {
                let invoke = &self.isolate.invoke;
                Box::pin(
                    self.isolate
                        .meter
                        .busy(|| runtime.call_with_args(invoke, &args)),
                )
            }
            Err(e) => failed_call(e.to_string()),
        }
    }

    fn outcome(&mut self, result: Result<v8::Global<v8::Value>, Box<JsError>>) -> Outcome {
        let value = match result {
            Ok(value) => value,
            Err(e) => {
                let failure =
                    HandlerFailure::host(FailureKind::Crashed, e.exception_message.clone());
                return Outcome::Failure(failure);
            }
        };
        match js::read_value::<InvokeResult>(&mut self.isolate.runtime, value) {
            Ok(InvokeResult { ok: true, .. }) => Outcome::Success,
            Ok(InvokeResult { error: Some(e), .. }) => Outcome::Failure(HandlerFailure {
                kind: e.kind,
                name: e.name,
                message: e.message,
                stack: e.stack,
                retry_after_ms: e.retry_after_ms.map(|ms| ms.round() as u64),
            }),
            Ok(_) => Outcome::Failure(HandlerFailure::host(
                FailureKind::Crashed,
                "invoke returned no outcome",
            )),
            Err(e) => Outcome::Failure(HandlerFailure::host(FailureKind::Crashed, e.to_string())),
        }
    }

    fn finish(&mut self, entry: InFlight, outcome: Outcome) {
        self.isolate.meter.finish(entry.id);
        let (capture, secrets) = {
            let state = self.isolate.runtime.op_state();
            let mut state = state.borrow_mut();
            let host = state.borrow_mut::<HostState>();
            (
                host.captures.remove(&entry.id).unwrap_or_default(),
                host.secrets.clone(),
            )
        };
        let root = &self.isolate.spec.root;
        let outcome = match outcome {
            Outcome::Failure(mut f) => {
                f.message = secrets.redact(&f.message).into_owned();
                f.stack = f.stack.map(|s| shorten_paths(&secrets.redact(&s), root));
                Outcome::Failure(f)
            }
            ok => ok,
        };
        self.release_queued();
        let _ = entry.reply.send(Reply::Done(InvocationReport {
            handler: self.isolate.spec.handler.clone(),
            outcome,
            started_at: entry.started_at,
            duration_ms: entry.started.elapsed().as_secs_f64() * 1000.0,
            capture,
        }));
    }

    /// One job fewer counts against this isolate.
    pub fn release_queued(&self) {
        self.queued.fetch_sub(1, Ordering::SeqCst);
    }

    /// Fails every invocation still in flight with the reason the isolate stopped.
    pub fn fail_all_inflight(&mut self) {
        let (kind, message) = self
            .stopped
            .take()
            .unwrap_or((FailureKind::Crashed, "the isolate stopped".to_owned()));
        for entry in std::mem::take(&mut self.inflight) {
            self.finish(
                entry,
                Outcome::Failure(HandlerFailure::host(kind, message.clone())),
            );
        }
    }
}

fn failed_call(message: String) -> CallFuture {
    Box::pin(async move {
        Err(Box::new(JsError {
            exception_message: message,
            ..empty_js_error()
        }))
    })
}

fn empty_js_error() -> JsError {
    JsError {
        name: None,
        message: None,
        stack: None,
        cause: None,
        exception_message: String::new(),
        frames: Vec::new(),
        source_line: None,
        source_line_frame_index: None,
        aggregated: None,
        additional_properties: Vec::new(),
        stack_is_custom: false,
    }
}

fn uncaught_message(e: &CoreError) -> String {
    format!("uncaught error outside the handler's promise (the isolate was replaced): {e}")
}

/// Drops the runtime's own frames from a stack and rewrites `file:///abs/handlers/x.js` to
/// `handlers/x.js`, as the user wrote it.
fn shorten_paths(stack: &str, root: &std::path::Path) -> String {
    let own = stack
        .lines()
        .filter(|line| !(line.trim_start().starts_with("at ") && line.contains("ext:")))
        .collect::<Vec<_>>()
        .join("\n");
    let Ok(canonical) = root.canonicalize() else {
        return own;
    };
    let Ok(url) = deno_core::ModuleSpecifier::from_directory_path(&canonical) else {
        return own;
    };
    let shown = format!("{}/", root.display().to_string().trim_end_matches('/'));
    own.replace(url.as_str(), &shown)
}
