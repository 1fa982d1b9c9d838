//! eddy's own listeners (the API and the proxy): sockets a handler must not reach unless its
//! `config.allowNet` names the exact host and port, since they hold the admin API.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, RwLock};

/// The addresses eddy listens on, learnt after binding (port 0 picks the port then).
/// Clones share one list.
#[derive(Debug, Clone, Default)]
pub struct OwnListeners {
    addrs: Arc<RwLock<Vec<SocketAddr>>>,
}

impl OwnListeners {
    /// Adds a bound listener's address.
    pub fn add(&self, addr: SocketAddr) {
        let mut addrs = self.addrs.write().unwrap_or_else(|p| p.into_inner());
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }

    /// True if some listener uses `port`.
    pub fn has_port(&self, port: u16) -> bool {
        let addrs = self.addrs.read().unwrap_or_else(|p| p.into_inner());
        addrs.iter().any(|a| a.port() == port)
    }

    /// True if a connection to `ip:port` could end at one of eddy's listeners: the port is a
    /// listener's and `ip` is the listener's address or any address of this machine. Any
    /// local address counts, not only the bound one, because a `0.0.0.0` or `[::]` bind
    /// answers on all of them and `0.0.0.0` as a target reaches loopback.
    pub fn is_own(&self, ip: IpAddr, port: u16) -> bool {
        let addrs = self.addrs.read().unwrap_or_else(|p| p.into_inner());
        addrs.iter().any(|a| a.port() == port && (a.ip() == ip || is_local(ip)))
    }
}

/// True if `ip` is an address of this machine: unspecified, loopback, or one a socket can be
/// bound to (the kernel refuses to bind addresses that belong to no interface).
pub(super) fn is_local(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_unspecified() || ip.is_loopback() || UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn own_listeners_cover_every_local_address_of_their_port() {
        let own = OwnListeners::default();
        own.add("0.0.0.0:8787".parse().unwrap());
        own.add("127.0.0.1:8788".parse().unwrap());
        for (addr, port) in [
            ("127.0.0.1", 8787),
            ("127.0.0.5", 8787),
            ("0.0.0.0", 8788),
            ("::1", 8787),
        ] {
            assert!(own.is_own(ip(addr), port), "{addr}:{port}");
        }
        assert!(own.is_own(ip("::ffff:127.0.0.1"), 8788));
        for (addr, port) in [("127.0.0.1", 8789), ("8.8.8.8", 8787), ("192.0.2.1", 8788)] {
            assert!(!own.is_own(ip(addr), port), "{addr}:{port}");
        }
        assert!(own.has_port(8788) && !own.has_port(80));
    }
}
