//! The admin API at the network's edge: without a token it is served only on loopback
//! (unless `[api] allow_no_token`) and answers only requests addressed to a loopback name,
//! so a web page cannot reach it through DNS rebinding. Webhooks and `/healthz` are not
//! guarded here: senders reach webhooks from outside and prove themselves by signature.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::Request;
use axum::http::{StatusCode, header};

use crate::http::ApiError;

/// The status a request to a name other than a loopback one gets when there is no token:
/// 421 Misdirected Request, since it was not meant for this server.
pub const MISDIRECTED: StatusCode = StatusCode::MISDIRECTED_REQUEST;

/// Why the API may not be served on an address.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to serve eddy's API on {addr} without a token: anyone who can reach that address \
     could read, edit, replay and delete events. Set EDDY_API_TOKEN (or api_token in eddy.toml), \
     listen on a loopback address such as 127.0.0.1:8787, or, if something in front of eddy \
     guards it, set [api] allow_no_token = true"
)]
pub struct ExposedError {
    /// The address asked for.
    pub addr: SocketAddr,
}

/// Ok unless the API would listen on a non-loopback address (`0.0.0.0` and `[::]` included)
/// with no token and no explicit `allow_no_token`.
pub fn check_listen(addr: SocketAddr, has_token: bool, allow_no_token: bool) -> Result<(), ExposedError> {
    if has_token || allow_no_token || addr.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    Err(ExposedError { addr })
}

/// Without a token: Ok only if the request names a loopback host in `Host` (and in its
/// target, when that is in absolute form). A missing `Host` is refused too.
pub fn check_host(request: &Request) -> Result<(), ApiError> {
    let host = request.headers().get(header::HOST).map(|v| v.to_str().unwrap_or("?"));
    let authority = request.uri().authority().map(|a| a.as_str());
    if host.is_some_and(is_loopback_host) && authority.is_none_or(is_loopback_host) {
        return Ok(());
    }
    let named = match (host, authority) {
        (None, None) => "no Host header".to_owned(),
        (Some(host), Some(authority)) if is_loopback_host(host) => format!("the target names {authority:?}"),
        (Some(host), _) => format!("Host was {host:?}"),
        (None, Some(_)) => "no Host header".to_owned(),
    };
    Err(ApiError::new(
        MISDIRECTED,
        "misdirected_request",
        format!(
            "without an API token eddy answers only requests addressed to localhost, *.localhost, \
             127.0.0.0/8 or [::1] (which a web page cannot take over through DNS rebinding); {named}. \
             Set EDDY_API_TOKEN to serve other names"
        ),
    ))
}

/// True for `localhost`, `*.localhost`, 127.0.0.0/8 and `[::1]`, each with or without a port.
pub fn is_loopback_host(value: &str) -> bool {
    let Some(host) = strip_port(value) else {
        return false;
    };
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip == Ipv6Addr::LOCALHOST);
    }
    let host = host.to_ascii_lowercase();
    if host == "localhost" || host.strip_suffix(".localhost").is_some_and(is_label_chain) {
        return true;
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| IpAddr::V4(ip).is_loopback())
}

/// The host part of `host[:port]` or `[v6][:port]`; None when the port is not a number.
fn strip_port(value: &str) -> Option<&str> {
    let (host, port) = match value.rfind(':') {
        Some(i) if !value[i..].contains(']') && (value.starts_with('[') || !value[..i].contains(':')) => {
            (&value[..i], Some(&value[i + 1..]))
        }
        _ => (value, None),
    };
    match port {
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => None,
        _ => Some(host),
    }
}

/// Non-empty DNS labels of letters, digits and `-`, separated by dots.
fn is_label_chain(name: &str) -> bool {
    name.split('.')
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        let yes = "localhost localhost:8787 LOCALHOST app.localhost a.b.localhost:1 127.0.0.1 \
            127.0.0.1:8787 127.9.8.7 [::1] [::1]:8787";
        let no = "example.com evil.localhost.example.com localhost.example 10.0.0.1 0.0.0.0 \
            127.1 [::ffff:127.0.0.1] [::2] ::1 localhost: localhost:x localhost. .localhost \
            a..localhost 127.0.0.1.nip.io 2130706433 [::1]x";
        for h in yes.split_whitespace() {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in no.split_whitespace() {
            assert!(!is_loopback_host(h), "{h}");
        }
        assert!(!is_loopback_host(""));
    }

    #[test]
    fn listen_addresses_need_a_token_unless_loopback_or_allowed() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        for ok in ["127.0.0.1:8787", "[::1]:0", "127.0.0.2:1"] {
            assert!(check_listen(addr(ok), false, false).is_ok(), "{ok}");
        }
        for exposed in ["0.0.0.0:8787", "[::]:8787", "192.168.1.5:80", "[::ffff:10.0.0.1]:1"] {
            let err = check_listen(addr(exposed), false, false).unwrap_err();
            assert!(err.to_string().contains("EDDY_API_TOKEN"), "{err}");
            assert!(check_listen(addr(exposed), true, false).is_ok());
            assert!(check_listen(addr(exposed), false, true).is_ok());
        }
    }
}
