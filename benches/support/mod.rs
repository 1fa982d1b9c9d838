//! What the benchmarks share: HTTP load from this process (`load`), servers run as child
//! processes with their resident memory (`procs`) and CPU time (`cpu`), eddy's own binary and
//! endpoints (`eddy`), eddy's server in this process (`in_process`),
//! the machine's facts (`machine`), and the helpers that turn samples into figures. Each
//! benchmark includes it with `mod support;` and uses only part of it.

// Each benchmark is its own crate and uses a different part of this module.
#![allow(dead_code)]

pub mod cpu;
pub mod eddy;
pub mod in_process;
pub mod load;
pub mod machine;
pub mod procs;

use std::time::Duration;

/// What a bench's `main` starts with: a multi-threaded runtime, and a temporary folder for its
/// data, whose machine and load it prints first.
pub fn begin(name: &str) -> (tokio::runtime::Runtime, tempfile::TempDir) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let folder = tempfile::tempdir().expect("temporary folder");
    machine::print_start(name, folder.path());
    (runtime, folder)
}

/// Serves `app` on 127.0.0.1 (a fake third-party API) for as long as the process runs; its
/// base URL.
pub async fn serve_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

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

/// How many times a benchmark repeats its measurement: `EDDY_BENCH_RUNS`, or `default`.
/// A value that is not a positive number is refused rather than ignored.
pub fn runs(default: usize) -> usize {
    match std::env::var("EDDY_BENCH_RUNS") {
        Err(_) => default,
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("EDDY_BENCH_RUNS must be a positive number of runs, not {text:?}"),
        },
    }
}

/// The median, lowest and highest of `values`; `None` for no values.
pub fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = match n % 2 {
        1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    };
    Some((median, sorted[0], sorted[n - 1]))
}

/// `values` as "median (lowest–highest)" with `decimals` decimals; the value alone when all
/// are equal (or there is one), "?" for none.
pub fn format_spread(values: &[f64], decimals: usize) -> String {
    match spread(values) {
        None => "?".into(),
        Some((median, low, high)) if low == high => format!("{median:.decimals$}"),
        Some((median, low, high)) => format!("{median:.decimals$} ({low:.decimals$}–{high:.decimals$})"),
    }
}
