//! The last hour, minute by minute, for the dashboard's charts: events ingested, attempts
//! that succeeded or failed, and how long attempts took. Kept in memory from the start of the
//! process (a restart begins an empty hour), in atomics, so recording never takes a lock.
//! A minute's slot is cleared by the first count of a new minute; a count racing with that
//! clearing may be lost, which a chart of an hour does not show.

use std::sync::atomic::{AtomicU64, Ordering};

/// Minutes kept.
pub const MINUTES: usize = 60;
/// Upper bounds of the duration buckets, in milliseconds; the last bucket has none.
pub const DURATION_BOUNDS_MS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 30000.0,
];
const BUCKETS: usize = DURATION_BOUNDS_MS.len() + 1;
const INGESTED: usize = 0;
const SUCCEEDED: usize = 1;
const FAILED: usize = 2;
const FIRST_BUCKET: usize = 3;
const COUNTS: usize = FIRST_BUCKET + BUCKETS;

/// One minute's counts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Minute {
    /// Minutes since the epoch.
    pub at: u64,
    pub ingested: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Attempts by duration, in the buckets of [`DURATION_BOUNDS_MS`].
    pub durations: [u64; BUCKETS],
}

impl Minute {
    /// The duration in milliseconds below which `share` (0 to 1) of the minute's attempts
    /// finished, as the upper bound of its bucket; `None` without attempts.
    pub fn duration_quantile_ms(&self, share: f64) -> Option<f64> {
        let total: u64 = self.durations.iter().sum();
        if total == 0 {
            return None;
        }
        let wanted = (share * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in self.durations.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return Some(DURATION_BOUNDS_MS.get(i).copied().unwrap_or(f64::INFINITY));
            }
        }
        None
    }
}

struct Slot {
    minute: AtomicU64,
    counts: [AtomicU64; COUNTS],
}

/// The counts of the last [`MINUTES`] minutes.
pub struct MinuteRing {
    slots: [Slot; MINUTES],
}

impl Default for MinuteRing {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| Slot {
                minute: AtomicU64::new(u64::MAX),
                counts: std::array::from_fn(|_| AtomicU64::new(0)),
            }),
        }
    }
}

impl MinuteRing {
    pub fn ingested(&self, now_ms: u64, count: u64) {
        self.add(now_ms / 60_000, INGESTED, count);
    }

    pub fn attempt(&self, now_ms: u64, succeeded: bool, duration_ms: f64) {
        let minute = now_ms / 60_000;
        self.add(minute, if succeeded { SUCCEEDED } else { FAILED }, 1);
        let bucket = DURATION_BOUNDS_MS
            .iter()
            .position(|bound| duration_ms <= *bound)
            .unwrap_or(BUCKETS - 1);
        self.add(minute, FIRST_BUCKET + bucket, 1);
    }

    fn add(&self, minute: u64, index: usize, count: u64) {
        let slot = &self.slots[(minute % MINUTES as u64) as usize];
        let seen = slot.minute.load(Ordering::Acquire);
        if seen != minute {
            // A count for a minute the slot has moved past is too late to keep.
            if seen != u64::MAX && seen > minute {
                return;
            }
            if slot
                .minute
                .compare_exchange(seen, minute, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                for count in &slot.counts {
                    count.store(0, Ordering::Relaxed);
                }
            } else if slot.minute.load(Ordering::Acquire) != minute {
                return;
            }
        }
        slot.counts[index].fetch_add(count, Ordering::Relaxed);
    }

    /// The last [`MINUTES`] minutes up to the one of `now_ms`, oldest first; minutes with
    /// nothing recorded are zero.
    pub fn minutes(&self, now_ms: u64) -> Vec<Minute> {
        let now = now_ms / 60_000;
        (0..MINUTES as u64)
            .map(|back| now.saturating_sub(MINUTES as u64 - 1 - back))
            .map(|at| {
                let slot = &self.slots[(at % MINUTES as u64) as usize];
                let mut minute = Minute {
                    at,
                    ..Minute::default()
                };
                if slot.minute.load(Ordering::Acquire) == at {
                    let count = |i: usize| slot.counts[i].load(Ordering::Relaxed);
                    minute.ingested = count(INGESTED);
                    minute.succeeded = count(SUCCEEDED);
                    minute.failed = count(FAILED);
                    minute.durations = std::array::from_fn(|b| count(FIRST_BUCKET + b));
                }
                minute
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    #[test]
    fn counts_land_in_their_minute_and_an_hour_later_the_slot_starts_again() {
        let ring = MinuteRing::default();
        let start = 1_000 * MIN;
        ring.ingested(start, 3);
        ring.attempt(start + 10, true, 4.0);
        ring.attempt(start + MIN, false, 700.0);
        let minutes = ring.minutes(start + MIN);
        assert_eq!(minutes.len(), MINUTES);
        let (before, last) = (minutes[MINUTES - 2], minutes[MINUTES - 1]);
        assert_eq!(
            (before.at, before.ingested, before.succeeded, before.failed),
            (1_000, 3, 1, 0)
        );
        assert_eq!((last.at, last.succeeded, last.failed), (1_001, 0, 1));
        assert_eq!(before.duration_quantile_ms(0.5), Some(5.0));
        assert_eq!(last.duration_quantile_ms(0.95), Some(1000.0));
        assert!(minutes[0].duration_quantile_ms(0.5).is_none());
        // The same slot an hour on: the old counts are gone, and late counts are dropped.
        ring.ingested(start + 60 * MIN, 1);
        ring.ingested(start, 5);
        let now = ring.minutes(start + 60 * MIN);
        assert_eq!(now[MINUTES - 1].ingested, 1);
        assert!(now.iter().all(|m| m.at != 1_000));
        assert_eq!(now.iter().map(|m| m.ingested).sum::<u64>(), 1);
    }

    #[test]
    fn slow_attempts_fall_in_the_last_bucket() {
        let ring = MinuteRing::default();
        ring.attempt(0, true, 120_000.0);
        assert_eq!(
            ring.minutes(0)[MINUTES - 1].duration_quantile_ms(0.5),
            Some(f64::INFINITY)
        );
    }
}
