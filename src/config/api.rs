//! `[api]`: how eddy's own admin API may be exposed; `[replay]`: when `eddy replay` asks first.

use serde::Deserialize;

/// `[api]`: exposure rules of the admin API (its token is `api_token`, at the top level).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Serve the API on a non-loopback address without a token. Off by default: without a
    /// token anyone who reaches the address could read, replay, edit and delete events.
    pub allow_no_token: bool,
}

/// `[replay]`: how many deliveries `eddy replay` queues again from a terminal before it asks
/// for `--yes`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// Above this many deliveries (or events to backfill), a replay from a terminal needs
    /// `--yes`.
    pub confirm_above: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self { confirm_above: 100 }
    }
}
