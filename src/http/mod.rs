//! What eddy's HTTP faces (the admin API, the dashboard, the intakes, the proxy) share: the
//! listener with its limits (`listener.rs`), the one error answer, `{ "error", "detail" }`
//! (`error.rs`), and the comparison of a secret a request presents.
//! Knows no route and no state of the server.

mod error;
mod listener;

pub use error::ApiError;
pub use listener::{HttpLimits, serve};

/// Whether `given` is `secret`, in a time that does not depend on where they differ.
pub fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    given.len() == secret.len() && given.iter().zip(secret).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
