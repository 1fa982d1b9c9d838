//! Retry policy as data: a schedule of delays between attempts, with jitter. The failure
//! decides whether a retry makes sense at all (`HandlerFailure::is_retryable`,
//! `retry_after`).

use std::time::Duration;

pub use crate::config::{MAX_DELAY, RetryError, RetrySchedule};
use crate::runtime::HandlerFailure;

/// Share of each delay that is randomised, both ways.
pub const JITTER: f64 = 0.2;

/// When to try again after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    schedule: RetrySchedule,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    RetryAfter(Duration),
    /// No more attempts.
    GiveUp,
}

impl RetryPolicy {
    /// A policy that waits as `schedule` says.
    pub fn new(schedule: RetrySchedule) -> Self {
        Self { schedule }
    }

    /// A policy from written delays like `["5s", "1m"]` (a handler's `config.retry`).
    pub fn parse(delays: &[String]) -> Result<Self, RetryError> {
        RetrySchedule::parse(delays).map(Self::new)
    }

    /// The delays between attempts, before jitter.
    pub fn delays(&self) -> &[Duration] {
        self.schedule.delays()
    }

    /// Most attempts a delivery gets: the first plus one per scheduled delay.
    pub fn max_attempts(&self) -> u32 {
        self.schedule.delays().len() as u32 + 1
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
        let delays = self.schedule.delays();
        let base = delays[(attempt as usize - 1).min(delays.len() - 1)];
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

    /// The policy the server builds when `[delivery] retry_schedule` is not set.
    fn server_default() -> RetryPolicy {
        RetryPolicy::new(crate::config::Config::default().delivery.retry_schedule)
    }

    fn delay(decision: Decision) -> Duration {
        match decision {
            Decision::RetryAfter(d) => d,
            Decision::GiveUp => panic!("must retry"),
        }
    }

    /// The schedule README documents: at once, then 5 s ... 12 h, then dead.
    const DOCUMENTED: [u64; 9] = [5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600];

    #[test]
    fn the_server_default_is_the_documented_schedule() {
        let p = server_default();
        assert_eq!(p.max_attempts(), 10);
        let err = failure(FailureKind::Error, None);
        for (i, secs) in DOCUMENTED.into_iter().enumerate() {
            let attempt = i as u32 + 1;
            let base = Duration::from_secs(secs);
            assert_eq!(
                p.decide(attempt, &err, 0.5),
                Decision::RetryAfter(base),
                "after attempt {attempt}"
            );
            assert_eq!(p.decide(attempt, &err, 0.0), Decision::RetryAfter(base.mul_f64(0.8)));
            let high = delay(p.decide(attempt, &err, 0.999_999_9));
            assert!(high > base.mul_f64(1.199_99) && high <= base.mul_f64(1.2), "{high:?}");
        }
        assert_eq!(p.decide(10, &err, 0.5), Decision::GiveUp);
        assert_eq!(p.decide(11, &err, 0.5), Decision::GiveUp);
    }

    /// The jitter as drawn in `attempt.rs` (`rand::random`): every delay within +-20% of its
    /// base, and spread over that range rather than stuck at one value.
    #[test]
    fn real_jitter_stays_within_20_percent_and_varies() {
        let p = server_default();
        let err = failure(FailureKind::Timeout, None);
        for (i, secs) in DOCUMENTED.into_iter().enumerate() {
            let base = Duration::from_secs(secs);
            let draws: Vec<Duration> = (0..2_000)
                .map(|_| delay(p.decide(i as u32 + 1, &err, rand::random::<f64>())))
                .collect();
            let (lo, hi) = (base.mul_f64(0.8), base.mul_f64(1.2));
            assert!(draws.iter().all(|d| *d >= lo && *d <= hi), "outside [{lo:?}, {hi:?}]");
            // 2,000 uniform draws miss the outer tenth of either side with odds 0.75^2000.
            assert!(
                draws.iter().any(|d| *d < base.mul_f64(0.9)),
                "never below 90% of {base:?}"
            );
            assert!(
                draws.iter().any(|d| *d > base.mul_f64(1.1)),
                "never above 110% of {base:?}"
            );
            let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
            assert!(distinct.len() > 1_900, "{} distinct delays of 2,000", distinct.len());
        }
    }

    #[test]
    fn the_failure_decides_first() {
        let p = server_default();
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
        let p = server_default();
        for asked in [MAX_DELAY.as_millis() as u64 + 1, u64::MAX] {
            let hint = failure(FailureKind::RetryAfter, Some(asked));
            assert_eq!(p.decide(1, &hint, 0.5), Decision::RetryAfter(MAX_DELAY));
        }
    }
}
