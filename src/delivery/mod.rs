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
mod steps;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, broadcast, watch};
use tokio::task::JoinSet;

pub use attempt::MAX_DEFERRALS;
pub use registry::{Change, Limits, LoadedHandler, Registry, RegistryCell, Version};
pub use replay::{JobState, Outcomes, ReplayFilter, ReplayJob, Replays};
pub use retry::{Decision, RetryError, RetryPolicy, RetrySchedule};

use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::runtime::{HandlerConfig, InvocationReport, Runtime};
use crate::store::{NextStep, SharedStore, StoreError};

/// Attempts buffered for slow listeners of [`Engine::subscribe`].
const ATTEMPT_FEED: usize = 512;
/// Longest sleep between passes when nothing wakes the engine.
const IDLE_PASS: Duration = Duration::from_secs(1);
/// Longest sleep between passes while due deliveries wait for a permit.
const BLOCKED_PASS: Duration = Duration::from_millis(50);

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
    /// Which handler goes first in the next pass (see `dispatch.rs`).
    turn: AtomicUsize,
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
            turn: AtomicUsize::new(0),
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
    pub fn limits(&self, config: &HandlerConfig, policy: Option<RetryPolicy>) -> Limits {
        let mut limits = Limits::new(
            policy.unwrap_or_else(|| self.settings.default_policy.clone()),
            config
                .concurrency
                .map_or(self.settings.default_concurrency, |c| c as usize),
        );
        limits.order_by = config.order_by.clone();
        limits.on_dead = config.on_dead;
        limits
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
            let pause = self
                .dispatch(&mut tasks)
                .await?
                .pause(now_ms(), IDLE_PASS, BLOCKED_PASS);
            // A pass reads a seek per handler and only what it starts, so every wake-up is
            // heeded: a finished attempt frees a permit, an ingest may bring another
            // handler's work.
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                changed = shutdown.changed() => {
                    // The sender gone means whoever could stop the engine is gone: stop.
                    if changed.is_err() {
                        break;
                    }
                }
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
}
