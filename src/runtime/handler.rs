//! A handler's `export const config`, validated, and what the host derives from it.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::config::RuntimeConfig;
use crate::event::KeyPath;

/// Most deliveries of one handler a handler's `config.concurrency` may ask for.
pub const MAX_CONCURRENCY: u64 = 1024;

/// `export const config = { ... }` as written by the handler, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandlerConfig {
    /// Names of the secrets exposed as `ctx.secrets`.
    pub secrets: Vec<String>,
    /// Hosts `fetch` may reach.
    pub allow_net: Vec<String>,
    /// Wall-clock limit per invocation.
    pub timeout_ms: Option<u64>,
    /// CPU limit per invocation.
    pub cpu_limit_ms: Option<u64>,
    /// Most deliveries of this handler running at once (read by delivery).
    pub concurrency: Option<u32>,
    /// This handler's retry schedule (read by delivery).
    pub retry: Option<RetryConfig>,
    /// Where each event's order key is (read by delivery): deliveries with the same key run
    /// one at a time, in the order they joined their key's line.
    pub order_by: Option<KeyPath>,
    /// What a dead delivery does to its key's line (read by delivery).
    pub on_dead: OnDead,
}

/// `config.onDead`: what follows when an ordered delivery goes dead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnDead {
    /// The key waits until the dead delivery is replayed and succeeds, or is skipped.
    #[default]
    Block,
    /// The next delivery of the key runs.
    Continue,
}

/// The `config` export as JSON, numbers not yet checked: JavaScript numbers may be
/// fractional, negative or huge, and `inspectModule` sends Infinity and NaN as strings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Written {
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    allow_net: Vec<String>,
    timeout_ms: Option<Value>,
    cpu_limit_ms: Option<Value>,
    concurrency: Option<Value>,
    retry: Option<RetryConfig>,
    order_by: Option<String>,
    on_dead: Option<String>,
}

/// `config.retry`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Delays before the 2nd, 3rd, ... attempt, like `["5s", "1m"]`.
    pub schedule: Vec<String>,
}

/// The operator's ceilings on what a handler's config may ask for (`[runtime]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceilings {
    pub max_timeout_ms: u64,
    pub max_cpu_limit_ms: u64,
}

impl From<&RuntimeConfig> for Ceilings {
    fn from(runtime: &RuntimeConfig) -> Self {
        Self {
            max_timeout_ms: runtime.max_timeout_ms,
            max_cpu_limit_ms: runtime.max_cpu_limit_ms,
        }
    }
}

/// Errors in a handler's config.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigExportError {
    #[error("invalid `config` export: {0}")]
    Invalid(String),
    #[error("config.{key} must be a whole number from 1 to {max}, got {got}")]
    Range { key: &'static str, max: u64, got: String },
    #[error("config.orderBy: {0}")]
    OrderBy(String),
    #[error("config.onDead must be \"block\" or \"continue\", got {0:?}")]
    OnDead(String),
    #[error("config.onDead says what a dead delivery does to its key's order: set config.orderBy too")]
    OnDeadUnordered,
    #[error("config.{key} is {value}, above the operator's ceiling [runtime] {ceiling_key} = {ceiling}")]
    AboveCeiling {
        key: &'static str,
        value: u64,
        ceiling_key: &'static str,
        ceiling: u64,
    },
}

impl HandlerConfig {
    /// Parses the JSON form of the `config` export and checks its numbers against `ceilings`.
    pub fn from_json(json: &str, ceilings: Ceilings) -> Result<Self, ConfigExportError> {
        let written: Written = serde_json::from_str(json).map_err(|e| ConfigExportError::Invalid(e.to_string()))?;
        let (timeout, cpu) = (written.timeout_ms.as_ref(), written.cpu_limit_ms.as_ref());
        Ok(Self {
            timeout_ms: limit("timeoutMs", timeout, ceilings.max_timeout_ms, Some("max_timeout_ms"))?,
            cpu_limit_ms: limit("cpuLimitMs", cpu, ceilings.max_cpu_limit_ms, Some("max_cpu_limit_ms"))?,
            // At most MAX_CONCURRENCY, so it fits.
            concurrency: limit("concurrency", written.concurrency.as_ref(), MAX_CONCURRENCY, None)?.map(|c| c as u32),
            order_by: written
                .order_by
                .as_deref()
                .map(KeyPath::parse)
                .transpose()
                .map_err(ConfigExportError::OrderBy)?,
            on_dead: on_dead(written.on_dead.as_deref(), written.order_by.is_some())?,
            secrets: written.secrets,
            allow_net: written.allow_net,
            retry: written.retry,
        })
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

/// `config.onDead`, which only an ordered handler may set.
fn on_dead(written: Option<&str>, ordered: bool) -> Result<OnDead, ConfigExportError> {
    match written {
        Some(_) if !ordered => Err(ConfigExportError::OnDeadUnordered),
        None | Some("block") => Ok(OnDead::Block),
        Some("continue") => Ok(OnDead::Continue),
        Some(other) => Err(ConfigExportError::OnDead(other.to_owned())),
    }
}

/// `value`, when given, as a whole number from 1 to `max`; `ceiling_key` names the operator's
/// `[runtime]` setting that `max` comes from, if any.
fn limit(
    key: &'static str,
    value: Option<&Value>,
    max: u64,
    ceiling_key: Option<&'static str>,
) -> Result<Option<u64>, ConfigExportError> {
    let Some(value) = value else { return Ok(None) };
    let n = whole_number(key, value, max)?;
    match ceiling_key {
        _ if n <= max => Ok(Some(n)),
        Some(ceiling_key) => Err(ConfigExportError::AboveCeiling {
            key,
            value: n,
            ceiling_key,
            ceiling: max,
        }),
        None => Err(ConfigExportError::Range {
            key,
            max,
            got: n.to_string(),
        }),
    }
}

/// A whole number of at least 1 that fits in u64 (the caller checks it against `max`, which
/// the error states); anything else (fractional, negative, huge, Infinity, NaN, not a
/// number) is refused, showing the value as written.
fn whole_number(key: &'static str, value: &Value, max: u64) -> Result<u64, ConfigExportError> {
    match value.as_u64() {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(ConfigExportError::Range {
            key,
            max,
            got: match value {
                // How `inspectModule` sends the numbers JSON cannot hold.
                Value::String(s) if matches!(s.as_str(), "Infinity" | "-Infinity" | "NaN") => s.clone(),
                Value::String(_) => format!("a string ({value})"),
                _ => value.to_string(),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEILINGS: Ceilings = Ceilings {
        max_timeout_ms: 900_000,
        max_cpu_limit_ms: 60_000,
    };

    fn parse(json: &str) -> Result<HandlerConfig, ConfigExportError> {
        HandlerConfig::from_json(json, CEILINGS)
    }

    #[test]
    fn order_by_and_on_dead_are_checked() {
        let c = parse(r#"{"orderBy":"data.account.id","onDead":"continue"}"#).unwrap();
        assert_eq!(c.order_by, Some(KeyPath::Data(vec!["account".into(), "id".into()])));
        assert_eq!(c.on_dead, OnDead::Continue);
        assert_eq!(parse(r#"{"orderBy":"subject"}"#).unwrap().on_dead, OnDead::Block);
        let err = |json| parse(json).unwrap_err().to_string();
        assert!(err(r#"{"orderBy":"account.id"}"#).contains("path under data"));
        assert!(err(r#"{"orderBy":"data.a","onDead":"skip"}"#).contains("\"block\" or \"continue\""));
        assert!(err(r#"{"onDead":"continue"}"#).contains("set config.orderBy too"));
    }

    #[test]
    fn parses_the_documented_shape() {
        let c = parse(r#"{"secrets":["A"],"allowNet":["x.example"],"timeoutMs":10000}"#).unwrap();
        assert_eq!(c.secrets, ["A"]);
        assert_eq!(c.allow_net, ["x.example"]);
        assert_eq!(c.timeout(30_000), Duration::from_secs(10));
        assert_eq!(c.cpu_limit(20_000, c.timeout(30_000)), Duration::from_secs(10));
        assert_eq!(parse("{}").unwrap(), HandlerConfig::default());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let err = parse(r#"{"allownet":[]}"#).unwrap_err();
        assert!(err.to_string().contains("allownet"), "{err}");
        assert!(parse(r#"{"timeoutMs":0}"#).is_err());
        assert!(parse(r#"{"secrets":"A"}"#).is_err());
        assert!(parse(r#"{"concurrency":0}"#).is_err());
        assert!(parse(r#"{"retry":{"schedul":[]}}"#).is_err());
        let c = parse(r#"{"concurrency":2,"retry":{"schedule":["1s"]}}"#).unwrap();
        assert_eq!(
            (c.concurrency, c.retry.unwrap().schedule),
            (Some(2), vec!["1s".to_owned()])
        );
    }

    #[test]
    fn limits_above_the_operator_ceilings_name_the_key_and_both_values() {
        let err = parse(r#"{"timeoutMs":900001}"#).unwrap_err().to_string();
        assert_eq!(
            err,
            "config.timeoutMs is 900001, above the operator's ceiling [runtime] max_timeout_ms = 900000"
        );
        let err = parse(r#"{"cpuLimitMs":60001}"#).unwrap_err().to_string();
        assert!(
            err.contains("config.cpuLimitMs is 60001") && err.contains("max_cpu_limit_ms = 60000"),
            "{err}"
        );
        let c = parse(r#"{"timeoutMs":900000,"cpuLimitMs":60000}"#).unwrap();
        assert_eq!((c.timeout_ms, c.cpu_limit_ms), (Some(900_000), Some(60_000)));
    }

    #[test]
    fn numbers_that_would_wrap_are_refused_clearly() {
        for key in ["timeoutMs", "cpuLimitMs", "concurrency"] {
            for (written, shown) in [
                ("1e300", "1e+300"),
                ("-1", "-1"),
                ("1.5", "1.5"),
                ("18446744073709551616", "1.8446744073709552e+19"),
                ("\"Infinity\"", "Infinity"),
                ("\"-Infinity\"", "-Infinity"),
                ("\"NaN\"", "NaN"),
                ("\"100\"", "a string (\"100\")"),
                ("true", "true"),
            ] {
                let err = parse(&format!(r#"{{"{key}":{written}}}"#)).unwrap_err().to_string();
                assert!(
                    err.starts_with(&format!("config.{key} must be a whole number from 1 to ")),
                    "{err}"
                );
                assert!(err.ends_with(&format!(", got {shown}")), "{key}={written}: {err}");
            }
        }
        let err = parse(r#"{"concurrency":1025}"#).unwrap_err().to_string();
        assert_eq!(
            err,
            "config.concurrency must be a whole number from 1 to 1024, got 1025"
        );
    }
}
