//! Bulk replays and backfills as services: checked, previewed (a dry run: how many and the
//! first few), started as background jobs, followed and cancelled.

use super::{ServiceError, Services};
use crate::delivery::replay::DRY_RUN_ROWS;
use crate::delivery::{ReplayFilter, ReplayJob};
use crate::store::{DeliveryRecord, DeliveryStatus};

/// A bulk replay (finished deliveries queued again) or a backfill (stored events of a type
/// given to a handler), as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkReplay {
    pub filter: ReplayFilter,
    /// Items per second; none means as fast as possible.
    pub rate: Option<f64>,
    pub backfill: bool,
}

impl BulkReplay {
    fn kind(&self) -> &'static str {
        if self.backfill { "backfill" } else { "replay" }
    }
}

/// What a job would take: how many, and the first [`DRY_RUN_ROWS`].
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    Replay {
        count: usize,
        first: Vec<DeliveryRecord>,
    },
    /// Event ids.
    Backfill {
        count: usize,
        first: Vec<String>,
    },
}

impl Services {
    /// What `request` would take, checked as [`Services::start_replay`] checks it.
    pub async fn preview_replay(&self, request: &BulkReplay) -> Result<Preview, ServiceError> {
        self.check_bulk_replay(request)?;
        if request.backfill {
            let mut events = self.replays.matching_events(&request.filter).await?;
            let count = events.len();
            events.truncate(DRY_RUN_ROWS);
            return Ok(Preview::Backfill { count, first: events });
        }
        let mut deliveries = self.replays.matching_deliveries(&request.filter).await?;
        let count = deliveries.len();
        deliveries.truncate(DRY_RUN_ROWS);
        Ok(Preview::Replay {
            count,
            first: deliveries,
        })
    }

    /// Starts `request` as a background job, audited as done by `actor` when it ends.
    pub fn start_replay(&self, request: BulkReplay, actor: &str) -> Result<ReplayJob, ServiceError> {
        self.check_bulk_replay(&request)?;
        let kind = request.kind();
        Ok(self.replays.start(kind, request.filter, request.rate, actor))
    }

    /// Job `id`'s progress.
    pub fn replay_job(&self, id: &str) -> Result<ReplayJob, ServiceError> {
        self.replays.get(id).ok_or_else(|| ServiceError::NoJob(id.to_owned()))
    }

    /// Asks job `id` to stop before its next item.
    pub fn cancel_replay(&self, id: &str) -> Result<ReplayJob, ServiceError> {
        self.replays
            .cancel(id)
            .ok_or_else(|| ServiceError::NoJob(id.to_owned()))
    }

    fn check_bulk_replay(&self, request: &BulkReplay) -> Result<(), ServiceError> {
        let status = request.filter.status;
        if status.is_some_and(|s| !matches!(s, DeliveryStatus::Dead | DeliveryStatus::Succeeded)) {
            return Err(ServiceError::ReplayStatus);
        }
        if request.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(ServiceError::Rate);
        }
        if request.backfill {
            self.check_backfill(&request.filter)?;
        }
        Ok(())
    }

    /// A backfill names a type and a handler that is loaded now.
    fn check_backfill(&self, filter: &ReplayFilter) -> Result<(), ServiceError> {
        let (Some(handler), Some(_)) = (&filter.handler, &filter.event_type) else {
            return Err(ServiceError::BackfillFilter);
        };
        if self.handlers.snapshot().version(handler).is_none() {
            return Err(ServiceError::UnknownHandler(handler.clone()));
        }
        Ok(())
    }
}
