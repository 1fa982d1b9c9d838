//! Bulk replays and backfills as services: checked, previewed (a dry run: how many and the
//! first few), started as background jobs, followed and cancelled.

use super::{ServiceError, Services};
use crate::delivery::replay::DRY_RUN_ROWS;
use crate::delivery::{Outcomes, ReplayFilter, ReplayJob};
use crate::store::{DeliveryRecord, DeliveryStatus};

/// A bulk replay (finished deliveries queued again) or a backfill (stored events of a type
/// given to a handler), as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkReplay {
    pub filter: ReplayFilter,
    /// Items per second; none means as fast as possible.
    pub rate: Option<f64>,
    pub backfill: bool,
    /// Replays: forget the results the deliveries' steps recorded.
    pub fresh: bool,
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
        let request = &self.checked(request.clone()).await?;
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
    pub async fn start_replay(&self, request: BulkReplay, actor: &str) -> Result<ReplayJob, ServiceError> {
        let request = self.checked(request).await?;
        let kind = request.kind();
        Ok(self
            .replays
            .start(kind, request.filter, request.rate, request.fresh, actor))
    }

    /// Job `id`'s progress.
    pub fn replay_job(&self, id: &str) -> Result<ReplayJob, ServiceError> {
        self.replays.get(id).ok_or_else(|| ServiceError::NoJob(id.to_owned()))
    }

    /// Where the deliveries job `id` queued stand now (read when asked).
    pub async fn replay_outcomes(&self, id: &str) -> Result<Outcomes, ServiceError> {
        match self.replays.outcomes(id).await {
            Some(outcomes) => Ok(outcomes?),
            None => Err(ServiceError::NoJob(id.to_owned())),
        }
    }

    /// Asks job `id` to stop before its next item.
    pub fn cancel_replay(&self, id: &str) -> Result<ReplayJob, ServiceError> {
        self.replays
            .cancel(id)
            .ok_or_else(|| ServiceError::NoJob(id.to_owned()))
    }

    /// `request` checked, and for a backfill with the event types it takes resolved.
    async fn checked(&self, mut request: BulkReplay) -> Result<BulkReplay, ServiceError> {
        self.check_bulk_replay(&request)?;
        if request.backfill {
            request.filter.types = Some(self.backfill_types(&request.filter).await?);
            let handler = request.filter.handler.as_deref().unwrap_or_default();
            let version = self.handlers.snapshot().version(handler);
            request.filter.order_by = version.and_then(|v| v.limits.order_by.clone());
        }
        Ok(request)
    }

    /// The stored event types a backfill takes: those `type` (a type or a pattern) matches,
    /// or without it those the handler's routes match.
    async fn backfill_types(&self, filter: &ReplayFilter) -> Result<Vec<String>, ServiceError> {
        let patterns: Vec<String> = match &filter.event_type {
            Some(kind) => vec![kind.clone()],
            None => {
                let handler = filter.handler.as_deref().unwrap_or_default();
                let routing = self.handlers.snapshot();
                let version = routing.version(handler);
                version
                    .map(|v| v.routes.iter().map(ToString::to_string).collect())
                    .unwrap_or_default()
            }
        };
        let mut types = Vec::new();
        for pattern in &patterns {
            types.extend(self.event_types_matching(pattern).await?);
        }
        types.sort();
        types.dedup();
        Ok(types)
    }

    fn check_bulk_replay(&self, request: &BulkReplay) -> Result<(), ServiceError> {
        let status = request.filter.status;
        if status.is_some_and(|s| !matches!(s, DeliveryStatus::Dead | DeliveryStatus::Succeeded)) {
            return Err(ServiceError::ReplayStatus);
        }
        if request.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(ServiceError::Rate);
        }
        if request.backfill && request.fresh {
            return Err(ServiceError::FreshBackfill);
        }
        if request.backfill {
            self.check_backfill(&request.filter)?;
        }
        Ok(())
    }

    /// A backfill names a handler that is loaded now (and may name a type or pattern; its
    /// routes say which events it takes otherwise).
    fn check_backfill(&self, filter: &ReplayFilter) -> Result<(), ServiceError> {
        let Some(handler) = &filter.handler else {
            return Err(ServiceError::BackfillFilter);
        };
        if self.handlers.snapshot().version(handler).is_none() {
            return Err(ServiceError::UnknownHandler(handler.clone()));
        }
        Ok(())
    }
}
