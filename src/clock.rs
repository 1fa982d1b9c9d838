//! The wall clock, in the units eddy stores and compares: milliseconds (and, for webhook
//! signature windows, seconds) since the Unix epoch. A clock set before the epoch reads 0.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    ms_since_epoch(SystemTime::now())
}

/// Whole seconds since the Unix epoch, now.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// `at` as milliseconds since the Unix epoch: 0 before it, `u64::MAX` past what fits.
pub fn ms_since_epoch(at: SystemTime) -> u64 {
    let ms = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_the_epoch_read_zero_and_now_agrees_with_seconds() {
        assert_eq!(ms_since_epoch(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(ms_since_epoch(UNIX_EPOCH + Duration::from_millis(1500)), 1500);
        let (ms, secs) = (now_ms(), now_secs());
        assert!(ms / 1000 <= secs && secs <= ms / 1000 + 1, "{ms} ms, {secs} s");
        assert!(ms > 1_600_000_000_000, "a clock after 2020: {ms}");
    }
}
