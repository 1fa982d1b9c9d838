//! `eddy.toml`: every operator setting, with defaults, validated when loaded.
//!
//! The file is optional; a missing default file means "all defaults". Unknown keys are
//! errors that name the key, so a typo never silently falls back to a default.
//! Relative paths in the file are taken relative to the file's own folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod api;
mod delivery;
mod destinations;
mod integrations;
mod limits;
mod net;
mod runtime;
mod schedule;
mod store;

pub use api::{ApiConfig, ReplayConfig};
pub use delivery::{DeliveryConfig, RetentionConfig};
pub use destinations::{BreakerConfig, DestinationConfig, Rate};
pub use integrations::{ProxyConfig, SecretsConfig, SourceConfig, Upstream};
pub use limits::StateConfig;
pub use net::NetConfig;
pub use runtime::RuntimeConfig;
pub use schedule::{MAX_DELAY, RetryError, RetrySchedule};
pub use store::{MAX_CACHE_MB, StoreConfig};

/// The file read when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "eddy.toml";

/// Errors reading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}{}: {key} must be {expected}", at(*line))]
    Range {
        path: PathBuf,
        /// The line of the file that sets `key`, when it does.
        line: Option<usize>,
        key: &'static str,
        expected: &'static str,
    },
    #[error("{path}{}: {key} ({value}) must not be above {ceiling_key} ({ceiling})", at(*line))]
    AboveCeiling {
        path: PathBuf,
        line: Option<usize>,
        key: &'static str,
        value: u64,
        ceiling_key: &'static str,
        ceiling: u64,
    },
}

/// `:line` when the line is known.
fn at(line: Option<usize>) -> String {
    line.map_or_else(String::new, |line| format!(":{line}"))
}

impl ConfigError {
    /// The error with the line of `text` that sets its key, when it names one.
    fn located(mut self, text: &str) -> Self {
        if let Self::Range { key, line, .. } | Self::AboveCeiling { key, line, .. } = &mut self {
            *line = line_of(text, key);
        }
        self
    }
}

/// The 1-based line of `text` that sets `key` (`table.field`, or a top-level field): as
/// `field = ` under its `[table]` header, or as `table.field = ` before any header.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let (table, field) = key.rsplit_once('.').unwrap_or(("", key));
    let sets = |line: &str, name: &str| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let mut current = "";
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            current = header.split(']').next().unwrap_or("").trim();
            continue;
        }
        let top_level_dotted = current.is_empty() && !table.is_empty() && sets(line, key);
        if (current == table && sets(line, field)) || top_level_dotted {
            return Some(i + 1);
        }
    }
    None
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder of handler files.
    pub handlers: PathBuf,
    /// Folder of the embedded store.
    pub data: PathBuf,
    /// Address `eddy serve` listens on.
    pub listen: SocketAddr,
    /// Outbound network policy for handlers' `fetch`.
    pub net: NetConfig,
    /// Isolate limits and pool sizes.
    pub runtime: RuntimeConfig,
    /// Quotas on each handler's durable state.
    pub state: StateConfig,
    /// Memory of the embedded store.
    pub store: StoreConfig,
    /// Bearer token every endpoint but `/healthz` requires (`EDDY_API_TOKEN` overrides).
    pub api_token: Option<String>,
    /// Exposure rules of the admin API.
    pub api: ApiConfig,
    /// When `eddy replay` asks for `--yes`.
    pub replay: ReplayConfig,
    /// `POST /events` limits.
    pub ingest: IngestConfig,
    /// Queue workers and retries.
    pub delivery: DeliveryConfig,
    /// How long finished deliveries and events are kept.
    pub retention: RetentionConfig,
    /// Webhook senders, by the name in `POST /webhooks/{name}`.
    pub sources: std::collections::BTreeMap<String, SourceConfig>,
    /// The API-observing proxy `eddy serve` also runs, when present.
    pub proxy: Option<ProxyConfig>,
    /// The secrets handlers may ask for.
    pub secrets: SecretsConfig,
    /// Limits per destination host, shared by every handler.
    pub limits: std::collections::BTreeMap<String, DestinationConfig>,
    /// When a failing host's circuit opens, and for how long.
    pub breaker: BreakerConfig,
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers; slower connections are closed.
    pub header_timeout_ms: u64,
    /// Time a client has to send the body of `POST /events` or a webhook.
    pub body_timeout_ms: u64,
    /// Open connections (API and proxy each) beyond which no more are accepted.
    pub max_connections: usize,
    /// Answer 2xx only once the events are on disk. Off trades crash safety for speed: an
    /// acknowledged event can be lost if the process dies within the store's flush interval.
    pub durable_ack: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 1024,
            durable_ack: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            handlers: PathBuf::from("handlers"),
            data: PathBuf::from(".eddy"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            net: NetConfig::default(),
            runtime: RuntimeConfig::default(),
            state: StateConfig::default(),
            store: StoreConfig::default(),
            api_token: None,
            api: ApiConfig::default(),
            replay: ReplayConfig::default(),
            ingest: IngestConfig::default(),
            delivery: DeliveryConfig::default(),
            retention: RetentionConfig::default(),
            sources: Default::default(),
            proxy: None,
            secrets: SecretsConfig::default(),
            limits: Default::default(),
            breaker: BreakerConfig::default(),
        }
    }
}

impl Config {
    /// Loads `path`; when `explicit` is false a missing file means defaults.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses and validates the text of a config file found at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            // The toml crate's own layout: line, column and the offending text underlined.
            message: e.to_string().trim_end().to_owned(),
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        config.handlers = base.join(&config.handlers);
        config.data = base.join(&config.data);
        config.validate(path).map_err(|e| e.located(text))?;
        config.secrets.grant = integrations::secret_grant(&config, path)?;
        Ok(config)
    }

    /// Checks again after a command line changed settings.
    pub fn revalidate(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate(path)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        integrations::validate_sources(&self.sources, path)?;
        destinations::check(&self.limits, &self.breaker).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })?;
        if let Some(proxy) = &self.proxy {
            integrations::validate_proxy(proxy, path)?;
        }
        let range = |ok: bool, key, expected| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Range {
                    path: path.to_owned(),
                    line: None,
                    key,
                    expected,
                })
            }
        };
        runtime::validate(&self.runtime, path)?;
        limits::validate(&self.runtime, &self.state, path)?;
        range(self.net.max_response_bytes >= 1, "net.max_response_bytes", "at least 1")?;
        range(
            self.ingest.max_body_bytes >= 1024,
            "ingest.max_body_bytes",
            "at least 1024",
        )?;
        let ingest = &self.ingest;
        range(ingest.header_timeout_ms >= 1, "ingest.header_timeout_ms", "at least 1")?;
        range(ingest.body_timeout_ms >= 1, "ingest.body_timeout_ms", "at least 1")?;
        range(ingest.max_connections >= 1, "ingest.max_connections", "at least 1")?;
        let d = &self.delivery;
        range(d.max_concurrency >= 1, "delivery.max_concurrency", "at least 1")?;
        range(d.handler_concurrency >= 1, "delivery.handler_concurrency", "at least 1")?;
        let cache_mb = self.store.cache_mb;
        range(
            (1..=MAX_CACHE_MB).contains(&cache_mb),
            "store.cache_mb",
            "between 1 and 1048576 (1 TiB)",
        )
    }

    /// What handlers may ask for: `[secrets] allow`, with every source's `secret_env` reserved.
    pub fn secret_grant(&self) -> crate::secrets::Grant {
        self.secrets.grant.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_errors_name_the_line_that_sets_the_key() {
        let text = "# eddy\nhandlers = \"h\"\n\n[delivery]\nhandler_concurrency = 2\nmax_concurrency = 0\n";
        let error = Config::parse(text, Path::new("eddy.toml")).unwrap_err().to_string();
        assert!(
            error.starts_with("eddy.toml:6: delivery.max_concurrency must be at least 1"),
            "{error}"
        );
        let dotted = Config::parse("delivery.max_concurrency = 0\n", Path::new("eddy.toml"));
        assert!(dotted.unwrap_err().to_string().starts_with("eddy.toml:1: "));
        assert_eq!(
            line_of(
                "[runtime]\nmax_concurrency = 1\n[delivery]\n  max_concurrency=0",
                "delivery.max_concurrency"
            ),
            Some(4)
        );
        assert_eq!(line_of("[delivery]\n", "delivery.max_concurrency"), None);
        assert_eq!(line_of("listen = 1\n[a]\nlisten = 2", "listen"), Some(1));
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", Path::new("eddy.toml")).unwrap();
        assert_eq!(c.runtime.heap_limit_mb, 128);
        assert_eq!(c.runtime.buffer_limit_mb, 128);
        assert_eq!(c.runtime.timeout_ms, 30_000);
        assert_eq!(c.handlers, PathBuf::from("handlers"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[net]\nallow_privat = []\n", Path::new("eddy.toml")).unwrap_err();
        assert!(err.to_string().contains("allow_privat"), "{err}");
        let err = Config::parse("colour = 1\n", Path::new("eddy.toml")).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn paths_are_relative_to_the_file() {
        let c = Config::parse("handlers = \"h\"\n", Path::new("/etc/eddy/eddy.toml")).unwrap();
        assert_eq!(c.handlers, PathBuf::from("/etc/eddy/h"));
    }

    #[test]
    fn cidrs_are_checked() {
        let c = Config::parse(
            "[net]\nallow_private = [\"127.0.0.1/32\", \"::1\"]\n",
            Path::new("e.toml"),
        )
        .unwrap();
        assert_eq!(c.net.allow_private.len(), 2);
        let err = Config::parse("[net]\nallow_private = [\"localhost\"]\n", Path::new("e.toml")).unwrap_err();
        assert!(err.to_string().contains("localhost"), "{err}");
    }

    #[test]
    fn ranges_are_checked() {
        let err = Config::parse("[runtime]\nheap_limit_mb = 1\n", Path::new("e.toml")).unwrap_err();
        assert!(err.to_string().contains("runtime.heap_limit_mb"), "{err}");
        let err = Config::parse("[runtime]\nbuffer_limit_mb = 0\n", Path::new("e.toml")).unwrap_err();
        assert!(err.to_string().contains("runtime.buffer_limit_mb"), "{err}");
    }

    #[test]
    fn proxy_resource_names_leave_room_for_the_method() {
        let long = "a".repeat(194);
        let text = format!("[proxy]\nupstream = \"http://127.0.0.1:1\"\n[proxy.resources]\n\"/x\" = \"{long}\"\n");
        let err = Config::parse(&text, Path::new("e.toml")).unwrap_err();
        assert!(err.to_string().contains("at most 193"), "{err}");
        assert!(Config::parse(&text.replace(&long, &"a".repeat(193)), Path::new("e.toml")).is_ok());
    }

    #[test]
    fn example_file_lists_the_defaults() {
        let example = Config::parse(include_str!("../eddy.example.toml"), Path::new("eddy.toml")).unwrap();
        let default = Config::default();
        assert_eq!(format!("{example:?}"), format!("{default:?}"));
    }

    #[test]
    fn missing_default_file_is_fine_but_explicit_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eddy.toml");
        assert!(Config::load(&path, false).is_ok());
        assert!(Config::load(&path, true).is_err());
    }

    #[test]
    fn a_toml_syntax_error_keeps_its_layout() {
        let err = Config::parse("listen = \"127.0.0.1:1\"\n[net\n", Path::new("eddy.toml"))
            .unwrap_err()
            .to_string();
        let lines: Vec<&str> = err.lines().map(str::trim_end).collect();
        assert!(lines.len() >= 4, "{err}");
        assert!(
            lines[0].starts_with("eddy.toml: TOML parse error at line 2, column"),
            "{err}"
        );
        assert!(lines.iter().any(|l| l.ends_with("| [net")), "{err}");
        assert!(
            lines
                .iter()
                .any(|l| l.trim_start().starts_with('|') && l.ends_with('^')),
            "{err}"
        );
    }
}
