//! eddy's JavaScript environment for handlers: the `runtime-js/` glue and the ops it calls,
//! one file per domain (`console`, `crypto`, `fetch`, `invoke`, `state`).
//!
//! This crate is separate from eddy so that eddy's build script can evaluate the JS into the
//! startup snapshot with the very ops the isolates later run with. Ops reach the host only
//! through [`HostState`], which the embedder puts in `OpState`; nothing here reads globals,
//! the environment or the file system.

pub mod capture;
pub mod limits;
pub mod net;
mod ops;
pub mod secrets;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use deno_core::CancelHandle;

pub use capture::{Capture, FetchRecord, LogLine};
pub use ops::fetch::{HttpClient, HttpSettings};
pub use secrets::{Secrets, ValueForms};

use net::AllowNet;

deno_core::extension!(
    eddy,
    deps = [deno_webidl, deno_web],
    ops = [
        ops::console::op_eddy_console_write,
        ops::crypto::op_eddy_crypto_random_uuid,
        ops::crypto::op_eddy_crypto_fill_random,
        ops::crypto::op_eddy_crypto_digest,
        ops::crypto::op_eddy_crypto_hmac_sign,
        ops::crypto::op_eddy_crypto_hmac_verify,
        ops::fetch::op_eddy_fetch_send,
        ops::fetch::op_eddy_fetch_cancel_handle,
        ops::invoke::op_eddy_invocation_done,
        ops::state::op_eddy_state_get,
        ops::state::op_eddy_state_set,
        ops::state::op_eddy_state_delete,
        ops::state::op_eddy_state_list,
        ops::steps::op_eddy_step_check,
        ops::steps::op_eddy_step_recall,
        ops::steps::op_eddy_step_ran,
        ops::steps::op_eddy_step_failed,
    ],
    esm_entry_point = "ext:eddy/00_bootstrap.js",
    esm = [
        "00_bootstrap.js",
        "10_console.js",
        "20_headers.js",
        "21_body.js",
        "21_request_options.js",
        "22_request.js",
        "23_response.js",
        "26_fetch.js",
        "28_timers.js",
        "30_invoke.js",
        "40_crypto.js",
        "41_subtle.js",
    ],
);

/// The extensions of every isolate, in load order; the snapshot and the isolates made from
/// it must be given the same list.
pub fn extensions() -> Vec<deno_core::Extension> {
    vec![
        deno_webidl::deno_webidl::init(),
        deno_web::deno_web::init(
            Arc::new(deno_web::BlobStore::default()),
            None,
            false,
            deno_web::InMemoryBroadcastChannel::default(),
        ),
        eddy::init(),
    ]
}

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The caller's mistake (key too long, value too large): a `TypeError` in JS.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("{0}")]
    Failed(String),
    /// The write would take the handler over an operator quota; nothing was written. A
    /// `QuotaExceededError` `DOMException` in JS.
    #[error("{0}")]
    Quota(String),
}

/// What a state operation returns: a store over the network answers later, an embedded one
/// at once (the op then completes in the call, as a synchronous one would).
pub type StateFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + 'a>>;

/// One handler's durable key/value namespace, as `ctx.state` sees it.
pub trait StateBackend {
    /// The value under `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> StateFuture<'a, Option<serde_json::Value>>;
    /// Stores `value` under `key`.
    fn set<'a>(&'a self, key: &'a str, value: &'a serde_json::Value) -> StateFuture<'a, ()>;
    /// Removes `key`; true if it existed.
    fn delete<'a>(&'a self, key: &'a str) -> StateFuture<'a, bool>;
    /// `(key, value)` pairs whose key starts with `prefix`, in key order, at most `limit`.
    fn list<'a>(&'a self, prefix: &'a str, limit: usize) -> StateFuture<'a, Vec<(String, serde_json::Value)>>;
}

/// What one isolate's ops may touch: its own handler's state, secrets and network grant,
/// and the capture buffers of its in-flight invocations.
pub struct HostState {
    /// This handler's state namespace and nothing else (shared with the state ops in flight).
    pub state: Rc<dyn StateBackend>,
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
    /// Invocations that ended since the host last looked: (id, "" or failure JSON).
    pub finished: Vec<(u32, String)>,
    /// Live invocations (0: loading the module), each with the handle that ends its fetches.
    pub live: HashMap<u32, Rc<CancelHandle>>,
}

impl HostState {
    /// Marks invocation `id` live: its fetches run until [`HostState::end_invocation`].
    pub fn begin_invocation(&mut self, id: u32) {
        self.live.insert(id, Rc::new(CancelHandle::new()));
    }

    /// Ends every fetch of invocation `id` (dropping its requests and responses, which closes
    /// their connections) and refuses the ones it would start later.
    pub fn end_invocation(&mut self, id: u32) {
        if let Some(handle) = self.live.remove(&id) {
            handle.cancel();
        }
    }

    /// The handle that ends invocation `id`'s fetches; `None` once it ended.
    fn invocation_cancel(&self, id: u32) -> Option<Rc<CancelHandle>> {
        self.live.get(&id).cloned()
    }

    /// Notes that `invocation` changed state, so its report waits for a flush.
    fn mark_written(&mut self, invocation: u32) {
        if let Some(capture) = self.captures.get_mut(&invocation) {
            capture.state_writes += 1;
        }
    }
}
