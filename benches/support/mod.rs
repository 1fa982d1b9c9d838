//! What the benchmarks share: HTTP load from this process (`load`), servers run as child
//! processes with their resident memory (`procs`), eddy's own binary and endpoints (`eddy`),
//! and the helpers that turn samples into figures. Each benchmark includes it with
//! `mod support;` and uses only part of it.

// Each benchmark is its own crate and uses a different part of this module.
#![allow(dead_code)]

pub mod eddy;
pub mod load;
pub mod procs;

use std::time::Duration;

/// The 50th and 99th percentiles; zero for no samples.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` has them ("?" elsewhere).
pub fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_else(|_| "?".into());
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
