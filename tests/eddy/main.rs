//! eddy's integration tests: one binary, real handler files as fixtures, and fake
//! third-party APIs served on 127.0.0.1.

mod attacks;
mod bounds;
mod cli;
mod crash;
mod examples;
mod faults;
mod fetch;
mod handlers;
mod hostile;
mod limits;
mod mutable;
mod neighbours;
mod pipeline;
mod proxy;
mod remote;
mod repair;
mod scaffold;
mod secrets;
mod server_support;
mod support;
mod webhooks;
