//! Limits on what one invocation produces, applied where its report is built: whatever the
//! handler threw or printed, the report (and the attempt record stored from it) stays small.
//! Every string is redacted first and cut after, so a cut never splits a secret.

use std::collections::BTreeMap;

use eddy_runtime_js::capture::truncate;

use super::report::{FailureCause, HandlerFailure, InvocationReport};

/// Longest error name kept.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest error message kept.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Longest stack kept.
pub const MAX_STACK_BYTES: usize = 16 * 1024;
/// Most errors of a `cause` chain kept.
pub const MAX_CAUSES: usize = 8;
/// Most extra error properties kept.
pub const MAX_PROPERTIES: usize = 16;
/// Longest property name kept.
pub const MAX_PROPERTY_NAME_BYTES: usize = 128;
/// Longest property value kept.
pub const MAX_PROPERTY_BYTES: usize = 1024;
/// Largest report, as JSON.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// Room kept below [`MAX_REPORT_BYTES`] for the line saying how many lines were dropped.
const CLOSING_ROOM: usize = 256;

/// `failure` with every string passed through `clean` (secret redaction) and then cut to
/// its limit, and the cause chain and properties cut to their counts.
pub fn failure(f: HandlerFailure, clean: &dyn Fn(&str) -> String) -> HandlerFailure {
    let text = |s: &str, limit| truncate(clean(s), limit);
    let mut causes: Vec<FailureCause> = f
        .causes
        .iter()
        .take(MAX_CAUSES)
        .map(|c| FailureCause {
            name: text(&c.name, MAX_NAME_BYTES),
            message: text(&c.message, MAX_MESSAGE_BYTES),
            stack: c.stack.as_deref().map(|s| text(s, MAX_STACK_BYTES)),
        })
        .collect();
    if f.causes.len() > MAX_CAUSES {
        causes.push(FailureCause {
            name: "…".to_owned(),
            message: format!("…[dropped further causes: at most {MAX_CAUSES} are kept]"),
            stack: None,
        });
    }
    let mut properties: BTreeMap<String, String> = f
        .properties
        .iter()
        .take(MAX_PROPERTIES)
        .map(|(k, v)| (text(k, MAX_PROPERTY_NAME_BYTES), text(v, MAX_PROPERTY_BYTES)))
        .collect();
    if f.properties.len() > MAX_PROPERTIES {
        let message = format!("[dropped further properties: at most {MAX_PROPERTIES} are kept]");
        properties.insert("…".to_owned(), message);
    }
    HandlerFailure {
        kind: f.kind,
        name: text(&f.name, MAX_NAME_BYTES),
        message: text(&f.message, MAX_MESSAGE_BYTES),
        stack: f.stack.as_deref().map(|s| text(s, MAX_STACK_BYTES)),
        retry_after_ms: f.retry_after_ms,
        causes,
        properties,
    }
}

/// Brings `report` within [`MAX_REPORT_BYTES`] of JSON: drops console lines from the end,
/// then fetch records, then the failure's details; then closes the capture, which notes
/// what was dropped. Strings were cut already, so this only acts on many escaped ones. Steps
/// are never dropped (later attempts recall them): their bounds keep them well within.
pub fn report(report: &mut InvocationReport) {
    let limit = MAX_REPORT_BYTES - CLOSING_ROOM;
    if size_at_most(report) <= limit {
        // The usual report: small enough by a bound that needs no serialising.
        report.capture.close();
        return;
    }
    let mut size = json_len(&*report);
    while size > limit {
        let Some(line) = report.capture.logs.pop() else { break };
        size -= json_len(&line) + 1;
        report.capture.drop_log();
    }
    while size > limit {
        let Some(record) = report.capture.fetches.pop() else {
            break;
        };
        size -= json_len(&record) + 1;
        report.capture.drop_fetch();
    }
    if size > limit
        && let super::Outcome::Failure(f) = &mut report.outcome
    {
        f.properties.clear();
        f.causes.clear();
        f.stack = None;
        f.message = truncate(std::mem::take(&mut f.message), MAX_NAME_BYTES);
    }
    report.capture.close();
}

/// Bytes a JSON escape can take per byte of text (`\u0001`).
const ESCAPED: usize = 6;
/// Room per console line, fetch record or report for keys, numbers and punctuation.
const FIELDS: usize = 256;

/// An upper bound of the report's JSON length: every text byte escaped, with room for the
/// fields around each item.
fn size_at_most(report: &InvocationReport) -> usize {
    let capture = &report.capture;
    let logs: usize = capture
        .logs
        .iter()
        .map(|l| l.message.len() + l.level.len() + l.time.len())
        .sum();
    let fetches: usize = capture
        .fetches
        .iter()
        .map(|f| f.url.len() + f.method.len() + f.error.as_ref().map_or(0, String::len))
        .sum();
    let failure = match &report.outcome {
        super::Outcome::Failure(f) => {
            let causes: usize = f
                .causes
                .iter()
                .map(|c| c.name.len() + c.message.len() + opt_len(&c.stack) + FIELDS)
                .sum();
            let properties: usize = f.properties.iter().map(|(k, v)| k.len() + v.len() + FIELDS).sum();
            f.name.len() + f.message.len() + opt_len(&f.stack) + causes + properties
        }
        super::Outcome::Success => 0,
    };
    let steps: usize = capture
        .steps
        .iter()
        .map(|s| s.name.len() + s.error.as_ref().map_or(0, String::len))
        .sum();
    let texts = logs + fetches + failure + steps + report.handler.len() + report.started_at.len();
    let items = capture.logs.len() + capture.fetches.len() + capture.steps.len() + 1;
    // Step results are JSON already, counted as they were recorded.
    texts
        .saturating_mul(ESCAPED)
        .saturating_add(items.saturating_mul(FIELDS))
        .saturating_add(capture.step_bytes)
}

fn opt_len(text: &Option<String>) -> usize {
    text.as_ref().map_or(0, String::len)
}

fn json_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Capture, FailureKind, LogLine, Outcome};

    fn big_failure() -> HandlerFailure {
        let cause = FailureCause {
            name: "N".repeat(1000),
            message: "secret-value ".repeat(1000),
            stack: Some("s".repeat(100_000)),
        };
        let properties = (0..40).map(|i| (format!("p{i}"), "v".repeat(5000))).collect();
        HandlerFailure {
            name: "n".repeat(1000),
            message: "E".repeat(20 << 20),
            stack: Some("S".repeat(20 << 20)),
            causes: vec![cause; 12],
            properties,
            ..HandlerFailure::host(FailureKind::Error, "")
        }
    }

    #[test]
    fn every_string_and_count_of_a_failure_is_bounded_after_cleaning() {
        let f = failure(big_failure(), &|s| s.replace("secret-value", "[secret:S]"));
        assert!(f.name.len() < MAX_NAME_BYTES + 40 && f.name.ends_with("…[truncated 744 bytes]"));
        assert!(
            f.message
                .ends_with(&format!("…[truncated {} bytes]", (20 << 20) - MAX_MESSAGE_BYTES))
        );
        assert!(f.stack.as_ref().unwrap().len() < MAX_STACK_BYTES + 40);
        assert_eq!(f.causes.len(), MAX_CAUSES + 1);
        assert!(f.causes.iter().all(|c| !c.message.contains("secret-value")));
        assert!(f.causes[0].message.starts_with("[secret:S] [secret:S]"));
        assert_eq!(f.properties.len(), MAX_PROPERTIES + 1);
        let json = serde_json::to_vec(&f).unwrap();
        assert!(json.len() < 300 * 1024, "{}", json.len());
    }

    #[test]
    fn the_size_bound_is_never_below_the_json() {
        let mut f = failure(big_failure(), &|s| s.to_owned());
        f.message = "\u{1}\"\\é".repeat(1000);
        let line = |message: String| LogLine {
            time: "2026-12-07T00:00:00.000Z".into(),
            level: "log".into(),
            message,
        };
        let mut r = InvocationReport {
            handler: "h".into(),
            outcome: Outcome::Failure(f),
            started_at: "2026-12-07T00:00:00.000Z".into(),
            duration_ms: 1.5,
            capture: Capture::default(),
        };
        r.capture.logs = vec![line("\u{1}".repeat(100)), line(String::new())];
        assert!(size_at_most(&r) >= json_len(&r));
        r.outcome = Outcome::Success;
        r.capture.logs.clear();
        assert!(size_at_most(&r) >= json_len(&r));
    }

    #[test]
    fn a_report_of_escaped_text_is_cut_to_the_bound() {
        let line = LogLine {
            time: String::new(),
            level: "log".into(),
            message: "\u{1}".repeat(8 * 1024),
        };
        let mut f = failure(big_failure(), &|s| s.to_owned());
        f.message = "\u{1}".repeat(MAX_MESSAGE_BYTES);
        let mut r = InvocationReport {
            handler: "h".into(),
            outcome: Outcome::Failure(f),
            started_at: String::new(),
            duration_ms: 0.0,
            capture: Capture::default(),
        };
        r.capture.logs = vec![line; 1000];
        report(&mut r);
        let len = serde_json::to_vec(&r).unwrap().len();
        assert!(len <= MAX_REPORT_BYTES, "{len}");
        assert!(r.capture.dropped_logs > 900, "{}", r.capture.dropped_logs);
        assert!(r.capture.logs.last().unwrap().message.starts_with("…[dropped"));
    }

    #[test]
    fn steps_at_their_bounds_are_kept_whole_and_the_report_still_fits() {
        use eddy_runtime_js::capture::{
            MAX_STEP_BYTES, MAX_STEP_ERROR_BYTES, MAX_STEP_NAME_BYTES, MAX_STEPS, StepRecord, StepStatus,
        };
        let line = LogLine {
            time: String::new(),
            level: "log".into(),
            message: "\u{1}".repeat(8 * 1024),
        };
        let mut r = InvocationReport {
            handler: "h".into(),
            outcome: Outcome::Failure(failure(big_failure(), &|s| s.to_owned())),
            started_at: String::new(),
            duration_ms: 0.0,
            capture: Capture::default(),
        };
        r.capture.logs = vec![line; 1000];
        let result = serde_json::json!("\u{1}".repeat(MAX_STEP_BYTES / MAX_STEPS / 8));
        let step = |n: usize| StepRecord {
            name: format!("{n:0>width$}", width = MAX_STEP_NAME_BYTES),
            status: if n.is_multiple_of(2) {
                StepStatus::Ran
            } else {
                StepStatus::Failed
            },
            duration_ms: 1.0,
            result: n.is_multiple_of(2).then(|| result.clone()),
            error: (!n.is_multiple_of(2)).then(|| "\u{1}".repeat(MAX_STEP_ERROR_BYTES)),
        };
        r.capture.steps = (0..MAX_STEPS).map(step).collect();
        r.capture.step_bytes = MAX_STEP_BYTES;
        assert!(size_at_most(&r) >= json_len(&r));
        report(&mut r);
        assert_eq!(r.capture.steps.len(), MAX_STEPS);
        assert!(json_len(&r) <= MAX_REPORT_BYTES, "{}", json_len(&r));
    }
}
