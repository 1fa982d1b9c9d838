//! `[delivery]` and `[retention]`: their delays and ages are written like "5s" or "7d" and
//! become `Duration`s as the file is read, so nothing after loading parses them again.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::RetrySchedule;

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Most attempts running at once, across handlers: several handlers' worth, so handlers
    /// that hold their workers (a hanging API) leave room for the others.
    pub max_concurrency: usize,
    /// Attempts of one handler running at once, unless its `config.concurrency` says otherwise.
    /// As many as a server running the handler in its requests would run for 64 clients;
    /// what a third-party API can take is a rate limit's business, not this bound's.
    pub handler_concurrency: usize,
    /// Delays before the 2nd, 3rd, ... attempt, unless a handler's `config.retry` says otherwise.
    #[serde(deserialize_with = "retry_schedule")]
    pub retry_schedule: RetrySchedule,
    /// How long a stop waits for attempts in flight.
    pub grace_period_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 256,
            handler_concurrency: 64,
            retry_schedule: RetrySchedule::default(),
            grace_period_ms: 10_000,
        }
    }
}

/// `[retention]`: how long finished records are kept, written as ages like "7d", "12h".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    #[serde(deserialize_with = "succeeded_deliveries")]
    pub succeeded_deliveries: Duration,
    #[serde(deserialize_with = "dead_deliveries")]
    pub dead_deliveries: Duration,
    #[serde(deserialize_with = "events")]
    pub events: Duration,
    /// How often the retention task runs.
    pub interval_ms: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            succeeded_deliveries: Duration::from_secs(7 * DAY),
            dead_deliveries: Duration::from_secs(30 * DAY),
            events: Duration::from_secs(30 * DAY),
            interval_ms: 60 * 60 * 1000,
        }
    }
}

fn retry_schedule<'de, D: Deserializer<'de>>(d: D) -> Result<RetrySchedule, D::Error> {
    let written = Vec::<String>::deserialize(d)?;
    RetrySchedule::parse(&written).map_err(|e| D::Error::custom(format!("delivery.retry_schedule: {e}")))
}

// One function per key, as `deserialize_with` cannot pass the key's name along.
fn succeeded_deliveries<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    age(d, "retention.succeeded_deliveries")
}

fn dead_deliveries<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    age(d, "retention.dead_deliveries")
}

fn events<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    age(d, "retention.events")
}

fn age<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Duration, D::Error> {
    let written = String::deserialize(d)?;
    humantime::parse_duration(written.trim()).map_err(|_| {
        D::Error::custom(format!(
            "{key}: {written:?} is not a duration (use forms like \"12h\", \"7d\")"
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::RetrySchedule;
    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("eddy.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn retry_schedule_is_parsed_at_load() {
        let c = parse("[delivery]\nretry_schedule = [\"500ms\", \" 2m \"]\n").unwrap();
        let delays = c.delivery.retry_schedule.delays();
        assert_eq!(delays, [Duration::from_millis(500), Duration::from_secs(120)]);
        let default = parse("").unwrap().delivery.retry_schedule;
        assert_eq!(default, RetrySchedule::default());
        assert_eq!(default.delays().len(), 9);
        assert_eq!(default.delays()[8], Duration::from_secs(12 * 3600));
    }

    #[test]
    fn a_bad_retry_schedule_is_refused_naming_the_key() {
        for (written, why) in [
            ("[\"5x\"]", "invalid retry delay \"5x\""),
            ("[]", "needs at least one delay"),
            ("[\"8days\"]", "longer than the longest allowed, 7 days"),
        ] {
            let err = parse(&format!("[delivery]\nretry_schedule = {written}\n")).unwrap_err();
            assert!(err.contains("delivery.retry_schedule: ") && err.contains(why), "{err}");
            assert!(err.starts_with("eddy.toml: "), "{err}");
        }
    }

    #[test]
    fn retention_ages_are_parsed_at_load() {
        let c = parse("[retention]\nsucceeded_deliveries = \"100ms\"\ndead_deliveries = \"2h\"\nevents = \"1d\"\n")
            .unwrap();
        let r = &c.retention;
        assert_eq!(r.succeeded_deliveries, Duration::from_millis(100));
        assert_eq!(r.dead_deliveries, Duration::from_secs(2 * 3600));
        assert_eq!(r.events, Duration::from_secs(24 * 3600));
        let default = parse("").unwrap().retention;
        assert_eq!(default.succeeded_deliveries, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(default.events, Duration::from_secs(30 * 24 * 3600));
    }

    #[test]
    fn a_bad_retention_age_is_refused_naming_the_key() {
        for key in ["succeeded_deliveries", "dead_deliveries", "events"] {
            let err = parse(&format!("[retention]\n{key} = \"soon\"\n")).unwrap_err();
            let named = format!("retention.{key}: \"soon\" is not a duration");
            assert!(err.contains(&named), "{err}");
        }
    }
}
