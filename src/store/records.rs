//! The persisted records of the event pipeline. Each is stored with a version byte
//! (see [`super::keys`]); a change of shape gets a new version, never a silent reinterpretation.

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// An accepted event and the deliveries it created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Position in ingest order; the listing cursor.
    pub seq: u64,
    /// When eddy accepted it, in milliseconds since the Unix epoch.
    pub received_ms: u64,
    pub event: Event,
    /// One delivery per matching handler; empty when the event was unrouted.
    pub deliveries: Vec<String>,
    /// 1 as accepted; each edit adds one and keeps the previous data in the history.
    #[serde(default = "first_version")]
    pub version: u32,
    /// Fields removed by redaction (`data` for the whole payload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
    /// When the last redaction happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_ms: Option<u64>,
}

fn first_version() -> u32 {
    1
}

/// A previous version of an event's data, kept when the event was edited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventVersion {
    pub version: u32,
    /// When it was replaced.
    pub replaced_ms: u64,
    pub data: serde_json::Value,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (queued).
    Pending,
    /// An attempt is running now.
    Running,
    Succeeded,
    /// No more attempts: the handler said so, or the schedule ran out.
    Dead,
    /// Waiting for an earlier delivery with the same order key (not queued until then).
    Blocked,
}

impl DeliveryStatus {
    /// Parses the lowercase name used in the API.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "running" => Some(Self::Running),
            "succeeded" => Some(Self::Succeeded),
            "dead" => Some(Self::Dead),
            "blocked" => Some(Self::Blocked),
            _ => None,
        }
    }

    /// The lowercase name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Dead => "dead",
            Self::Blocked => "blocked",
        }
    }
}

/// One event going to one handler, with its retry state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub handler: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// When the next attempt is due, while pending.
    pub next_attempt_ms: Option<u64>,
    /// The last failure, for listings.
    pub last_error: Option<String>,
    /// A replay was asked for: the next attempt is recorded as a replay.
    #[serde(default)]
    pub replay_requested: bool,
    /// Attempts made before the latest replay: the retry schedule of a replayed delivery
    /// starts again from its first delay, counting from here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replay_from: u32,
    /// Attempts since the latest replay whose failure came with a wait the handler or the
    /// API asked for (`RetryAfterError`, a `429` with `Retry-After`): retried after that
    /// wait without using up the retry schedule, up to a bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferred: u32,
    /// The event's order key for this handler, when the handler orders its deliveries:
    /// taken when the delivery was made, kept for its life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_key: Option<String>,
    /// Its place in its key's line while it is in it: from when it is made or replayed until
    /// it succeeds, goes dead under `onDead: "continue"`, or is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_place: Option<u64>,
    /// The first attempt whose recorded step results later attempts recall (those of the
    /// event's version they run on); none while no step result is to be recalled, and again
    /// after a fresh replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_since: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl DeliveryRecord {
    /// A new delivery of an event to `handler`, due at `now_ms`.
    pub fn new(event: &Event, handler: &str, now_ms: u64) -> Self {
        Self {
            id: crate::event::new_id(),
            event_id: event.id.clone(),
            event_type: event.kind.clone(),
            handler: handler.to_owned(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            created_ms: now_ms,
            updated_ms: now_ms,
            next_attempt_ms: Some(now_ms),
            last_error: None,
            replay_requested: false,
            replay_from: 0,
            deferred: 0,
            order_key: None,
            line_place: None,
            steps_since: None,
        }
    }
}

/// One attempt of a delivery: when, how long, and the full invocation report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub n: u32,
    pub started_ms: u64,
    pub duration_ms: f64,
    pub succeeded: bool,
    /// The runtime's report (outcome, error with stack, console lines, fetches).
    pub report: serde_json::Value,
    /// This attempt was asked for by a replay.
    #[serde(default)]
    pub replay: bool,
    /// The version of the event it ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_version: Option<u32>,
    /// Its report records the results of steps that ran.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recorded_steps: bool,
}

/// Who asked for a change, what, and to what: kept for people to audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at_ms: u64,
    /// `cli` or `api`.
    pub actor: String,
    /// `replay`, `replay_job`, `backfill`, ...
    pub action: String,
    /// The delivery, job or event acted on.
    pub target: String,
    pub detail: serde_json::Value,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    Succeeded,
    /// Try again at `due_ms`.
    Retry {
        due_ms: u64,
        error: String,
    },
    /// Try again at `due_ms`, when the handler or the API asked: the attempt does not count
    /// toward the retry schedule.
    Defer {
        due_ms: u64,
        error: String,
    },
    Dead {
        error: String,
        /// An ordered delivery keeps its key waiting (`onDead: "block"`).
        holds_key: bool,
    },
}
