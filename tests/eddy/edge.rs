//! The admin API at the network's edge: no token means loopback only, both for the address
//! eddy listens on and for the names requests are addressed to (DNS rebinding).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::server_support::{TestServer, pipeline_handlers};
use crate::support::raw_http;

async fn status_with_host(server: &TestServer, method: &str, path: &str, host: &str) -> (u16, Value) {
    let request = reqwest::Client::new()
        .request(method.parse().unwrap(), server.url(path))
        .header("host", host)
        .header("content-type", "application/json")
        .body("{}");
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_only_loopback_names_reach_the_api() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&pipeline_handlers(), data.path(), "").await;
    let id = server.send(json!({"type": "victim", "data": {}})).await;
    let port = server.addr.port();
    let event = format!("/events/{id}");
    // A page on attacker.example whose name now resolves to 127.0.0.1 (DNS rebinding).
    for host in [
        "attacker.example",
        "attacker.example:8787",
        "localhost.attacker.example",
        "10.0.0.1",
    ] {
        let (status, answer) = status_with_host(&server, "DELETE", &event, host).await;
        assert_eq!(status, 421, "{host}: {answer}");
        assert_eq!(answer["error"], "misdirected_request", "{host}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("Host was {host:?}")), "{detail}");
        assert!(detail.contains("EDDY_API_TOKEN"), "{detail}");
    }
    assert_eq!(status_with_host(&server, "GET", "/events", "evil.example").await.0, 421);
    assert_eq!(status_with_host(&server, "GET", &event, "127.0.0.1").await.0, 200);
    let loopback = [
        format!("localhost:{port}"),
        "app.localhost".into(),
        "127.0.0.2".into(),
        format!("[::1]:{port}"),
    ];
    for host in &loopback {
        assert_eq!(
            status_with_host(&server, "GET", "/handlers", host).await.0,
            200,
            "{host}"
        );
    }
    // Open to anyone: health checks, and webhooks (authenticated by signature).
    assert_eq!(
        status_with_host(&server, "GET", "/healthz", "evil.example").await.0,
        200
    );
    let (status, answer) = status_with_host(&server, "POST", "/webhooks/gh", "evil.example").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("unknown_source")),
        "{answer}"
    );
    // No Host at all, and an absolute target naming another host behind a loopback Host.
    let (status, answer) = raw_http(server.addr, "GET /events HTTP/1.0\r\n\r\n");
    assert_eq!(status, 421, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("no Host header"),
        "{answer}"
    );
    let absolute = "GET http://evil.example/events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_http(server.addr, absolute).0, 421);
    let fine = "GET /healthz HTTP/1.0\r\n\r\n";
    assert_eq!(raw_http(server.addr, fine).0, 200);
    assert_eq!(
        status_with_host(&server, "GET", &event, "localhost").await.0,
        200,
        "the event is still there"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_token_any_name_is_served_to_its_holder() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(&pipeline_handlers(), data.path(), "api_token = \"edge-token\"").await;
    let client = reqwest::Client::new();
    let ask = |token: Option<&str>| {
        let request = client
            .get(server.url("/handlers"))
            .header("host", "eddy.internal.example");
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    };
    assert_eq!(ask(Some("edge-token")).send().await.unwrap().status(), 200);
    assert_eq!(ask(None).send().await.unwrap().status(), 401);
    server.stop().await;
}

/// Runs the eddy binary in `dir` with `args` until it exits or says it listens (then stops it);
/// returns the exit code (None if it was listening) and its stderr so far.
fn eddy(dir: &Path, args: &[&str], token: Option<&str>) -> (Option<i32>, String) {
    let mut command = crate::support::eddy_command();
    command.current_dir(dir).args(args).stderr(Stdio::piped());
    if let Some(token) = token {
        command.env("EDDY_API_TOKEN", token);
    }
    let mut child = command.spawn().expect("eddy starts");
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut text = String::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) {
        text.push_str(&line);
        text.push('\n');
        let proxied = !args.contains(&"proxy") || text.contains("eddy: proxy on");
        if text.contains("eddy: listening on") && proxied {
            let _ = child.kill();
            let _ = child.wait();
            return (None, text);
        }
    }
    let _ = child.kill();
    (child.wait().unwrap().code(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_a_public_listen_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("handlers")).unwrap();
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let (code, text) = eddy(dir.path(), &["serve", "--listen", listen], None);
        assert_eq!(code, Some(2), "{listen}: {text}");
        let want = format!("error: refusing to serve eddy's API on {listen} without a token");
        assert!(text.starts_with(&want), "{text}");
        assert!(text.contains("[api] allow_no_token = true"), "{text}");
        assert_eq!(text.matches("refusing").count(), 1, "said once: {text}");
    }
    assert!(!dir.path().join(".eddy").exists(), "a refused start opened the store");
    let proxy = ["proxy", "--upstream", "http://127.0.0.1:9", "--api-listen", "0.0.0.0:0"];
    let (code, text) = eddy(dir.path(), &proxy, None);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("refusing to serve eddy's API on 0.0.0.0:0"), "{text}");

    let (code, text) = eddy(dir.path(), &["serve", "--listen", "0.0.0.0:0"], Some("t0ken"));
    assert_eq!(code, None, "with a token it listens: {text}");
    std::fs::write(dir.path().join("eddy.toml"), "[api]\nallow_no_token = true\n").unwrap();
    let (code, text) = eddy(dir.path(), &["serve", "--listen", "0.0.0.0:0"], None);
    assert_eq!(code, None, "allowed explicitly, it listens: {text}");
    std::fs::remove_file(dir.path().join("eddy.toml")).unwrap();
    // The proxy's own listener has no admin endpoints: it may be public without a token.
    let public_proxy = [
        "proxy",
        "--upstream",
        "http://127.0.0.1:9",
        "--listen",
        "0.0.0.0:0",
        "--api-listen",
        "127.0.0.1:0",
    ];
    let (code, text) = eddy(dir.path(), &public_proxy, None);
    assert_eq!(code, None, "{text}");
}
