//! Where eddy's own log lines go: the library reports through `tracing` (so an embedding
//! chooses its subscriber), and the command line prints each event at `info` or above as
//! one `eddy: <message>` line on stderr, the form eddy has always printed.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Prints eddy's events (not its dependencies') to stderr for the rest of the process.
pub fn init() {
    let lines = tracing_subscriber::fmt::layer()
        .event_format(Plain)
        .with_writer(std::io::stderr)
        .with_filter(Targets::new().with_target("eddy", Level::INFO));
    // Fails only if a subscriber is already set, which then keeps the events.
    let _ = tracing_subscriber::registry().with(lines).try_init();
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

    use super::*;

    /// Collects what the layer writes.
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

    #[test]
    fn eddys_events_print_as_the_lines_eddy_always_printed_and_others_do_not() {
        let sink = Sink::default();
        let writer = sink.clone();
        let layer = tracing_subscriber::fmt::layer()
            .event_format(Plain)
            .with_writer(move || writer.clone())
            .with_filter(Targets::new().with_target("eddy", Level::INFO));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "eddy::store", "store failed: {}; writes are refused", "disk");
            tracing::info!(target: "eddy::delivery", "3 deliveries interrupted by the last stop will run again");
            tracing::debug!(target: "eddy::delivery", "below info: not printed");
            tracing::warn!(target: "hyper", "a dependency's event: not printed");
        });
        let printed = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            printed,
            "eddy: store failed: disk; writes are refused\n\
             eddy: 3 deliveries interrupted by the last stop will run again\n"
        );
    }
}
