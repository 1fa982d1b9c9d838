//! Human-readable output: command results on stdout, and invocation reports.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::runtime::{InvocationReport, Outcome};

/// Set once stdout is found closed: the rest of the output has no reader.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line of command output. A reader that went away (`eddy events list | head -1`)
/// silences the rest rather than panicking, so the command still finishes its work and exits
/// with its own status.
pub fn line(args: std::fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}") {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("eddy: cannot write to stdout: {e}");
        }
    }
}

/// Prints outcome, console lines and fetches of one invocation.
pub fn print_report(report: &InvocationReport) {
    print_outcome(report);
    print_capture(report);
}

fn print_outcome(report: &InvocationReport) {
    match &report.outcome {
        Outcome::Success => say!("ok: {} succeeded in {:.1} ms", report.handler, report.duration_ms),
        Outcome::Failure(f) => {
            let retry = match (f.is_retryable(), f.retry_after_ms) {
                (false, _) => "will not be retried".to_owned(),
                (true, Some(ms)) => format!("retry after {ms} ms"),
                (true, None) => "retryable".to_owned(),
            };
            say!(
                "failed: {} failed in {:.1} ms ({}, {retry})",
                report.handler,
                report.duration_ms,
                serde_json::to_value(f.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            );
            match &f.stack {
                Some(stack) => say!("  {}", stack.replace('\n', "\n  ")),
                None => say!("  {}: {}", f.name, f.message),
            }
            for cause in &f.causes {
                say!("  caused by {}: {}", cause.name, cause.message.replace('\n', "\n  "));
            }
        }
    }
}

fn print_capture(report: &InvocationReport) {
    if !report.capture.logs.is_empty() {
        say!("console:");
        for line in &report.capture.logs {
            let time = line.time.get(11..23).unwrap_or(&line.time);
            say!(
                "  {time} {:<5} {}",
                line.level,
                line.message.replace('\n', "\n                     ")
            );
        }
    }
    if !report.capture.fetches.is_empty() {
        say!("fetch:");
        for f in &report.capture.fetches {
            let status = f.status.map_or_else(|| "error".to_owned(), |s| s.to_string());
            say!("  {} {} -> {status} ({:.0} ms)", f.method, f.url, f.duration_ms);
            if let Some(e) = &f.error {
                say!("    {e}");
            }
        }
    }
    if report.capture.dropped_fetches > 0 {
        say!(
            "({} fetch records dropped: capture limit reached)",
            report.capture.dropped_fetches
        );
    }
}
