//! The serve loop of one isolate: starts invocations as jobs arrive, drives the event loop,
//! collects the ends the JS side reports, enforces wall-clock limits, and writes reports.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use deno_core::error::CoreError;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::bounds;
use super::isolate::{Isolate, Job, Loaded, Reply, end_fetches, end_invocation, poll_event_loop, register_capture};
use super::js::{self, InvokeArgs};
use super::report::{FailureCause, FailureKind, HandlerFailure, InvocationReport, Outcome};
use super::watchdog::Termination;
use eddy_runtime_js::HostState;

struct InFlight {
    id: u32,
    deadline: Pin<Box<tokio::time::Sleep>>,
    started: Instant,
    started_at: String,
    reply: oneshot::Sender<Reply>,
}

/// How a handler failed, as the JS side describes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsFailure {
    kind: FailureKind,
    retry_after_ms: Option<f64>,
    name: String,
    message: String,
    stack: Option<String>,
    #[serde(default)]
    causes: Vec<FailureCause>,
    #[serde(default)]
    properties: std::collections::BTreeMap<String, String>,
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
    pub fn poll(&mut self, cx: &mut Context<'_>, rx: &mut mpsc::UnboundedReceiver<Box<Job>>) -> Poll<()> {
        // Jobs beyond the interleaving limit wait in the channel until one in flight ends.
        let max_inflight = self.isolate.spec.shared.settings.invocations_per_isolate;
        // Whether the channel will wake this task for the next job: only once it was polled
        // to `Pending` in this turn.
        let mut listening = false;
        while !self.closing && self.inflight.len() < max_inflight {
            match rx.poll_recv(cx) {
                Poll::Ready(Some(job)) => self.start(*job),
                Poll::Ready(None) => self.closing = true,
                Poll::Pending => {
                    listening = true;
                    break;
                }
            }
        }
        let looped = poll_event_loop(&mut self.isolate.runtime, &self.isolate.meter, cx);
        if let Some(why) = self.isolate.meter.termination() {
            let kind = match why {
                Termination::CpuLimit { .. } => FailureKind::CpuLimit,
                Termination::HeapLimit { .. } | Termination::ArrayBuffers { .. } => FailureKind::HeapLimit,
            };
            self.stopped = Some((kind, js::describe_termination(why, "during the invocation")));
            return Poll::Ready(());
        }
        if let Poll::Ready(Err(e)) = looped {
            self.stopped = Some((FailureKind::Crashed, uncaught_message(&e)));
            return Poll::Ready(());
        }
        self.collect_finished();
        self.expire(cx);
        if self.closing && self.inflight.is_empty() {
            return Poll::Ready(());
        }
        if !self.closing && !listening && self.inflight.len() < max_inflight {
            // Room was made this turn while the channel went unpolled (the isolate was at its
            // limit): without another turn, a job sent from now on would wake nobody.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    fn start(&mut self, mut job: Job) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let entry = InFlight {
            id,
            deadline: Box::pin(tokio::time::sleep(self.loaded.timeout)),
            started: Instant::now(),
            started_at: crate::event::now_rfc3339(),
            reply: job.reply,
        };
        let recalled = std::mem::take(&mut job.request.recalled_steps);
        register_capture(&mut self.isolate.runtime, id, recalled);
        self.isolate.meter.start(id, self.loaded.cpu_limit);
        let request = &job.request;
        let started = match serde_json::to_string(&request.event) {
            Ok(event_json) => {
                let args = InvokeArgs {
                    id,
                    event_json: &event_json,
                    delivery_id: &request.delivery_id,
                    attempt: request.attempt,
                    idempotency_key: &request.idempotency_key,
                    event_version: request.event_version,
                };
                let runtime = &mut self.isolate.runtime;
                let invoke = &self.isolate.invoke;
                self.isolate
                    .meter
                    .busy(|| js::call_invoke(runtime, invoke, &args))
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("event cannot be serialised: {e}")),
        };
        match started {
            Ok(()) => self.inflight.push(entry),
            // Stopped by a limit while starting: the loop fails it with the limit's reason.
            Err(_) if self.isolate.meter.termination().is_some() => self.inflight.push(entry),
            Err(message) => {
                let failure = HandlerFailure::host(FailureKind::Crashed, message);
                self.finish(entry, Outcome::Failure(failure), false);
            }
        }
    }

    /// Turns the ends reported by `op_eddy_invocation_done` into reports.
    fn collect_finished(&mut self) {
        let finished = {
            let state = self.isolate.runtime.op_state();
            let mut state = state.borrow_mut();
            std::mem::take(&mut state.borrow_mut::<HostState>().finished)
        };
        for (id, failure) in finished {
            // An invocation that already timed out may still end later: nobody waits for it.
            let Some(at) = self.inflight.iter().position(|e| e.id == id) else {
                continue;
            };
            let entry = self.inflight.swap_remove(at);
            self.finish(entry, outcome_of(&failure), true);
        }
    }

    fn expire(&mut self, cx: &mut Context<'_>) {
        let mut i = 0;
        while i < self.inflight.len() {
            if self.inflight[i].deadline.as_mut().poll(cx).is_ready() {
                let entry = self.inflight.swap_remove(i);
                let limit = self.loaded.timeout.as_millis();
                let message = format!("handler did not finish within {limit} ms");
                self.finish(
                    entry,
                    Outcome::Failure(HandlerFailure::host(FailureKind::Timeout, message)),
                    false,
                );
            } else {
                i += 1;
            }
        }
    }

    /// Reports `entry` as ended with `outcome`. `settled_in_js` says the JavaScript side
    /// reported the end itself, and so has cancelled the invocation's timers already.
    fn finish(&mut self, entry: InFlight, outcome: Outcome, settled_in_js: bool) {
        self.isolate.meter.finish(entry.id);
        let isolate = &mut self.isolate;
        if settled_in_js {
            end_fetches(&mut isolate.runtime, entry.id);
        } else {
            // It can fail only if the isolate is being stopped, which ends everything anyway.
            let _ = end_invocation(&mut isolate.runtime, &isolate.meter, &isolate.end, entry.id);
        }
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
                f.stack = f.stack.map(|s| shorten_paths(&s, root));
                for cause in &mut f.causes {
                    cause.stack = cause.stack.take().map(|s| shorten_paths(&s, root));
                }
                Outcome::Failure(bounds::failure(f, &|s| secrets.redact(s).into_owned()))
            }
            ok => ok,
        };
        self.release_queued();
        let mut report = InvocationReport {
            handler: self.isolate.spec.handler.clone(),
            outcome,
            started_at: entry.started_at,
            duration_ms: entry.started.elapsed().as_secs_f64() * 1000.0,
            capture,
        };
        bounds::report(&mut report);
        let _ = entry.reply.send(Reply::Done(report));
    }

    /// Nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.inflight.is_empty() && !self.closing
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
                false,
            );
        }
    }
}

/// The outcome for what `op_eddy_invocation_done` reported: "" or a failure as JSON.
fn outcome_of(failure: &str) -> Outcome {
    if failure.is_empty() {
        return Outcome::Success;
    }
    match serde_json::from_str::<JsFailure>(failure) {
        Ok(e) => Outcome::Failure(HandlerFailure {
            kind: e.kind,
            name: e.name,
            message: e.message,
            stack: e.stack,
            retry_after_ms: e.retry_after_ms.map(|ms| ms.round() as u64),
            causes: e.causes,
            properties: e.properties,
        }),
        Err(e) => Outcome::Failure(HandlerFailure::host(
            FailureKind::Crashed,
            format!("unreadable failure: {e}"),
        )),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_from_the_js_report() {
        assert_eq!(outcome_of(""), Outcome::Success);
        let json =
            r#"{"kind":"retry_after","retryAfterMs":1500.4,"name":"RetryAfterError","message":"m","stack":null}"#;
        let Outcome::Failure(f) = outcome_of(json) else {
            panic!()
        };
        assert_eq!((f.kind, f.retry_after_ms), (FailureKind::RetryAfter, Some(1500)));
        let Outcome::Failure(f) = outcome_of("{") else { panic!() };
        assert_eq!(f.kind, FailureKind::Crashed);
    }

    #[test]
    fn stacks_lose_runtime_frames() {
        let stack = "Error: x\n    at default (file:///nowhere/h.js:2:9)\n    at run (ext:eddy/30_invoke.js:1:1)";
        assert_eq!(
            shorten_paths(stack, std::path::Path::new("/nowhere")),
            "Error: x\n    at default (file:///nowhere/h.js:2:9)"
        );
    }
}
