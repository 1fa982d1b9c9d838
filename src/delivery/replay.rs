//! Bulk repair: replay jobs (every delivery matching a filter, paced) and backfills (stored
//! events of a type run through a handler that did not exist when they arrived). Jobs run in
//! the background; they can be followed and cancelled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Engine;
use crate::clock::now_ms;
use crate::event::{KeyPath, new_id};
use crate::store::{
    AuditRecord, DeliveryFilter, DeliveryRecord, DeliveryStatus, EventFilter, Replayed, SharedStore, StoreError,
};

/// Which deliveries a replay job takes, or which events a backfill takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplayFilter {
    /// Replays: deliveries with this status (default dead). Ignored by backfills.
    pub status: Option<DeliveryStatus>,
    /// Replays: deliveries to this handler. Backfills: the handler to run (required).
    pub handler: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Created (replays) or received (backfills) at or after, ms since the epoch.
    pub since_ms: Option<u64>,
    /// ... and before.
    pub until_ms: Option<u64>,
    /// Replays: the last error contains this text.
    pub error: Option<String>,
    /// Backfills: the stored event types to take, as resolved from `type` (a type or a
    /// pattern) or, without it, from the handler's routes.
    #[serde(skip)]
    pub types: Option<Vec<String>>,
    /// Backfills: where the handler in use finds each event's order key, if it orders its
    /// deliveries (the job adds them to their keys' lines in ingest order).
    #[serde(skip)]
    pub order_by: Option<KeyPath>,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done,
    Cancelled,
    Failed,
}

/// A replay or backfill job and its progress (kept in the audit log when it ends).
#[derive(Debug, Clone, Serialize)]
pub struct ReplayJob {
    pub id: String,
    /// `replay` or `backfill`.
    pub kind: &'static str,
    pub filter: ReplayFilter,
    /// Deliveries (or events) per second; none means as fast as possible.
    pub rate: Option<f64>,
    /// Replays: the deliveries forget the results their steps recorded, so every step runs.
    pub fresh: bool,
    pub state: JobState,
    /// Matching deliveries (or events) when the job started.
    pub total: usize,
    /// Queued again (or deliveries created).
    pub queued: usize,
    /// Already queued or running (or already delivered to the handler).
    pub skipped: usize,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
    pub error: Option<String>,
}

struct Job {
    status: Mutex<ReplayJob>,
    cancel: AtomicBool,
    /// The deliveries the job queued (or created), the first [`FOLLOWED`] of them, whose
    /// outcomes it reports when asked.
    queued: Mutex<Vec<String>>,
}

/// How often a paced job waiting for its next item looks for a cancel.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// Deliveries a job remembers to report outcomes on.
pub const FOLLOWED: usize = 100_000;

/// Where the deliveries a job queued stand now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub succeeded: usize,
    /// Dead again.
    pub failed_again: usize,
    /// Pending or running: not finished yet.
    pub waiting: usize,
    /// Deleted since (with their events).
    pub gone: usize,
    /// Deliveries counted: those the job queued, up to [`FOLLOWED`].
    pub followed: usize,
}

/// The jobs of this process.
pub struct Replays {
    store: SharedStore,
    engine: Arc<Engine>,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

/// Longest listing a dry run returns.
pub const DRY_RUN_ROWS: usize = 20;

impl Replays {
    pub fn new(store: SharedStore, engine: Arc<Engine>) -> Arc<Self> {
        Arc::new(Self {
            store,
            engine,
            jobs: Mutex::new(HashMap::new()),
        })
    }

    /// Deliveries a replay job with `filter` would take.
    pub async fn matching_deliveries(&self, filter: &ReplayFilter) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut page = DeliveryFilter {
            status: Some(filter.status.unwrap_or(DeliveryStatus::Dead)),
            handler: filter.handler.clone(),
            event_type: filter.event_type.clone(),
            since_ms: filter.since_ms,
            until_ms: filter.until_ms,
            after_id: None,
            error: filter.error.clone(),
            newest_first: false,
            limit: 1000,
        };
        let mut out = Vec::new();
        loop {
            let found = self.store.list_deliveries(&page).await?;
            let last = found.last().map(|d| d.id.clone());
            out.extend(found.into_iter().filter(|d| in_window(filter, d.created_ms)));
            match last {
                Some(last) => page.after_id = Some(last),
                None => return Ok(out),
            }
        }
    }

    /// Event ids a backfill with `filter` would take: those of its types and window that
    /// have no delivery to its handler yet (which the job would skip), so a dry run counts
    /// what the job then does.
    pub async fn matching_events(&self, filter: &ReplayFilter) -> Result<Vec<String>, StoreError> {
        let handler = filter.handler.as_deref().unwrap_or_default();
        let mut page = EventFilter {
            types: filter
                .types
                .clone()
                .or_else(|| filter.event_type.clone().map(|kind| vec![kind])),
            since_ms: filter.since_ms,
            until_ms: filter.until_ms,
            limit: 1000,
            ..Default::default()
        };
        let mut ids = Vec::new();
        loop {
            let events = self.store.list_events(&page).await?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(ids);
            };
            for event in events.into_iter().filter(|e| in_window(filter, e.received_ms)) {
                if !self.delivered_to(&event.deliveries, handler).await? {
                    ids.push(event.event.id);
                }
            }
            page.after_seq = Some(last);
        }
    }

    /// Whether one of `deliveries` goes to `handler`.
    async fn delivered_to(&self, deliveries: &[String], handler: &str) -> Result<bool, StoreError> {
        for id in deliveries {
            if self.store.delivery(id).await?.is_some_and(|d| d.handler == handler) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Starts a job in the background.
    pub fn start(
        self: &Arc<Self>,
        kind: &'static str,
        filter: ReplayFilter,
        rate: Option<f64>,
        fresh: bool,
        actor: &str,
    ) -> ReplayJob {
        let job = Arc::new(Job {
            status: Mutex::new(ReplayJob {
                id: new_id(),
                kind,
                filter,
                rate,
                fresh,
                state: JobState::Running,
                total: 0,
                queued: 0,
                skipped: 0,
                created_ms: now_ms(),
                finished_ms: None,
                error: None,
            }),
            cancel: AtomicBool::new(false),
            queued: Mutex::new(Vec::new()),
        });
        let snapshot = lock(&job.status).clone();
        lock(&self.jobs).insert(snapshot.id.clone(), job.clone());
        let (replays, actor) = (self.clone(), actor.to_owned());
        tokio::spawn(async move { replays.run(job, actor).await });
        snapshot
    }

    /// A job's progress.
    pub fn get(&self, id: &str) -> Option<ReplayJob> {
        lock(&self.jobs).get(id).map(|job| lock(&job.status).clone())
    }

    /// Where the deliveries job `id` queued stand now: one read per delivery, so only when
    /// asked.
    pub async fn outcomes(&self, id: &str) -> Option<Result<Outcomes, StoreError>> {
        let job = lock(&self.jobs).get(id).cloned()?;
        let ids = lock(&job.queued).clone();
        let mut outcomes = Outcomes {
            followed: ids.len(),
            ..Outcomes::default()
        };
        for id in &ids {
            let delivery = match self.store.delivery(id).await {
                Ok(delivery) => delivery,
                Err(e) => return Some(Err(e)),
            };
            match delivery.map(|d| d.status) {
                Some(DeliveryStatus::Succeeded) => outcomes.succeeded += 1,
                Some(DeliveryStatus::Dead) => outcomes.failed_again += 1,
                Some(DeliveryStatus::Pending | DeliveryStatus::Running | DeliveryStatus::Blocked) => {
                    outcomes.waiting += 1
                }
                None => outcomes.gone += 1,
            }
        }
        Some(Ok(outcomes))
    }

    /// Asks a running job to stop; it stops before its next item.
    pub fn cancel(&self, id: &str) -> Option<ReplayJob> {
        let job = lock(&self.jobs).get(id).cloned()?;
        job.cancel.store(true, Ordering::SeqCst);
        Some(lock(&job.status).clone())
    }

    async fn run(self: Arc<Self>, job: Arc<Job>, actor: String) {
        let (kind, filter, rate, fresh) = {
            let status = lock(&job.status);
            (status.kind, status.filter.clone(), status.rate, status.fresh)
        };
        let items: Result<Vec<String>, StoreError> = if kind == "backfill" {
            self.matching_events(&filter).await
        } else {
            let deliveries = self.matching_deliveries(&filter).await;
            deliveries.map(|ds| ds.into_iter().map(|d| d.id).collect())
        };
        let outcome = match items {
            Ok(items) => self.work(&job, (kind, fresh), &filter, rate, items).await,
            Err(e) => Err(e),
        };
        let finished = {
            let mut status = lock(&job.status);
            status.finished_ms = Some(now_ms());
            status.state = match &outcome {
                Err(e) => {
                    status.error = Some(e.to_string());
                    JobState::Failed
                }
                Ok(()) if job.cancel.load(Ordering::SeqCst) => JobState::Cancelled,
                Ok(()) => JobState::Done,
            };
            status.clone()
        };
        let detail = serde_json::to_value(&finished).unwrap_or_default();
        let record = AuditRecord {
            at_ms: now_ms(),
            actor,
            action: format!("{kind}_job"),
            target: finished.id,
            detail,
        };
        if let Err(e) = self.store.audit(&record).await {
            tracing::error!("cannot write the audit entry of a {kind} job: {e}");
        }
    }

    async fn work(
        &self,
        job: &Job,
        (kind, fresh): (&str, bool),
        filter: &ReplayFilter,
        rate: Option<f64>,
        items: Vec<String>,
    ) -> Result<(), StoreError> {
        lock(&job.status).total = items.len();
        let started = Instant::now();
        let handler = filter.handler.clone().unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            if job.cancel.load(Ordering::SeqCst) {
                break;
            }
            if let Some(rate) = rate.filter(|r| *r > 0.0) {
                // Paced: item i starts no earlier than i / rate seconds after the start, so
                // live traffic keeps its share of the workers; a cancel ends the wait.
                let due = started + Duration::from_secs_f64(i as f64 / rate);
                while Instant::now() < due && !job.cancel.load(Ordering::SeqCst) {
                    tokio::time::sleep(due.saturating_duration_since(Instant::now()).min(CANCEL_CHECK)).await;
                }
                if job.cancel.load(Ordering::SeqCst) {
                    break;
                }
            }
            let queued = if kind == "backfill" {
                let order_by = filter.order_by.as_ref();
                self.store.add_delivery(item, &handler, order_by, now_ms()).await?
            } else {
                let replayed = self.store.replay_delivery(item, now_ms(), fresh).await?;
                (replayed == Replayed::Queued).then(|| item.clone())
            };
            if let Some(delivery) = &queued {
                let mut followed = lock(&job.queued);
                if followed.len() < FOLLOWED {
                    followed.push(delivery.clone());
                }
            }
            let mut status = lock(&job.status);
            if queued.is_some() {
                status.queued += 1;
            } else {
                status.skipped += 1;
            }
            drop(status);
            self.engine.wake();
        }
        Ok(())
    }
}

fn in_window(filter: &ReplayFilter, at_ms: u64) -> bool {
    filter.since_ms.is_none_or(|s| at_ms >= s) && filter.until_ms.is_none_or(|u| at_ms < u)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
