//! What one invocation printed and fetched, kept for its report, within fixed bounds: a
//! handler cannot make its report, or the attempt record stored from it, grow without end.
//! Texts arrive here already redacted, so a cut never leaves part of a secret behind.

use serde::Serialize;

/// Most console lines kept per invocation (besides `[runtime] max_log_bytes` in all).
pub const MAX_LOG_LINES: usize = 1000;
/// Longest console line kept; longer ones are cut with a marker.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Most fetch records kept per invocation.
pub const MAX_FETCH_RECORDS: usize = 100;
/// Longest URL kept in a fetch record.
pub const MAX_URL_BYTES: usize = 4 * 1024;
/// Longest error kept in a fetch record.
pub const MAX_FETCH_ERROR_BYTES: usize = 2 * 1024;

/// `text` cut to at most `limit` bytes on a character boundary, followed by a marker
/// `…[truncated N bytes]` that says how much was cut; unchanged when it fits.
pub fn truncate(mut text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let removed = text.len() - cut;
    text.truncate(cut);
    text.push_str(&format!("…[truncated {removed} bytes]"));
    text
}

/// One console line.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogLine {
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// `debug`, `info`, `log`, `warn` or `error`.
    pub level: String,
    pub message: String,
}

/// One HTTP exchange (one hop of a fetch).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FetchRecord {
    pub method: String,
    pub url: String,
    /// Absent when no response arrived.
    pub status: Option<u16>,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a `429` or `503` answer's `Retry-After` asked for, in ms from its arrival.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Of `duration_ms`, the time spent waiting for the host's turn under its limits or
    /// pause (`[limits]`); absent when it went at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<f64>,
}

/// Most bytes of JSON one delivery's step results may hold, recalled and new together: they
/// are stored with its attempts and handed back to later ones.
pub const MAX_STEP_BYTES: usize = 256 * 1024;
/// Most steps recorded per invocation. With the budget of results and the bounds of names
/// and errors, the steps of a report always fit in it (the report drops console lines and
/// fetch records first, never steps, which later attempts recall).
pub const MAX_STEPS: usize = 100;
/// Longest error kept for a step that threw.
pub const MAX_STEP_ERROR_BYTES: usize = 512;
/// Longest step name.
pub const MAX_STEP_NAME_BYTES: usize = 256;

/// How a step of `ctx.step` went in this invocation.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Its function ran and returned: its result is recorded.
    Ran,
    /// A result recorded by an earlier attempt was returned; the function did not run.
    Recalled,
    /// Its function threw: it runs again in the next attempt.
    Failed,
}

/// One `ctx.step` of an invocation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepRecord {
    pub name: String,
    pub status: StepStatus,
    pub duration_ms: f64,
    /// The JSON result, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// What it threw, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Output captured for one invocation, bounded in size.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Capture {
    pub logs: Vec<LogLine>,
    pub fetches: Vec<FetchRecord>,
    /// Lines and records dropped because a limit was reached (the two counts below).
    pub dropped: usize,
    /// Console lines dropped.
    pub dropped_logs: usize,
    /// Fetch records dropped.
    pub dropped_fetches: usize,
    /// `ctx.step` calls, in the order they ended (or were recalled).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRecord>,
    /// Bytes of step results recalled or recorded, against [`MAX_STEP_BYTES`].
    #[serde(skip)]
    pub step_bytes: usize,
    /// Results earlier attempts recorded, by step name, as JSON text; a step takes its own
    /// out when it is recalled.
    #[serde(skip)]
    pub recalled: std::collections::HashMap<String, String>,
    /// `ctx.state.set`/`delete` calls; a report with writes waits for a store flush.
    #[serde(skip)]
    pub state_writes: usize,
    #[serde(skip)]
    log_bytes: usize,
}

impl Capture {
    /// Keeps a console line, cut to [`MAX_LINE_BYTES`], unless [`MAX_LOG_LINES`] lines or
    /// `limit` bytes of lines were kept already.
    pub fn log(&mut self, level: &str, message: String, limit: usize) {
        let message = truncate(message, MAX_LINE_BYTES);
        if self.logs.len() >= MAX_LOG_LINES || self.log_bytes + message.len() > limit {
            self.drop_log();
            return;
        }
        self.log_bytes += message.len();
        self.logs.push(LogLine {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            level: level.to_owned(),
            message,
        });
    }

    /// Keeps a fetch record, its URL and error cut to their limits, up to
    /// [`MAX_FETCH_RECORDS`].
    pub fn fetch(&mut self, mut record: FetchRecord) {
        if self.fetches.len() >= MAX_FETCH_RECORDS {
            self.drop_fetch();
            return;
        }
        record.url = truncate(record.url, MAX_URL_BYTES);
        record.error = record.error.map(|e| truncate(e, MAX_FETCH_ERROR_BYTES));
        self.fetches.push(record);
    }

    /// Counts one more console line as dropped.
    pub fn drop_log(&mut self) {
        self.dropped_logs += 1;
        self.dropped += 1;
    }

    /// Counts one more fetch record as dropped.
    pub fn drop_fetch(&mut self) {
        self.dropped_fetches += 1;
        self.dropped += 1;
    }

    /// Ends the capture: when lines were dropped, a last line says how many, so a reader of
    /// the console output sees it was cut.
    pub fn close(&mut self) {
        if self.dropped_logs == 0 {
            return;
        }
        let fetches = match self.dropped_fetches {
            0 => String::new(),
            n => format!(" and {n} fetch records"),
        };
        self.logs.push(LogLine {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            level: "warn".to_owned(),
            message: format!(
                "…[dropped {} console lines{fetches}: capture limit reached]",
                self.dropped_logs
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_bounded_in_bytes() {
        let mut c = Capture::default();
        c.log("log", "a".repeat(60), 100);
        c.log("warn", "b".repeat(60), 100);
        c.log("error", "c".repeat(40), 100);
        assert_eq!(c.logs.len(), 2);
        assert_eq!((c.dropped, c.dropped_logs), (1, 1));
        assert_eq!(c.logs[1].level, "error");
        c.close();
        assert_eq!(c.logs[2].message, "…[dropped 1 console lines: capture limit reached]");
    }

    #[test]
    fn lines_and_records_are_bounded_in_number_and_length() {
        let mut c = Capture::default();
        for _ in 0..MAX_LOG_LINES + 5 {
            c.log("log", "x".into(), usize::MAX);
        }
        c.log("log", "y".repeat(MAX_LINE_BYTES * 3), usize::MAX);
        assert_eq!((c.logs.len(), c.dropped_logs), (MAX_LOG_LINES, 6));
        let record = FetchRecord {
            method: "GET".into(),
            url: format!("http://x/{}", "u".repeat(MAX_URL_BYTES)),
            status: None,
            duration_ms: 0.0,
            error: Some("e".repeat(MAX_FETCH_ERROR_BYTES + 1)),
            retry_after_ms: None,
            waited_ms: None,
        };
        for _ in 0..MAX_FETCH_RECORDS + 2 {
            c.fetch(record.clone());
        }
        assert_eq!(
            (c.fetches.len(), c.dropped_fetches, c.dropped),
            (MAX_FETCH_RECORDS, 2, 8)
        );
        assert!(
            c.fetches[0].url.ends_with("…[truncated 9 bytes]"),
            "{}",
            c.fetches[0].url
        );
        assert!(c.fetches[0].error.as_deref().unwrap().ends_with("…[truncated 1 bytes]"));
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("short".into(), 5), "short");
        assert_eq!(truncate("ééé".into(), 3), "é…[truncated 4 bytes]");
        assert_eq!(truncate("abcdef".into(), 0), "…[truncated 6 bytes]");
    }
}
