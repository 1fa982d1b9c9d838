//! What goes into an invocation and what comes out of it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use eddy_runtime_js::Capture;

/// One event to run through one handler.
#[derive(Debug, Clone)]
pub struct InvocationRequest {
    pub event: Event,
    /// Stable across attempts of the same delivery.
    pub delivery_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Stable across attempts; handlers pass it to third parties that deduplicate.
    pub idempotency_key: String,
    /// The event's version: 1, then one more at each edit of its data.
    pub event_version: u32,
    /// Results of `ctx.step` recorded by earlier attempts, by step name, as JSON text:
    /// those steps return them instead of running again.
    pub recalled_steps: HashMap<String, String>,
}

/// `ctx.idempotencyKey` of `handler`'s delivery of version `version` of event `event_id`:
/// `<event id>:<handler>`, and `:v<version>` after it once the event has been edited, so a
/// third party that deduplicates by it takes the edited event as new.
pub fn idempotency_key(event_id: &str, handler: &str, version: u32) -> String {
    match version {
        0 | 1 => format!("{event_id}:{handler}"),
        n => format!("{event_id}:{handler}:v{n}"),
    }
}

/// The result of one invocation.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationReport {
    pub handler: String,
    pub outcome: Outcome,
    /// RFC 3339 time the invocation started.
    pub started_at: String,
    pub duration_ms: f64,
    /// Console lines and fetches.
    #[serde(flatten)]
    pub capture: Capture,
}

/// Success, or why not.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure(HandlerFailure),
}

impl Outcome {
    /// True for [`Outcome::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success)
    }
}

/// A failed invocation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HandlerFailure {
    pub kind: FailureKind,
    /// JS error name (`TypeError`, `RetryAfterError`, ...) or a host reason.
    pub name: String,
    pub message: String,
    /// JS stack with handler file, line and column, when there is one.
    pub stack: Option<String>,
    /// Set by `RetryAfterError`.
    pub retry_after_ms: Option<u64>,
    /// The `cause` chain of the thrown error, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<FailureCause>,
    /// Other own properties of the thrown error (`code`, `status`, ...), as text (JSON when
    /// the value has a JSON form).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// One error of a failure's `cause` chain (or a thrown non-error value, as text).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailureCause {
    pub name: String,
    pub message: String,
    pub stack: Option<String>,
}

/// Classes of failure; they decide whether a retry makes sense.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The handler threw (or its promise rejected).
    Error,
    /// The handler threw `NonRetryableError`.
    NonRetryable,
    /// The handler threw `RetryAfterError`.
    RetryAfter,
    /// The invocation ran past its wall-clock limit.
    Timeout,
    /// The invocation used more CPU than allowed; its isolate was discarded.
    CpuLimit,
    /// The isolate ran out of heap; it was discarded.
    HeapLimit,
    /// An uncaught error outside the handler's promise broke the isolate; it was discarded.
    Crashed,
    /// The handler could not be loaded or its isolate could not be started.
    Unavailable,
}

impl HandlerFailure {
    /// A failure raised by the host rather than by handler code.
    pub fn host(kind: FailureKind, message: impl Into<String>) -> Self {
        let name = match kind {
            FailureKind::Timeout => "TimeoutError",
            FailureKind::CpuLimit => "CpuLimitError",
            FailureKind::HeapLimit => "HeapLimitError",
            FailureKind::Unavailable => "LoadError",
            _ => "Error",
        };
        Self {
            kind,
            name: name.to_owned(),
            message: message.into(),
            stack: None,
            retry_after_ms: None,
            causes: Vec::new(),
            properties: BTreeMap::new(),
        }
    }

    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind != FailureKind::NonRetryable
    }

    /// The delay the handler asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_ms.map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_decisions() {
        let mut f = HandlerFailure::host(FailureKind::Timeout, "slow");
        assert!(f.is_retryable());
        assert_eq!(f.retry_after(), None);
        f.kind = FailureKind::NonRetryable;
        assert!(!f.is_retryable());
        f.retry_after_ms = Some(1500);
        assert_eq!(f.retry_after(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn outcome_serialises_with_a_status_tag() {
        let json = serde_json::to_value(Outcome::Success).unwrap();
        assert_eq!(json, serde_json::json!({"status": "success"}));
        let json = serde_json::to_value(Outcome::Failure(HandlerFailure::host(FailureKind::CpuLimit, "x"))).unwrap();
        assert_eq!(json["status"], "failure");
        assert_eq!(json["kind"], "cpu_limit");
    }
}
