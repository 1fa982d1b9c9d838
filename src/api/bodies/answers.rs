//! The answers of the listing and inspection endpoints, and of replay jobs, made of the
//! record bodies.

use serde::Serialize;

use super::{AttemptBody, DeliveryBody, EventBody, StatusBody, VersionBody, bodies};
use crate::delivery::{JobState, ReplayFilter, ReplayJob};
use crate::services::{DeliveryDetail, EventDetail, Page};
use crate::store::{DeliveryRecord, EventRecord};

/// `GET /events`.
#[derive(Debug, Serialize)]
pub struct EventList {
    pub events: Vec<EventBody>,
    pub next_cursor: Option<String>,
}

impl From<Page<EventRecord>> for EventList {
    fn from(page: Page<EventRecord>) -> Self {
        Self {
            events: bodies(page.items),
            next_cursor: page.next,
        }
    }
}

/// `GET /events/{id}`.
#[derive(Debug, Serialize)]
pub struct EventShow {
    pub event: EventBody,
    pub deliveries: Vec<DeliveryBody>,
    pub history: Vec<VersionBody>,
}

impl From<EventDetail> for EventShow {
    fn from(d: EventDetail) -> Self {
        Self {
            event: d.event.into(),
            deliveries: bodies(d.deliveries),
            history: bodies(d.history),
        }
    }
}

/// `GET /deliveries`.
#[derive(Debug, Serialize)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryBody>,
    pub next_cursor: Option<String>,
}

impl From<Page<DeliveryRecord>> for DeliveryList {
    fn from(page: Page<DeliveryRecord>) -> Self {
        Self {
            deliveries: bodies(page.items),
            next_cursor: page.next,
        }
    }
}

/// `GET /deliveries/{id}`.
#[derive(Debug, Serialize)]
pub struct DeliveryShow {
    pub delivery: DeliveryBody,
    pub attempts: Vec<AttemptBody>,
    /// A blocked delivery: the delivery of its key it waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

impl From<DeliveryDetail> for DeliveryShow {
    fn from(d: DeliveryDetail) -> Self {
        Self {
            delivery: d.delivery.into(),
            attempts: bodies(d.attempts),
            blocked_by: d.blocked_by,
        }
    }
}

/// A replay or backfill job and its progress.
#[derive(Debug, Serialize)]
pub struct JobBody {
    pub id: String,
    pub kind: &'static str,
    pub filter: FilterBody,
    pub rate: Option<f64>,
    /// Replays: the steps' recorded results were forgotten.
    pub fresh: bool,
    /// `running`, `done`, `cancelled` or `failed`.
    pub state: &'static str,
    pub total: usize,
    pub queued: usize,
    pub skipped: usize,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
    pub error: Option<String>,
}

/// A job's filter, times in ms since the epoch.
#[derive(Debug, Serialize)]
pub struct FilterBody {
    pub status: Option<StatusBody>,
    pub handler: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub error: Option<String>,
}

impl From<ReplayFilter> for FilterBody {
    fn from(f: ReplayFilter) -> Self {
        Self {
            status: f.status.map(Into::into),
            handler: f.handler,
            event_type: f.event_type,
            since_ms: f.since_ms,
            until_ms: f.until_ms,
            error: f.error,
        }
    }
}

impl From<ReplayJob> for JobBody {
    fn from(j: ReplayJob) -> Self {
        Self {
            id: j.id,
            kind: j.kind,
            filter: j.filter.into(),
            rate: j.rate,
            fresh: j.fresh,
            state: match j.state {
                JobState::Running => "running",
                JobState::Done => "done",
                JobState::Cancelled => "cancelled",
                JobState::Failed => "failed",
            },
            total: j.total,
            queued: j.queued,
            skipped: j.skipped,
            created_ms: j.created_ms,
            finished_ms: j.finished_ms,
            error: j.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeliveryStatus;
    use serde_json::json;

    #[test]
    fn jobs_keep_their_wire_shape() {
        let filter = ReplayFilter {
            status: Some(DeliveryStatus::Succeeded),
            handler: Some("h".into()),
            ..Default::default()
        };
        let job = ReplayJob {
            id: "j".into(),
            kind: "replay",
            filter,
            rate: Some(2.0),
            fresh: true,
            state: JobState::Cancelled,
            total: 3,
            queued: 1,
            skipped: 1,
            created_ms: 8,
            finished_ms: Some(9),
            error: None,
        };
        assert_eq!(
            serde_json::to_value(JobBody::from(job)).unwrap(),
            json!({"id": "j", "kind": "replay", "rate": 2.0, "fresh": true, "state": "cancelled",
            "total": 3, "queued": 1, "skipped": 1, "created_ms": 8, "finished_ms": 9, "error": null,
            "filter": {"status": "succeeded", "handler": "h", "type": null, "since_ms": null, "until_ms": null, "error": null}})
        );
    }
}
