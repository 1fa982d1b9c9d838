//! Network policy for handler `fetch`: owns the decision of where a handler may connect.
//!
//! Three layers, all enforced before a socket is opened:
//! - [`AllowNet`], a handler's `config.allowNet`, says which host names and ports it may reach;
//! - [`NetPolicy`], the operator's `[net] allow_private`, refuses loopback, private, link-local,
//!   metadata and other non-public addresses unless a CIDR exempts them;
//! - [`GuardedResolver`] applies [`NetPolicy`] to DNS answers, so the address that was checked
//!   is the address connected to (no rebinding window between check and connect).
//!
//! IP-literal hosts never reach the resolver, so [`check_target`] must run for every request and
//! every redirect hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a connection was refused or a policy could not be built.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum NetError {
    /// A `config.allowNet` entry could not be parsed.
    #[error("invalid config.allowNet entry {entry:?}: {reason}")]
    InvalidAllowNet { entry: String, reason: String },
    /// The URL scheme is not http or https.
    #[error("scheme \"{0}:\" is not allowed: fetch only supports http: and https:")]
    Scheme(String),
    /// `config.allowNet` is empty, so the handler has no network access at all.
    #[error("network access is disabled for this handler: config.allowNet is empty")]
    NetworkDisabled,
    /// The host and port are not listed in `config.allowNet`.
    #[error("{host}:{port} is not permitted by config.allowNet")]
    HostNotAllowed { host: String, port: u16 },
    /// An IP-literal target is in a forbidden address class.
    #[error("connection to {ip} refused: {kind} {EXEMPT_HINT}")]
    Forbidden { ip: IpAddr, kind: &'static str },
    /// Every address a host name resolved to is in a forbidden address class; `ip` is the first.
    #[error("connection to {host} ({ip}) refused: {kind} {EXEMPT_HINT}")]
    ResolvedForbidden {
        host: String,
        ip: IpAddr,
        kind: &'static str,
    },
    /// The host name did not resolve to any address.
    #[error("could not resolve {host}: {detail}")]
    NoAddress { host: String, detail: String },
}

const EXEMPT_HINT: &str = "(exempt it with [net] allow_private in eddy.toml)";

/// Operator-wide policy: which otherwise-forbidden addresses are exempted
/// (`[net] allow_private` in eddy.toml).
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    allow_private: Vec<IpNet>,
}

impl NetPolicy {
    /// Builds a policy exempting the given CIDRs from the forbidden address classes.
    pub fn new(allow_private: Vec<IpNet>) -> Self {
        Self { allow_private }
    }

    /// Ok if a connection to `ip` is allowed.
    ///
    /// Addresses that embed an IPv4 address are judged by that address, and an exemption
    /// matches either form, so `127.0.0.1/32` also exempts `::ffff:127.0.0.1`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), NetError> {
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let exempt = |a: IpAddr| self.allow_private.iter().any(|net| net.contains(&a));
        if exempt(ip) || embedded.is_some_and(exempt) {
            return Ok(());
        }
        match classify(embedded.unwrap_or(ip)) {
            Some(kind) => Err(NetError::Forbidden { ip, kind }),
            None => Ok(()),
        }
    }
}

/// The forbidden class `ip` belongs to, or None for a public address.
fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b) {
        _ if ip.is_unspecified() => "unspecified address",
        (0, _) => "\"this network\" address",
        (127, _) => "loopback address",
        (10, _) | (172, 16..=31) | (192, 168) => "private address",
        (100, 64..=127) => "carrier-grade NAT address",
        // Metadata endpoints hand out cloud credentials: name them so operators see the stakes.
        (169, 254) if matches!((c, d), (169, 254) | (170, 2)) => "cloud metadata address",
        (169, 254) => "link-local address",
        (224..=239, _) => "multicast address",
        _ if ip.is_broadcast() => "broadcast address",
        (240..=255, _) => "reserved address",
        (198, 18..=19) => "benchmarking address",
        (192, 0) if c == 0 => "IETF protocol assignment address",
        _ => return None,
    })
}

/// AWS's IPv6 instance metadata endpoint, fd00:ec2::254.
const AWS_V6_METADATA: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    Some(match ip.segments()[0] {
        _ if ip.is_unspecified() => "unspecified address",
        _ if ip.is_loopback() => "loopback address",
        _ if ip == AWS_V6_METADATA => "cloud metadata address",
        0xfc00..=0xfdff => "unique-local address",
        0xfe80..=0xfebf => "link-local address",
        0xfec0..=0xfeff => "site-local address",
        0xff00..=0xffff => "multicast address",
        _ => return None,
    })
}

/// The IPv4 address carried inside an IPv6 address, for the forms a stack or gateway may
/// translate to an IPv4 connection: mapped, translated, compatible, NAT64 and 6to4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // :: and ::1 are IPv6's own unspecified and loopback, not IPv4-compatible addresses.
        _ if ip.is_unspecified() || ip.is_loopback() => None,
        [0, 0, 0, 0, 0, 0xffff, hi, lo]
        | [0, 0, 0, 0, 0xffff, 0, hi, lo]
        | [0, 0, 0, 0, 0, 0, hi, lo]
        | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo]
        | [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

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
        let Some(host) = url.host().map(|h| normalize_host(h.to_owned())) else {
            return false;
        };
        let port = url.port_or_known_default();
        self.entries.iter().any(|e| {
            let host_ok = match &e.host {
                HostPattern::Any => true,
                HostPattern::Suffix(suffix) => {
                    matches!(&host, Host::Domain(d) if d.ends_with(suffix.as_str()))
                }
                HostPattern::Exact(exact) => *exact == host,
            };
            host_ok && e.port.is_none_or(|p| Some(p) == port)
        })
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

/// Full pre-connection check for one request or redirect hop: scheme must be http or https
/// (file:, data:, ftp:, blob: ... refused with a clear message), host must be permitted by
/// `allow`, and if the host is an IP literal it must pass `policy.check_ip`.
pub fn check_target(url: &Url, allow: &AllowNet, policy: &NetPolicy) -> Result<(), NetError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NetError::Scheme(url.scheme().to_owned()));
    }
    if allow.is_empty() {
        return Err(NetError::NetworkDisabled);
    }
    if !allow.permits(url) {
        return Err(NetError::HostNotAllowed {
            host: url.host_str().unwrap_or_default().to_owned(),
            port: url.port_or_known_default().unwrap_or_default(),
        });
    }
    match url.host() {
        Some(Host::Ipv4(v4)) => policy.check_ip(v4.into()),
        Some(Host::Ipv6(v6)) => policy.check_ip(v6.into()),
        // Domain names are checked after resolution, by GuardedResolver.
        _ => Ok(()),
    }
}

/// A reqwest DNS resolver that resolves with `tokio::net::lookup_host` and returns only the
/// addresses that pass [`NetPolicy::check_ip`], so the connection goes to the checked address.
/// If every address is refused it fails with a [`NetError`] (find it with [`find_net_error`]).
pub struct GuardedResolver {
    policy: Arc<NetPolicy>,
}

impl GuardedResolver {
    /// Builds a resolver enforcing `policy`.
    pub fn new(policy: Arc<NetPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let no_address = |detail: String| NetError::NoAddress {
                host: host.clone(),
                detail,
            };
            let resolved = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| no_address(e.to_string()))?;
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .filter(|addr| match policy.check_ip(addr.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if !allowed.is_empty() {
                return Ok(Box::new(allowed.into_iter()) as Addrs);
            }
            // Name the first refused address: it tells the operator what to exempt.
            let err = match refused {
                Some(NetError::Forbidden { ip, kind }) => NetError::ResolvedForbidden { host, ip, kind },
                _ => no_address("no addresses found".into()),
            };
            Err(Box::new(err) as _)
        })
    }
}

/// Walk an error's source() chain and return the NetError inside, if any (reqwest wraps
/// resolver errors).
pub fn find_net_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a NetError> {
    std::iter::successors(Some(err), |e| e.source()).find_map(|e| e.downcast_ref::<NetError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> impl Iterator<Item = &str> {
        s.split_whitespace()
    }
    fn policy(cidrs: &str) -> NetPolicy {
        NetPolicy::new(words(cidrs).map(|c| c.parse().unwrap()).collect())
    }
    fn allow(entries: &str) -> AllowNet {
        AllowNet::parse(&words(entries).map(String::from).collect::<Vec<_>>()).unwrap()
    }
    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // "kind = addresses". IPv6 forms embedding IPv4 (mapped, translated, compatible, NAT64,
    // 6to4) are judged by the IPv4 address inside.
    const FORBIDDEN: &str = "
        loopback address = 127.0.0.1 127.255.0.9 ::1 ::ffff:127.0.0.1 ::127.0.0.1 2002:7f00:1::
        loopback address = 64:ff9b::7f00:1 ::ffff:7f00:1
        unspecified address = 0.0.0.0 :: ::ffff:0.0.0.0
        \"this network\" address = 0.1.2.3 0.255.255.255
        private address = 10.1.2.3 172.16.0.1 172.31.255.255 192.168.1.1 ::ffff:0:10.0.0.1
        private address = ::10.0.0.1 64:ff9b::192.168.0.1 2002:c0a8:101::
        carrier-grade NAT address = 100.64.0.1 100.127.255.255 ::ffff:100.64.0.1
        link-local address = 169.254.1.1 fe80::1 febf::1
        cloud metadata address = 169.254.169.254 169.254.170.2 fd00:ec2::254
        cloud metadata address = ::ffff:169.254.169.254 2002:a9fe:a9fe::1 64:ff9b::a9fe:aa02
        multicast address = 224.0.0.1 239.255.255.250 ff02::1 ::ffff:224.0.0.1
        broadcast address = 255.255.255.255
        reserved address = 240.0.0.1 255.255.255.254
        benchmarking address = 198.18.0.1 198.19.255.255
        IETF protocol assignment address = 192.0.0.8
        unique-local address = fc00::1 fd12:3456::1 fd00:ec2::253
        site-local address = fec0::1 feff::1";
    const PUBLIC: &str = "1.1.1.1 8.8.8.8 172.15.255.255 172.32.0.1 100.63.255.255 100.128.0.1
        198.17.255.255 198.20.0.1 192.0.1.1 192.169.0.1 2606:4700::1111 ::ffff:8.8.8.8
        64:ff9b::808:808 2002:808:808::1";

    #[test]
    fn address_classes() {
        let p = NetPolicy::default();
        for (kind, ips) in FORBIDDEN.lines().filter_map(|l| l.split_once(" = ")) {
            for ip in words(ips).map(ip) {
                let want = Err(NetError::Forbidden { ip, kind: kind.trim() });
                assert_eq!(p.check_ip(ip), want, "{ip}");
            }
        }
        for ip in words(PUBLIC).map(ip) {
            assert_eq!(p.check_ip(ip), Ok(()), "{ip}");
        }
    }

    #[test]
    fn exemptions() {
        let p = policy("127.0.0.1/32 10.0.0.0/8 fd00::/8");
        for s in words("127.0.0.1 ::ffff:127.0.0.1 64:ff9b::7f00:1 10.9.9.9 fd00:ec2::254 fd9::1") {
            assert_eq!(p.check_ip(ip(s)), Ok(()), "{s}");
        }
        for s in words("127.0.0.2 ::1 192.168.0.1 fc00::1 169.254.169.254 ::ffff:127.0.0.2") {
            assert!(p.check_ip(ip(s)).is_err(), "{s}");
        }
        let err = NetPolicy::default().check_ip(ip("127.0.0.1")).unwrap_err();
        let want = "connection to 127.0.0.1 refused: loopback address \
            (exempt it with [net] allow_private in eddy.toml)";
        assert_eq!(err.to_string(), want);
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
    fn allow_net_invalid_entries() {
        let bad = "http://x||a b|*.|x.com:|x.com:0|x.com:65536|x.com:+80|::1|[::1|[::1]x|[::1]:\
            |*.*.x.com|a*.x.com|*.1.2.3.4|user@x.com|x.com/path|999.1.1.1";
        for entry in bad.split('|') {
            match AllowNet::parse(&[entry.to_string()]) {
                Err(NetError::InvalidAllowNet { entry: e, .. }) => assert_eq!(e, entry),
                other => panic!("{entry:?} gave {other:?}"),
            }
        }
        let err = AllowNet::parse(&["ok.com".into(), "http://x".into()]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("invalid config.allowNet entry \"http://x\": "), "{msg}");
    }

    type BoxError = Box<dyn std::error::Error + Send + Sync>;

    fn target(u: &str, allow_net: &str, cidrs: &str) -> Result<(), NetError> {
        check_target(&url(u), &allow(allow_net), &policy(cidrs))
    }

    #[test]
    fn check_target_rules() {
        for u in words("file:///etc/passwd data:text/plain,hi ftp://a.com/ blob:https://a.com/x") {
            let want = Err(NetError::Scheme(url(u).scheme().into()));
            assert_eq!(target(u, "*", ""), want, "{u}");
        }
        let msg = target("file:///etc/passwd", "*", "").unwrap_err().to_string();
        let want = "scheme \"file:\" is not allowed: fetch only supports http: and https:";
        assert_eq!(msg, want);
        assert_eq!(target("https://a.com/", "", ""), Err(NetError::NetworkDisabled));
        let err = target("https://b.com/", "a.com", "").unwrap_err();
        let want = NetError::HostNotAllowed {
            host: "b.com".into(),
            port: 443,
        };
        assert_eq!(err, want);
        assert!(err.to_string().contains("config.allowNet"), "{err}");
        for (u, allow_net) in [("https://a.com/", "a.com"), ("http://8.8.8.8/", "*")] {
            assert_eq!(target(u, allow_net, ""), Ok(()), "{u}");
        }
        // The url crate normalises odd IPv4 spellings to 127.0.0.1; all must still be refused.
        let sneaky = "http://2130706433/ http://0x7f.1/ http://127.1/ http://0177.0.0.1/
            http://[::ffff:7f00:1]/ http://[::1]:8080/ http://169.254.169.254/latest/meta-data/
            http://[fd00:ec2::254]/ http://0/";
        for u in words(sneaky) {
            let res = target(u, "*", "");
            assert!(matches!(res, Err(NetError::Forbidden { .. })), "{u}: {res:?}");
        }
        let res = target("http://0x7f.1:3000/", "127.0.0.1:3000", "127.0.0.0/8");
        assert_eq!(res, Ok(()));
    }

    async fn resolve_localhost(cidrs: &str) -> Result<Vec<SocketAddr>, BoxError> {
        let resolver = GuardedResolver::new(Arc::new(policy(cidrs)));
        Ok(resolver.resolve("localhost".parse().unwrap()).await?.collect())
    }

    #[tokio::test]
    async fn resolver_refuses_loopback_by_default() {
        let err = resolve_localhost("").await.expect_err("localhost must be refused");
        let net = find_net_error(&*err).expect("a NetError in the chain");
        assert!(matches!(net, NetError::ResolvedForbidden { host, .. } if host == "localhost"));
        let msg = net.to_string();
        assert!(msg.starts_with("connection to localhost ("), "{msg}");
    }

    #[tokio::test]
    async fn resolver_allows_exempted_loopback() {
        let addrs = resolve_localhost("127.0.0.0/8 ::1/128").await.unwrap();
        assert!(!addrs.is_empty(), "no addresses");
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    /// Through a real client: reqwest keeps the NetError in its error chain. Nothing is
    /// connected to, because resolution fails first.
    #[tokio::test]
    async fn reqwest_surfaces_resolver_refusal() {
        let resolver = Arc::new(GuardedResolver::new(Arc::default()));
        let builder = reqwest::Client::builder().no_proxy().dns_resolver(resolver);
        let err = builder
            .build()
            .unwrap()
            .get("http://localhost:9/")
            .send()
            .await
            .unwrap_err();
        let net = find_net_error(&err).expect("NetError inside reqwest::Error");
        assert!(matches!(net, NetError::ResolvedForbidden { .. }), "{net:?}");
    }
}
