//! The proxy at the edges of HTTP: connection-level headers stay on their hop in both
//! directions, `X-Forwarded-*` say who asked for what, redirects go back to the client as
//! they are, a slow upstream is a `504`, and an event that cannot be stored costs the client
//! nothing but is counted and logged. The upstream speaks raw HTTP, so the test sees exactly
//! what the proxy sent and controls exactly what it answers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::server_support::TestServer;

/// How the upstream answers a request, given its head: the raw answer, or None to never
/// answer (the connection stays open).
type Answer = fn(&str) -> Option<String>;

/// An upstream that records every request (head and raw body) as it arrived.
struct RawUpstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RawUpstream {
    async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_raw(socket, answer, seen.clone()));
            }
        });
        Self { addr, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Reads until `buffer` holds `needle` after `from`; the index just past it.
async fn read_until(socket: &mut TcpStream, buffer: &mut Vec<u8>, needle: &[u8], from: usize) -> Option<usize> {
    loop {
        if let Some(i) = find(buffer, needle, from) {
            return Some(i + needle.len());
        }
        let mut chunk = [0u8; 8192];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Serves the requests of one connection, one after the other.
async fn serve_raw(mut socket: TcpStream, answer: Answer, seen: Arc<Mutex<Vec<String>>>) {
    let mut buffer = Vec::new();
    while let Some(head_end) = read_until(&mut socket, &mut buffer, b"\r\n\r\n", 0).await {
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let body_end = if !header(&head, "transfer-encoding").is_empty() {
            read_until(&mut socket, &mut buffer, b"0\r\n\r\n", head_end).await
        } else {
            let length: usize = header(&head, "content-length")
                .first()
                .map_or(0, |l| l.parse().unwrap());
            while buffer.len() < head_end + length {
                let mut chunk = [0u8; 8192];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            Some(head_end + length)
        };
        let Some(body_end) = body_end else { return };
        seen.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&buffer[..body_end]).into_owned());
        buffer.drain(..body_end);
        match answer(&head) {
            Some(raw) => {
                if socket.write_all(raw.as_bytes()).await.is_err() {
                    return;
                }
            }
            None => {
                tokio::time::sleep(Duration::from_secs(120)).await;
                return;
            }
        }
    }
}

/// The values of header `name` in a raw message head, in order.
fn header(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// A server with `[proxy]` in front of `upstream` (`extra` added to that section), over an
/// empty handlers folder.
async fn start(upstream: SocketAddr, extra: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    std::fs::create_dir(&handlers).unwrap();
    let config = format!("[proxy]\nupstream = \"http://{upstream}\"\nlisten = \"127.0.0.1:0\"\n{extra}\n");
    let server = TestServer::start(&handlers, &dir.path().join("data"), &config).await;
    (server, dir)
}

/// Sends `request` as written to `addr` and reads the whole answer (the request must ask
/// the connection to close).
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the proxy answers and closes")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn hop_answer(_head: &str) -> Option<String> {
    Some(
        "HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\
         connection: x-hop-back\r\nx-hop-back: 1\r\nkeep-alive: timeout=9\r\n\
         proxy-authenticate: Basic realm=\"upstream\"\r\nproxy-connection: keep-alive\r\n\
         proxy-authentication-info: nextnonce=\"n1\"\r\n\
         upgrade: h2c\r\ntrailer: x-sum\r\nx-answer: kept\r\n\r\nok"
            .to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_level_headers_stay_on_their_hop_both_ways() {
    let upstream = RawUpstream::start(hop_answer).await;
    let (server, _dir) = start(upstream.addr, "").await;
    let request = "POST /things HTTP/1.1\r\nhost: shop.example\r\n\
         connection: close, x-hop-one\r\nx-hop-one: 1\r\nkeep-alive: timeout=5\r\nte: trailers\r\n\
         trailer: x-sum\r\nupgrade: websocket\r\nproxy-authorization: Basic cHJveHk6cGFzcw==\r\n\
         proxy-connection: keep-alive\r\nx-end-to-end: kept\r\ncontent-type: text/plain\r\n\
         transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let answer = exchange(server.proxy_addr.unwrap(), request).await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    assert!(head.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(body, "ok", "{answer}");
    assert_eq!(header(head, "x-answer"), ["kept"], "{head}");
    let hop = [
        "x-hop-back",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authentication-info",
        "proxy-connection",
        "upgrade",
        "trailer",
    ];
    for name in hop {
        assert!(header(head, name).is_empty(), "{name} came back: {head}");
    }
    // The proxy's own hop to the client is closed as the client asked, and says nothing else.
    assert_eq!(header(head, "connection"), ["close"], "{head}");

    let requests = upstream.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (sent, sent_body) = requests[0].split_once("\r\n\r\n").unwrap();
    assert_eq!(header(sent, "x-end-to-end"), ["kept"], "{sent}");
    for name in [
        "connection",
        "x-hop-one",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
    ] {
        assert!(header(sent, name).is_empty(), "{name} was forwarded: {sent}");
    }
    // The body is framed anew for the upstream hop: once, and whole.
    let framing = [header(sent, "transfer-encoding"), header(sent, "content-length")].concat();
    assert_eq!(framing.len(), 1, "{sent}");
    assert!(sent_body.contains("hello"), "{sent_body:?}");
    server.stop().await;
}

fn ok_answer(_head: &str) -> Option<String> {
    Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_headers_name_the_client_the_host_and_the_scheme() {
    let upstream = RawUpstream::start(ok_answer).await;
    let (server, _dir) = start(upstream.addr, "").await;
    let proxy = server.proxy_addr.unwrap();
    let direct = "GET /a HTTP/1.1\r\nhost: shop.example:8443\r\nconnection: close\r\n\r\n";
    let chained = "GET /b HTTP/1.1\r\nhost: shop.example\r\nx-forwarded-for: 203.0.113.9\r\n\
                   x-forwarded-host: spoofed.example\r\nconnection: close\r\n\r\n";
    for request in [direct, chained] {
        let answer = exchange(proxy, request).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"), "{answer}");
    }
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let first = &requests[0];
    assert!(first.starts_with("GET /a HTTP/1.1"), "{first}");
    assert_eq!(
        header(first, "host"),
        [upstream.addr.to_string()],
        "the upstream's own name: {first}"
    );
    assert_eq!(header(first, "x-forwarded-host"), ["shop.example:8443"], "{first}");
    assert_eq!(header(first, "x-forwarded-for"), ["127.0.0.1"], "{first}");
    assert_eq!(header(first, "x-forwarded-proto"), ["http"], "{first}");
    let second = &requests[1];
    assert_eq!(
        header(second, "x-forwarded-for"),
        ["203.0.113.9, 127.0.0.1"],
        "{second}"
    );
    assert_eq!(header(second, "x-forwarded-host"), ["shop.example"], "{second}");
    server.stop().await;
}

fn redirect_answer(head: &str) -> Option<String> {
    let (status, location) = if head.starts_with("POST") {
        ("307 Temporary Redirect", "http://127.0.0.1:9/moved?keep=1")
    } else if head.starts_with("GET /old") {
        ("301 Moved Permanently", "/new/place?x=%2F1")
    } else {
        ("302 Found", "https://elsewhere.example/login?next=/old")
    };
    Some(format!(
        "HTTP/1.1 {status}\r\nlocation: {location}\r\ncontent-length: 5\r\n\r\nmoved"
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_go_back_to_the_client_as_the_upstream_sent_them() {
    let upstream = RawUpstream::start(redirect_answer).await;
    let (server, _dir) = start(upstream.addr, "").await;
    let proxy = server.proxy_addr.unwrap();
    let cases = [
        ("GET /old HTTP/1.1", "301", "/new/place?x=%2F1"),
        (
            "GET /account HTTP/1.1",
            "302",
            "https://elsewhere.example/login?next=/old",
        ),
        ("POST /orders HTTP/1.1", "307", "http://127.0.0.1:9/moved?keep=1"),
    ];
    for (line, status, location) in cases {
        let request = format!("{line}\r\nhost: shop.example\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}");
        let answer = exchange(proxy, &request).await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{line}: {answer}");
        assert_eq!(header(head, "location"), [location], "{line}: {head}");
        assert_eq!(body, "moved", "{line}");
    }
    let paths: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| r.lines().next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        paths,
        cases.map(|c| c.0.to_owned()),
        "each request reached the upstream once, and no redirect was followed"
    );
    server.stop().await;
}

fn slow_answer(head: &str) -> Option<String> {
    head.starts_with("GET /fast")
        .then(|| "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfast".to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_slower_than_timeout_ms_is_a_504_with_a_reason() {
    let upstream = RawUpstream::start(slow_answer).await;
    let (server, _dir) = start(upstream.addr, "timeout_ms = 1500").await;
    let client = reqwest::Client::new();
    let proxied = |path: &str| format!("http://{}{path}", server.proxy_addr.unwrap());
    let fast = client.get(proxied("/fast")).send().await.unwrap();
    assert_eq!(fast.status(), 200);
    assert_eq!(fast.text().await.unwrap(), "fast");

    let slow = client.get(proxied("/never")).send().await.unwrap();
    assert_eq!(slow.status(), 504);
    let answer: Value = serde_json::from_slice(&slow.bytes().await.unwrap()).expect("a JSON error");
    assert_eq!(answer["error"], "upstream_timeout", "{answer}");
    let detail = answer["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&upstream.addr.to_string()),
        "names the upstream: {answer}"
    );
    assert_eq!(upstream.requests().len(), 2, "the slow request did reach the upstream");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("eddy_proxy_requests_total{outcome=\"upstream_failed\"} 1")
            && metrics.contains("eddy_proxy_requests_total{outcome=\"forwarded\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}
