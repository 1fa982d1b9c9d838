//! The webhook providers eddy verifies: the `kind` of a `[sources]` entry in `eddy.toml`
//! and the signing scheme `ingest` checks. Here, below both, so the config names exactly
//! what ingest accepts without depending on it.

/// Which provider's signing scheme a webhook endpoint expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Github,
    Slack,
    Stripe,
    Standard,
}

impl Kind {
    /// The lowercase name used in configuration, e.g. "github".
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Github => "github",
            Kind::Slack => "slack",
            Kind::Stripe => "stripe",
            Kind::Standard => "standard",
        }
    }
}
