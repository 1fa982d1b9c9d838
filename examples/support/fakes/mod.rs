//! Stand-ins for the services the examples talk to: real HTTP servers on 127.0.0.1:0 that
//! answer the way the real services do (auth, errors, rate limits, idempotency), so the
//! example handlers run unchanged against them and against the real thing. Each records
//! what it received, so a scenario can check the outcome rather than trust the logs.
//!
//! - [`FakeSlack`]: `chat.postMessage` and `chat.update` of the Slack Web API.
//! - [`send_github_webhook`]: delivers a payload signed the way GitHub signs webhooks.
//! - [`FakeCrm`]: a contacts API with bearer auth, `Idempotency-Key` and a 429 rate limit.
//! - [`AccountsApi`]: the "own API" of the crm-sync example, in memory.
//!
//! This file holds what the fakes share; each fake has a file of its own.

mod accounts;
mod crm;
mod github;
mod slack;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub use accounts::{AccountsApi, ApiExchange};
pub use crm::{CrmRequest, FakeCrm};
pub use github::{github_delivery_id, send_github_webhook};
pub use slack::{FakeSlack, SlackCall, SlackMessage};

type Shared<T> = Arc<Mutex<T>>;

/// A fake's state stays usable after a panic elsewhere: every update is one whole step.
fn lock<T>(shared: &Mutex<T>) -> MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves `router` on a fresh loopback port for as long as the tokio runtime lives.
async fn serve(router: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

/// An HTTP client for loopback servers. Proxy settings in the environment are ignored:
/// a proxy would not reach 127.0.0.1 of this machine.
pub fn local_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
