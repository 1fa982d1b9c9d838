//! Limits per destination, shared by every handler: a request to a host waits for its turn
//! under the host's rate (a token bucket) and concurrency, waits out a pause the host asked
//! for (`429` or `503` with `Retry-After`), and fails at once while the host's circuit is open
//! (after consecutive connection failures or `5xx`), until one probe request after the
//! cool-down closes it again. Waiting happens in the fetch op, so it counts toward the
//! invocation's wall clock and not its CPU time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod status;

pub use status::HostStatus;
use status::{rfc3339, status};

/// Hosts whose state is kept at most; past it, hosts with nothing to remember are dropped.
const MAX_HOSTS: usize = 4096;

/// The limits of the hosts one rule names: `api.crm.example`, `api.crm.example:8443` or
/// `*.example.com` (any name under it, at any port).
#[derive(Debug, Clone, PartialEq)]
pub struct HostRule {
    pub pattern: String,
    /// Requests per second; none: as many as come.
    pub rate: Option<f64>,
    /// Requests that may go at once after a quiet spell (at least 1).
    pub burst: u32,
    /// Requests waiting for their answer at once; none: no limit.
    pub concurrency: Option<usize>,
}

impl HostRule {
    fn matches(&self, host: &str, port: u16) -> bool {
        if let Some(suffix) = self.pattern.strip_prefix("*.") {
            return host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host[..host.len() - suffix.len()].ends_with('.');
        }
        match self.pattern.rsplit_once(':') {
            Some((name, p)) if p.parse::<u16>().is_ok() => name == host && p.parse() == Ok(port),
            _ => self.pattern == host,
        }
    }
}

/// When a host's circuit opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Consecutive connection failures or `5xx` answers that open it.
    pub failures: u32,
    /// How long it stays open before one probe may go.
    pub cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// Why a request may not go now.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{host} is not called for now: its last {failures} requests failed (connection errors or 5xx), so its circuit is \
     open until {until} (then one request probes it); the attempt can be retried"
)]
pub struct CircuitOpen {
    pub host: String,
    pub failures: u32,
    /// RFC 3339.
    pub until: String,
}

/// The limits of every host, and what each has done lately.
pub struct HostLimits {
    rules: Vec<HostRule>,
    breaker: BreakerSettings,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

struct Host {
    rule: Option<HostRule>,
    permits: Option<Arc<Semaphore>>,
    state: Mutex<HostState>,
    in_flight: AtomicUsize,
    waiting: AtomicUsize,
}

#[derive(Default)]
struct HostState {
    /// Tokens left in the bucket (below zero: reserved ahead) as of `refilled`.
    tokens: f64,
    refilled: Option<Instant>,
    paused_until: Option<Instant>,
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// A request's turn: keeps its concurrency slot until it is dropped (with the answer
/// reported, or with the request given up).
pub struct Ticket {
    host: Arc<Host>,
    _permit: Option<OwnedSemaphorePermit>,
    probe: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.host.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.probe {
            // A probe given up without an answer lets the next request probe.
            lock(&self.host.state).probing = false;
        }
    }
}

/// Counts a request as waiting for as long as it lives, however its wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HostLimits {
    pub fn new(rules: Vec<HostRule>, breaker: BreakerSettings) -> Self {
        Self {
            rules,
            breaker,
            hosts: Mutex::default(),
        }
    }

    /// Waits for the turn of a request to `host:port` (pause, rate, concurrency), or says
    /// that its circuit is open: at once, and again once the turn comes, since the requests
    /// ahead may have opened it meanwhile.
    pub async fn acquire(&self, host: &str, port: u16) -> Result<Ticket, CircuitOpen> {
        let entry = self.host(host, port);
        if let Some(open) = open_now(&entry, host, port) {
            return Err(open);
        }
        let waiting = Waiting::new(&entry.waiting);
        let permit = loop {
            let paused = lock(&entry.state).paused_until.filter(|until| *until > Instant::now());
            if let Some(until) = paused {
                tokio::time::sleep_until(until.into()).await;
            }
            if let Some(wait) = reserve(&entry) {
                tokio::time::sleep(wait).await;
            }
            let permit = match &entry.permits {
                Some(permits) => permits.clone().acquire_owned().await.ok(),
                None => None,
            };
            // A pause asked for by an answer that came while this one waited holds it too.
            let paused_meanwhile = lock(&entry.state)
                .paused_until
                .is_some_and(|until| until > Instant::now());
            if !paused_meanwhile {
                break permit;
            }
        };
        drop(waiting);
        let probe = self.check_breaker(&entry, host, port)?;
        entry.in_flight.fetch_add(1, Ordering::SeqCst);
        Ok(Ticket {
            host: entry,
            _permit: permit,
            probe,
        })
    }

    /// Records how a request went: `status` (none: no answer) and the pause a `429` or `503`
    /// asked for.
    pub fn finish(&self, ticket: Ticket, status: Option<u16>, retry_after: Option<Duration>) {
        let mut state = lock(&ticket.host.state);
        if let Some(wait) = retry_after.filter(|_| matches!(status, Some(429 | 503))) {
            let until = Instant::now() + wait;
            state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        }
        let failed = status.is_none_or(|s| s >= 500);
        if !failed {
            state.failures = 0;
            state.open_until = None;
            return;
        }
        state.failures += 1;
        if ticket.probe || state.failures >= self.breaker.failures {
            state.open_until = Some(Instant::now() + self.breaker.cool_down);
        }
    }

    /// Every host seen since the start (at most 4096, those with nothing to remember dropped
    /// first), by name.
    pub fn statuses(&self) -> Vec<HostStatus> {
        let hosts = lock(&self.hosts).clone();
        let mut all: Vec<HostStatus> = hosts.iter().map(|(key, host)| status(key, host)).collect();
        all.sort_by(|a, b| a.host.cmp(&b.host));
        all
    }

    fn host(&self, host: &str, port: u16) -> Arc<Host> {
        let key = format!("{host}:{port}");
        let mut hosts = lock(&self.hosts);
        if let Some(found) = hosts.get(&key) {
            return found.clone();
        }
        if hosts.len() >= MAX_HOSTS {
            hosts.retain(|_, h| h.rule.is_some() || h.remembers());
        }
        let rule = self.rules.iter().find(|r| r.matches(host, port)).cloned();
        let made = Arc::new(Host {
            permits: rule
                .as_ref()
                .and_then(|r| r.concurrency)
                .map(|n| Arc::new(Semaphore::new(n))),
            state: Mutex::new(HostState {
                tokens: rule.as_ref().map_or(0.0, |r| f64::from(r.burst.max(1))),
                ..HostState::default()
            }),
            rule,
            in_flight: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        });
        hosts.insert(key, made.clone());
        made
    }

    /// Whether the request is the probe of a circuit whose cool-down ended; an error while it
    /// is open (or another request probes it).
    fn check_breaker(&self, entry: &Host, host: &str, port: u16) -> Result<bool, CircuitOpen> {
        let mut state = lock(&entry.state);
        let Some(until) = state.open_until else {
            return Ok(false);
        };
        if Instant::now() >= until && !state.probing {
            state.probing = true;
            return Ok(true);
        }
        Err(CircuitOpen {
            host: format!("{host}:{port}"),
            failures: state.failures,
            until: rfc3339(until),
        })
    }
}

/// The error of a circuit open now and still cooling down (a request after the cool-down
/// may be the probe: [`HostLimits::check_breaker`] decides).
fn open_now(entry: &Host, host: &str, port: u16) -> Option<CircuitOpen> {
    let state = lock(&entry.state);
    let until = state.open_until.filter(|until| *until > Instant::now())?;
    Some(CircuitOpen {
        host: format!("{host}:{port}"),
        failures: state.failures,
        until: rfc3339(until),
    })
}

impl Host {
    /// Whether the host holds a pause, failures or requests that must not be forgotten.
    fn remembers(&self) -> bool {
        let state = lock(&self.state);
        let now = Instant::now();
        state.failures > 0
            || state.paused_until.is_some_and(|p| p > now)
            || self.in_flight.load(Ordering::SeqCst) > 0
            || self.waiting.load(Ordering::SeqCst) > 0
    }
}

/// Takes a token from the host's bucket; the wait until it is there, if it is not yet.
fn reserve(host: &Host) -> Option<Duration> {
    let rate = host.rule.as_ref()?.rate?;
    let burst = f64::from(host.rule.as_ref().map_or(1, |r| r.burst.max(1)));
    let mut state = lock(&host.state);
    let now = Instant::now();
    let refilled = state.refilled.unwrap_or(now);
    state.tokens = (state.tokens + now.duration_since(refilled).as_secs_f64() * rate).min(burst);
    state.refilled = Some(now);
    state.tokens -= 1.0;
    (state.tokens < 0.0).then(|| Duration::from_secs_f64(-state.tokens / rate))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, rate: Option<f64>, burst: u32, concurrency: Option<usize>) -> HostRule {
        HostRule {
            pattern: pattern.into(),
            rate,
            burst,
            concurrency,
        }
    }

    #[test]
    fn rules_name_a_host_a_host_and_port_or_the_names_under_a_domain() {
        let exact = rule("api.crm.example", None, 1, None);
        assert!(exact.matches("api.crm.example", 443) && !exact.matches("crm.example", 443));
        let port = rule("api.crm.example:8443", None, 1, None);
        assert!(port.matches("api.crm.example", 8443) && !port.matches("api.crm.example", 443));
        let under = rule("*.example.com", None, 1, None);
        assert!(under.matches("a.example.com", 80) && under.matches("a.b.example.com", 80));
        assert!(!under.matches("example.com", 80) && !under.matches("badexample.com", 80));
    }

    #[tokio::test]
    async fn a_rate_spaces_requests_after_the_burst() {
        let limits = HostLimits::new(vec![rule("h", Some(20.0), 2, None)], BreakerSettings::default());
        let started = Instant::now();
        for _ in 0..4 {
            let ticket = limits.acquire("h", 80).await.unwrap();
            limits.finish(ticket, Some(200), None);
        }
        // Two go at once; the other two wait 50 ms each for a token.
        assert!(
            started.elapsed() >= Duration::from_millis(95),
            "{:?}",
            started.elapsed()
        );
        let other = Instant::now();
        drop(limits.acquire("unlimited", 80).await.unwrap());
        assert!(other.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn concurrency_holds_a_request_until_one_ahead_is_done_and_counts_it_waiting() {
        let limits = Arc::new(HostLimits::new(
            vec![rule("h", None, 1, Some(1))],
            BreakerSettings::default(),
        ));
        let first = limits.acquire("h", 80).await.unwrap();
        let waiting = tokio::spawn({
            let limits = limits.clone();
            async move { limits.acquire("h", 80).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let seen = limits.statuses();
        assert_eq!((seen[0].in_flight, seen[0].waiting), (1, 1), "{seen:?}");
        assert!(!waiting.is_finished());
        limits.finish(first, Some(200), None);
        waiting.await.unwrap().unwrap();
        assert_eq!((limits.statuses()[0].in_flight, limits.statuses()[0].waiting), (0, 0));
    }

    #[tokio::test]
    async fn a_429_with_retry_after_pauses_the_host_for_everyone() {
        let limits = HostLimits::new(Vec::new(), BreakerSettings::default());
        let ticket = limits.acquire("h", 80).await.unwrap();
        limits.finish(ticket, Some(429), Some(Duration::from_millis(120)));
        assert!(limits.statuses()[0].paused_until.is_some());
        let started = Instant::now();
        drop(limits.acquire("h", 80).await.unwrap());
        assert!(
            started.elapsed() >= Duration::from_millis(110),
            "{:?}",
            started.elapsed()
        );
        // A 429 without Retry-After, or a 500 with one, asks for no pause.
        let ticket = limits.acquire("h", 80).await.unwrap();
        limits.finish(ticket, Some(500), Some(Duration::from_secs(60)));
        assert!(limits.statuses()[0].paused_until.is_none());
    }

    #[tokio::test]
    async fn failures_open_the_circuit_and_one_probe_after_the_cool_down_closes_it() {
        let breaker = BreakerSettings {
            failures: 2,
            cool_down: Duration::from_millis(80),
        };
        let limits = HostLimits::new(Vec::new(), breaker);
        for status in [Some(502), None] {
            let ticket = limits.acquire("h", 80).await.unwrap();
            limits.finish(ticket, status, None);
        }
        let refused = limits.acquire("h", 80).await.err().expect("open");
        assert_eq!((refused.host.as_str(), refused.failures), ("h:80", 2));
        assert!(refused.to_string().contains("circuit is open until"), "{refused}");
        assert_eq!(limits.statuses()[0].breaker, "open");
        tokio::time::sleep(Duration::from_millis(90)).await;
        let probe = limits.acquire("h", 80).await.unwrap();
        assert!(limits.acquire("h", 80).await.is_err(), "one probe at a time");
        assert_eq!(limits.statuses()[0].breaker, "probing");
        limits.finish(probe, Some(204), None);
        assert_eq!(limits.statuses()[0].breaker, "closed");
        assert!(limits.acquire("h", 80).await.is_ok());
        // A 4xx is the request's fault, not the host's: it never opens the circuit.
        for _ in 0..3 {
            let ticket = limits.acquire("h", 80).await.unwrap();
            limits.finish(ticket, Some(404), None);
        }
        assert_eq!(limits.statuses()[0].consecutive_failures, 0);
    }

    #[tokio::test]
    async fn a_failed_probe_opens_the_circuit_again_and_a_dropped_one_frees_the_probe() {
        let breaker = BreakerSettings {
            failures: 1,
            cool_down: Duration::from_millis(40),
        };
        let limits = HostLimits::new(Vec::new(), breaker);
        let ticket = limits.acquire("h", 80).await.unwrap();
        limits.finish(ticket, Some(503), None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(limits.acquire("h", 80).await.unwrap());
        let probe = limits
            .acquire("h", 80)
            .await
            .expect("the dropped probe freed its place");
        limits.finish(probe, None, None);
        assert_eq!(limits.statuses()[0].breaker, "open");
    }
}
