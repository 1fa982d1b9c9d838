//! Ops: the only doors from handler JavaScript to the host, one file per domain.
//!
//! Ops reach the host only through [`HostState`], put in `OpState` when an isolate is made;
//! nothing here reads globals, the environment or the file system.

mod console;
mod crypto;
mod fetch;
mod state;

use std::collections::HashMap;
use std::sync::Arc;

pub use fetch::{HttpClient, HttpSettings};

use super::capture::Capture;
use super::net::AllowNet;
use super::secrets::Secrets;
use crate::store::HandlerState;

deno_core::extension!(
    eddy,
    deps = [deno_webidl, deno_web],
    ops = [
        console::op_eddy_console_write,
        crypto::op_eddy_crypto_random_uuid,
        crypto::op_eddy_crypto_fill_random,
        fetch::op_eddy_fetch_send,
        fetch::op_eddy_fetch_cancel_handle,
        state::op_eddy_state_get,
        state::op_eddy_state_set,
        state::op_eddy_state_delete,
        state::op_eddy_state_list,
    ],
    esm_entry_point = "ext:eddy/00_bootstrap.js",
    esm = [
        dir "runtime-js",
        "00_bootstrap.js",
        "10_console.js",
        "20_headers.js",
        "21_body.js",
        "22_request.js",
        "23_response.js",
        "26_fetch.js",
        "30_invoke.js",
        "40_crypto.js",
    ],
);

/// What one isolate's ops may touch: its own handler's state, secrets and network grant,
/// and the capture buffers of its in-flight invocations.
pub struct HostState {
    /// This handler's state namespace and nothing else.
    pub state: HandlerState,
    /// Secret values, for redaction.
    pub secrets: Arc<Secrets>,
    /// Hosts this handler may reach.
    pub allow_net: AllowNet,
    /// The process-wide HTTP client and its limits.
    pub http: Arc<HttpClient>,
    /// Output of each in-flight invocation, by invocation id.
    pub captures: HashMap<u32, Capture>,
    /// Console bytes kept per invocation.
    pub max_log_bytes: usize,
}

impl HostState {
    /// Notes that `invocation` changed state, so its report waits for a flush.
    fn mark_written(&mut self, invocation: u32) {
        if let Some(capture) = self.captures.get_mut(&invocation) {
            capture.state_writes += 1;
        }
    }
}
