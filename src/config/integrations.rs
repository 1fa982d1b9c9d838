//! `[sources.NAME]` (verified webhooks), `[secrets]` (what handlers are granted; never a
//! source's signing secret) and `[proxy]` (observing the user's own API).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use super::{Config, ConfigError};
use crate::provider::Kind;
use crate::secrets::Grant;

/// `[sources.NAME]`: serves `POST /webhooks/NAME`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// How requests are signed: github, slack, stripe or standard.
    pub kind: Kind,
    /// Name of the environment variable (or `.env` entry) holding the signing secret.
    pub secret_env: String,
}

/// `[secrets]`: what the operator grants to handlers' `config.secrets`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Names, or prefixes ending in `*`. `EDDY_*` and every `[sources]` `secret_env` are
    /// never granted, whatever a pattern covers; naming only such names is an error.
    pub allow: Vec<String>,
    /// `allow` as a grant, made once when the file is read (it needs `[sources]` too).
    #[serde(skip)]
    pub(super) grant: Grant,
}

/// The grant of `[secrets] allow`, with every source's `secret_env` reserved.
pub(super) fn secret_grant(config: &Config, path: &Path) -> Result<Grant, ConfigError> {
    let reserved = config.sources.values().map(|s| s.secret_env.clone());
    Grant::new(&config.secrets.allow, reserved).map_err(|e| invalid(path, e.to_string()))
}

/// `[proxy] upstream`: an http(s) base URL with a host and neither query nor fragment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Upstream(url::Url);

impl Upstream {
    /// Checks `text` as `[proxy] upstream` or `eddy proxy --upstream` give it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!("{text:?} must be an http:// or https:// URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{text:?} must not have a query or fragment"));
        }
        Ok(Self(url))
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl TryFrom<String> for Upstream {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text).map_err(|e| format!("proxy.upstream: {e}"))
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// `[proxy]`: forwards to `upstream` and records write requests answered 2xx as events.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Base URL of the API being observed, e.g. "http://127.0.0.1:3000"; required.
    pub upstream: Option<Upstream>,
    /// Address the proxy listens on.
    pub listen: SocketAddr,
    /// Path patterns recorded (`*` one segment, `**` any number); empty means all.
    pub include: Vec<String>,
    /// Path patterns never recorded, even when included.
    pub exclude: Vec<String>,
    /// Removed from the start of paths before naming, e.g. "/api/v1".
    pub strip_prefix: String,
    /// Path templates to resource names, e.g. "/orgs/{org}/members/{id}" = "members".
    pub resources: BTreeMap<String, String>,
    /// Most bytes of a request or response body kept in the event.
    pub max_capture_bytes: usize,
    /// How long an upstream request may take, headers and body.
    pub timeout_ms: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            upstream: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8788)),
            include: Vec::new(),
            exclude: Vec::new(),
            strip_prefix: String::new(),
            resources: BTreeMap::new(),
            max_capture_bytes: 256 * 1024,
            timeout_ms: 60_000,
        }
    }
}

/// Source names appear in URLs and event ids: keep them plain.
pub(super) fn validate_sources(sources: &BTreeMap<String, SourceConfig>, path: &Path) -> Result<(), ConfigError> {
    for (name, source) in sources {
        let plain = |s: &str, first_digit_ok: bool| {
            !s.is_empty()
                && (first_digit_ok || !s.starts_with(|c: char| c.is_ascii_digit()))
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !plain(name, true) || name.len() > 64 {
            return Err(invalid(
                path,
                format!("sources.{name}: a source name may only hold A-Z, a-z, 0-9, '_' and '-'"),
            ));
        }
        if !plain(&source.secret_env, false) || source.secret_env.contains('-') {
            return Err(invalid(
                path,
                format!(
                    "sources.{name}.secret_env: {:?} is not an environment variable name",
                    source.secret_env
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn validate_proxy(proxy: &ProxyConfig, path: &Path) -> Result<(), ConfigError> {
    if proxy.upstream.is_none() {
        let message = "proxy.upstream: missing: the base URL of the API to observe, like \"http://127.0.0.1:3000\"";
        return Err(invalid(path, message.into()));
    }
    for pattern in proxy.include.iter().chain(&proxy.exclude).chain(proxy.resources.keys()) {
        if !pattern.starts_with('/') {
            return Err(invalid(
                path,
                format!("proxy: path pattern {pattern:?} must start with '/'"),
            ));
        }
    }
    for (template, name) in &proxy.resources {
        crate::event::validate_type(name).map_err(|e| invalid(path, format!("proxy.resources.{template:?}: {e}")))?;
        // Room for the longest method suffix, ".delete", within an event type's 200.
        if name.len() > crate::event::MAX_TYPE_LEN - ".delete".len() {
            let message = format!("proxy.resources.{template:?}: a resource name may be at most 193 characters");
            return Err(invalid(path, message));
        }
    }
    if proxy.timeout_ms == 0 {
        return Err(invalid(path, "proxy.timeout_ms: must be at least 1".into()));
    }
    Ok(())
}

fn invalid(path: &Path, message: String) -> ConfigError {
    ConfigError::Parse {
        path: path.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_grants_never_cover_eddys_own_or_source_secrets() {
        let ok = "[secrets]\nallow = [\"CRM_TOKEN\", \"SLACK_*\", \"*\"]\n[sources.gh]\nkind = \"github\"\nsecret_env = \"GH_SECRET\"\n";
        let grant = Config::parse(ok, Path::new("e.toml")).unwrap().secret_grant();
        assert!(grant.allows("CRM_TOKEN") && grant.allows("SLACK_BOT_TOKEN"));
        assert!(!grant.allows("EDDY_API_TOKEN") && !grant.allows("GH_SECRET"));
        for entry in ["EDDY_API_TOKEN", "EDDY_*", "GH_SECRET"] {
            let text = ok.replace("\"*\"", &format!("{entry:?}"));
            let err = Config::parse(&text, Path::new("e.toml")).unwrap_err().to_string();
            assert!(err.contains(entry) && err.contains("[secrets] allow"), "{err}");
        }
        let err = Config::parse("[secrets]\nallow = [\"A-B\"]\n", Path::new("e.toml")).unwrap_err();
        assert!(err.to_string().contains("A-B"), "{err}");
        let err = Config::parse("[secrets]\nalow = []\n", Path::new("e.toml")).unwrap_err();
        assert!(err.to_string().contains("alow"), "{err}");
    }

    #[test]
    fn the_upstream_is_a_url_once_the_file_is_read() {
        let parse = |value: &str| Config::parse(&format!("[proxy]\nupstream = {value:?}\n"), Path::new("e.toml"));
        let proxy = parse("http://127.0.0.1:3000/api").unwrap().proxy.unwrap();
        assert_eq!(proxy.upstream.unwrap().url().path(), "/api");
        for (bad, says) in [
            ("127.0.0.1:3000", "is not a URL"),
            ("ftp://host/", "http:// or https://"),
            ("http://host/?a=1", "query or fragment"),
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("proxy.upstream: ") && err.contains(says), "{bad}: {err}");
            assert!(err.contains("line 2"), "the TOML error keeps its position: {err}");
        }
        let err = Config::parse("[proxy]\n", Path::new("e.toml")).unwrap_err().to_string();
        assert!(err.contains("proxy.upstream: missing"), "{err}");
    }
}
