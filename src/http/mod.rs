//! What eddy's HTTP faces (the admin API, the dashboard, the intakes, the proxy) share: the
//! listener with its limits (`listener.rs`), the one error answer, `{ "error", "detail" }`
//! (`error.rs`), and the bearer token a request presents, with its comparison.
//! Knows no route and no state of the server.

mod error;
mod listener;

pub use error::ApiError;
pub use listener::{HttpLimits, serve};

/// The token of an `Authorization: Bearer <token>` header, if the request has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Whether `given` is `secret`, in a time that does not depend on where they differ.
pub fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    given.len() == secret.len() && given.iter().zip(secret).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
