//! eddy: durable events routed to sandboxed JavaScript handlers.
//!
//! Module map, from the top; a module uses only those below it (ARCHITECTURE.md has the
//! full picture):
//! - [`cli`]: the `eddy` command line: flags in, exit codes out; `serve` binds the listeners
//!   and calls [`server::run`].
//! - [`server`]: the composition root: [`server::run`] opens the store, builds and serves
//!   everything below, and stops it.
//! - [`api`]: the admin HTTP API (events, deliveries, replays, handlers, health, metrics).
//! - [`ingest`]: HTTP in: `POST /events`, webhooks and the proxy; validated, routed, stored.
//! - [`http`]: what the HTTP faces share: the listener with its limits, the one error answer.
//! - [`services`]: what the faces call: store, runtime, engine, replays, handlers, metrics.
//! - [`delivery`]: the queue worker: claims due deliveries, runs attempts, schedules retries;
//!   the registry of handlers in use.
//! - [`router`]: event type -> handler ids: patterns, the routing table, handler discovery.
//! - [`runtime`]: V8 isolates running handler modules: loading, limits, web APIs, ops.
//! - [`store`]: the only module that touches sled (handler state, metadata).
//!
//! Used from anywhere above them: [`config`] (`eddy.toml`, validated at load), [`event`]
//! (the CloudEvents-shaped [`event::Event`]), [`metrics`], [`logs`] (the log targets),
//! [`clock`], [`secrets`] and [`provider`] (the webhook providers).

// Library code reports through `tracing`; only the command line prints (see cli/log.rs).
#![warn(clippy::print_stderr, clippy::print_stdout)]

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod delivery;
pub mod event;
pub mod http;
pub mod ingest;
pub mod logs;
pub mod metrics;
pub mod provider;
pub mod router;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod services;
pub mod store;
