//! Delivery: claims due deliveries from the store's queue, runs them in the runtime within
//! per-handler and global concurrency limits, records every attempt, and schedules retries
//! or declares deliveries dead.
//!
//! It owns no storage (the queue and records are the store's) and no JS (the runtime's).
//! A delivery in flight when the process dies is still marked running in the store; the
//! next start puts it back in the queue, so every delivery runs at least once.

mod attempt;
mod dispatch;
pub mod registry;
pub mod replay;
pub mod retry;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, broadcast, watch};
use tokio::task::JoinSet;

pub use registry::{Change, Limits, LoadedHandler, Registry, RegistryCell, Version};
pub use replay::{JobState, ReplayFilter, ReplayJob, Replays};
pub use retry::{Decision, RetryError, RetryPolicy, RetrySchedule};

use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::runtime::{InvocationReport, Runtime};
use crate::store::{NextStep, SharedStore, StoreError};

/// Deliveries looked at per scan of the queue.
const SCAN: usize = 256;
/// Attempts buffered for slow listeners of [`Engine::subscribe`].
const ATTEMPT_FEED: usize = 512;
/// Longest sleep between scans when nothing wakes the engine.
const IDLE_SCAN: Duration = Duration::from_secs(1);
/// Time between scans while every due delivery waits for a permit.
const BLOCKED_RESCAN: Duration = Duration::from_millis(50);

/// Errors that stop the engine.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Most attempts running at once, across handlers.
    pub max_concurrency: usize,
    /// Retry schedule of handlers that do not set their own.
    pub default_policy: RetryPolicy,
    /// Per-handler concurrency of handlers that do not set their own.
    pub default_concurrency: usize,
    /// How long shutdown waits for attempts in flight.
    pub grace: Duration,
}

impl DeliverySettings {
    /// The settings `[delivery]` gives.
    pub fn new(config: &crate::config::DeliveryConfig) -> Self {
        Self {
            max_concurrency: config.max_concurrency,
            default_policy: RetryPolicy::new(config.retry_schedule.clone()),
            default_concurrency: config.handler_concurrency,
            grace: Duration::from_millis(config.grace_period_ms),
        }
    }
}

/// The delivery engine; share it behind an `Arc`.
pub struct Engine {
    store: SharedStore,
    runtime: Arc<Runtime>,
    settings: DeliverySettings,
    /// The handlers in use, with their limits; a scan reads one snapshot of it.
    registry: Arc<RegistryCell>,
    /// Permits for attempts in flight across all handlers.
    global: Arc<Semaphore>,
    /// Woken when new work may be due (ingest, a retry scheduled soon).
    wake: Notify,
    metrics: Arc<Metrics>,
    /// The handler of each queued delivery seen by a scan (see `dispatch.rs`).
    handler_of: dispatch::HandlerOf,
    /// Every finished attempt, for whoever listens (`eddy dev`'s log).
    attempts: broadcast::Sender<Arc<AttemptNotice>>,
}

/// A finished attempt: what ran, what it reported, and what happens next.
#[derive(Debug)]
pub struct AttemptNotice {
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub handler: String,
    pub attempt: u32,
    pub replay: bool,
    pub report: InvocationReport,
    pub next: NextStep,
}

impl Engine {
    pub fn new(
        store: SharedStore,
        runtime: Arc<Runtime>,
        settings: DeliverySettings,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            global: Arc::new(Semaphore::new(settings.max_concurrency)),
            store,
            runtime,
            settings,
            registry: Arc::default(),
            wake: Notify::new(),
            handler_of: dispatch::HandlerOf::default(),
            attempts: broadcast::channel(ATTEMPT_FEED).0,
        })
    }

    /// Every attempt finished from now on. A listener that falls more than a few hundred
    /// attempts behind misses some (and is told so by the channel): delivery never waits.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AttemptNotice>> {
        self.attempts.subscribe()
    }

    /// The handlers the engine delivers to; whoever loads handlers updates it.
    pub fn registry(&self) -> &Arc<RegistryCell> {
        &self.registry
    }

    /// A new version's limits: its own settings, else the engine's defaults.
    pub fn limits(&self, concurrency: Option<u32>, policy: Option<RetryPolicy>) -> Limits {
        Limits::new(
            policy.unwrap_or_else(|| self.settings.default_policy.clone()),
            concurrency.map_or(self.settings.default_concurrency, |c| c as usize),
        )
    }

    /// Tells the engine new work may be due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `shutdown` turns true, then lets attempts in flight finish within the
    /// grace period; attempts still running after it stay queued for the next start.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) -> Result<(), DeliveryError> {
        let requeued = self.store.requeue_running(now_ms()).await?;
        if requeued > 0 {
            tracing::info!("{requeued} deliveries interrupted by the last stop will run again");
        }
        let mut tasks = JoinSet::new();
        while !*shutdown.borrow() {
            let dispatched = self.dispatch(&mut tasks).await?;
            // At the limits with work due: new events cannot start anything until a permit is
            // released, which a finishing attempt reports, so ingest's wake-ups are not heeded
            // and other handlers' work is looked for now and then.
            let blocked = dispatched.blocked && dispatched.started == 0;
            let pause = if blocked { BLOCKED_RESCAN } else { self.pause().await? };
            tokio::select! {
                _ = self.wake.notified(), if !blocked => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
                Some(_) = tasks.join_next() => {}
            }
        }
        let drained = tokio::time::timeout(self.settings.grace, async {
            while tasks.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            tracing::warn!(
                "{} attempts still running after the grace period; they will run again",
                tasks.len()
            );
        }
        Ok(())
    }

    /// Time until the earliest queued delivery is due, at most [`IDLE_SCAN`].
    async fn pause(&self) -> Result<Duration, DeliveryError> {
        let pause = match self.store.next_due().await? {
            Some(due) => Duration::from_millis(due.saturating_sub(now_ms())),
            None => IDLE_SCAN,
        };
        Ok(pause.min(IDLE_SCAN))
    }
}
