//! `[runtime]`: isolate limits and pool sizes, with their ranges.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;

/// `[runtime]`: isolate limits and pool sizes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// V8 heap limit of each isolate.
    pub heap_limit_mb: u64,
    /// Memory of ArrayBuffers (outside the V8 heap) each isolate may hold at once.
    pub buffer_limit_mb: u64,
    /// Default wall-clock limit of one invocation (a handler's `config.timeoutMs` overrides it).
    pub timeout_ms: u64,
    /// Default CPU time one invocation may use (a handler's `config.cpuLimitMs` overrides it).
    pub cpu_limit_ms: u64,
    /// Largest `timeout_ms` (and `config.timeoutMs`) allowed.
    pub max_timeout_ms: u64,
    /// Largest `cpu_limit_ms` (and `config.cpuLimitMs`) allowed.
    pub max_cpu_limit_ms: u64,
    /// Most isolates kept for one handler.
    pub isolates_per_handler: usize,
    /// Most invocations interleaved on one isolate's event loop (with `isolates_per_handler`,
    /// room for `[delivery] handler_concurrency` attempts at once).
    pub invocations_per_isolate: usize,
    /// Most console output kept per invocation.
    pub max_log_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            heap_limit_mb: 128,
            buffer_limit_mb: 128,
            timeout_ms: 30_000,
            cpu_limit_ms: 10_000,
            max_timeout_ms: 15 * 60 * 1000,
            max_cpu_limit_ms: 60_000,
            isolates_per_handler: 2,
            invocations_per_isolate: 32,
            max_log_bytes: 64 * 1024,
        }
    }
}

/// Checks each `[runtime]` value against its range (the ceilings are `limits.rs`'s).
pub(super) fn validate(rt: &RuntimeConfig, path: &Path) -> Result<(), ConfigError> {
    let checks = [
        (
            (16..=16_384).contains(&rt.heap_limit_mb),
            "runtime.heap_limit_mb",
            "between 16 and 16384",
        ),
        (
            (1..=16_384).contains(&rt.buffer_limit_mb),
            "runtime.buffer_limit_mb",
            "between 1 and 16384",
        ),
        (rt.timeout_ms >= 1, "runtime.timeout_ms", "at least 1"),
        (rt.cpu_limit_ms >= 1, "runtime.cpu_limit_ms", "at least 1"),
        (
            (1..=64).contains(&rt.isolates_per_handler),
            "runtime.isolates_per_handler",
            "between 1 and 64",
        ),
        (
            rt.invocations_per_isolate >= 1,
            "runtime.invocations_per_isolate",
            "at least 1",
        ),
    ];
    match checks.into_iter().find(|(ok, ..)| !ok) {
        Some((_, key, expected)) => Err(ConfigError::Range {
            path: path.to_owned(),
            line: None,
            key,
            expected,
        }),
        None => Ok(()),
    }
}
