//! Process-wide counters for `GET /metrics`, in the Prometheus text format. A leaf module:
//! anything may count, only the server renders.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the attempt duration histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// How an attempt ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    /// Failed; another attempt is scheduled.
    Retried,
    /// Failed; the delivery is dead.
    Dead,
}

/// How a webhook request ended, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Accepted,
    /// A redelivery of an event already stored.
    Duplicate,
    /// Refused: bad signature, stale, or unusable.
    Rejected,
}

/// Counters; cheap to update from any task.
#[derive(Default)]
pub struct Metrics {
    events_ingested: AtomicU64,
    succeeded: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    /// Cumulative counts per bucket of [`BUCKETS`], then +Inf.
    duration_buckets: [AtomicU64; BUCKETS.len() + 1],
    duration_sum_us: AtomicU64,
    expired_deliveries: AtomicU64,
    expired_events: AtomicU64,
    /// Accepted, duplicate, rejected.
    webhooks: [AtomicU64; 3],
    proxy_forwarded: AtomicU64,
    proxy_upstream_failed: AtomicU64,
    proxy_recorded: AtomicU64,
    proxy_record_failed: AtomicU64,
}

impl Metrics {
    /// Counts newly accepted events.
    pub fn ingested(&self, count: usize) {
        self.events_ingested.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Counts one webhook request.
    pub fn webhook(&self, outcome: WebhookOutcome) {
        self.webhooks[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request the proxy forwarded and got an answer for.
    pub fn proxy_forwarded(&self) {
        self.proxy_forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request the proxy could not forward (answered 502/504).
    pub fn proxy_upstream_failed(&self) {
        self.proxy_upstream_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts events the proxy stored.
    pub fn proxy_recorded(&self, count: usize) {
        self.proxy_recorded.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Counts events the proxy meant to record but could not.
    pub fn proxy_record_failed(&self, count: usize) {
        self.proxy_record_failed.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Counts one attempt and its duration.
    pub fn attempt(&self, outcome: AttemptOutcome, duration: Duration) {
        let counter = match outcome {
            AttemptOutcome::Succeeded => &self.succeeded,
            AttemptOutcome::Retried => &self.retried,
            AttemptOutcome::Dead => &self.dead,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let seconds = duration.as_secs_f64();
        let bucket = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
        self.duration_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_us
            .fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts what a retention pass removed.
    pub fn expired(&self, deliveries: usize, events: usize) {
        self.expired_deliveries.fetch_add(deliveries as u64, Ordering::Relaxed);
        self.expired_events.fetch_add(events as u64, Ordering::Relaxed);
    }

    /// The text exposition, with gauges read by the caller.
    pub fn render(&self, queue_depth: usize, live_isolates: usize) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "# HELP eddy_events_ingested_total Events accepted (duplicates excluded).\n\
             # TYPE eddy_events_ingested_total counter\neddy_events_ingested_total {}",
            load(&self.events_ingested)
        );
        let _ = writeln!(
            out,
            "# HELP eddy_attempts_total Delivery attempts by outcome.\n# TYPE eddy_attempts_total counter\n\
             eddy_attempts_total{{outcome=\"succeeded\"}} {}\neddy_attempts_total{{outcome=\"retried\"}} {}\n\
             eddy_attempts_total{{outcome=\"dead\"}} {}",
            load(&self.succeeded),
            load(&self.retried),
            load(&self.dead)
        );
        self.render_histogram(&mut out);
        self.render_intake(&mut out);
        let _ = writeln!(
            out,
            "# HELP eddy_retention_removed_total Records removed by retention.\n\
             # TYPE eddy_retention_removed_total counter\n\
             eddy_retention_removed_total{{kind=\"deliveries\"}} {}\n\
             eddy_retention_removed_total{{kind=\"events\"}} {}",
            load(&self.expired_deliveries),
            load(&self.expired_events)
        );
        let _ = writeln!(
            out,
            "# HELP eddy_queue_depth Deliveries waiting in the queue.\n# TYPE eddy_queue_depth gauge\n\
             eddy_queue_depth {queue_depth}\n# HELP eddy_live_isolates V8 isolates alive.\n\
             # TYPE eddy_live_isolates gauge\neddy_live_isolates {live_isolates}"
        );
        out
    }

    fn render_intake(&self, out: &mut String) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let [accepted, duplicate, rejected] = &self.webhooks;
        let _ = writeln!(
            out,
            "# HELP eddy_webhooks_total Webhook requests by outcome.\n# TYPE eddy_webhooks_total counter\n\
             eddy_webhooks_total{{outcome=\"accepted\"}} {}\neddy_webhooks_total{{outcome=\"duplicate\"}} {}\n\
             eddy_webhooks_total{{outcome=\"rejected\"}} {}",
            load(accepted),
            load(duplicate),
            load(rejected)
        );
        let _ = writeln!(
            out,
            "# HELP eddy_proxy_requests_total Requests through the proxy by outcome.\n\
             # TYPE eddy_proxy_requests_total counter\n\
             eddy_proxy_requests_total{{outcome=\"forwarded\"}} {}\n\
             eddy_proxy_requests_total{{outcome=\"upstream_failed\"}} {}\n\
             # HELP eddy_proxy_events_total Events the proxy recorded, or failed to.\n\
             # TYPE eddy_proxy_events_total counter\n\
             eddy_proxy_events_total{{outcome=\"recorded\"}} {}\neddy_proxy_events_total{{outcome=\"failed\"}} {}",
            load(&self.proxy_forwarded),
            load(&self.proxy_upstream_failed),
            load(&self.proxy_recorded),
            load(&self.proxy_record_failed)
        );
    }

    fn render_histogram(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP eddy_attempt_duration_seconds Duration of delivery attempts.\n\
             # TYPE eddy_attempt_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (i, bound) in BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_owned()])
            .enumerate()
        {
            cumulative += self.duration_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "eddy_attempt_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let sum = self.duration_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "eddy_attempt_duration_seconds_sum {sum}\neddy_attempt_duration_seconds_count {cumulative}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.ingested(3);
        m.attempt(AttemptOutcome::Succeeded, Duration::from_millis(3));
        m.attempt(AttemptOutcome::Retried, Duration::from_millis(200));
        m.attempt(AttemptOutcome::Dead, Duration::from_secs(60));
        let text = m.render(4, 2);
        for line in [
            "eddy_events_ingested_total 3",
            "eddy_attempts_total{outcome=\"succeeded\"} 1",
            "eddy_attempts_total{outcome=\"dead\"} 1",
            "eddy_attempt_duration_seconds_bucket{le=\"0.005\"} 1",
            "eddy_attempt_duration_seconds_bucket{le=\"0.25\"} 2",
            "eddy_attempt_duration_seconds_bucket{le=\"+Inf\"} 3",
            "eddy_attempt_duration_seconds_count 3",
            "eddy_queue_depth 4",
            "eddy_live_isolates 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
