//! Human-readable output of invocation reports.

use crate::runtime::{InvocationReport, Outcome};

/// Prints outcome, console lines and fetches of one invocation.
pub fn print_report(report: &InvocationReport) {
    print_outcome(report);
    print_capture(report);
}

fn print_outcome(report: &InvocationReport) {
    match &report.outcome {
        Outcome::Success => println!("ok: {} succeeded in {:.1} ms", report.handler, report.duration_ms),
        Outcome::Failure(f) => {
            let retry = match (f.is_retryable(), f.retry_after_ms) {
                (false, _) => "will not be retried".to_owned(),
                (true, Some(ms)) => format!("retry after {ms} ms"),
                (true, None) => "retryable".to_owned(),
            };
            println!(
                "failed: {} failed in {:.1} ms ({}, {retry})",
                report.handler,
                report.duration_ms,
                serde_json::to_value(f.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            );
            match &f.stack {
                Some(stack) => println!("  {}", stack.replace('\n', "\n  ")),
                None => println!("  {}: {}", f.name, f.message),
            }
        }
    }
}

fn print_capture(report: &InvocationReport) {
    if !report.capture.logs.is_empty() {
        println!("console:");
        for line in &report.capture.logs {
            let time = line.time.get(11..23).unwrap_or(&line.time);
            println!(
                "  {time} {:<5} {}",
                line.level,
                line.message.replace('\n', "\n                     ")
            );
        }
    }
    if !report.capture.fetches.is_empty() {
        println!("fetch:");
        for f in &report.capture.fetches {
            let status = f.status.map_or_else(|| "error".to_owned(), |s| s.to_string());
            println!("  {} {} -> {status} ({:.0} ms)", f.method, f.url, f.duration_ms);
            if let Some(e) = &f.error {
                println!("    {e}");
            }
        }
    }
    if report.capture.dropped > 0 {
        println!(
            "({} console lines or fetch records dropped: capture limit reached)",
            report.capture.dropped
        );
    }
}
