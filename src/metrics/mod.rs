//! Process-wide metrics for `GET /metrics`, in the Prometheus text format (version 0.0.4),
//! kept and written by `prometheus-client`. A leaf module: anything may count, only the
//! server renders, reading the gauges it is given at that moment.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

mod labels;
mod recent;
mod register;

pub use labels::{AttemptOutcome, GaugedStatus, WebhookOutcome};
use labels::{
    HandlerLabel, HandlerOutcome, HandlerStatus, HostClass, HostLabel, Kind, Outcome, SourceOutcome, SourceReason,
};
pub use recent::{DURATION_BOUNDS_MS, MINUTES, Minute, MinuteRing};

/// Upper bounds (seconds) of the attempt duration buckets.
const ATTEMPT_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];
/// Upper bounds (seconds) of the ingest latency buckets: from a request's events routed to
/// their commit, which includes the wait for the shared flush.
const INGEST_BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];
/// Distinct hosts counted by name; the fetches to any other host count under [`OTHER_HOSTS`],
/// so a handler that calls many hosts cannot grow the metrics without bound.
const MAX_HOSTS: usize = 256;
pub const OTHER_HOSTS: &str = "(other)";
/// The webhook source label of a request to a source that is not configured (its name comes
/// from the URL, anyone's to choose).
pub const UNKNOWN_SOURCE: &str = "(unknown)";

/// What the server reads for the gauges at each scrape.
#[derive(Debug, Default)]
pub struct Gauges {
    pub queue_depth: usize,
    pub live_isolates: usize,
    /// Deliveries per handler and status.
    pub deliveries: Vec<(String, GaugedStatus, u64)>,
    /// Destination hosts with a `[limits]` rule or a state to show.
    pub hosts: Vec<HostGauge>,
}

/// One destination host's state at a scrape.
#[derive(Debug, Default)]
pub struct HostGauge {
    /// `host:port`.
    pub host: String,
    pub in_flight: usize,
    pub waiting: usize,
    pub paused: bool,
    pub circuit_open: bool,
}

/// The status classes of fetches, in the order [`Metrics::fetch`] indexes them.
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];
/// The outcomes of attempts, in the order [`HandlerAttempts`] holds them.
const OUTCOMES: [AttemptOutcome; 3] = [AttemptOutcome::Succeeded, AttemptOutcome::Retried, AttemptOutcome::Dead];

/// One handler's attempt counters (by [`OUTCOMES`]) and duration histogram: clones of the
/// families' own, so counting here is counting there.
struct HandlerAttempts {
    outcomes: [Counter; 3],
    seconds: Histogram,
    recent: Box<MinuteRing>,
}

impl HandlerAttempts {
    fn count(&self, outcome: AttemptOutcome, seconds: f64, now_ms: u64) {
        self.outcomes[outcome as usize].inc();
        self.seconds.observe(seconds);
        self.recent
            .attempt(now_ms, outcome == AttemptOutcome::Succeeded, seconds * 1000.0);
    }
}

/// A read guard whatever a panicking writer left: the maps hold only counters.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn attempt_histogram() -> Histogram {
    Histogram::new(ATTEMPT_BUCKETS)
}

/// Every metric, registered once; cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    events_ingested: Counter,
    ingest_seconds: Histogram,
    attempts: Family<HandlerOutcome, Counter>,
    attempt_seconds: Family<HandlerLabel, Histogram, fn() -> Histogram>,
    deliveries: Family<HandlerStatus, Gauge>,
    /// Each destination host's fetches in flight and waiting, pause and circuit.
    host_in_flight: Family<HostLabel, Gauge>,
    host_waiting: Family<HostLabel, Gauge>,
    host_paused: Family<HostLabel, Gauge>,
    host_circuit_open: Family<HostLabel, Gauge>,
    queue_depth: Gauge,
    live_isolates: Gauge,
    webhooks: Family<SourceOutcome, Counter>,
    webhook_rejections: Family<SourceReason, Counter>,
    fetches: Family<HostClass, Counter>,
    /// Each handler's attempt metrics, by name (see [`Metrics::attempt`]).
    handlers: RwLock<HashMap<String, HandlerAttempts>>,
    /// Each host's fetch counters by [`CLASSES`], at most [`MAX_HOSTS`] and [`OTHER_HOSTS`].
    hosts: RwLock<HashMap<String, [Counter; 6]>>,
    proxy_requests: Family<Outcome, Counter>,
    proxy_events: Family<Outcome, Counter>,
    retention_removed: Family<Kind, Counter>,
    /// One scrape at a time: the per-handler gauges are cleared and set at each.
    rendering: Mutex<()>,
    /// The last hour minute by minute, for the dashboard.
    recent: Box<MinuteRing>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            events_ingested: Counter::default(),
            ingest_seconds: Histogram::new(INGEST_BUCKETS),
            attempts: Family::default(),
            attempt_seconds: Family::new_with_constructor(attempt_histogram),
            deliveries: Family::default(),
            host_in_flight: Family::default(),
            host_waiting: Family::default(),
            host_paused: Family::default(),
            host_circuit_open: Family::default(),
            queue_depth: Gauge::default(),
            live_isolates: Gauge::default(),
            webhooks: Family::default(),
            webhook_rejections: Family::default(),
            fetches: Family::default(),
            handlers: RwLock::default(),
            hosts: RwLock::default(),
            proxy_requests: Family::default(),
            proxy_events: Family::default(),
            retention_removed: Family::default(),
            rendering: Mutex::new(()),
            recent: Box::default(),
        };
        // The registry holds clones of the metrics above: they share their values.
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.registry = registry;
        metrics
    }
}

impl Metrics {
    /// Counts newly accepted events.
    pub fn ingested(&self, count: usize) {
        self.events_ingested.inc_by(count as u64);
        self.recent.ingested(crate::clock::now_ms(), count as u64);
    }

    /// The last hour minute by minute, oldest first, for every handler together.
    pub fn recent(&self, now_ms: u64) -> Vec<Minute> {
        self.recent.minutes(now_ms)
    }

    /// The last hour minute by minute of each handler that made an attempt since the start.
    pub fn recent_by_handler(&self, now_ms: u64) -> Vec<(String, Vec<Minute>)> {
        let mut all: Vec<_> = read(&self.handlers)
            .iter()
            .map(|(name, attempts)| (name.clone(), attempts.recent.minutes(now_ms)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Records how long one request's events took from routing to their commit.
    pub fn ingest_took(&self, duration: Duration) {
        self.ingest_seconds.observe(duration.as_secs_f64());
    }

    /// Counts one webhook request of `source` (configured, else [`UNKNOWN_SOURCE`]);
    /// `reason` is the refusal's error code.
    pub fn webhook(&self, source: &str, outcome: WebhookOutcome, reason: Option<&str>) {
        let labels = SourceOutcome {
            source: source.to_owned(),
            outcome: outcome.label(),
        };
        self.webhooks.get_or_create(&labels).inc();
        if let Some(reason) = reason {
            let labels = SourceReason {
                source: source.to_owned(),
                reason: reason.to_owned(),
            };
            self.webhook_rejections.get_or_create(&labels).inc();
        }
    }

    /// Counts one attempt of `handler` and its duration.
    pub fn attempt(&self, handler: &str, outcome: AttemptOutcome, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let now_ms = crate::clock::now_ms();
        self.recent
            .attempt(now_ms, outcome == AttemptOutcome::Succeeded, seconds * 1000.0);
        // Found by name under a read lock: an attempt allocates nothing once its handler has
        // been seen.
        if let Some(known) = read(&self.handlers).get(handler) {
            return known.count(outcome, seconds, now_ms);
        }
        let made = HandlerAttempts {
            outcomes: OUTCOMES.map(|outcome| {
                let labels = HandlerOutcome {
                    handler: handler.to_owned(),
                    outcome: outcome.label(),
                };
                self.attempts.get_or_create_owned(&labels)
            }),
            seconds: self.attempt_seconds.get_or_create_owned(&HandlerLabel {
                handler: handler.to_owned(),
            }),
            recent: Box::default(),
        };
        let mut handlers = self.handlers.write().unwrap_or_else(|e| e.into_inner());
        handlers
            .entry(handler.to_owned())
            .or_insert(made)
            .count(outcome, seconds, now_ms);
    }

    /// Counts one fetch to `host` that answered `status` (`None`: no answer).
    pub fn fetch(&self, host: &str, status: Option<u16>) {
        let class = match status {
            Some(100..=199) => 0,
            Some(200..=299) => 1,
            Some(300..=399) => 2,
            Some(400..=499) => 3,
            Some(_) => 4,
            None => 5,
        };
        if let Some(known) = read(&self.hosts).get(host) {
            known[class].inc();
            return;
        }
        let mut hosts = self.hosts.write().unwrap_or_else(|e| e.into_inner());
        let named = if hosts.len() < MAX_HOSTS { host } else { OTHER_HOSTS };
        let counters = hosts.entry(named.to_owned()).or_insert_with(|| {
            CLASSES.map(|class| {
                let labels = HostClass {
                    host: named.to_owned(),
                    class,
                };
                self.fetches.get_or_create_owned(&labels)
            })
        });
        counters[class].inc();
    }

    /// Counts a request the proxy forwarded and got an answer for.
    pub fn proxy_forwarded(&self) {
        self.proxy_requests
            .get_or_create(&Outcome { outcome: "forwarded" })
            .inc();
    }

    /// Counts a request the proxy could not forward (answered 502/504).
    pub fn proxy_upstream_failed(&self) {
        let labels = Outcome {
            outcome: "upstream_failed",
        };
        self.proxy_requests.get_or_create(&labels).inc();
    }

    /// Counts events the proxy stored.
    pub fn proxy_recorded(&self, count: usize) {
        let labels = Outcome { outcome: "recorded" };
        self.proxy_events.get_or_create(&labels).inc_by(count as u64);
    }

    /// Counts events the proxy meant to record but could not.
    pub fn proxy_record_failed(&self, count: usize) {
        let labels = Outcome { outcome: "failed" };
        self.proxy_events.get_or_create(&labels).inc_by(count as u64);
    }

    /// Counts what a retention pass removed.
    pub fn expired(&self, deliveries: usize, events: usize) {
        let removed = &self.retention_removed;
        removed
            .get_or_create(&Kind { kind: "deliveries" })
            .inc_by(deliveries as u64);
        removed.get_or_create(&Kind { kind: "events" }).inc_by(events as u64);
    }

    /// The text exposition, with the gauges the caller read just now.
    pub fn render(&self, gauges: Gauges) -> String {
        let _one_at_a_time = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
        self.queue_depth.set(gauges.queue_depth as i64);
        self.live_isolates.set(gauges.live_isolates as i64);
        // Cleared first, so a handler that is gone, or has none left, shows no stale value.
        self.deliveries.clear();
        for (handler, status, count) in gauges.deliveries {
            let labels = HandlerStatus {
                handler,
                status: status.label(),
            };
            self.deliveries.get_or_create(&labels).set(count as i64);
        }
        let families = [
            &self.host_in_flight,
            &self.host_waiting,
            &self.host_paused,
            &self.host_circuit_open,
        ];
        for family in families {
            family.clear();
        }
        for host in gauges.hosts {
            let labels = HostLabel { host: host.host };
            self.host_in_flight.get_or_create(&labels).set(host.in_flight as i64);
            self.host_waiting.get_or_create(&labels).set(host.waiting as i64);
            self.host_paused.get_or_create(&labels).set(i64::from(host.paused));
            self.host_circuit_open
                .get_or_create(&labels)
                .set(i64::from(host.circuit_open));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    fn assert_has(text: &str, expected: &[&str]) {
        for line in expected {
            assert!(lines(text).contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn attempts_and_their_durations_are_counted_per_handler() {
        let m = Metrics::default();
        m.ingested(3);
        m.attempt("crm.sync", AttemptOutcome::Succeeded, Duration::from_millis(3));
        m.attempt("crm.sync", AttemptOutcome::Retried, Duration::from_millis(200));
        m.attempt("slack.post", AttemptOutcome::Dead, Duration::from_secs(60));
        let text = m.render(Gauges::default());
        assert_has(
            &text,
            &[
                "eddy_events_ingested_total 3",
                "eddy_attempts_total{handler=\"crm.sync\",outcome=\"succeeded\"} 1",
                "eddy_attempts_total{handler=\"crm.sync\",outcome=\"retried\"} 1",
                "eddy_attempts_total{handler=\"slack.post\",outcome=\"dead\"} 1",
                "eddy_attempt_duration_seconds_bucket{handler=\"crm.sync\",le=\"0.005\"} 1",
                "eddy_attempt_duration_seconds_bucket{handler=\"crm.sync\",le=\"0.25\"} 2",
                "eddy_attempt_duration_seconds_count{handler=\"crm.sync\"} 2",
                "eddy_attempt_duration_seconds_bucket{handler=\"slack.post\",le=\"30\"} 0",
                "eddy_attempt_duration_seconds_bucket{handler=\"slack.post\",le=\"+Inf\"} 1",
            ],
        );
    }

    #[test]
    fn the_gauges_are_what_the_last_scrape_read() {
        let m = Metrics::default();
        let first = Gauges {
            queue_depth: 4,
            live_isolates: 2,
            deliveries: vec![
                ("crm.sync".into(), GaugedStatus::Pending, 3),
                ("crm.sync".into(), GaugedStatus::Dead, 7),
                ("gone".into(), GaugedStatus::Running, 1),
            ],
            hosts: vec![HostGauge {
                host: "api.crm.example:443".into(),
                in_flight: 2,
                waiting: 5,
                paused: true,
                circuit_open: false,
            }],
        };
        assert_has(
            &m.render(first),
            &[
                "eddy_queue_depth 4",
                "eddy_live_isolates 2",
                "eddy_host_waiting{host=\"api.crm.example:443\"} 5",
                "eddy_host_in_flight{host=\"api.crm.example:443\"} 2",
                "eddy_host_paused{host=\"api.crm.example:443\"} 1",
                "eddy_host_circuit_open{host=\"api.crm.example:443\"} 0",
                "eddy_deliveries{handler=\"crm.sync\",status=\"pending\"} 3",
                "eddy_deliveries{handler=\"crm.sync\",status=\"dead\"} 7",
                "eddy_deliveries{handler=\"gone\",status=\"running\"} 1",
            ],
        );
        let second = Gauges {
            deliveries: vec![("crm.sync".into(), GaugedStatus::Dead, 6)],
            ..Gauges::default()
        };
        let text = m.render(second);
        assert_has(&text, &["eddy_deliveries{handler=\"crm.sync\",status=\"dead\"} 6"]);
        assert!(
            !text.contains("handler=\"gone\"") && !text.contains("status=\"pending\""),
            "{text}"
        );
        assert!(
            !text.contains("api.crm.example"),
            "a host no longer shown has no series: {text}"
        );
    }

    #[test]
    fn webhooks_count_by_source_and_refusals_by_reason() {
        let m = Metrics::default();
        m.webhook("gh", WebhookOutcome::Accepted, None);
        m.webhook("gh", WebhookOutcome::Rejected, Some("bad_signature"));
        m.webhook("gh", WebhookOutcome::Rejected, Some("bad_signature"));
        m.webhook(UNKNOWN_SOURCE, WebhookOutcome::Rejected, Some("unknown_source"));
        assert_has(
            &m.render(Gauges::default()),
            &[
                "eddy_webhooks_total{source=\"gh\",outcome=\"accepted\"} 1",
                "eddy_webhooks_total{source=\"gh\",outcome=\"rejected\"} 2",
                "eddy_webhook_rejections_total{source=\"gh\",reason=\"bad_signature\"} 2",
                "eddy_webhook_rejections_total{source=\"(unknown)\",reason=\"unknown_source\"} 1",
            ],
        );
    }

    #[test]
    fn fetches_count_by_host_and_status_class_with_the_hosts_bounded() {
        let m = Metrics::default();
        m.fetch("api.crm.example", Some(201));
        m.fetch("api.crm.example", Some(503));
        m.fetch("api.crm.example", None);
        for i in 0..MAX_HOSTS + 10 {
            m.fetch(&format!("h{i}.example"), Some(200));
        }
        let text = m.render(Gauges::default());
        assert_has(
            &text,
            &[
                "eddy_fetches_total{host=\"api.crm.example\",class=\"2xx\"} 1",
                "eddy_fetches_total{host=\"api.crm.example\",class=\"5xx\"} 1",
                "eddy_fetches_total{host=\"api.crm.example\",class=\"error\"} 1",
                "eddy_fetches_total{host=\"(other)\",class=\"2xx\"} 11",
            ],
        );
        // Every host named has its six classes; api.crm.example took one of the places.
        let named = lines(&text)
            .iter()
            .filter(|l| l.starts_with("eddy_fetches_total{host=\"h") && l.contains("class=\"2xx\"} 1"))
            .count();
        assert_eq!(named, MAX_HOSTS - 1);
        assert!(
            !text.contains(&format!("host=\"h{}.example\"", MAX_HOSTS - 1)),
            "{text}"
        );
    }

    #[test]
    fn ingest_latency_is_a_histogram() {
        let m = Metrics::default();
        m.ingest_took(Duration::from_micros(700));
        m.ingest_took(Duration::from_millis(30));
        assert_has(
            &m.render(Gauges::default()),
            &[
                "eddy_ingest_duration_seconds_bucket{le=\"0.001\"} 1",
                "eddy_ingest_duration_seconds_bucket{le=\"0.05\"} 2",
                "eddy_ingest_duration_seconds_count 2",
            ],
        );
    }
}
