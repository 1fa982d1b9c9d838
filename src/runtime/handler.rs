//! A handler's `export const config`, validated, and what the host derives from it.

use std::time::Duration;

use serde::Deserialize;

/// Longest wall-clock limit a handler may ask for.
pub const MAX_TIMEOUT_MS: u64 = 15 * 60 * 1000;

/// `export const config = { ... }` as written by the handler.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HandlerConfig {
    /// Names of the secrets exposed as `ctx.secrets`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Hosts `fetch` may reach.
    #[serde(default)]
    pub allow_net: Vec<String>,
    /// Wall-clock limit per invocation.
    pub timeout_ms: Option<u64>,
    /// CPU limit per invocation.
    pub cpu_limit_ms: Option<u64>,
    /// Most deliveries of this handler running at once (read by delivery).
    pub concurrency: Option<u32>,
    /// This handler's retry schedule (read by delivery).
    pub retry: Option<RetryConfig>,
}

/// `config.retry`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Delays before the 2nd, 3rd, ... attempt, like `["5s", "1m"]`.
    pub schedule: Vec<String>,
}

/// Errors in a handler's config.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigExportError {
    #[error("invalid `config` export: {0}")]
    Invalid(String),
    #[error("config.{key} must be between 1 and {max}")]
    Range { key: &'static str, max: u64 },
}

impl HandlerConfig {
    /// Parses the JSON form of the `config` export.
    pub fn from_json(json: &str) -> Result<Self, ConfigExportError> {
        let config: Self = serde_json::from_str(json).map_err(|e| ConfigExportError::Invalid(e.to_string()))?;
        if config.timeout_ms.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_MS) {
            return Err(ConfigExportError::Range {
                key: "timeoutMs",
                max: MAX_TIMEOUT_MS,
            });
        }
        if config.cpu_limit_ms.is_some_and(|t| t == 0 || t > MAX_TIMEOUT_MS) {
            return Err(ConfigExportError::Range {
                key: "cpuLimitMs",
                max: MAX_TIMEOUT_MS,
            });
        }
        if config.concurrency.is_some_and(|c| c == 0 || c > 1024) {
            return Err(ConfigExportError::Range {
                key: "concurrency",
                max: 1024,
            });
        }
        Ok(config)
    }

    /// The wall-clock limit, given the operator default.
    pub fn timeout(&self, default_ms: u64) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(default_ms))
    }

    /// The CPU limit, given the operator default; never above the wall-clock limit.
    pub fn cpu_limit(&self, default_ms: u64, timeout: Duration) -> Duration {
        Duration::from_millis(self.cpu_limit_ms.unwrap_or(default_ms)).min(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let c = HandlerConfig::from_json(r#"{"secrets":["A"],"allowNet":["x.example"],"timeoutMs":10000}"#).unwrap();
        assert_eq!(c.secrets, ["A"]);
        assert_eq!(c.allow_net, ["x.example"]);
        assert_eq!(c.timeout(30_000), Duration::from_secs(10));
        assert_eq!(c.cpu_limit(20_000, c.timeout(30_000)), Duration::from_secs(10));
        assert_eq!(HandlerConfig::from_json("{}").unwrap(), HandlerConfig::default());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let err = HandlerConfig::from_json(r#"{"allownet":[]}"#).unwrap_err();
        assert!(err.to_string().contains("allownet"), "{err}");
        assert!(HandlerConfig::from_json(r#"{"timeoutMs":0}"#).is_err());
        assert!(HandlerConfig::from_json(r#"{"secrets":"A"}"#).is_err());
        assert!(HandlerConfig::from_json(r#"{"concurrency":0}"#).is_err());
        assert!(HandlerConfig::from_json(r#"{"retry":{"schedul":[]}}"#).is_err());
        let c = HandlerConfig::from_json(r#"{"concurrency":2,"retry":{"schedule":["1s"]}}"#).unwrap();
        assert_eq!(
            (c.concurrency, c.retry.unwrap().schedule),
            (Some(2), vec!["1s".to_owned()])
        );
    }
}
