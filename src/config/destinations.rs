//! `[limits."host"]`: how fast and how many at once every handler together may call a
//! destination; `[breaker]`: when a failing host is left alone for a while.

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};

/// One `[limits."<host>"]` table, as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// `"10/s"`, `"600/m"` or `"5000/h"`.
    pub rate: Option<Rate>,
    /// Requests that may go at once after a quiet spell (default: the rate's count per
    /// second, rounded up, at least 1).
    pub burst: Option<u32>,
    /// Requests waiting for their answer at once.
    pub concurrency: Option<usize>,
}

impl DestinationConfig {
    /// The burst in force.
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or_else(|| {
            self.rate
                .map_or(1, |r| r.per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32)
        })
    }
}

/// Requests per second, parsed from `N/s`, `N/m` (or `N/min`) or `N/h`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Rate {
    pub per_second: f64,
}

impl TryFrom<String> for Rate {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a rate: write it as \"10/s\", \"600/m\" or \"5000/h\"");
        let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: f64 = count.trim().parse().map_err(|_| bad())?;
        let seconds = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            _ => return Err(bad()),
        };
        if !(count > 0.0 && count.is_finite()) {
            return Err(format!("{text:?}: a rate must be more than 0"));
        }
        Ok(Self {
            per_second: count / seconds,
        })
    }
}

/// `[breaker]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive connection failures or `5xx` answers from a host that open its circuit.
    pub failures: u32,
    /// How long an open circuit stays open before one request may probe the host.
    #[serde(deserialize_with = "cool_down")]
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

fn cool_down<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let written = String::deserialize(d)?;
    humantime::parse_duration(written.trim()).map_err(|_| {
        D::Error::custom(format!(
            "breaker.cool_down: {written:?} is not a duration (like \"30s\")"
        ))
    })
}

/// Why a `[limits]` entry or `[breaker]` is refused (the message names the key).
pub fn check(
    limits: &std::collections::BTreeMap<String, DestinationConfig>,
    breaker: &BreakerConfig,
) -> Result<(), String> {
    for (host, limit) in limits {
        check_host(host).map_err(|reason| format!("[limits.\"{host}\"]: {reason}"))?;
        if limit.rate.is_none() && limit.concurrency.is_none() {
            return Err(format!(
                "[limits.\"{host}\"]: sets no limit: give rate, concurrency or both"
            ));
        }
        if limit.burst == Some(0) || limit.concurrency == Some(0) {
            return Err(format!("[limits.\"{host}\"]: burst and concurrency must be at least 1"));
        }
        if limit.burst.is_some() && limit.rate.is_none() {
            return Err(format!("[limits.\"{host}\"]: burst needs a rate"));
        }
    }
    if breaker.failures == 0 || breaker.cool_down.is_zero() {
        return Err("[breaker]: failures must be at least 1 and cool_down more than 0".into());
    }
    Ok(())
}

/// A host name (lowercase), `host:port`, or `*.domain`.
fn check_host(pattern: &str) -> Result<(), String> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let (name, port) = match name.rsplit_once(':') {
        Some((name, port)) if !pattern.starts_with("*.") => (name, Some(port)),
        _ => (name, None),
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err("the port is not a number from 0 to 65535".into());
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if !valid {
        return Err(
            "name a host in lowercase (api.crm.example), a host and port (api.crm.example:8443), \
                    or the hosts under a domain (*.crm.example)"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("eddy.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn limits_name_hosts_with_a_rate_a_burst_and_a_concurrency() {
        let c = parse("[limits.\"api.crm.example\"]\nrate = \"10/s\"\nburst = 20\nconcurrency = 4\n[limits.\"*.slack.com\"]\nrate = \"120/m\"\n").unwrap();
        let crm = &c.limits["api.crm.example"];
        assert_eq!(
            (crm.rate.unwrap().per_second, crm.burst(), crm.concurrency),
            (10.0, 20, Some(4))
        );
        let slack = &c.limits["*.slack.com"];
        assert_eq!(
            (slack.rate.unwrap().per_second, slack.burst()),
            (2.0, 2),
            "the burst defaults to a second's worth"
        );
        assert_eq!((c.breaker.failures, c.breaker.cool_down.as_secs()), (5, 30));
        let breaker = parse("[breaker]\nfailures = 3\ncool_down = \"1m\"\n").unwrap().breaker;
        assert_eq!((breaker.failures, breaker.cool_down.as_secs()), (3, 60));
    }

    #[test]
    fn limits_that_do_not_parse_or_limit_nothing_are_refused_by_name() {
        for (text, said) in [
            ("[limits.\"h\"]\nrate = \"10 per second\"\n", "is not a rate"),
            ("[limits.\"h\"]\nrate = \"0/s\"\n", "more than 0"),
            ("[limits.\"h\"]\nburst = 3\n", "sets no limit"),
            ("[limits.\"h\"]\nconcurrency = 0\n", "at least 1"),
            ("[limits.\"API.example\"]\nconcurrency = 1\n", "in lowercase"),
            ("[limits.\"h:99999\"]\nconcurrency = 1\n", "the port"),
            ("[limits.\"h\"]\nrate = \"1/s\"\nrat = 2\n", "unknown field"),
            ("[breaker]\nfailures = 0\n", "[breaker]"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(said), "{text}: {error}");
        }
    }
}
