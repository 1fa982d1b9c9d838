//! The API token, route by route: walks the router's own list of routes
//! (`eddy::server::ROUTES`), so a route added later is checked without anyone remembering to.

use eddy::server::{Access, ROUTES, Route};
use ring::hmac;
use serde_json::{Value, json};

use crate::server_support::TestServer;

const TOKEN: &str = "route-table-token-3f9a";
const HOOK_SECRET: &str = "route-table-hook-secret";

/// A server with a token and a GitHub webhook source, over an empty handlers folder whose
/// `.env` holds the source's secret (so nothing depends on the caller's environment).
async fn start(dir: &std::path::Path) -> TestServer {
    let handlers = dir.join("handlers");
    std::fs::create_dir_all(&handlers).unwrap();
    std::fs::write(dir.join(".env"), format!("ROUTE_HOOK_SECRET={HOOK_SECRET}\n")).unwrap();
    let extra =
        format!("api_token = \"{TOKEN}\"\n[sources.gh]\nkind = \"github\"\nsecret_env = \"ROUTE_HOOK_SECRET\"\n");
    TestServer::start(&handlers, &dir.join("data"), &extra).await
}

/// `route`'s path with its captures filled in.
fn concrete(route: &Route) -> String {
    route.path.replace("{source}", "gh").replace("{id}", "no-such-id")
}

/// Sends `route` with `authorization` (if any) and a small JSON body; status and JSON answer.
async fn call(server: &TestServer, route: &Route, authorization: Option<&str>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(route.verb.as_str().as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method, server.url(&concrete(route)))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_but_the_open_ones_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let wrong = [
        None,
        Some("Bearer not-the-token".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
    ];
    let guarded: Vec<&Route> = ROUTES.iter().filter(|r| r.access == Access::Token).collect();
    assert!(guarded.len() >= 15, "the list holds the admin API: {ROUTES:?}");
    for route in guarded {
        for authorization in &wrong {
            let (status, answer) = call(&server, route, authorization.as_deref()).await;
            assert_eq!(status, 401, "{route:?} with {authorization:?}: {answer}");
            assert_eq!(answer["error"], "unauthorized", "{route:?}: {answer}");
            assert!(
                answer["detail"].as_str().is_some_and(|d| d.contains("Bearer")),
                "{route:?}: {answer}"
            );
        }
        let (status, answer) = call(&server, route, Some(&format!("Bearer {TOKEN}"))).await;
        assert!(
            ![401, 405, 421].contains(&status),
            "{route:?} with the token: {status} {answer}"
        );
        let fallback = answer["detail"].as_str().is_some_and(|d| d.starts_with("no endpoint"));
        assert!(!fallback, "{route:?} is not served: {answer}");
    }
    server.stop().await;
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap_or_default()).unwrap_or(Value::Null)
}

fn signed_ping(delivery: &str) -> (String, Vec<(&'static str, String)>) {
    let body = json!({"zen": "Keep it logically awesome."}).to_string();
    let key = hmac::Key::new(hmac::HMAC_SHA256, HOOK_SECRET.as_bytes());
    let tag: String = hmac::sign(&key, body.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let headers = vec![
        ("x-hub-signature-256", format!("sha256={tag}")),
        ("x-github-event", "ping".to_owned()),
        ("x-github-delivery", delivery.to_owned()),
    ];
    (body, headers)
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_and_webhooks_are_open_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let open: Vec<&Route> = ROUTES.iter().filter(|r| r.access == Access::Open).collect();
    let paths: Vec<&str> = open.iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/healthz", "/webhooks/{source}"], "README: only these are open");
    let client = reqwest::Client::new();
    for (n, authorization) in [None, Some("Bearer not-the-token")].into_iter().enumerate() {
        let mut health = client.get(server.url("/healthz"));
        if let Some(value) = authorization {
            health = health.header("authorization", value);
        }
        let health = health.send().await.unwrap();
        assert_eq!(health.status(), 200, "{authorization:?}");
        assert_eq!(json_of(health).await, json!({"status": "ok"}));

        let delivery = format!("open-{n}");
        let (body, headers) = signed_ping(&delivery);
        let mut hook = client
            .post(server.url("/webhooks/gh"))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            hook = hook.header(name, value);
        }
        if let Some(value) = authorization {
            hook = hook.header("authorization", value);
        }
        let hook = hook.send().await.unwrap();
        let status = hook.status().as_u16();
        let answer = json_of(hook).await;
        assert_eq!(
            (status, answer),
            (202, json!({"id": format!("gh:{delivery}")})),
            "{authorization:?}"
        );
    }
    // The signature, not the token, guards a webhook: unsigned is refused as unsigned.
    let unsigned = client
        .post(server.url("/webhooks/gh"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let answer = json_of(unsigned).await;
    assert_eq!(answer["error"], "missing_signature", "{answer}");
    assert_eq!(
        server.get("/events").await["events"].as_array().map(Vec::len),
        Some(2),
        "both signed pings were stored"
    );
    server.stop().await;
}
