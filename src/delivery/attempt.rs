//! One attempt of one delivery: run it, record it, decide what follows.

use std::time::{Duration, UNIX_EPOCH};

use super::{AttemptNotice, Decision, Engine, RetryPolicy, Version};
use crate::clock::now_ms;
use crate::logs;
use crate::metrics::AttemptOutcome;
use crate::runtime::{InvocationReport, InvocationRequest, OnDead, Outcome, idempotency_key};
use crate::store::{AttemptRecord, DeliveryRecord, NextStep};

/// Runs the next attempt of a claimed delivery on `version` of its handler (none: the
/// handler is not loaded, so the default retry policy applies) and stores its record and
/// next step.
pub async fn run(engine: &Engine, mut delivery: DeliveryRecord, version: Option<&Version>) {
    let policy = version.map_or(&engine.settings.default_policy, |v| &v.limits.policy);
    let n = delivery.attempts + 1;
    let started_ms = now_ms();
    let (mut next, attempt, ran) = match engine.store.event(&delivery.event_id).await {
        // Only an event that names this delivery makes it count: one it does not name is
        // not written yet (a backfill in progress) or was never accepted (left by a crash).
        Ok(Some(record)) if record.deliveries.contains(&delivery.id) => {
            let event_type = record.event.kind.clone();
            let recalled_steps = super::steps::recall(&engine.store, &delivery, record.version).await;
            let request = InvocationRequest {
                event: record.event,
                delivery_id: delivery.id.clone(),
                attempt: n,
                idempotency_key: idempotency_key(&delivery.event_id, &delivery.handler, record.version),
                event_version: record.version,
                recalled_steps,
            };
            let report = match version {
                Some(version) => engine.runtime.run(&version.pool, request).await,
                None => crate::runtime::not_loaded(&delivery.handler),
            };
            count_fetches(engine, &report);
            let mut attempt = record_of(n, started_ms, &report);
            attempt.replay = delivery.replay_requested;
            attempt.event_version = Some(record.version);
            attempt.recorded_steps = super::steps::any_ran(&report);
            (
                next_step(&report, &delivery, policy),
                attempt,
                Some((event_type, report)),
            )
        }
        Ok(_) => {
            missing_event(engine, &delivery).await;
            return;
        }
        Err(e) => {
            let (next, attempt) = gone(n, started_ms, &format!("the event cannot be read: {e}"));
            (next, attempt, None)
        }
    };
    if let NextStep::Dead { holds_key, .. } = &mut next {
        // A handler that is not loaded keeps its keys waiting, as `onDead` does by default.
        *holds_key = version.is_none_or(|v| v.limits.on_dead == OnDead::Block);
    }
    let soon = matches!(next, NextStep::Retry { due_ms, .. } | NextStep::Defer { due_ms, .. }
        if due_ms <= now_ms().saturating_add(1000));
    count_and_log(engine, &delivery, &attempt, &next);
    // No flush here: if the process dies before the store's background flush, the delivery
    // is still pending or running on disk and runs again (at least once); sled writes in
    // order, so the attempt's state writes are never lost while its record survives.
    let notice = ran.map(|(event_type, report)| AttemptNotice {
        delivery_id: delivery.id.clone(),
        event_id: delivery.event_id.clone(),
        event_type,
        handler: delivery.handler.clone(),
        attempt: n,
        replay: attempt.replay,
        report,
        next: next.clone(),
    });
    let in_line = delivery.line_place.is_some();
    let finished = engine
        .store
        .finish_attempt(&mut delivery, &attempt, next, now_ms())
        .await;
    let finished = match finished {
        Ok(()) if in_line && delivery.line_place.is_none() => advance_line(engine, &delivery).await,
        other => other,
    };
    if let Err(e) = finished {
        tracing::error!(
            event_id = %delivery.event_id,
            delivery_id = %delivery.id,
            handler = %delivery.handler,
            attempt = n,
            "cannot record attempt {n} of delivery {}: {e}",
            delivery.id
        );
    }
    // Sending fails only when nobody listens, which is the usual case outside `eddy dev`.
    if let Some(notice) = notice {
        let _ = engine.attempts.send(std::sync::Arc::new(notice));
    }
    if soon {
        engine.wake();
    }
}

/// Lets the next delivery of `delivery`'s key run, once its leaving the line is on disk: a
/// crash before that runs it again, and the next one must not have run by then.
async fn advance_line(engine: &Engine, delivery: &DeliveryRecord) -> Result<(), crate::store::StoreError> {
    let Some(key) = &delivery.order_key else {
        return Ok(());
    };
    engine.store.commit().await?;
    engine.store.advance_line(&delivery.handler, key, now_ms()).await?;
    engine.wake();
    Ok(())
}

/// Counts the attempt's fetches by host (with its port when the URL names one) and status.
fn count_fetches(engine: &Engine, report: &InvocationReport) {
    for fetch in &report.capture.fetches {
        if let Some(host) = authority(&fetch.url) {
            engine.metrics.fetch(host, fetch.status);
        }
    }
}

/// The `host[:port]` of a URL the runtime recorded (serialized by the URL parser, so its
/// host is lowercase and a default port is left out), without any user info.
fn authority(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    Some(authority.rsplit_once('@').map_or(authority, |(_, host)| host))
}

/// Counts the attempt in the metrics and logs it: one line for an attempt that failed
/// (warn, with the time of the retry) or left the delivery dead (error), none for a success.
fn count_and_log(engine: &Engine, delivery: &DeliveryRecord, attempt: &AttemptRecord, next: &NextStep) {
    let outcome = match next {
        NextStep::Succeeded => AttemptOutcome::Succeeded,
        NextStep::Retry { .. } | NextStep::Defer { .. } => AttemptOutcome::Retried,
        NextStep::Dead { .. } => AttemptOutcome::Dead,
    };
    let duration = Duration::from_secs_f64(attempt.duration_ms / 1000.0);
    engine.metrics.attempt(&delivery.handler, outcome, duration);
    let n = attempt.n;
    match next {
        NextStep::Succeeded => {}
        NextStep::Retry { due_ms, error } | NextStep::Defer { due_ms, error } => {
            let due = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(*due_ms));
            tracing::warn!(
                target: logs::ATTEMPTS,
                event_id = %delivery.event_id,
                delivery_id = %delivery.id,
                handler = %delivery.handler,
                attempt = n,
                retry_at = %due,
                error = %logs::one_line(error),
                "attempt {n} failed; retry at {due}"
            );
        }
        NextStep::Dead { error, .. } => tracing::error!(
            target: logs::ATTEMPTS,
            event_id = %delivery.event_id,
            delivery_id = %delivery.id,
            handler = %delivery.handler,
            attempt = n,
            error = %logs::one_line(error),
            "delivery dead after {n} attempt(s)"
        ),
    }
}

/// An ingest writes its deliveries before the event record that makes them count, so a
/// delivery claimed in between finds no event yet: it is tried again shortly. One whose
/// event is still missing after [`ORPHANED_AFTER_MS`] lost it to a crash mid-ingest (the
/// request was never acknowledged) and is removed.
async fn missing_event(engine: &Engine, delivery: &DeliveryRecord) {
    let now = now_ms();
    let result = if now.saturating_sub(delivery.created_ms) < ORPHANED_AFTER_MS {
        engine
            .store
            .postpone(&delivery.id, now.saturating_add(100), now)
            .await
            .map(drop)
    } else {
        engine.store.forget_delivery(&delivery.id).await
    };
    if let Err(e) = result {
        tracing::warn!(
            event_id = %delivery.event_id,
            delivery_id = %delivery.id,
            handler = %delivery.handler,
            "delivery {} whose event is missing: {e}",
            delivery.id
        );
    }
}

/// How long a delivery may wait for its event record before it counts as orphaned.
const ORPHANED_AFTER_MS: u64 = 60_000;

/// Deferrals allowed per delivery (counted again after a replay): past them, a wait that was
/// asked for uses up the retry schedule like any failure, so a handler or API that always
/// asks to wait cannot keep a delivery pending for ever.
pub const MAX_DEFERRALS: u32 = 20;

/// What follows the attempt that `report` describes, `delivery` as it was before it.
fn next_step(report: &InvocationReport, delivery: &DeliveryRecord, policy: &RetryPolicy) -> NextStep {
    let Outcome::Failure(failure) = &report.outcome else {
        return NextStep::Succeeded;
    };
    let error = format!("{}: {}", failure.name, failure.message);
    if failure.is_retryable() && delivery.deferred < MAX_DEFERRALS {
        let asked = failure.retry_after().or_else(|| {
            // The latest `429 Too Many Requests` of the attempt that said how long to wait.
            let mut fetches = report.capture.fetches.iter().rev().filter(|f| f.status == Some(429));
            fetches.find_map(|f| f.retry_after_ms).map(Duration::from_millis)
        });
        if let Some(wait) = asked {
            let due_ms = due_after(now_ms(), wait.min(super::retry::MAX_DELAY));
            return NextStep::Defer { due_ms, error };
        }
    }
    // The schedule counts the attempts since the latest replay (a replay starts it again, as
    // a first delivery does), deferred ones left out.
    let n = delivery.attempts + 1;
    let in_round = n.saturating_sub(delivery.replay_from).saturating_sub(delivery.deferred);
    match policy.decide(in_round.max(1), failure, rand::random::<f64>()) {
        Decision::RetryAfter(delay) => NextStep::Retry {
            due_ms: due_after(now_ms(), delay),
            error,
        },
        Decision::GiveUp => NextStep::Dead { error, holds_key: true },
    }
}

/// The time `delay` after `now_ms`; never wraps, whatever the delay.
fn due_after(now_ms: u64, delay: Duration) -> u64 {
    now_ms.saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
}

fn record_of(n: u32, started_ms: u64, report: &InvocationReport) -> AttemptRecord {
    AttemptRecord {
        n,
        started_ms,
        duration_ms: report.duration_ms,
        succeeded: report.outcome.is_success(),
        report: serde_json::to_value(report).unwrap_or(serde_json::Value::Null),
        replay: false,
        event_version: None,
        recorded_steps: false,
    }
}

/// A delivery whose event is gone cannot succeed: it is dead at once.
fn gone(n: u32, started_ms: u64, why: &str) -> (NextStep, AttemptRecord) {
    let attempt = AttemptRecord {
        n,
        started_ms,
        duration_ms: Duration::ZERO.as_secs_f64(),
        succeeded: false,
        report: serde_json::json!({ "outcome": { "status": "failure", "message": why } }),
        replay: false,
        event_version: None,
        recorded_steps: false,
    };
    let next = NextStep::Dead {
        error: why.to_owned(),
        holds_key: true,
    };
    (next, attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_count_under_the_host_and_port_of_their_url() {
        assert_eq!(authority("http://127.0.0.1:8080/x?y"), Some("127.0.0.1:8080"));
        assert_eq!(
            authority("https://api.crm.example/contacts#top"),
            Some("api.crm.example")
        );
        assert_eq!(authority("https://user@[::1]:9000"), Some("[::1]:9000"));
        assert_eq!(authority("not a url"), None);
    }

    #[test]
    fn a_due_time_never_wraps() {
        assert_eq!(due_after(1_000, Duration::from_millis(500)), 1_500);
        assert_eq!(due_after(u64::MAX - 1, Duration::from_secs(1)), u64::MAX);
        assert_eq!(due_after(1_000, Duration::MAX), u64::MAX);
    }
}
