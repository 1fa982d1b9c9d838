//! `config.allowNet`: the host names (with optional port) one handler may reach.

use url::{Host, Url};

use super::NetError;

/// One `config.allowNet` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    host: HostPattern,
    /// None: any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    /// `*`: any host; the address policy still refuses non-public ones.
    Any,
    /// `*.example.com`, stored as `.example.com` so the apex and `badexample.com` do not match.
    Suffix(String),
    /// A domain (lowercase, no trailing dot) or IP address, normalised exactly as `url` does.
    Exact(Host<String>),
}

/// How strongly `config.allowNet` grants a request, weakest first. Only a name opens the
/// networks `[net] allow_private` exempts, and only a name with the port opens eddy's own
/// listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    /// Matched by `*` or `*.example.com` only: public addresses.
    Wildcard,
    /// An entry names the host, without a port: exempted private networks too.
    Host,
    /// An entry names the host and this port: eddy's own listeners too.
    HostPort,
}

/// A handler's `config.allowNet`: host names with optional port. "api.example.com",
/// "api.example.com:8443", "*.example.com" (any subdomain, not the apex), "127.0.0.1:3000",
/// "[::1]:8080", and "*" (any public host). An entry without a port allows every port.
/// Empty list = no network at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowNet {
    entries: Vec<Entry>,
}

impl AllowNet {
    /// Parses `config.allowNet`; an invalid entry yields [`NetError::InvalidAllowNet`] naming it.
    pub fn parse(entries: &[String]) -> Result<Self, NetError> {
        let entries = entries
            .iter()
            .map(|e| {
                parse_entry(e).map_err(|reason| NetError::InvalidAllowNet {
                    entry: e.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// True if some entry matches the URL's host (case-insensitive, trailing dot ignored) and
    /// port (explicit, or the scheme's default).
    pub fn permits(&self, url: &Url) -> bool {
        self.grant(url).is_some()
    }

    /// The strongest grant of any entry matching the URL's host and port, if one does.
    pub fn grant(&self, url: &Url) -> Option<Grant> {
        let host = url.host().map(|h| normalize_host(h.to_owned()))?;
        let port = url.port_or_known_default();
        let grant_of = |e: &Entry| {
            if e.port.is_some_and(|p| Some(p) != port) {
                return None;
            }
            match &e.host {
                HostPattern::Any => Some(Grant::Wildcard),
                HostPattern::Suffix(suffix) => {
                    matches!(&host, Host::Domain(d) if d.ends_with(suffix.as_str())).then_some(Grant::Wildcard)
                }
                HostPattern::Exact(exact) if *exact == host && e.port.is_some() => Some(Grant::HostPort),
                HostPattern::Exact(exact) => (*exact == host).then_some(Grant::Host),
            }
        };
        self.entries.iter().filter_map(grant_of).max()
    }

    /// True when the handler has no network access at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn normalize_host(host: Host<String>) -> Host<String> {
    match host {
        Host::Domain(d) => Host::Domain(d.trim_end_matches('.').to_ascii_lowercase()),
        other => other,
    }
}

fn parse_entry(entry: &str) -> Result<Entry, String> {
    if entry.contains(['/', '@', '?', '#']) {
        return Err("expected a host with optional port, not a URL".into());
    }
    let (host, port) = split_host_port(entry)?;
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(domain) = host.strip_prefix("*.") {
        match parse_host(domain)? {
            Host::Domain(d) => HostPattern::Suffix(format!(".{d}")),
            _ => return Err("a wildcard needs a domain name after \"*.\"".into()),
        }
    } else {
        HostPattern::Exact(parse_host(host)?)
    };
    Ok(Entry { host, port })
}

/// Splits "host", "host:port", "[v6]" or "[v6]:port"; the host keeps its brackets for
/// `Host::parse`.
fn split_host_port(entry: &str) -> Result<(&str, Option<u16>), String> {
    // The port follows the last ':' unless that ':' belongs to a bracketed IPv6 address.
    let (host, port) = match entry.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') && (!h.contains(':') || h.ends_with(']')) => (h, Some(p)),
        _ => (entry, None),
    };
    let port = port.map(|p| match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("port {p:?} must be a number from 1 to 65535")),
    });
    Ok((host, port.transpose()?))
}

fn parse_host(host: &str) -> Result<Host<String>, String> {
    // `*` is legal in URL hosts, so reject stray wildcards ourselves ("*.*.x", "a*.x").
    if host.contains('*') {
        return Err("\"*\" is only allowed alone or as a leading \"*.\"".into());
    }
    if host.contains(':') && !host.starts_with('[') {
        return Err("IPv6 addresses must be in brackets, like \"[::1]:8080\"".into());
    }
    let parsed = Host::parse(host).map_err(|e| format!("bad host: {e}"))?;
    match normalize_host(parsed) {
        Host::Domain(d) if d.is_empty() => Err("empty host".into()),
        h => Ok(h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> impl Iterator<Item = &str> {
        s.split_whitespace()
    }
    fn allow(entries: &str) -> AllowNet {
        AllowNet::parse(&words(entries).map(String::from).collect::<Vec<_>>()).unwrap()
    }
    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn allow_net_matching() {
        let a = allow("API.Example.com. pin.example.org:8443 *.wild.dev 127.0.0.1:3000 [::1]:8080");
        let yes = "https://api.example.com/x http://API.EXAMPLE.COM.:9999/ http://[::1]:8080/
            https://pin.example.org:8443/ https://a.wild.dev/ https://a.b.wild.dev./
            http://127.0.0.1:3000/";
        let no = "https://example.com/ https://pin.example.org/ https://pin.example.org:8444/
            https://wild.dev/ https://badwild.dev/ http://127.0.0.1/ http://[::1]/
            http://127.0.0.2:3000/ https://api.example.com.evil.net/";
        for (urls, want) in [(yes, true), (no, false)] {
            for u in words(urls) {
                assert_eq!(a.permits(&url(u)), want, "{u}");
            }
        }
        assert!(allow("bücher.de").permits(&url("https://xn--bcher-kva.de/")));
        assert!(allow("*").permits(&url("https://anything.example/")));
        assert!(allow("*:443").permits(&url("https://x.example/")));
        assert!(!allow("*:443").permits(&url("http://x.example/")));
        assert!(allow("").is_empty() && !allow("*").is_empty());
    }

    #[test]
    fn grants_name_hosts_only_without_wildcards() {
        let a = allow("* *.example.com 127.0.0.1 localhost:8787 *:9000");
        let cases = [
            ("http://127.0.0.1:8787/", Some(Grant::Host)),
            ("http://localhost:8787/", Some(Grant::HostPort)),
            ("http://LOCALHOST.:8787/", Some(Grant::HostPort)),
            ("http://localhost:8788/", Some(Grant::Wildcard)),
            ("http://api.example.com/", Some(Grant::Wildcard)),
            ("http://10.0.0.1:9000/", Some(Grant::Wildcard)),
        ];
        for (u, want) in cases {
            assert_eq!(a.grant(&url(u)), want, "{u}");
        }
        assert_eq!(allow("localhost:1").grant(&url("http://localhost:2/")), None);
        assert_eq!(allow("[::1]:80").grant(&url("http://[::1]/")), Some(Grant::HostPort));
    }

    #[test]
    fn allow_net_invalid_entries() {
        let bad = "http://x||a b|*.|x.com:|x.com:0|x.com:65536|x.com:+80|::1|[::1|[::1]x|[::1]:\
            |*.*.x.com|a*.x.com|*.1.2.3.4|user@x.com|x.com/path|999.1.1.1";
        for entry in bad.split('|') {
            match AllowNet::parse(&[entry.to_string()]) {
                Err(NetError::InvalidAllowNet { entry: e, .. }) => assert_eq!(e, entry),
                other => panic!("{entry:?} gave {other:?}"),
            }
        }
        // A host of dots only trims to nothing.
        for entry in [".", "..", "*..", ".:80"] {
            let err = AllowNet::parse(&[entry.to_string()]).unwrap_err();
            assert!(
                err.to_string().contains("empty host") || err.to_string().contains("bad host"),
                "{entry:?}: {err}"
            );
        }
        let err = AllowNet::parse(&["ok.com".into(), "http://x".into()]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("invalid config.allowNet entry \"http://x\": "), "{msg}");
    }

    #[test]
    fn ipv6_ports_split_only_after_brackets() {
        // A bracketed address without a port allows every port of it.
        let a = allow("[::1]");
        assert!(a.permits(&url("http://[::1]:8080/")) && a.permits(&url("http://[::1]/")));
        assert_eq!(a.grant(&url("http://[::1]:8080/")), Some(Grant::Host));
        // An unbracketed IPv6 address is refused for its brackets, not for a "port" its last
        // group would be if the colon were read as a port separator.
        for entry in ["::1:0", "fe80::1:99999", "::ffff:127.0.0.1"] {
            match AllowNet::parse(&[entry.to_string()]) {
                Err(NetError::InvalidAllowNet { reason, .. }) => {
                    assert!(reason.contains("brackets"), "{entry:?}: {reason}")
                }
                other => panic!("{entry:?} gave {other:?}"),
            }
        }
    }
}
