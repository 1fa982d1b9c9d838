//! `ctx.state`: ops over the isolate's own handler namespace. The namespace comes from
//! [`HostState`], never from JavaScript, so one handler cannot name another's keys.

use std::cell::RefCell;
use std::rc::Rc;

use deno_core::{OpState, op2};

use crate::{HostState, StateBackend, StateError};

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

/// The store behind this isolate's `ctx.state`, taken out of the op state so no borrow of it
/// is held while the store answers.
fn backend(state: &Rc<RefCell<OpState>>) -> Rc<dyn StateBackend> {
    state.borrow().borrow::<HostState>().state.clone()
}

/// The JSON text stored under `key`, or null.
#[op2]
#[string]
pub async fn op_eddy_state_get(
    state: Rc<RefCell<OpState>>,
    #[string] key: String,
) -> Result<Option<String>, StateOpError> {
    let value = backend(&state).get(&key).await?;
    Ok(value.map(|v| v.to_string()))
}

/// Stores the JSON text `json` under `key`. Returns "" once written, or, when a quota
/// refused the write, its message (JS turns it into a `QuotaExceededError`).
#[op2]
#[string]
pub async fn op_eddy_state_set(
    state: Rc<RefCell<OpState>>,
    #[smi] invocation: u32,
    #[string] key: String,
    #[string] json: String,
) -> Result<String, StateOpError> {
    let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| StateOpError::Json(e.to_string()))?;
    match backend(&state).set(&key, &value).await {
        Ok(()) => {
            state.borrow_mut().borrow_mut::<HostState>().mark_written(invocation);
            Ok(String::new())
        }
        Err(StateError::Quota(message)) => Ok(message),
        Err(other) => Err(other.into()),
    }
}

/// Removes `key`; true if it existed.
#[op2]
pub async fn op_eddy_state_delete(
    state: Rc<RefCell<OpState>>,
    #[smi] invocation: u32,
    #[string] key: String,
) -> Result<bool, StateOpError> {
    let existed = backend(&state).delete(&key).await?;
    state.borrow_mut().borrow_mut::<HostState>().mark_written(invocation);
    Ok(existed)
}

/// JSON array of `{ key, value }` whose key starts with `prefix`.
#[op2]
#[string]
pub async fn op_eddy_state_list(
    state: Rc<RefCell<OpState>>,
    #[string] prefix: String,
    #[smi] limit: u32,
) -> Result<String, StateOpError> {
    let entries = backend(&state).list(&prefix, limit as usize).await?;
    let entries: Vec<_> = entries
        .into_iter()
        .map(|(key, value)| serde_json::json!({ "key": key, "value": value }))
        .collect();
    serde_json::to_string(&entries).map_err(|e| StateOpError::Json(e.to_string()))
}
