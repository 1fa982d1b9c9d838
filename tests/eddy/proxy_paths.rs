//! The proxy refuses request targets whose path would change meaning on the way to the
//! upstream (dot segments and hidden separators, in any encoding) with `400`, and forwards
//! nothing. Sent over raw TCP, since HTTP clients normalise paths before sending.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::Uri;
use serde_json::Value;

use crate::server_support::{TestServer, pipeline_handlers};
use crate::support::raw_http;

/// An upstream that answers every request and remembers each path it saw.
async fn start_upstream() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().fallback(move |uri: Uri| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(uri.path().to_owned());
            axum::Json(serde_json::json!({ "ok": true }))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// Sends `POST target` as written; returns the status and the JSON body.
fn post_raw(addr: SocketAddr, target: &str) -> (u16, Value) {
    let request = format!(
        "POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         content-length: 2\r\nconnection: close\r\n\r\n{{}}"
    );
    raw_http(addr, &request)
}

#[tokio::test(flavor = "multi_thread")]
async fn traversing_paths_are_refused_and_never_forwarded() {
    let (upstream, seen) = start_upstream().await;
    let data = tempfile::tempdir().unwrap();
    let extra = format!("[proxy]\nupstream = \"http://{upstream}/api\"\nlisten = \"127.0.0.1:0\"\n");
    let server = TestServer::start(&pipeline_handlers(), data.path(), &extra).await;
    let proxy = server.proxy_addr.unwrap();
    let refused = "/accounts/../admin /accounts/%2e%2e/admin /accounts/%2E./admin \
        /accounts/.%2e/admin /.. /%2e%2e /accounts/./1 /accounts/%2e/1 /accounts/%252e%252e/admin \
        /accounts/..;/admin /accounts%2f..%2fadmin /accounts/a%2Fb /accounts/%5c..%5cadmin \
        /accounts/a%00 /accounts/1/..?x=1";
    for target in refused.split_whitespace() {
        let (status, answer) = post_raw(proxy, target);
        assert_eq!(status, 400, "{target}: {answer}");
        assert_eq!(answer["error"], "bad_path", "{target}: {answer}");
        assert!(
            answer["detail"].as_str().is_some_and(|d| d.contains("the path")),
            "{answer}"
        );
    }
    // A raw backslash is not even a valid request target: refused before routing.
    assert_eq!(post_raw(proxy, "/accounts\\..\\admin").0, 400);
    assert_eq!(
        *seen.lock().unwrap(),
        Vec::<String>::new(),
        "the upstream saw a refused request"
    );

    // Dots inside names and empty segments pass unchanged.
    for target in ["/accounts/1", "/accounts//2", "/v1.2/a..b/...", "/files/%2e.txt"] {
        assert_eq!(post_raw(proxy, target).0, 200, "{target}");
    }
    let want = [
        "/api/accounts/1",
        "/api/accounts//2",
        "/api/v1.2/a..b/...",
        "/api/files/%2e.txt",
    ];
    assert_eq!(*seen.lock().unwrap(), want);
    server.stop().await;
}
