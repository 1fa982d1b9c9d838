//! The label sets of eddy's metrics, and the values of their enumerated labels.

use prometheus_client::encoding::EncodeLabelSet;

/// How an attempt ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    Succeeded,
    /// Failed; another attempt is scheduled.
    Retried,
    /// Failed; the delivery is dead.
    Dead,
}

/// How a webhook request ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookOutcome {
    Accepted,
    /// A redelivery of an event already stored.
    Duplicate,
    /// Refused (`4xx`): its reason is counted too.
    Rejected,
}

impl AttemptOutcome {
    pub(super) fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Retried => "retried",
            AttemptOutcome::Dead => "dead",
        }
    }
}

impl WebhookOutcome {
    pub(super) fn label(self) -> &'static str {
        match self {
            WebhookOutcome::Accepted => "accepted",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Rejected => "rejected",
        }
    }
}

/// A delivery status the gauges count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GaugedStatus {
    Pending,
    Running,
    Dead,
    Blocked,
}

impl GaugedStatus {
    pub(super) fn label(self) -> &'static str {
        match self {
            GaugedStatus::Pending => "pending",
            GaugedStatus::Running => "running",
            GaugedStatus::Dead => "dead",
            GaugedStatus::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct HandlerOutcome {
    pub handler: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct HandlerLabel {
    pub handler: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct HandlerStatus {
    pub handler: String,
    pub status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct SourceOutcome {
    pub source: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct SourceReason {
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct HostLabel {
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct HostClass {
    pub host: String,
    pub class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct Outcome {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct Kind {
    pub kind: &'static str,
}
