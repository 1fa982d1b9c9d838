//! `ctx.step(name, fn)`: each step's outcome goes into the invocation's capture, and a step
//! that ran has its JSON result recorded there, within a budget per delivery, so the host
//! can store it with the attempt and hand it back to later attempts instead of running the
//! step again. Results are redacted like console lines: a secret value is never stored.

use deno_core::{OpState, op2};

use crate::HostState;
use crate::capture::{
    MAX_STEP_BYTES, MAX_STEP_ERROR_BYTES, MAX_STEP_NAME_BYTES, MAX_STEPS, StepRecord, StepStatus, truncate,
};

/// Why a step's result cannot be recorded; the step's caller gets it as the error.
#[derive(Debug, thiserror::Error, deno_error::JsError)]
pub enum StepOpError {
    #[class(range)]
    #[error(
        "ctx.step({name:?}): its result is {bytes} bytes of JSON, and a delivery's step results may hold at most {MAX_STEP_BYTES} bytes ({used} used already)"
    )]
    TooLarge { name: String, bytes: usize, used: usize },
    #[class(range)]
    #[error("ctx.step: at most {MAX_STEPS} steps are recorded per attempt")]
    TooMany,
    #[class(type)]
    #[error("ctx.step: a step name is 1 to {MAX_STEP_NAME_BYTES} bytes")]
    Name,
    #[class(type)]
    #[error("ctx.step({0:?}): its result holds a secret value in a way that cannot be redacted from JSON")]
    Secret(String),
    #[class(type)]
    #[error("ctx.step: the invocation has ended")]
    Ended,
}

/// Checks a step name before its function runs.
#[op2(fast)]
pub fn op_eddy_step_check(#[string] name: &str) -> Result<(), StepOpError> {
    if name.is_empty() || name.len() > MAX_STEP_NAME_BYTES {
        return Err(StepOpError::Name);
    }
    Ok(())
}

/// The JSON result an earlier attempt recorded for step `name`, if any: the step is then
/// recorded as recalled, and its result counts toward the delivery's budget again.
#[op2]
#[string]
pub fn op_eddy_step_recall(
    state: &mut OpState,
    #[smi] invocation: u32,
    #[string] name: String,
) -> Result<Option<String>, StepOpError> {
    let capture = capture(state, invocation)?;
    let Some(json) = capture.recalled.remove(&name) else {
        return Ok(None);
    };
    capture.step_bytes += json.len();
    push(capture, record(name, StepStatus::Recalled, 0.0))?;
    Ok(Some(json))
}

/// Records step `name`'s result `json` (after `duration_ms`) and returns it as recorded,
/// secrets redacted; refused when it would take the delivery's steps over the budget.
#[op2]
#[string]
pub fn op_eddy_step_ran(
    state: &mut OpState,
    #[smi] invocation: u32,
    #[string] name: String,
    #[string] json: String,
    duration_ms: f64,
) -> Result<String, StepOpError> {
    let host = state.borrow_mut::<HostState>();
    let redacted = host.secrets.redact(&json).into_owned();
    let capture = host.captures.get_mut(&invocation).ok_or(StepOpError::Ended)?;
    let used = capture.step_bytes;
    if used + redacted.len() > MAX_STEP_BYTES {
        let bytes = redacted.len();
        return Err(StepOpError::TooLarge { name, bytes, used });
    }
    let value = serde_json::from_str(&redacted).map_err(|_| StepOpError::Secret(name.clone()))?;
    let mut step = record(name, StepStatus::Ran, duration_ms);
    step.result = Some(value);
    push(capture, step)?;
    capture.step_bytes += redacted.len();
    Ok(redacted)
}

/// Records that step `name` threw `message` after `duration_ms`.
#[op2(fast)]
pub fn op_eddy_step_failed(
    state: &mut OpState,
    #[smi] invocation: u32,
    #[string] name: String,
    #[string] message: &str,
    duration_ms: f64,
) -> Result<(), StepOpError> {
    let host = state.borrow_mut::<HostState>();
    let error = truncate(host.secrets.redact(message).into_owned(), MAX_STEP_ERROR_BYTES);
    let capture = host.captures.get_mut(&invocation).ok_or(StepOpError::Ended)?;
    let mut step = record(name, StepStatus::Failed, duration_ms);
    step.error = Some(error);
    push(capture, step)
}

fn capture(state: &mut OpState, invocation: u32) -> Result<&mut crate::capture::Capture, StepOpError> {
    let host = state.borrow_mut::<HostState>();
    host.captures.get_mut(&invocation).ok_or(StepOpError::Ended)
}

fn record(name: String, status: StepStatus, duration_ms: f64) -> StepRecord {
    StepRecord {
        name,
        status,
        duration_ms,
        result: None,
        error: None,
    }
}

fn push(capture: &mut crate::capture::Capture, step: StepRecord) -> Result<(), StepOpError> {
    if capture.steps.len() >= MAX_STEPS {
        return Err(StepOpError::TooMany);
    }
    capture.steps.push(step);
    Ok(())
}
