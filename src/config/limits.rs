//! Operator ceilings: `[state]` quotas and the `[runtime]` bounds on what a handler's
//! `config` may ask for.

use std::path::Path;

use serde::Deserialize;

use super::{ConfigError, RuntimeConfig};

/// `[state]`: how much durable state one handler may keep.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Most bytes of keys and JSON values one handler's state may hold.
    pub max_bytes_per_handler: u64,
    /// Most keys one handler's state may hold.
    pub max_keys_per_handler: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            max_bytes_per_handler: 256 * 1024 * 1024,
            max_keys_per_handler: 1_000_000,
        }
    }
}

/// Highest ceiling on an invocation's wall clock or CPU time: a day, so that no deadline
/// or charge computed from a limit can overflow.
pub const MAX_CEILING_MS: u64 = 24 * 60 * 60 * 1000;

/// Checks the ceilings, and that the `[runtime]` defaults stay under them.
pub(super) fn validate(runtime: &RuntimeConfig, state: &StateConfig, path: &Path) -> Result<(), ConfigError> {
    let bounded = [
        ("runtime.max_timeout_ms", runtime.max_timeout_ms, MAX_CEILING_MS),
        ("runtime.max_cpu_limit_ms", runtime.max_cpu_limit_ms, MAX_CEILING_MS),
        ("state.max_bytes_per_handler", state.max_bytes_per_handler, u64::MAX),
        ("state.max_keys_per_handler", state.max_keys_per_handler, u64::MAX),
    ];
    if let Some((key, _, max)) = bounded.into_iter().find(|(_, value, max)| !(1..=*max).contains(value)) {
        return Err(ConfigError::Range {
            path: path.to_owned(),
            line: None,
            key,
            expected: if max == u64::MAX {
                "at least 1"
            } else {
                "between 1 and 86400000 (a day)"
            },
        });
    }
    let under = [
        (
            "runtime.timeout_ms",
            runtime.timeout_ms,
            "runtime.max_timeout_ms",
            runtime.max_timeout_ms,
        ),
        (
            "runtime.cpu_limit_ms",
            runtime.cpu_limit_ms,
            "runtime.max_cpu_limit_ms",
            runtime.max_cpu_limit_ms,
        ),
    ];
    match under.into_iter().find(|(_, value, _, ceiling)| value > ceiling) {
        Some((key, value, ceiling_key, ceiling)) => Err(ConfigError::AboveCeiling {
            path: path.to_owned(),
            line: None,
            key,
            value,
            ceiling_key,
            ceiling,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("e.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = parse("").unwrap();
        assert_eq!(c.state.max_bytes_per_handler, 256 * 1024 * 1024);
        assert_eq!(c.state.max_keys_per_handler, 1_000_000);
        assert_eq!(c.runtime.max_timeout_ms, 15 * 60 * 1000);
        assert_eq!(c.runtime.max_cpu_limit_ms, 60_000);
    }

    #[test]
    fn defaults_above_the_ceilings_are_refused_naming_both() {
        let err = parse("[runtime]\ntimeout_ms = 5000\nmax_timeout_ms = 4000\n").unwrap_err();
        assert!(
            err.contains("runtime.timeout_ms (5000)") && err.contains("runtime.max_timeout_ms (4000)"),
            "{err}"
        );
        let err = parse("[runtime]\nmax_cpu_limit_ms = 9999\n").unwrap_err();
        assert!(
            err.contains("runtime.cpu_limit_ms (10000)") && err.contains("runtime.max_cpu_limit_ms (9999)"),
            "{err}"
        );
        assert!(parse("[runtime]\ntimeout_ms = 4000\nmax_timeout_ms = 4000\n").is_ok());
    }

    #[test]
    fn zero_ceilings_and_unknown_keys_are_refused() {
        let err = parse("[state]\nmax_keys_per_handler = 0\n").unwrap_err();
        assert!(err.contains("state.max_keys_per_handler must be at least 1"), "{err}");
        let err = parse("[state]\nmax_bytes = 1\n").unwrap_err();
        assert!(err.contains("max_bytes"), "{err}");
        let err = parse("[runtime]\nmax_timeout_ms = 86400001\n").unwrap_err();
        assert!(
            err.contains("runtime.max_timeout_ms must be between 1 and 86400000"),
            "{err}"
        );
        let c = parse("[state]\nmax_bytes_per_handler = 10\nmax_keys_per_handler = 2\n").unwrap();
        assert_eq!((c.state.max_bytes_per_handler, c.state.max_keys_per_handler), (10, 2));
    }
}
