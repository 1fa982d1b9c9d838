//! Network policy for handler `fetch`: owns the decision of where a handler may connect.
//!
//! Three layers, all enforced before a socket is opened:
//! - [`AllowNet`], a handler's `config.allowNet`, says which host names and ports it may reach;
//! - [`NetPolicy`], the operator's `[net] allow_private`, refuses loopback, private, link-local,
//!   metadata and other non-public addresses unless a CIDR exempts them, and then only for
//!   hosts `allowNet` names without a wildcard; it also refuses eddy's own listeners
//!   ([`OwnListeners`]) unless `allowNet` names their exact host and port;
//! - [`GuardedResolver`] applies [`NetPolicy`] to DNS answers, so the address that was checked
//!   is the address connected to (no rebinding window between check and connect).
//!
//! IP-literal hosts never reach the resolver, so [`check_target`] must run for every request and
//! every redirect hop. It answers the [`Route`] the request must take: each route has its
//! own client, resolver and connection pool, so a connection opened for a handler that named
//! a host is never reused for one that did not.

mod address;
mod allow;
mod listeners;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

pub use address::NetPolicy;
pub use allow::{AllowNet, Grant};
pub use listeners::OwnListeners;

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
    /// An exempted address that `config.allowNet` reached only through a wildcard.
    #[error(
        "connection to {host} ({ip}, {kind}) refused: config.allowNet does not name {host} \
         explicitly, and [net] allow_private opens private networks only to handlers that do \
         (\"*\" and \"*.domain\" entries never reach them)"
    )]
    NotNamed {
        host: String,
        ip: IpAddr,
        kind: &'static str,
    },
    /// The address is one of eddy's own listeners (API or proxy).
    #[error(
        "connection to {host} ({addr}) refused: that is eddy's own listener (API or proxy); only a \
         config.allowNet entry naming exactly {host}:{port} reaches it",
        port = addr.port()
    )]
    OwnListener { host: String, addr: SocketAddr },
    /// The host name did not resolve to any address.
    #[error("could not resolve {host}: {detail}")]
    NoAddress { host: String, detail: String },
}

const EXEMPT_HINT: &str = "(exempt it with [net] allow_private in eddy.toml)";

/// Which addresses one request hop may connect to, decided from its `allowNet` grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// A non-wildcard entry names the host: `[net] allow_private` applies.
    pub named: bool,
    /// The port of an own listener that must be refused, when the grant does not name the
    /// exact host and port.
    pub guard: Option<u16>,
}

/// Full pre-connection check for one request or redirect hop: scheme must be http or https
/// (file:, data:, ftp:, blob: ... refused with a clear message), host must be permitted by
/// `allow`, and if the host is an IP literal it must pass the policy for the request's route.
/// Returns that route: host names are checked on it after resolution.
pub fn check_target(url: &Url, allow: &AllowNet, policy: &NetPolicy) -> Result<Route, NetError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NetError::Scheme(url.scheme().to_owned()));
    }
    if allow.is_empty() {
        return Err(NetError::NetworkDisabled);
    }
    let port = url.port_or_known_default().unwrap_or_default();
    let host = url.host_str().unwrap_or_default();
    let Some(grant) = allow.grant(url) else {
        return Err(NetError::HostNotAllowed {
            host: host.to_owned(),
            port,
        });
    };
    let own = grant == Grant::HostPort || !policy.listeners().has_port(port);
    let route = Route {
        named: grant >= Grant::Host,
        guard: (!own).then_some(port),
    };
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        // Domain names are checked after resolution, by GuardedResolver.
        _ => return Ok(route),
    };
    policy.check_route(ip, route, host)?;
    Ok(route)
}

/// A reqwest DNS resolver that resolves with `tokio::net::lookup_host` and returns only the
/// addresses that pass [`NetPolicy::check_route`] for its route, so the connection goes to
/// the checked address. If every address is refused it fails with a [`NetError`] (find it
/// with [`find_net_error`]).
pub struct GuardedResolver {
    policy: Arc<NetPolicy>,
    route: Route,
}

impl GuardedResolver {
    /// Builds a resolver enforcing `policy` for requests on `route`.
    pub fn new(policy: Arc<NetPolicy>, route: Route) -> Self {
        Self { policy, route }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (policy, route) = (Arc::clone(&self.policy), self.route);
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
                .filter(|addr| match policy.check_route(addr.ip(), route, &host) {
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
                Some(other) => other,
                None => no_address("no addresses found".into()),
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

    type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

    fn target(u: &str, allow_net: &str, cidrs: &str) -> Result<(), NetError> {
        check_target(&url(u), &allow(allow_net), &policy(cidrs)).map(|_| ())
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
        let res = target("http://127.0.0.1:3000/", "* *.example.com", "127.0.0.0/8");
        assert!(matches!(res, Err(NetError::NotNamed { .. })), "{res:?}");
    }

    #[test]
    fn routes_follow_the_grant() {
        let p = policy("127.0.0.0/8");
        p.listeners().add("127.0.0.1:8787".parse().unwrap());
        let route = |u: &str, a: &str| check_target(&url(u), &allow(a), &p);
        let named = |guard| Ok(Route { named: true, guard });
        assert_eq!(route("http://localhost:8787/", "localhost:8787"), named(None));
        assert_eq!(route("http://localhost:8787/", "localhost"), named(Some(8787)));
        assert_eq!(route("http://localhost:3000/", "localhost"), named(None));
        let wild = route("http://a.example:8787/", "*");
        assert_eq!(
            wild,
            Ok(Route {
                named: false,
                guard: Some(8787)
            })
        );
        for (u, a) in [("http://127.0.0.1:8787/", "127.0.0.1"), ("http://0.0.0.0:8787/", "*")] {
            let res = route(u, a);
            assert!(matches!(res, Err(NetError::OwnListener { .. })), "{u} {a}: {res:?}");
        }
        assert_eq!(route("http://127.0.0.1:8787/", "127.0.0.1:8787"), named(None));
    }

    async fn resolve_localhost(cidrs: &str) -> Result<Vec<SocketAddr>, BoxError> {
        let route = Route {
            named: true,
            guard: None,
        };
        let resolver = GuardedResolver::new(Arc::new(policy(cidrs)), route);
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
        let route = Route {
            named: true,
            guard: None,
        };
        let resolver = Arc::new(GuardedResolver::new(Arc::default(), route));
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
