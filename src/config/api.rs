//! `[api]`: how eddy's own admin API may be exposed.

use serde::Deserialize;

/// `[api]`: exposure rules of the admin API (its token is `api_token`, at the top level).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Serve the API on a non-loopback address without a token. Off by default: without a
    /// token anyone who reaches the address could read, replay, edit and delete events.
    pub allow_no_token: bool,
}
