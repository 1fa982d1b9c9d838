//! The network policy as handlers meet it: `allowNet: ["*"]` never opens the networks
//! `[net] allow_private` exempts, and eddy's own listeners open only to an entry naming
//! their exact host and port. Fixtures: `tests/fixtures/net/`.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::server_support::TestServer;
use crate::support::*;

/// A copy of the `net` fixtures with `exact.js` naming `127.0.0.1:port`.
fn net_handlers(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/net");
    for name in ["_probe.js", "wildcard.js", "host.js", "uncaught.js"] {
        std::fs::copy(fixtures.join(name), dir.path().join(name)).unwrap();
    }
    write_exact(dir.path(), port);
    dir
}

fn write_exact(dir: &Path, port: u16) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/net");
    let text = std::fs::read_to_string(fixtures.join("exact.js.in")).unwrap();
    std::fs::write(dir.join("exact.js"), text.replace("PORT", &port.to_string())).unwrap();
}

/// The console lines of a report, as `REACHED`/`REFUSED` lines.
fn lines_of(report: &eddy::runtime::InvocationReport) -> Vec<String> {
    report.capture.logs.iter().map(|l| l.message.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_does_not_open_exempted_networks_but_a_named_host_does() {
    let api = FakeApi::start().await;
    let trap = Tripwire::start("127.0.0.1").await.expect("bind 127.0.0.1");
    let dir = net_handlers(api.addr.port());
    let rt = runtime_with(dir.path(), LOOPBACK_CONFIG);
    for id in ["wildcard", "host", "exact"] {
        load(&rt, id).await;
    }
    let text = format!("{}/text", api.base());
    let urls = [
        format!("http://127.0.0.1:{}/", trap.addr.port()),
        format!("http://localhost:{}/", trap.addr.port()),
        text.clone(),
    ];
    let report = invoke(&rt, "wildcard", json!({ "urls": urls })).await;
    assert_ok(&report);
    let lines = lines_of(&report);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, host) in lines.iter().zip(["127.0.0.1", "localhost", "127.0.0.1"]) {
        assert!(line.starts_with("REFUSED"), "{line}");
        let why = format!("config.allowNet does not name {host} explicitly");
        assert!(line.contains(&why) && line.contains("[net] allow_private"), "{line}");
    }
    assert_eq!(trap.count(), 0, "a wildcard handler opened a connection to loopback");

    for id in ["host", "exact"] {
        let report = invoke(&rt, id, json!({ "urls": [text] })).await;
        assert_eq!(lines_of(&report), [format!("REACHED {text} 200")], "{id}");
    }
    let other_port = format!("http://127.0.0.1:{}/", trap.addr.port());
    let report = invoke(&rt, "exact", json!({ "urls": [other_port] })).await;
    let lines = lines_of(&report);
    assert!(lines[0].contains("is not permitted by config.allowNet"), "{lines:?}");
    assert_eq!(trap.count(), 0);
}

/// A refusal by the network policy would fail the same way on every retry: left uncaught, or
/// thrown as the cause of another error, it ends the attempt as not retryable.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_by_the_network_policy_is_not_retried() {
    let dir = net_handlers(1);
    let rt = runtime_with(dir.path(), LOOPBACK_CONFIG);
    load(&rt, "uncaught").await;
    for wrap in [false, true] {
        let report = invoke(
            &rt,
            "uncaught",
            json!({ "url": "http://example.invalid/", "wrap": wrap }),
        )
        .await;
        assert_eq!(lines_of(&report), ["CODE ERR_NETWORK_POLICY"], "wrapped: {wrap}");
        let eddy::runtime::Outcome::Failure(failure) = &report.outcome else {
            panic!("the refused fetch failed nothing: {report:?}");
        };
        assert!(!failure.is_retryable(), "wrapped: {wrap}: {failure:?}");
    }
}

/// A handler whose allowNet is `*`, or names 127.0.0.1 without a port, tries to delete an
/// event through eddy's admin API (and to reach the proxy) under every spelling of the
/// address: every request is refused and the event stays. One naming the API's exact
/// host:port can reach it, which shows the attack itself is real.
#[tokio::test(flavor = "multi_thread")]
async fn handlers_reach_eddys_own_listeners_only_by_naming_them_exactly() {
    let api = FakeApi::start().await;
    let data = tempfile::tempdir().unwrap();
    let handlers = net_handlers(1);
    std::fs::remove_file(handlers.path().join("exact.js")).unwrap();
    let proxy = format!("[proxy]\nupstream = \"{}\"\nlisten = \"127.0.0.1:0\"\n", api.base());
    let server = TestServer::start(handlers.path(), data.path(), &proxy).await;
    let (port, proxy_port) = (server.addr.port(), server.proxy_addr.unwrap().port());
    let victim = server.send(json!({"type": "victim", "data": {}})).await;
    let urls: Vec<String> = [
        format!("http://127.0.0.1:{port}/events/{victim}"),
        format!("http://localhost:{port}/events/{victim}"),
        format!("http://0.0.0.0:{port}/events/{victim}"),
        format!("http://[::ffff:127.0.0.1]:{port}/events/{victim}"),
        format!("http://127.0.0.1:{proxy_port}/events/{victim}"),
    ]
    .into();
    let probe = server
        .send(json!({"type": "probe", "data": {"urls": urls, "method": "DELETE"}}))
        .await;
    for handler in ["wildcard", "host"] {
        let done = server.wait_for_status(&probe, handler, "succeeded").await;
        let lines = console_lines(&done);
        assert_eq!(lines.len(), urls.len(), "{handler}: {lines:?}");
        assert!(lines.iter().all(|l| l.starts_with("REFUSED")), "{handler}: {lines:?}");
        let own = format!("(127.0.0.1:{port}) refused: that is eddy's own listener (API or proxy)");
        assert!(lines[0].contains(&own), "{handler}: {}", lines[0]);
        assert!(lines[4].contains("eddy's own listener"), "{handler}: {}", lines[4]);
    }
    assert_eq!(status_of(&server, &victim).await, 200, "the event was deleted");

    write_exact(handlers.path(), port);
    server
        .wait_until("exact.js is loaded", |s| async move {
            s.get("/handlers").await.to_string().contains("exact.js")
        })
        .await;
    let url = format!("http://127.0.0.1:{port}/events/{victim}");
    let named = server
        .send(json!({"type": "probe", "data": {"urls": [url], "method": "DELETE"}}))
        .await;
    let done = server.wait_for_status(&named, "exact", "succeeded").await;
    assert_eq!(console_lines(&done), [format!("REACHED {url} 200")]);
    assert_eq!(status_of(&server, &victim).await, 404);
    server.stop().await;
}

fn console_lines(delivery: &Value) -> Vec<String> {
    let logs = &delivery["attempts"][0]["report"]["logs"];
    let lines = logs.as_array().cloned().unwrap_or_default();
    lines
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn status_of(server: &TestServer, event: &str) -> u16 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let response = client
        .get(server.url(&format!("/events/{event}")))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}
