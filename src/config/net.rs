//! `[net]`: outbound network settings for handlers' `fetch`. The `allow_private` entries
//! become networks as the file is read, so nothing after loading parses them again.

use ipnet::IpNet;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// `[net]`: outbound network settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Networks exempted from the private/loopback/link-local refusal, written as CIDRs
    /// (e.g. "127.0.0.1/32") or bare addresses.
    #[serde(deserialize_with = "allow_private")]
    pub allow_private: Vec<IpNet>,
    /// Largest response body a handler may receive.
    pub max_response_bytes: u64,
    /// Time allowed to open a connection.
    pub connect_timeout_ms: u64,
    /// Most redirects followed for one request.
    pub max_redirects: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            allow_private: Vec::new(),
            max_response_bytes: 10 * 1024 * 1024,
            connect_timeout_ms: 10_000,
            max_redirects: 10,
        }
    }
}

fn allow_private<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let parse = |entry: String| {
        entry
            .parse::<IpNet>()
            .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                let message = format!("[net] allow_private entry {entry:?} is not a CIDR (like \"127.0.0.1/32\")");
                D::Error::custom(message)
            })
    };
    Vec::<String>::deserialize(d)?.into_iter().map(parse).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn allow_private_is_parsed_at_load() {
        let text = "[net]\nallow_private = [\"127.0.0.1/32\", \"::1\", \"10.0.0.0/8\"]\n";
        let c = Config::parse(text, Path::new("e.toml")).unwrap();
        let nets: Vec<String> = c.net.allow_private.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]);
        assert!(
            Config::parse("", Path::new("e.toml"))
                .unwrap()
                .net
                .allow_private
                .is_empty()
        );
    }

    #[test]
    fn a_bad_allow_private_entry_is_refused_naming_the_key() {
        let err = Config::parse(
            "[net]\nallow_private = [\"10.0.0.0/8\", \"localhost\"]\n",
            Path::new("e.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("e.toml: "), "{err}");
        assert!(
            err.contains("[net] allow_private entry \"localhost\" is not a CIDR (like \"127.0.0.1/32\")"),
            "{err}"
        );
    }
}
