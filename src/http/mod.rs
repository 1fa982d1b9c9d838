//! What eddy's HTTP faces (the admin API, the intakes, the proxy) share: the listener with
//! its limits (`listener.rs`) and the one error answer, `{ "error", "detail" }` (`error.rs`).
//! Knows no route and no state of the server.

mod error;
mod listener;

pub use error::ApiError;
pub use listener::{HttpLimits, serve};
