//! `eddy dev`: `eddy serve` for a developer's terminal: handler files reload as they are
//! saved (as in serve), and every attempt is printed as it finishes, with its console
//! lines, fetches and failure, coloured when the terminal supports it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::clock::now_ms;
use crate::delivery::AttemptNotice;
use crate::runtime::{HandlerFailure, Outcome};
use crate::services::{self, Services};
use crate::store::NextStep;

/// When to colour the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// When stdout is a terminal and NO_COLOR is not set.
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Paint(bool);

impl Paint {
    pub fn new(choice: ColorChoice) -> Self {
        Self(choice.enabled())
    }

    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn green(self, text: &str) -> String {
        self.wrap("32;1", text)
    }
    fn yellow(self, text: &str) -> String {
        self.wrap("33;1", text)
    }
    fn red(self, text: &str) -> String {
        self.wrap("31;1", text)
    }
    fn dim(self, text: &str) -> String {
        self.wrap("2", text)
    }
    fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }
}

/// How often `eddy dev` looks at its config file.
const CONFIG_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Handler files reload by themselves; the config is read once at start. Says so, once per
/// change, when the config file changes under a running `eddy dev`, and whether the new
/// version would load.
pub fn watch_config(path: std::path::PathBuf, explicit: bool) {
    let read = |path: &std::path::Path| std::fs::read_to_string(path).ok();
    let mut seen = read(&path);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CONFIG_CHECK_EVERY).await;
            let now = read(&path);
            if now == seen {
                continue;
            }
            let file = path.display();
            // The text just read is what is checked; a file that is gone is what `load` says.
            let loaded = match &now {
                Some(text) => crate::config::Config::parse(text, &path).map(drop),
                None => crate::config::Config::load(&path, explicit).map(drop),
            };
            seen = now;
            match loaded {
                Ok(()) => tracing::warn!(
                    "{file} changed: restart eddy dev to use it (handler files reload by themselves, the config does not)"
                ),
                Err(e) => tracing::warn!(
                    "{file} changed and would not load: {}; the server keeps the config it started with",
                    crate::logs::one_line(&e.to_string())
                ),
            }
        }
    });
}

/// Prints every finished attempt and every handler (re)load until the server stops.
pub fn spawn_log(services: Arc<Services>, paint: Paint) {
    let mut attempts = services.engine.subscribe();
    tokio::spawn(async move {
        loop {
            match attempts.recv().await {
                Ok(notice) => print(&render_attempt(&notice, paint, now_ms())),
                Err(RecvError::Lagged(missed)) => {
                    print(&paint.dim(&format!("  ... {missed} attempts not shown (the log fell behind)\n")));
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
    // Held weakly, so the log lets go of the store when the server stops.
    tokio::spawn(watch_handlers(Arc::downgrade(&services), paint));
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Reports handlers as they load, reload or disappear (load errors are printed by the server).
async fn watch_handlers(services: std::sync::Weak<Services>, paint: Paint) {
    let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    while let Some(live) = services.upgrade() {
        let now: BTreeMap<String, Option<String>> = live
            .handlers
            .statuses()
            .into_iter()
            .map(|s| {
                (
                    s.id.clone(),
                    s.loaded_at.clone().map(|at| format!("{at} {}", s.routes.join(", "))),
                )
            })
            .collect();
        for (id, loaded) in &now {
            let before = seen.get(id);
            if loaded.is_some() && before != Some(loaded) {
                let verb = if before.is_some_and(Option::is_some) {
                    "reloaded"
                } else {
                    "loaded"
                };
                let routes = loaded.as_deref().and_then(|l| l.split_once(' ')).map_or("", |(_, r)| r);
                print(&format!(
                    "{} {id} {}\n",
                    paint.bold(verb),
                    paint.dim(&format!("(routes {routes})"))
                ));
            }
        }
        for id in seen.keys().filter(|id| !now.contains_key(*id)) {
            print(&format!("{} {id}\n", paint.bold("removed")));
        }
        seen = now;
        drop(live);
        tokio::time::sleep(services::RELOAD_EVERY).await;
    }
}

/// One attempt as a few readable lines.
pub fn render_attempt(notice: &AttemptNotice, paint: Paint, now: u64) -> String {
    let report = &notice.report;
    let clock = report.started_at.get(11..23).unwrap_or(&report.started_at);
    let (label, tail) = match &notice.next {
        NextStep::Succeeded => (paint.green("OK   "), String::new()),
        NextStep::Retry { due_ms, error } | NextStep::Defer { due_ms, error } => {
            let wait = due_ms.saturating_sub(now) as f64 / 1000.0;
            let asked = match notice.next {
                NextStep::Defer { .. } => ", as asked",
                _ => "",
            };
            (
                paint.yellow("RETRY"),
                format!(": {error} {}", paint.dim(&format!("(next try in {wait:.1} s{asked})"))),
            )
        }
        NextStep::Dead { error, .. } => {
            let hint = format!("(to run it again: eddy replay {})", notice.delivery_id);
            (paint.red("DEAD "), format!(": {error} {}", paint.dim(&hint)))
        }
    };
    let replay = if notice.replay { " replay" } else { "" };
    let mut out = format!(
        "{} {label} {} -> {} {}{}\n",
        paint.dim(clock),
        notice.event_type,
        paint.bold(&notice.handler),
        paint.dim(&format!(
            "#{}{replay} {:.1} ms {}",
            notice.attempt, report.duration_ms, notice.event_id
        )),
        tail,
    );
    let bar = paint.dim("  |");
    for line in &report.capture.logs {
        let _ = writeln!(
            out,
            "{bar} {} {}",
            paint.dim(&format!("{:<5}", line.level)),
            line.message
        );
    }
    for fetch in &report.capture.fetches {
        let status = match (fetch.status, &fetch.error) {
            (Some(code), _) if code < 400 => paint.green(&code.to_string()),
            (Some(code), _) => paint.red(&code.to_string()),
            (None, Some(error)) => paint.red(error),
            (None, None) => paint.red("no answer"),
        };
        let _ = writeln!(
            out,
            "{bar} {} {} {} {status} {}",
            paint.dim("fetch"),
            fetch.method,
            fetch.url,
            paint.dim(&format!("{:.0} ms", fetch.duration_ms))
        );
    }
    if let Outcome::Failure(failure) = &report.outcome {
        write_failure(&mut out, failure, &bar, paint);
    }
    out
}

/// The first stack frames of a failure, then each error of its `cause` chain on a line.
fn write_failure(out: &mut String, failure: &HandlerFailure, bar: &str, paint: Paint) {
    if let Some(stack) = &failure.stack {
        for frame in stack.lines().skip(1).take(4) {
            let _ = writeln!(out, "{bar} {}", paint.dim(frame.trim()));
        }
    }
    for cause in &failure.causes {
        let first_line = cause.message.lines().next().unwrap_or_default();
        let _ = writeln!(out, "{bar} {} {}: {first_line}", paint.dim("caused by"), cause.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{FailureKind, InvocationReport};

    fn notice(next: NextStep, outcome: Outcome) -> AttemptNotice {
        let report = InvocationReport {
            handler: "orders.created".into(),
            outcome,
            started_at: "2026-11-26T10:00:01.234Z".into(),
            duration_ms: 12.34,
            capture: Default::default(),
        };
        AttemptNotice {
            delivery_id: "d1".into(),
            event_id: "e1".into(),
            event_type: "orders.created".into(),
            handler: "orders.created".into(),
            attempt: 2,
            replay: false,
            report,
            next,
        }
    }

    #[test]
    fn success_and_retry_lines_read_plainly_without_colour() {
        let ok = render_attempt(&notice(NextStep::Succeeded, Outcome::Success), Paint(false), 0);
        assert_eq!(
            ok,
            "10:00:01.234 OK    orders.created -> orders.created #2 12.3 ms e1\n"
        );
        let failure = HandlerFailure::host(FailureKind::Error, "api answered 500");
        let retry = NextStep::Retry {
            due_ms: 6_500,
            error: "Error: api answered 500".into(),
        };
        let line = render_attempt(&notice(retry, Outcome::Failure(failure)), Paint(false), 1_000);
        assert!(
            line.starts_with("10:00:01.234 RETRY orders.created -> orders.created #2"),
            "{line}"
        );
        assert!(line.contains(": Error: api answered 500 (next try in 5.5 s)"), "{line}");
    }

    #[test]
    fn a_failure_shows_its_cause_chain() {
        let mut failure = HandlerFailure::host(FailureKind::Error, "sync failed");
        failure.causes = vec![
            crate::runtime::FailureCause {
                name: "TypeError".into(),
                message: "fetch failed\nsecond line".into(),
                stack: None,
            },
            crate::runtime::FailureCause {
                name: "Error".into(),
                message: "connection reset".into(),
                stack: None,
            },
        ];
        let dead = NextStep::Dead {
            error: "Error: sync failed".into(),
            holds_key: true,
        };
        let text = render_attempt(&notice(dead, Outcome::Failure(failure)), Paint(false), 0);
        assert!(
            text.ends_with("  | caused by TypeError: fetch failed\n  | caused by Error: connection reset\n"),
            "{text}"
        );
    }

    #[test]
    fn colour_wraps_only_when_enabled() {
        assert_eq!(Paint(true).red("x"), "\x1b[31;1mx\x1b[0m");
        assert_eq!(Paint(false).red("x"), "x");
    }
}
