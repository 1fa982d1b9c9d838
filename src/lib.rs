//! eddy: durable events routed to sandboxed JavaScript handlers.
//!
//! Module map (dependencies point downwards only):
//! - [`server`]: `eddy serve`, the composition root wiring everything below.
//! - [`api`]: the admin HTTP API (events, deliveries, handlers, health, metrics).
//! - [`ingest`]: HTTP in: `POST /events`, validated, routed, stored durably.
//! - [`cli`]: the `eddy` command line; parses flags and calls into the modules below.
//! - [`config`]: `eddy.toml`, validated at load.
//! - [`delivery`]: the queue worker: claims due deliveries, runs attempts, schedules retries;
//!   the registry of handlers in use.
//! - [`event`]: the CloudEvents-shaped [`event::Event`] and its validation.
//! - [`metrics`]: process-wide counters, rendered for `GET /metrics`.
//! - [`router`]: event type -> handler ids: patterns, the routing table, handler discovery.
//! - [`runtime`]: V8 isolates running handler modules: loading, limits, web APIs, ops.
//! - [`store`]: the only module that touches sled (handler state, metadata).

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod event;
pub mod ingest;
pub mod metrics;
pub mod router;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod store;
