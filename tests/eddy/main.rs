//! eddy's integration tests: one binary, real handler files as fixtures, and fake
//! third-party APIs served on 127.0.0.1.

mod attacks;
mod bounds;
mod child;
mod cli;
mod crash;
mod durability;
mod edge;
mod example_mains;
mod examples;
mod faults;
mod fetch;
mod handlers;
mod hold_api;
mod hostile;
mod integrity;
mod leftovers;
mod lifecycle;
mod limits;
mod mutable;
mod neighbours;
mod network;
mod pipeline;
mod proxy;
mod proxy_paths;
mod quota;
mod remote;
mod repair;
mod scaffold;
mod scheduling;
mod secrets;
mod server_support;
mod support;
mod webhooks;
