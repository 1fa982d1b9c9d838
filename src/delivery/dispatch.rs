//! Choosing what runs next: a pass over the handlers with queued deliveries that starts
//! what the concurrency limits allow. It runs after every finished attempt and on every
//! ingest, so it must stay cheap under load: the queue is kept per handler, so a pass reads
//! each handler's head (one seek) and then only as many of its due deliveries as it has
//! permits for, never the backlog of a handler at its limit. A pass that leaves due work for
//! lack of a permit says so, so the engine waits for a permit instead of passing again at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{DeliveryError, Engine, attempt};
use crate::clock::now_ms;

/// What one pass did, and when the next is needed.
#[derive(Debug, Default)]
pub(super) struct Dispatched {
    /// Attempts started.
    pub started: usize,
    /// Due deliveries were left for lack of a permit.
    pub blocked: bool,
    /// Due deliveries may be left that a permit was free for (entries the pass dropped as
    /// stale took their place): pass again at once.
    pub again: bool,
    /// When the earliest delivery not yet due is due.
    pub next_due: Option<u64>,
}

impl Dispatched {
    /// How long the engine may wait before the next pass unless something wakes it (an
    /// ingest, a finished attempt): at most `idle`, and at most `blocked` while due work
    /// waits for a permit.
    pub fn pause(&self, now_ms: u64, idle: Duration, blocked: Duration) -> Duration {
        if self.again {
            return Duration::ZERO;
        }
        let until_due = self
            .next_due
            .map_or(idle, |due| Duration::from_millis(due.saturating_sub(now_ms)));
        until_due.min(if self.blocked { blocked } else { idle })
    }
}

impl Engine {
    /// Claims due deliveries, a handler at a time, while permits are free, and starts
    /// their attempts.
    pub(super) async fn dispatch(self: &Arc<Self>, tasks: &mut JoinSet<()>) -> Result<Dispatched, DeliveryError> {
        let now = now_ms();
        let mut done = Dispatched::default();
        // One snapshot per pass: each attempt gets the code, limits and policy of one version.
        let registry = self.registry.snapshot();
        let mut heads = self.store.queue_heads().await?;
        // Handlers take turns at going first: the turn moves on with each pass that started
        // something, so when the global limit binds, permits go round the handlers.
        if !heads.is_empty() {
            let turn = self.turn.load(Ordering::Relaxed) % heads.len();
            heads.rotate_left(turn);
        }
        for (handler, first_due) in heads {
            if first_due > now {
                done.next_due = Some(done.next_due.map_or(first_due, |due| due.min(first_due)));
                continue;
            }
            let version = registry.version(&handler);
            // No version in use: nothing to limit, the attempt fails at once as "not loaded".
            let permits = version
                .as_ref()
                .map_or_else(|| Arc::new(Semaphore::new(1)), |v| v.limits.permits.clone());
            let free = permits.available_permits().min(self.global.available_permits());
            if free == 0 {
                done.blocked = true;
                continue;
            }
            let due = self.store.due(&handler, now, free).await?;
            let mut claimed = 0;
            for (due_ms, id) in &due {
                let (Ok(global), Ok(local)) = (
                    self.global.clone().try_acquire_owned(),
                    permits.clone().try_acquire_owned(),
                ) else {
                    break;
                };
                let Some(delivery) = self.store.claim(&handler, *due_ms, id, now).await? else {
                    continue;
                };
                claimed += 1;
                let engine = self.clone();
                let version = version.clone();
                tasks.spawn(async move {
                    attempt::run(&engine, delivery, version.as_deref()).await;
                    drop((global, local));
                });
            }
            done.started += claimed;
            if due.len() == free {
                // The handler may have more due than this pass read.
                if claimed == free {
                    done.blocked = true;
                } else {
                    done.again = true;
                }
            }
        }
        if done.started > 0 {
            self.turn.fetch_add(1, Ordering::Relaxed);
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_follows_what_the_pass_left() {
        let (idle, blocked) = (Duration::from_secs(1), Duration::from_millis(50));
        let pause = |pass: Dispatched, now| pass.pause(now, idle, blocked);
        assert_eq!(pause(Dispatched::default(), 100), idle);
        let later = || Dispatched {
            next_due: Some(350),
            ..Default::default()
        };
        assert_eq!(pause(later(), 100), Duration::from_millis(250));
        assert_eq!(pause(later(), 400), Duration::ZERO, "already due");
        let far = Dispatched {
            next_due: Some(100_000),
            ..Default::default()
        };
        assert_eq!(pause(far, 100), idle);
        let stale = Dispatched { again: true, ..later() };
        assert_eq!(pause(stale, 100), Duration::ZERO);
        let waiting = Dispatched {
            started: 2,
            blocked: true,
            ..later()
        };
        assert_eq!(pause(waiting, 100), blocked, "a permit is looked for again soon");
    }
}
