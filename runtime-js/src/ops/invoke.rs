//! The end of an invocation, reported by the JS `invoke` when the handler's promise settles.

use deno_core::{OpState, op2};

use crate::HostState;

/// Records that invocation `id` ended: `failure` is "" for success, else the JSON
/// description of what was thrown.
#[op2(fast)]
pub fn op_eddy_invocation_done(state: &mut OpState, #[smi] id: u32, #[string] failure: String) {
    state.borrow_mut::<HostState>().finished.push((id, failure));
}
