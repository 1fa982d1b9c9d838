//! Retry policy as data: a schedule of delays between attempts, with jitter. The failure
//! decides whether a retry makes sense at all (`HandlerFailure::is_retryable`,
//! `retry_after`).

use std::time::Duration;

use crate::runtime::HandlerFailure;

/// Delays before the 2nd, 3rd, ... attempt (the 1st runs at once).
pub const DEFAULT_SCHEDULE: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(3 * 60 * 60),
    Duration::from_secs(6 * 60 * 60),
    Duration::from_secs(12 * 60 * 60),
];

/// Share of each delay that is randomised, both ways.
pub const JITTER: f64 = 0.2;

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

/// When to try again after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    schedule: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            schedule: DEFAULT_SCHEDULE.to_vec(),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    RetryAfter(Duration),
    /// No more attempts.
    GiveUp,
}

impl RetryPolicy {
    /// A policy from written delays like `["5s", "1m"]`.
    pub fn parse(delays: &[String]) -> Result<Self, RetryError> {
        if delays.is_empty() {
            return Err(RetryError::Empty);
        }
        let parse = |d: &String| match humantime::parse_duration(d.trim()) {
            Ok(delay) if delay > MAX_DELAY => Err(RetryError::TooLong(d.clone())),
            Ok(delay) => Ok(delay),
            Err(_) => Err(RetryError::Delay(d.clone())),
        };
        let schedule = delays.iter().map(parse).collect::<Result<_, _>>()?;
        Ok(Self { schedule })
    }

    /// Most attempts a delivery gets: the first plus one per scheduled delay.
    pub fn max_attempts(&self) -> u32 {
        self.schedule.len() as u32 + 1
    }

    /// The decision after attempt number `attempt` (1-based) failed with `failure`;
    /// `unit` in [0, 1) draws the jitter.
    pub fn decide(&self, attempt: u32, failure: &HandlerFailure, unit: f64) -> Decision {
        if !failure.is_retryable() || attempt >= self.max_attempts() {
            return Decision::GiveUp;
        }
        if let Some(asked) = failure.retry_after() {
            // The third party said when; jitter would only make it wrong.
            return Decision::RetryAfter(asked.min(MAX_DELAY));
        }
        let base = self.schedule[(attempt as usize - 1).min(self.schedule.len() - 1)];
        let factor = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Decision::RetryAfter(base.mul_f64(factor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::FailureKind;

    fn failure(kind: FailureKind, retry_after_ms: Option<u64>) -> HandlerFailure {
        HandlerFailure {
            retry_after_ms,
            ..HandlerFailure::host(kind, "x")
        }
    }

    #[test]
    fn default_schedule_with_jitter_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 10);
        let err = failure(FailureKind::Error, None);
        assert_eq!(p.decide(1, &err, 0.5), Decision::RetryAfter(Duration::from_secs(5)));
        assert_eq!(p.decide(1, &err, 0.0), Decision::RetryAfter(Duration::from_secs(4)));
        let Decision::RetryAfter(high) = p.decide(2, &err, 0.9999999) else {
            panic!("must retry")
        };
        assert!(
            high > Duration::from_millis(35_990) && high <= Duration::from_secs(36),
            "{high:?}"
        );
        assert_eq!(
            p.decide(9, &err, 0.5),
            Decision::RetryAfter(Duration::from_secs(12 * 3600))
        );
        assert_eq!(p.decide(10, &err, 0.5), Decision::GiveUp);
    }

    #[test]
    fn the_failure_decides_first() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.decide(1, &failure(FailureKind::NonRetryable, None), 0.5),
            Decision::GiveUp
        );
        let asked = failure(FailureKind::RetryAfter, Some(30_000));
        assert_eq!(p.decide(3, &asked, 0.9), Decision::RetryAfter(Duration::from_secs(30)));
        assert_eq!(
            p.decide(10, &asked, 0.9),
            Decision::GiveUp,
            "exhaustion wins over a retry-after hint"
        );
    }

    #[test]
    fn written_schedules() {
        let p = RetryPolicy::parse(&["500ms".into(), "2s".into()]).unwrap();
        assert_eq!(p.max_attempts(), 3);
        assert_eq!(
            p.decide(2, &failure(FailureKind::Timeout, None), 0.5),
            Decision::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(RetryPolicy::parse(&[]), Err(RetryError::Empty));
        assert_eq!(
            RetryPolicy::parse(&["soon".into()]),
            Err(RetryError::Delay("soon".into()))
        );
        assert!(RetryPolicy::parse(&["7days".into()]).is_ok());
        assert_eq!(
            RetryPolicy::parse(&["8days".into()]),
            Err(RetryError::TooLong("8days".into()))
        );
    }

    #[test]
    fn a_retry_after_hint_is_cut_to_the_longest_delay() {
        let p = RetryPolicy::default();
        for asked in [MAX_DELAY.as_millis() as u64 + 1, u64::MAX] {
            let hint = failure(FailureKind::RetryAfter, Some(asked));
            assert_eq!(p.decide(1, &hint, 0.5), Decision::RetryAfter(MAX_DELAY));
        }
    }
}
