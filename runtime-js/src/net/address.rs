//! Address classes: which IP addresses a handler may never connect to unless the operator
//! exempts them (`[net] allow_private`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use super::listeners::OwnListeners;
use super::{NetError, Route};

/// Operator-wide policy: which otherwise-forbidden addresses are exempted
/// (`[net] allow_private` in eddy.toml), and eddy's own listeners.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    allow_private: Vec<IpNet>,
    listeners: OwnListeners,
}

impl NetPolicy {
    /// Builds a policy exempting the given CIDRs from the forbidden address classes.
    pub fn new(allow_private: Vec<IpNet>) -> Self {
        Self {
            allow_private,
            listeners: OwnListeners::default(),
        }
    }

    /// eddy's own listeners, which the policy refuses unless a route opens them.
    pub fn listeners(&self) -> &OwnListeners {
        &self.listeners
    }

    /// Ok if a connection to `ip` is allowed for a host `config.allowNet` names explicitly.
    ///
    /// Addresses that embed an IPv4 address are judged by that address, and an exemption
    /// matches either form, so `127.0.0.1/32` also exempts `::ffff:127.0.0.1`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), NetError> {
        match self.judge(ip) {
            Some((kind, false)) => Err(NetError::Forbidden { ip, kind }),
            _ => Ok(()),
        }
    }

    /// Ok if a connection to `ip` for `host` is allowed on `route`: exempted networks only
    /// when the host is named, eddy's listeners only when the route does not guard their port.
    pub fn check_route(&self, ip: IpAddr, route: Route, host: &str) -> Result<(), NetError> {
        let embedded = embedded_ip(ip);
        // A NAT64 or 6to4 form may be translated back to this machine's own address.
        let own = |port| self.listeners.is_own(ip, port) || embedded.is_some_and(|v4| self.listeners.is_own(v4, port));
        if let Some(port) = route.guard
            && own(port)
        {
            let addr = SocketAddr::new(ip, port);
            return Err(NetError::OwnListener {
                host: host.to_owned(),
                addr,
            });
        }
        match self.judge(ip) {
            None | Some((_, true)) if route.named => Ok(()),
            None => Ok(()),
            Some((kind, true)) => Err(NetError::NotNamed {
                host: host.to_owned(),
                ip,
                kind,
            }),
            Some((kind, false)) => Err(NetError::Forbidden { ip, kind }),
        }
    }

    /// The forbidden class of `ip` and whether `allow_private` exempts it; None if public.
    fn judge(&self, ip: IpAddr) -> Option<(&'static str, bool)> {
        let embedded = embedded_ip(ip);
        let kind = classify(embedded.unwrap_or(ip))?;
        let exempt = |a: IpAddr| self.allow_private.iter().any(|net| net.contains(&a));
        Some((kind, exempt(ip) || embedded.is_some_and(exempt)))
    }
}

/// The IPv4 address an IPv6 address embeds (mapped, NAT64, 6to4 forms), if any.
fn embedded_ip(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
        IpAddr::V4(_) => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> impl Iterator<Item = &str> {
        s.split_whitespace()
    }
    fn policy(cidrs: &str) -> NetPolicy {
        NetPolicy::new(words(cidrs).map(|c| c.parse().unwrap()).collect())
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
    fn routes_open_exempted_networks_and_own_listeners_only_when_named() {
        let p = policy("127.0.0.1/32");
        p.listeners().add("0.0.0.0:8787".parse().unwrap());
        let wild = Route {
            named: false,
            guard: None,
        };
        let named = Route {
            named: true,
            guard: None,
        };
        let guarded = Route {
            named: true,
            guard: Some(8787),
        };
        let lo = ip("127.0.0.1");
        assert!(matches!(
            p.check_route(lo, wild, "localhost"),
            Err(NetError::NotNamed { .. })
        ));
        assert_eq!(p.check_route(lo, named, "localhost"), Ok(()));
        assert_eq!(p.check_route(ip("8.8.8.8"), wild, "dns.google"), Ok(()));
        let own = p.check_route(lo, guarded, "localhost").unwrap_err();
        assert!(matches!(own, NetError::OwnListener { .. }), "{own:?}");
        assert!(own.to_string().contains("localhost:8787"), "{own}");
        let mapped = ip("64:ff9b::7f00:1");
        assert!(matches!(
            p.check_route(mapped, guarded, "x"),
            Err(NetError::OwnListener { .. })
        ));
        assert!(matches!(
            p.check_route(ip("10.0.0.1"), named, "x"),
            Err(NetError::Forbidden { .. })
        ));
        let err = p.check_route(lo, wild, "localhost").unwrap_err().to_string();
        assert!(err.contains("does not name localhost"), "{err}");
    }
}
