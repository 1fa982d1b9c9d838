//! The admin API's response bodies: the wire format, made from the services' records by
//! hand so the stored format can change without changing what clients read. Field names
//! and shapes here are a contract; the tests pin them. `answers.rs` puts them together into
//! the answers of each endpoint.

mod answers;

pub use answers::{DeliveryList, DeliveryShow, EventList, EventShow, FilterBody, JobBody};

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::event::Event;
use crate::services::HandlerStatus;
use crate::store::{AttemptRecord, AuditRecord, DeliveryRecord, DeliveryStatus, EventRecord, EventVersion};

/// An event as the API shows it.
#[derive(Debug, Serialize)]
pub struct EventBody {
    pub seq: u64,
    pub received_ms: u64,
    pub event: Event,
    pub deliveries: Vec<String>,
    pub version: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted_ms: Option<u64>,
}

impl From<EventRecord> for EventBody {
    fn from(r: EventRecord) -> Self {
        Self {
            seq: r.seq,
            received_ms: r.received_ms,
            event: r.event,
            deliveries: r.deliveries,
            version: r.version,
            redacted: r.redacted,
            redacted_ms: r.redacted_ms,
        }
    }
}

/// A previous version of an event's data.
#[derive(Debug, Serialize)]
pub struct VersionBody {
    pub version: u32,
    pub replaced_ms: u64,
    pub data: Value,
}

impl From<EventVersion> for VersionBody {
    fn from(v: EventVersion) -> Self {
        Self {
            version: v.version,
            replaced_ms: v.replaced_ms,
            data: v.data,
        }
    }
}

/// The status names of the API.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusBody {
    Pending,
    Running,
    Succeeded,
    Dead,
    Blocked,
}

impl From<DeliveryStatus> for StatusBody {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Running => Self::Running,
            DeliveryStatus::Succeeded => Self::Succeeded,
            DeliveryStatus::Dead => Self::Dead,
            DeliveryStatus::Blocked => Self::Blocked,
        }
    }
}

/// A delivery as the API shows it.
#[derive(Debug, Serialize)]
pub struct DeliveryBody {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub handler: String,
    pub status: StatusBody,
    pub attempts: u32,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub next_attempt_ms: Option<u64>,
    pub last_error: Option<String>,
    pub replay_requested: bool,
    /// The event's order key for an ordered handler; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_key: Option<String>,
    /// Ordered deliveries: whether it stands in its key's line (waiting, running, or dead
    /// with its key waiting for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_line: Option<bool>,
}

impl From<DeliveryRecord> for DeliveryBody {
    fn from(r: DeliveryRecord) -> Self {
        Self {
            id: r.id,
            event_id: r.event_id,
            event_type: r.event_type,
            handler: r.handler,
            status: r.status.into(),
            attempts: r.attempts,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            next_attempt_ms: r.next_attempt_ms,
            last_error: r.last_error,
            replay_requested: r.replay_requested,
            in_line: r.order_key.as_ref().map(|_| r.line_place.is_some()),
            order_key: r.order_key,
        }
    }
}

/// One attempt: when, how long, and the runtime's report (outcome, error, logs, fetches).
#[derive(Debug, Serialize)]
pub struct AttemptBody {
    pub n: u32,
    pub started_ms: u64,
    pub duration_ms: f64,
    pub succeeded: bool,
    pub report: Value,
    pub replay: bool,
    /// The version of the event the attempt ran on (absent for attempts that ran on none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_version: Option<u32>,
}

impl From<AttemptRecord> for AttemptBody {
    fn from(a: AttemptRecord) -> Self {
        Self {
            n: a.n,
            started_ms: a.started_ms,
            duration_ms: a.duration_ms,
            succeeded: a.succeeded,
            report: a.report,
            replay: a.replay,
            event_version: a.event_version,
        }
    }
}

/// An audit entry.
#[derive(Debug, Serialize)]
pub struct AuditBody {
    pub at_ms: u64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Value,
}

impl From<AuditRecord> for AuditBody {
    fn from(a: AuditRecord) -> Self {
        Self {
            at_ms: a.at_ms,
            actor: a.actor,
            action: a.action,
            target: a.target,
            detail: a.detail,
        }
    }
}

/// A handler as `GET /handlers` shows it.
#[derive(Debug, Serialize)]
pub struct HandlerBody {
    pub id: String,
    pub file: PathBuf,
    pub routes: Vec<String>,
    pub loaded: bool,
    pub error: Option<String>,
    pub loaded_at: Option<String>,
    /// Most attempts running at once (none while no version is loaded).
    pub concurrency: Option<usize>,
    /// The delays between attempts, like `["5s", "1m"]`.
    pub retry: Vec<String>,
    /// How long one attempt may take, and how much CPU time (none while no version is loaded).
    pub timeout_ms: Option<u128>,
    pub cpu_limit_ms: Option<u128>,
    /// `config.orderBy` and `config.onDead` of an ordered handler; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_dead: Option<&'static str>,
}

impl From<HandlerStatus> for HandlerBody {
    fn from(h: HandlerStatus) -> Self {
        Self {
            id: h.id,
            file: h.file,
            routes: h.routes,
            loaded: h.loaded,
            error: h.error,
            loaded_at: h.loaded_at,
            concurrency: h.concurrency,
            retry: h
                .retry
                .iter()
                .map(|d| humantime::format_duration(*d).to_string())
                .collect(),
            timeout_ms: h.timeout.map(|d| d.as_millis()),
            cpu_limit_ms: h.cpu_limit.map(|d| d.as_millis()),
            on_dead: h.order_by.as_ref().map(|(_, on_dead)| *on_dead),
            order_by: h.order_by.map(|(path, _)| path),
        }
    }
}

/// A destination host as `GET /limits` shows it.
#[derive(Debug, Serialize)]
pub struct LimitBody {
    /// `host:port`.
    pub host: String,
    /// The `[limits]` key that applies, if any.
    pub rule: Option<String>,
    /// Requests per second.
    pub rate: Option<f64>,
    pub burst: Option<u32>,
    pub concurrency: Option<usize>,
    pub in_flight: usize,
    pub waiting: usize,
    pub paused_until: Option<String>,
    /// `closed`, `open` or `probing`.
    pub breaker: &'static str,
    pub consecutive_failures: u32,
    pub open_until: Option<String>,
}

impl From<crate::runtime::HostStatus> for LimitBody {
    fn from(h: crate::runtime::HostStatus) -> Self {
        Self {
            host: h.host,
            rule: h.rule,
            rate: h.rate,
            burst: h.burst,
            concurrency: h.concurrency,
            in_flight: h.in_flight,
            waiting: h.waiting,
            paused_until: h.paused_until,
            breaker: h.breaker,
            consecutive_failures: h.consecutive_failures,
            open_until: h.open_until,
        }
    }
}

/// Each record as its body.
pub fn bodies<R, B: From<R>>(records: Vec<R>) -> Vec<B> {
    records.into_iter().map(B::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(body: impl Serialize) -> Value {
        serde_json::to_value(body).unwrap()
    }

    #[test]
    fn events_and_versions_keep_their_wire_shape() {
        let event: Event =
            serde_json::from_value(json!({"id": "e", "type": "a.b", "source": "s", "time": "t", "data": {"x": 1}}))
                .unwrap();
        let record = EventRecord {
            seq: 7,
            received_ms: 9,
            event,
            deliveries: vec!["d".into()],
            version: 2,
            redacted: vec![],
            redacted_ms: None,
        };
        let expected = json!({"seq": 7, "received_ms": 9, "deliveries": ["d"], "version": 2,
            "event": {"id": "e", "type": "a.b", "source": "s", "time": "t", "data": {"x": 1}}});
        assert_eq!(wire(EventBody::from(record.clone())), expected);
        let redacted = EventRecord {
            redacted: vec!["data".into()],
            redacted_ms: Some(3),
            ..record
        };
        assert_eq!(wire(EventBody::from(redacted))["redacted"], json!(["data"]));
        let version = EventVersion {
            version: 1,
            replaced_ms: 5,
            data: json!({"x": 0}),
        };
        assert_eq!(
            wire(VersionBody::from(version)),
            json!({"version": 1, "replaced_ms": 5, "data": {"x": 0}})
        );
    }

    #[test]
    fn deliveries_attempts_and_audit_keep_their_wire_shape() {
        let delivery = DeliveryRecord {
            id: "d".into(),
            event_id: "e".into(),
            event_type: "a.b".into(),
            handler: "h".into(),
            status: DeliveryStatus::Dead,
            attempts: 3,
            created_ms: 1,
            updated_ms: 2,
            next_attempt_ms: None,
            last_error: Some("boom".into()),
            replay_requested: false,
            replay_from: 0,
            deferred: 0,
            order_key: None,
            line_place: None,
            steps_since: None,
        };
        let ordered = DeliveryRecord {
            order_key: Some("acct-1".into()),
            line_place: Some(9),
            ..delivery.clone()
        };
        let ordered = wire(DeliveryBody::from(ordered));
        assert_eq!(
            (&ordered["order_key"], &ordered["in_line"]),
            (&json!("acct-1"), &json!(true))
        );
        assert_eq!(
            wire(DeliveryBody::from(delivery)),
            json!({"id": "d", "event_id": "e", "event_type": "a.b",
            "handler": "h", "status": "dead", "attempts": 3, "created_ms": 1, "updated_ms": 2,
            "next_attempt_ms": null, "last_error": "boom", "replay_requested": false})
        );
        let attempt = AttemptRecord {
            n: 1,
            started_ms: 4,
            duration_ms: 1.5,
            succeeded: true,
            report: json!({"ok": true}),
            replay: true,
            event_version: None,
            recorded_steps: false,
        };
        assert_eq!(
            wire(AttemptBody::from(attempt)),
            json!({"n": 1, "started_ms": 4, "duration_ms": 1.5,
            "succeeded": true, "report": {"ok": true}, "replay": true})
        );
        let audit = AuditRecord {
            at_ms: 1,
            actor: "cli".into(),
            action: "edit".into(),
            target: "e".into(),
            detail: json!({"version": 2}),
        };
        assert_eq!(
            wire(AuditBody::from(audit)),
            json!({"at_ms": 1, "actor": "cli", "action": "edit",
            "target": "e", "detail": {"version": 2}})
        );
    }
}
