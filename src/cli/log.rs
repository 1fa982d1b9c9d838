//! Where eddy's log lines go: the library reports through `tracing` (so an embedding
//! chooses its subscriber), and the command line writes them to stderr, one line each:
//! `pretty` (`eddy: <message> key=value ...`, for people) or `json` (one object a line, for
//! log collectors), filtered by `EDDY_LOG`, else `RUST_LOG`, else eddy's own lines at info.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Subscriber};
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

use crate::logs;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `eddy: <message> key=value ...`
    Pretty,
    /// One JSON object a line: time, level, target, message and the line's fields.
    Json,
}

impl LogFormat {
    /// Pretty when stderr is a terminal, JSON otherwise (a file, a pipe, a collector).
    fn default_for_stderr() -> LogFormat {
        if std::io::stderr().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        }
    }
}

/// What the logs show unless `EDDY_LOG` or `RUST_LOG` says otherwise: eddy's lines at info
/// and above, not its dependencies'.
const DEFAULT_FILTER: &str = "eddy=info";

/// `eddy dev` also shows unrouted events; its attempts are in its own log on stdout.
fn dev_default_filter() -> String {
    format!("{DEFAULT_FILTER},{}=debug,{}=off", logs::UNROUTED, logs::ATTEMPTS)
}

/// A log filter that does not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "{var}={value:?} is not a log filter ({reason}); write e.g. EDDY_LOG=eddy=debug or EDDY_LOG=eddy::attempts=warn"
)]
pub struct FilterError {
    var: &'static str,
    value: String,
    reason: String,
}

/// Installs the subscriber for the rest of the process: `format` (or the default for
/// stderr), and the filter of the environment or the command's default.
pub fn init(format: Option<LogFormat>, dev: bool) -> Result<(), FilterError> {
    let filter = filter(env_text("EDDY_LOG"), env_text("RUST_LOG"), dev)?;
    let layer = layer(format.unwrap_or_else(LogFormat::default_for_stderr), std::io::stderr);
    // Fails only if a subscriber is already set, which then keeps the events.
    let _ = tracing::subscriber::set_global_default(Registry::default().with(layer.with_filter(filter)));
    Ok(())
}

/// A variable's value; unset and empty both count as unset.
fn env_text(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// The filter `EDDY_LOG` names, else `RUST_LOG`, else the command's default.
fn filter(eddy_log: Option<String>, rust_log: Option<String>, dev: bool) -> Result<EnvFilter, FilterError> {
    let (var, text) = match (eddy_log, rust_log) {
        (Some(text), _) => ("EDDY_LOG", text),
        (None, Some(text)) => ("RUST_LOG", text),
        (None, None) if dev => return Ok(EnvFilter::new(dev_default_filter())),
        (None, None) => return Ok(EnvFilter::new(DEFAULT_FILTER)),
    };
    EnvFilter::builder().parse(&text).map_err(|e| FilterError {
        var,
        value: text,
        reason: e.to_string(),
    })
}

/// The formatting layer of `format`, writing to `writer`.
fn layer<W>(format: LogFormat, writer: W) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Pretty => fmt.event_format(Plain).boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    }
}

/// `eddy: ` and the event's fields (its message bare), one line per event.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write!(writer, "eddy: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    /// Collects what a layer writes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `emit` logs through a subscriber of `format` and `filter`, line by line.
    fn logged(format: LogFormat, filter: EnvFilter, emit: impl FnOnce()) -> Vec<String> {
        let sink = Sink::default();
        let writer = sink.clone();
        let layer = layer(format, move || writer.clone());
        let subscriber = Registry::default().with(layer.with_filter(filter));
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    fn default_filter() -> EnvFilter {
        filter(None, None, false).unwrap()
    }

    fn failed_attempt() {
        tracing::warn!(
            target: logs::ATTEMPTS,
            event_id = "ev_1",
            delivery_id = "dl_1",
            handler = "crm.sync",
            attempt = 2,
            "attempt failed; retry at 2026-12-07T21:00:00.000Z"
        );
    }

    #[test]
    fn pretty_lines_are_the_message_and_then_the_fields_and_dependencies_stay_quiet() {
        let lines = logged(LogFormat::Pretty, default_filter(), || {
            tracing::error!(target: "eddy::store", "store failed: {}; writes are refused", "disk");
            failed_attempt();
            tracing::debug!(target: "eddy::delivery", "below info: not printed");
            tracing::warn!(target: "hyper", "a dependency's event: not printed");
        });
        assert_eq!(
            lines,
            [
                "eddy: store failed: disk; writes are refused",
                "eddy: attempt failed; retry at 2026-12-07T21:00:00.000Z event_id=\"ev_1\" \
                 delivery_id=\"dl_1\" handler=\"crm.sync\" attempt=2",
            ]
        );
    }

    #[test]
    fn json_lines_carry_time_level_target_message_and_the_ids_as_fields() {
        let lines = logged(LogFormat::Json, default_filter(), failed_attempt);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], "eddy::attempts");
        assert_eq!(line["message"], "attempt failed; retry at 2026-12-07T21:00:00.000Z");
        assert_eq!(line["event_id"], "ev_1");
        assert_eq!(line["delivery_id"], "dl_1");
        assert_eq!(line["handler"], "crm.sync");
        assert_eq!(line["attempt"], 2);
        let time = line["timestamp"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
    }

    #[test]
    fn eddy_log_wins_over_rust_log_and_either_replaces_the_default() {
        let unrouted = || tracing::debug!(target: logs::UNROUTED, event_id = "ev_9", "no handler routes this event");
        let both = filter(Some("eddy::unrouted=debug".into()), Some("off".into()), false).unwrap();
        assert_eq!(logged(LogFormat::Pretty, both, unrouted).len(), 1);
        let rust_only = filter(None, Some("eddy=debug".into()), false).unwrap();
        assert_eq!(logged(LogFormat::Pretty, rust_only, unrouted).len(), 1);
        assert!(logged(LogFormat::Pretty, default_filter(), unrouted).is_empty());
        let quiet = filter(Some("eddy=error".into()), None, false).unwrap();
        assert!(logged(LogFormat::Pretty, quiet, failed_attempt).is_empty());
    }

    #[test]
    fn dev_shows_unrouted_events_and_leaves_attempts_to_its_own_log() {
        let dev = || filter(None, None, true).unwrap();
        let unrouted = || tracing::debug!(target: logs::UNROUTED, event_id = "ev_9", "no handler routes this event");
        assert_eq!(logged(LogFormat::Pretty, dev(), unrouted).len(), 1);
        assert!(logged(LogFormat::Pretty, dev(), failed_attempt).is_empty());
        let rejected =
            || tracing::warn!(target: logs::WEBHOOKS, source = "github", reason = "bad_signature", "webhook refused");
        assert_eq!(logged(LogFormat::Pretty, dev(), rejected).len(), 1);
    }

    #[test]
    fn a_filter_that_does_not_parse_is_refused_naming_its_variable() {
        let error = filter(Some("eddy=loud".into()), None, false).unwrap_err().to_string();
        assert!(
            error.starts_with("EDDY_LOG=\"eddy=loud\" is not a log filter"),
            "{error}"
        );
        let error = filter(None, Some("eddy=[".into()), false).unwrap_err().to_string();
        assert!(error.starts_with("RUST_LOG="), "{error}");
    }
}
