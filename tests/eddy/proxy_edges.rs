//! The proxy at the edges of HTTP: connection-level headers stay on their hop in both
//! directions, `X-Forwarded-*` say who asked for what, redirects go back to the client as
//! they are, a slow upstream is a `504`, and an event that cannot be stored costs the client
//! nothing but is counted and logged. The upstream speaks raw HTTP, so the test sees exactly
//! what the proxy sent and controls exactly what it answers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::raw_http::{RawUpstream, exchange, header};
use crate::server_support::TestServer;

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
        // Reads without a body: a client could follow those on its own, unlike a streamed write.
        let body = if line.starts_with("POST") { "{}" } else { "" };
        let request = format!(
            "{line}\r\nhost: shop.example\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
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

fn created_answer(_head: &str) -> Option<String> {
    Some(
        "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"id\":\"a1\"}"
            .to_owned(),
    )
}

/// `eddy serve` (the binary, for its log), killed when dropped (a test that fails early).
struct Served {
    child: Child,
    api: String,
    proxy: String,
    /// Its stderr lines as they come.
    lines: mpsc::Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `eddy serve` in `dir` with `[proxy]` in front of `upstream`.
fn serve_proxy(dir: &Path, upstream: SocketAddr) -> Served {
    std::fs::create_dir_all(dir.join("handlers")).unwrap();
    let config =
        format!("[proxy]\nupstream = \"http://{upstream}\"\nlisten = \"127.0.0.1:0\"\nmax_capture_bytes = 1048576\n");
    std::fs::write(dir.join("eddy.toml"), config).unwrap();
    let mut child = crate::support::eddy_command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("eddy serve starts");
    let (lines_tx, lines) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        stderr
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(lines_tx.send(l)))
    });
    let mut served = Served {
        child,
        api: String::new(),
        proxy: String::new(),
        lines,
    };
    while served.api.is_empty() || served.proxy.is_empty() {
        let line = served
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("eddy says where it listens");
        let addr = |prefix: &str| {
            line.strip_prefix(prefix)
                .and_then(|r| r.split(' ').next())
                .map(str::to_owned)
        };
        if let Some(api) = addr("eddy: listening on ") {
            served.api = api;
        }
        if let Some(proxy) = addr("eddy: proxy on ") {
            served.proxy = proxy;
        }
    }
    served
}

async fn text_of(url: String) -> String {
    let response = reqwest::get(url).await.unwrap();
    String::from_utf8_lossy(&response.bytes().await.unwrap()).into_owned()
}

/// Polls `check` every 25 ms for at most 20 s.
async fn eventually<F: Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_the_store_refuses_is_counted_and_logged_and_the_client_keeps_its_answer() {
    let upstream = RawUpstream::start(created_answer).await;
    let dir = tempfile::tempdir().unwrap();
    let served = serve_proxy(dir.path(), upstream.addr);
    let client = reqwest::Client::new();
    let write = |name: String| {
        let body = serde_json::json!({ "name": name }).to_string();
        let url = format!("{}/accounts", served.proxy);
        client
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let api = served.api.clone();
    let get = |path: &str| text_of(format!("{api}{path}"));
    assert_eq!(write("small".into()).await.unwrap().status(), 201);
    eventually("the first write is recorded", || async {
        get("/events").await.contains("\"small\"")
    })
    .await;

    // The store can no longer write a large record: sled keeps each in a file of its own
    // under blobs/, and a file now stands where that folder was, so creating one fails as
    // on a failing disk (for root too).
    let blobs = dir.path().join(".eddy/blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, "").unwrap();
    let refused = write("x".repeat(400_000)).await.unwrap();
    assert_eq!(refused.status(), 201, "the client gets the upstream's answer");
    assert_eq!(refused.bytes().await.unwrap(), "{\"id\":\"a1\"}");
    eventually("the failure is counted", || async {
        get("/metrics")
            .await
            .contains("eddy_proxy_events_total{outcome=\"failed\"} 1")
    })
    .await;
    let metrics = get("/metrics").await;
    assert!(
        metrics.contains("eddy_proxy_events_total{outcome=\"recorded\"} 1"),
        "{metrics}"
    );
    let logged = std::iter::from_fn(|| served.lines.recv_timeout(Duration::from_secs(20)).ok())
        .find(|l| l.starts_with("eddy: proxy:"))
        .expect("the failure is logged");
    assert!(
        logged.starts_with("eddy: proxy: 1 event(s) not recorded: store"),
        "{logged}"
    );
    // The store has failed: a later write is refused at once instead of waiting for ever on
    // sled's flush (see store_failure.rs for the rest).
    let later = client
        .post(format!("{api}/events"))
        .timeout(Duration::from_secs(30))
        .header("content-type", "application/json")
        .body(r#"{"type": "t"}"#)
        .send()
        .await
        .expect("a write after the failure is answered");
    assert_eq!(later.status(), 503);
    assert!(later.text().await.unwrap().contains("store_unavailable"));
}
