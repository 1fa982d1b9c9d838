//! `console.*` output, captured per invocation with a timestamp and secrets redacted.

use deno_core::{OpState, op2};

use crate::HostState;

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
    let redacted = host.secrets.redact(message.strip_suffix('\n').unwrap_or(message));
    if let Some(capture) = host.captures.get_mut(&invocation) {
        capture.log(level, redacted.into_owned(), limit);
    }
}
