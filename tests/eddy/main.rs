//! eddy's integration tests: one binary, real handler files as fixtures, and fake
//! third-party APIs served on 127.0.0.1.

mod attacks;
mod auth;
mod bounds;
mod cli;
mod crash;
mod edge;
mod examples;
mod faults;
mod fetch;
mod handlers;
mod hostile;
mod integrity;
mod leftovers;
mod limits;
mod mutable;
mod neighbours;
mod network;
mod pipeline;
mod proxy;
mod proxy_edges;
mod proxy_paths;
mod quota;
mod raw_http;
mod redaction;
mod reload;
mod remote;
mod repair;
mod scaffold;
mod secrets;
mod server_support;
mod support;
mod webhooks;
