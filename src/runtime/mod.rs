//! The runtime: user JavaScript handlers in sandboxed V8 isolates.
//!
//! Owns isolates and their threads, the startup snapshot, limits (CPU, heap, wall clock),
//! the module loader, and the ops that are the handlers' only way to the host. It does no
//! routing, queueing or retrying: it runs one event through one handler and reports.
//!
//! Facade: [`Runtime::prepare`] loads a handler version into a [`HandlerPool`] and
//! [`Runtime::run`] runs an event on it. The runtime keeps no handlers itself: whoever loads
//! a version holds it (the server in the delivery registry, `eddy run` for its one event).

mod blank;
mod bounds;
mod handler;
mod invocation;
mod isolate;
mod js;
mod loader;
mod memory;
mod pool;
mod report;
mod snapshot;
mod spare;
mod state;
mod watchdog;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::secrets::{SecretError, SecretSource};
pub use bounds::{
    MAX_CAUSES, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_PROPERTIES, MAX_PROPERTY_BYTES, MAX_REPORT_BYTES,
    MAX_STACK_BYTES,
};
pub use eddy_runtime_js::limits::HostStatus;
pub use eddy_runtime_js::net;
pub use eddy_runtime_js::{Capture, FetchRecord, HttpClient, HttpSettings, LogLine};
pub use handler::{HandlerConfig, OnDead, RetryConfig};
pub use report::{
    FailureCause, FailureKind, HandlerFailure, InvocationReport, InvocationRequest, Outcome, idempotency_key,
};
pub use snapshot::{LAZY_SOURCES, STARTUP_SNAPSHOT, extensions};

use crate::config::{Config, RuntimeConfig};
use crate::store::{StateQuota, StateSource};
use pool::Pool;

/// Errors setting the runtime up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Secrets(#[from] SecretError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Why a handler could not be loaded; `location` is `(file, line, column)` when known.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{}", self.render())]
pub struct LoadError {
    pub location: Option<(String, u32, u32)>,
    pub message: String,
}

impl LoadError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            location: None,
            message: message.into(),
        }
    }
    fn located(file: String, line: u32, column: u32, message: String) -> Self {
        Self {
            location: Some((file, line, column)),
            message,
        }
    }

    /// `file:line:col: message`, or just the message.
    pub fn render(&self) -> String {
        match &self.location {
            Some((file, line, col)) => format!("{file}:{line}:{col}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// What every isolate shares: the store of handler state, HTTP client, secrets source and limits.
pub struct Shared {
    pub store: Arc<dyn StateSource>,
    pub http: Arc<HttpClient>,
    pub secret_source: SecretSource,
    pub settings: RuntimeConfig,
    /// `[state]`: how much each handler's `ctx.state` may hold.
    pub state_quota: StateQuota,
    /// The isolate made ahead for the next load.
    pub spares: spare::Spares,
}

/// A loaded handler, as the runtime knows it.
#[derive(Debug, Clone)]
pub struct HandlerInfo {
    pub id: String,
    pub file: PathBuf,
    pub config: HandlerConfig,
    /// The module's `on` export as JSON (null when absent): routing reads it.
    pub on: serde_json::Value,
    pub timeout: Duration,
    pub cpu_limit: Duration,
}

/// One loaded version of a handler: its isolates and what loading found. Clones share the
/// isolates; once the last clone is dropped they finish what they run and stop.
#[derive(Clone)]
pub struct HandlerPool {
    pub info: Arc<HandlerInfo>,
    pool: Arc<Pool>,
}

impl HandlerPool {
    /// Isolates of this version alive now.
    pub fn live_isolates(&self) -> usize {
        self.pool.live_isolates()
    }
}

/// The limits of `[limits."host"]` and `[breaker]`, as the fetch op applies them.
fn host_limits(config: &Config) -> eddy_runtime_js::limits::HostLimits {
    use eddy_runtime_js::limits::{BreakerSettings, HostLimits, HostRule};
    let mut rules: Vec<HostRule> = config
        .limits
        .iter()
        .map(|(pattern, limit)| HostRule {
            pattern: pattern.clone(),
            rate: limit.rate.map(|r| r.per_second),
            burst: limit.burst(),
            concurrency: limit.concurrency,
        })
        .collect();
    // The first rule that matches applies: a named host before the domains it is under, and
    // a narrower domain before a wider one.
    rules.sort_by_key(|r| (r.pattern.starts_with("*."), std::cmp::Reverse(r.pattern.len())));
    let breaker = BreakerSettings {
        failures: config.breaker.failures,
        cool_down: config.breaker.cool_down,
    };
    HostLimits::new(rules, breaker)
}

/// Runs handlers; cheap to share behind an `Arc`.
pub struct Runtime {
    shared: Arc<Shared>,
    root: PathBuf,
}

impl Runtime {
    /// A runtime for the handlers under `root`, with the operator settings of `config`.
    pub fn new(config: &Config, root: &Path, store: Arc<dyn StateSource>) -> Result<Self, RuntimeError> {
        let policy = net::NetPolicy::new(config.net.allow_private.clone());
        let http = HttpClient::new(
            policy,
            HttpSettings {
                max_response_bytes: config.net.max_response_bytes,
                connect_timeout: Duration::from_millis(config.net.connect_timeout_ms),
                max_redirects: config.net.max_redirects,
            },
            host_limits(config),
        )?;
        let shared = Shared {
            store,
            http: Arc::new(http),
            secret_source: SecretSource::load(root, config.secret_grant())?,
            settings: config.runtime.clone(),
            state_quota: StateQuota {
                max_bytes: config.state.max_bytes_per_handler,
                max_keys: config.state.max_keys_per_handler,
            },
            spares: spare::Spares::new(config.runtime.clone(), root.to_owned()),
        };
        Ok(Self {
            shared: Arc::new(shared),
            root: root.to_owned(),
        })
    }

    /// Notes that eddy listens on `addr` (after binding): handlers reach it only through a
    /// `config.allowNet` entry naming its exact host and port.
    pub fn own_listener(&self, addr: std::net::SocketAddr) {
        self.shared.http.own_listener(addr);
    }

    /// Each destination host's limits and state (rate, waiting fetches, pause, circuit).
    pub fn host_limits(&self) -> Vec<HostStatus> {
        self.shared.http.limits().statuses()
    }

    /// Makes no isolate ahead of the next load: for a process that loads one handler and
    /// ends (`eddy run`), where one would only cost time.
    pub fn load_once(&self) {
        self.shared.spares.disable();
    }

    /// How many handler loads took an isolate made ahead (see `spare.rs`).
    pub fn loads_on_isolates_made_ahead(&self) -> u64 {
        self.shared.spares.taken()
    }

    /// The handlers folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Loads handler `id` from `file` in a first isolate and hands it to the caller, who
    /// checks it further (routes, retry schedule) and decides where it is used.
    pub async fn prepare(&self, id: &str, file: &Path) -> Result<HandlerPool, LoadError> {
        let spec = isolate::IsolateSpec {
            handler: id.to_owned(),
            file: file.to_owned(),
            root: self.root.clone(),
            shared: self.shared.clone(),
        };
        let pool = Pool::start(spec).await?;
        Ok(HandlerPool {
            info: Arc::new(pool.info()),
            pool: Arc::new(pool),
        })
    }

    /// Runs one event through the handler version `pool`. The run's state writes are in the
    /// store when it returns, not yet on disk: the store writes in order, so they reach the
    /// disk no later than whatever the caller writes next (the delivery engine, the attempt's
    /// record), and a crash before that loses both, so the delivery runs again. A caller that
    /// writes nothing after (`eddy run`) commits the store itself.
    pub async fn run(&self, pool: &HandlerPool, request: InvocationRequest) -> InvocationReport {
        pool.pool.invoke(request).await
    }
}

/// The report of an invocation of a handler that has no version in use.
pub fn not_loaded(id: &str) -> InvocationReport {
    pool::unavailable(id, format!("handler {id} is not loaded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_errors_render_with_their_location() {
        assert_eq!(LoadError::new("boom").render(), "boom");
        let located = LoadError::located("h/a.js".into(), 2, 13, "SyntaxError: x".into());
        assert_eq!(located.render(), "h/a.js:2:13: SyntaxError: x");
    }
}
