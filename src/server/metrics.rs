//! Counters for `GET /metrics`, in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters; cheap to update from any task.
#[derive(Default)]
pub struct Metrics {
    events_ingested: AtomicU64,
}

impl Metrics {
    /// Counts newly accepted events.
    pub fn ingested(&self, count: usize) {
        self.events_ingested.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// The text exposition, with gauges read by the caller.
    pub fn render(&self, queue_depth: usize, live_isolates: usize) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric(
            "eddy_events_ingested_total",
            "counter",
            "Events accepted (duplicates excluded).",
            self.events_ingested.load(Ordering::Relaxed),
        );
        metric(
            "eddy_queue_depth",
            "gauge",
            "Deliveries waiting in the queue.",
            queue_depth as u64,
        );
        metric(
            "eddy_live_isolates",
            "gauge",
            "V8 isolates alive.",
            live_isolates as u64,
        );
        out
    }
}
