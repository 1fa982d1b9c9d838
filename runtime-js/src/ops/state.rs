//! `ctx.state`: ops over the isolate's own handler namespace. The namespace comes from
//! [`HostState`], never from JavaScript, so one handler cannot name another's keys.

use deno_core::{OpState, op2};

use crate::{HostState, StateError};

/// A state operation that failed; surfaces in JS as the named error class.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum StateOpError {
    #[class(type)]
    #[error("ctx.state: {0}")]
    Invalid(String),
    #[class(generic)]
    #[error("ctx.state: {0}")]
    Store(String),
    #[class(type)]
    #[error("ctx.state.set: value is not valid JSON: {0}")]
    Json(String),
}

impl From<StateError> for StateOpError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Invalid(m) => Self::Invalid(m),
            StateError::Failed(m) | StateError::Quota(m) => Self::Store(m),
        }
    }
}

/// The JSON text stored under `key`, or null.
#[op2]
#[string]
pub fn op_eddy_state_get(state: &mut OpState, #[string] key: &str) -> Result<Option<String>, StateOpError> {
    let value = state.borrow::<HostState>().state.get(key)?;
    Ok(value.map(|v| v.to_string()))
}

/// Stores the JSON text `json` under `key`. Returns "" once written, or, when a quota
/// refused the write, its message (JS turns it into a `QuotaExceededError`).
#[op2]
#[string]
pub fn op_eddy_state_set(
    state: &mut OpState,
    #[smi] invocation: u32,
    #[string] key: &str,
    #[string] json: &str,
) -> Result<String, StateOpError> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| StateOpError::Json(e.to_string()))?;
    let host = state.borrow_mut::<HostState>();
    match host.state.set(key, &value) {
        Ok(()) => {
            host.mark_written(invocation);
            Ok(String::new())
        }
        Err(StateError::Quota(message)) => Ok(message),
        Err(other) => Err(other.into()),
    }
}

/// Removes `key`; true if it existed.
#[op2(fast)]
pub fn op_eddy_state_delete(
    state: &mut OpState,
    #[smi] invocation: u32,
    #[string] key: &str,
) -> Result<bool, StateOpError> {
    let host = state.borrow_mut::<HostState>();
    let existed = host.state.delete(key)?;
    host.mark_written(invocation);
    Ok(existed)
}

/// JSON array of `{ key, value }` whose key starts with `prefix`.
#[op2]
#[string]
pub fn op_eddy_state_list(
    state: &mut OpState,
    #[string] prefix: &str,
    #[smi] limit: u32,
) -> Result<String, StateOpError> {
    let entries = state.borrow::<HostState>().state.list(prefix, limit as usize)?;
    let entries: Vec<_> = entries
        .into_iter()
        .map(|(key, value)| serde_json::json!({ "key": key, "value": value }))
        .collect();
    serde_json::to_string(&entries).map_err(|e| StateOpError::Json(e.to_string()))
}
