//! `console.*` output, captured per invocation with a timestamp and secrets redacted.

use deno_core::{OpState, op2};

use crate::HostState;
use crate::capture::MAX_LOG_LINES;

/// Appends one console line to the invocation's capture; lines of invocations that already
/// ended (a timer firing late) are dropped.
#[op2(fast)]
pub fn op_eddy_console_write(
    state: &mut OpState,
    #[smi] invocation: u32,
    #[string] level: &str,
    #[string] message: &str,
) {
    let host = state.borrow_mut::<HostState>();
    let limit = host.max_log_bytes;
    let Some(capture) = host.captures.get_mut(&invocation) else {
        return;
    };
    if capture.logs.len() >= MAX_LOG_LINES {
        // Dropped anyway: spare the redaction.
        capture.drop_log();
        return;
    }
    // Redacted whole, before the line is cut, so a cut cannot leave part of a secret.
    let redacted = host.secrets.redact(message.strip_suffix('\n').unwrap_or(message));
    capture.log(level, redacted.into_owned(), limit);
}
