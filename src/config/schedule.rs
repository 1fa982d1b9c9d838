//! A retry schedule as written in `[delivery] retry_schedule` (and a handler's
//! `config.retry`): delays between attempts, checked and parsed once, when read. The
//! delivery engine turns a schedule into its retry policy.

use std::time::Duration;

/// The longest delay before a next attempt, asked by `RetryAfterError` or written in a
/// schedule: longer asks are cut to this (a delay of years would strand the delivery, and
/// a huge one would overflow the due time).
pub const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Errors in a written schedule.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RetryError {
    #[error("invalid retry delay {0:?} (use forms like \"500ms\", \"5s\", \"10m\", \"6h\")")]
    Delay(String),
    #[error("a retry schedule needs at least one delay")]
    Empty,
    #[error("retry delay {0:?} is longer than the longest allowed, 7 days")]
    TooLong(String),
}

/// Delays before the 2nd, 3rd, ... attempt, parsed from forms like "5s" once, when the
/// config file or a handler's `config.retry` is read.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// A schedule from written delays like `["5s", "1m"]`.
    pub fn parse(delays: &[String]) -> Result<Self, RetryError> {
        if delays.is_empty() {
            return Err(RetryError::Empty);
        }
        let parse = |d: &String| match humantime::parse_duration(d.trim()) {
            Ok(delay) if delay > MAX_DELAY => Err(RetryError::TooLong(d.clone())),
            Ok(delay) => Ok(delay),
            Err(_) => Err(RetryError::Delay(d.clone())),
        };
        delays.iter().map(parse).collect::<Result<_, _>>().map(Self)
    }

    /// The delays, in order; never empty.
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }
}

/// The schedule README documents for `[delivery] retry_schedule`: 5s, 30s, 2m, 10m, 30m,
/// 1h, 3h, 6h, 12h.
impl Default for RetrySchedule {
    fn default() -> Self {
        let secs = [5, 30, 2 * 60, 10 * 60, 30 * 60, 3600, 3 * 3600, 6 * 3600, 12 * 3600];
        Self(secs.map(Duration::from_secs).to_vec())
    }
}
