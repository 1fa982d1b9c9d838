//! eddy: durable events routed to sandboxed JavaScript handlers.
//!
//! Module map (dependencies point downwards only):
//! - [`cli`]: the `eddy` command line; parses flags and calls into the modules below.
//! - [`config`]: `eddy.toml`, validated at load.
//! - [`event`]: the CloudEvents-shaped [`event::Event`] and its validation.
//! - [`runtime`]: V8 isolates running handler modules: loading, limits, web APIs, ops.
//! - [`store`]: the only module that touches sled (handler state, metadata).

pub mod cli;
pub mod config;
pub mod event;
pub mod runtime;
pub mod store;
