//! What `GET /limits` shows of a host: its rule, its requests in flight and waiting, its
//! pause and its circuit, with times as RFC 3339.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::{Host, lock};

/// The state of one host, for `GET /limits`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStatus {
    /// `host:port`.
    pub host: String,
    /// The rule that limits it, if any.
    pub rule: Option<String>,
    pub rate: Option<f64>,
    pub burst: Option<u32>,
    pub concurrency: Option<usize>,
    pub in_flight: usize,
    pub waiting: usize,
    /// Until when the host asked for a pause (RFC 3339).
    pub paused_until: Option<String>,
    /// `closed`, `open` or `probing`.
    pub breaker: &'static str,
    pub consecutive_failures: u32,
    pub open_until: Option<String>,
}

pub(super) fn status(key: &str, host: &Host) -> HostStatus {
    let state = lock(&host.state);
    let now = Instant::now();
    let breaker = match state.open_until {
        None => "closed",
        Some(_) if state.probing => "probing",
        Some(_) => "open",
    };
    HostStatus {
        host: key.to_owned(),
        rule: host.rule.as_ref().map(|r| r.pattern.clone()),
        rate: host.rule.as_ref().and_then(|r| r.rate),
        burst: host.rule.as_ref().map(|r| r.burst),
        concurrency: host.rule.as_ref().and_then(|r| r.concurrency),
        in_flight: host.in_flight.load(Ordering::SeqCst),
        waiting: host.waiting.load(Ordering::SeqCst),
        paused_until: state.paused_until.filter(|p| *p > now).map(rfc3339),
        breaker,
        consecutive_failures: state.failures,
        open_until: state.open_until.map(rfc3339),
    }
}

pub(super) fn rfc3339(at: Instant) -> String {
    let now = Instant::now();
    let wall = match at.checked_duration_since(now) {
        Some(ahead) => SystemTime::now() + ahead,
        None => SystemTime::now() - now.duration_since(at),
    };
    humantime::format_rfc3339_millis(wall).to_string()
}
