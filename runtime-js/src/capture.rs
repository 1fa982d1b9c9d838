//! What one invocation printed and fetched, kept for its report.

use serde::Serialize;

/// Most fetch records kept per invocation.
const MAX_FETCH_RECORDS: usize = 1000;

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
}

/// Output captured for one invocation, bounded in size.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Capture {
    pub logs: Vec<LogLine>,
    pub fetches: Vec<FetchRecord>,
    /// Lines or records dropped because a limit was reached.
    pub dropped: usize,
    /// `ctx.state.set`/`delete` calls; a report with writes waits for a store flush.
    #[serde(skip)]
    pub state_writes: usize,
    #[serde(skip)]
    log_bytes: usize,
}

impl Capture {
    /// Keeps a console line unless `limit` bytes of lines were kept already.
    pub fn log(&mut self, level: &str, message: String, limit: usize) {
        if self.log_bytes + message.len() > limit {
            self.dropped += 1;
            return;
        }
        self.log_bytes += message.len();
        self.logs.push(LogLine {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            level: level.to_owned(),
            message,
        });
    }

    /// Keeps a fetch record, up to a fixed count.
    pub fn fetch(&mut self, record: FetchRecord) {
        if self.fetches.len() >= MAX_FETCH_RECORDS {
            self.dropped += 1;
        } else {
            self.fetches.push(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_bounded() {
        let mut c = Capture::default();
        c.log("log", "a".repeat(60), 100);
        c.log("warn", "b".repeat(60), 100);
        c.log("error", "c".repeat(40), 100);
        assert_eq!(c.logs.len(), 2);
        assert_eq!(c.dropped, 1);
        assert_eq!(c.logs[1].level, "error");
    }
}
