//! What `eddy serve` and `eddy dev` log on stderr: one line per failed attempt (with its
//! retry time), dead delivery, refused webhook, handler that does not load and, at debug,
//! unrouted event, each with the ids it concerns; JSON off a terminal, `eddy: ...` lines with
//! `--log-format pretty`; `EDDY_LOG` filters them, and a filter that does not parse is refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::child::Serve;

const SECRET: &str = "logs-test-secret-41c";

/// An `eddy.toml` over the logs fixtures, with a GitHub webhook source named `gh`.
fn config(dir: &Path) -> PathBuf {
    let handlers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs");
    let text = format!(
        "handlers = {:?}\ndata = \"data\"\n[sources.gh]\nkind = \"github\"\nsecret_env = \"LOGS_TEST_SECRET\"\n",
        handlers.display().to_string()
    );
    let path = dir.join("eddy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `eddy <command>` on `config`, on a free port, with the webhook secret and its stderr piped.
fn eddy(command: &str, config: &Path) -> Command {
    let mut eddy = crate::support::eddy_command();
    eddy.args([
        command,
        "--config",
        &config.display().to_string(),
        "--listen",
        "127.0.0.1:0",
    ])
    .env("LOGS_TEST_SECRET", SECRET)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    eddy
}

/// Posts what the senders send: an event for the failing handler, one no handler routes, a
/// GitHub webhook with a wrong signature and one for a source that is not configured.
async fn send_everything(addr: &str) {
    let http = reqwest::Client::new();
    for event in [
        json!({"id": "ev-fails", "type": "crm.sync", "data": {}}),
        json!({"id": "ev-nobody", "type": "nobody.listens", "data": {}}),
    ] {
        let answer = http
            .post(format!("http://{addr}/events"))
            .header("content-type", "application/json")
            .body(event.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
    }
    for (source, status) in [("gh", 401), ("nope", 404)] {
        let answer = http
            .post(format!("http://{addr}/webhooks/{source}"))
            .header("x-github-event", "push")
            .header("x-github-delivery", "d-1")
            .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
            .body(r#"{"ref":"main"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status);
    }
}

/// The stderr lines of `serve` parsed as JSON, once one of them matches `done` (at most 30 s).
async fn json_lines_until(serve: &Serve, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines: Vec<Value> = serve
            .stderr()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}")))
            .collect();
        if done(&lines) || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn find<'a>(lines: &'a [Value], target: &str, level: &str, field: (&str, &str)) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| l["target"] == target && l["level"] == level && l[field.0] == field.1)
}

#[tokio::test]
async fn off_a_terminal_every_line_is_json_with_the_ids_it_concerns() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = eddy("serve", &config(dir.path()));
    // No format asked for: stderr is a pipe, so the lines are JSON.
    command
        .env_remove("EDDY_LOG_FORMAT")
        .env("EDDY_LOG", "eddy=info,eddy::unrouted=debug");
    let serve = Serve::attach(command.spawn().expect("eddy starts"));
    let ready = json_lines_until(&serve, |l| {
        l.iter()
            .any(|l| l["message"].as_str().is_some_and(|m| m.starts_with("listening on")))
    })
    .await;
    let listening = ready
        .iter()
        .find_map(|l| l["message"].as_str()?.strip_prefix("listening on http://"));
    let addr = listening
        .expect("a listening line")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    send_everything(&addr).await;
    let lines = json_lines_until(&serve, |l| {
        find(l, "eddy::attempts", "ERROR", ("event_id", "ev-fails")).is_some()
    })
    .await;

    let retry = find(&lines, "eddy::attempts", "WARN", ("event_id", "ev-fails")).expect("a failed attempt's line");
    assert_eq!(
        (&retry["handler"], &retry["attempt"]),
        (&json!("crm.sync"), &json!(1)),
        "{retry}"
    );
    assert!(retry["delivery_id"].as_str().is_some_and(|d| !d.is_empty()), "{retry}");
    assert!(retry["error"].as_str().unwrap().contains("the CRM said no"), "{retry}");
    let retry_at = retry["retry_at"].as_str().expect("retry_at");
    assert!(humantime::parse_rfc3339(retry_at).is_ok(), "{retry}");
    let dead = find(&lines, "eddy::attempts", "ERROR", ("event_id", "ev-fails")).expect("the dead delivery's line");
    assert_eq!(
        (&dead["attempt"], &dead["delivery_id"]),
        (&json!(2), &retry["delivery_id"]),
        "{dead}"
    );

    let refused = find(&lines, "eddy::webhooks", "WARN", ("source", "gh")).expect("the refused webhook");
    assert_eq!(refused["reason"], "bad_signature", "{refused}");
    let unknown = find(&lines, "eddy::webhooks", "WARN", ("source", "(unknown)")).expect("the unknown source");
    assert_eq!(unknown["reason"], "unknown_source", "{unknown}");
    assert!(unknown["message"].as_str().unwrap().contains("\"nope\""), "{unknown}");
    let unrouted = find(&lines, "eddy::unrouted", "DEBUG", ("event_id", "ev-nobody")).expect("the unrouted event");
    assert_eq!(unrouted["event_type"], "nobody.listens", "{unrouted}");
    let broken = find(&lines, "eddy::handlers", "ERROR", ("handler", "broken")).expect("the load error");
    assert!(broken["file"].as_str().unwrap().ends_with("broken.js"), "{broken}");
    assert!(broken["message"].as_str().unwrap().contains("SyntaxError"), "{broken}");
    for line in &lines {
        assert!(line["timestamp"].is_string() && line["level"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn pretty_lines_follow_the_filter_and_dev_shows_unrouted_events_and_refused_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = eddy("dev", &config(dir.path()));
    command.arg("--log-format").arg("pretty");
    let dev = Serve::attach(command.spawn().expect("eddy dev starts"));
    let addr = dev.address().await;
    send_everything(&addr).await;
    let unrouted = dev.wait_for_line("eddy: no handler routes nobody.listens").await;
    assert!(unrouted.contains("event_id=ev-nobody"), "{unrouted}");
    let refused = dev.wait_for_line("eddy: webhook refused").await;
    assert!(
        refused.contains("source=gh") && refused.contains("reason=\"bad_signature\""),
        "{refused}"
    );
    // dev prints attempts in its own log on stdout, not again among the log lines.
    wait_until_dead(&addr, "ev-fails").await;
    let lines = dev.stderr();
    let attempts = ["attempt 1 failed", "delivery dead after"];
    assert!(
        !lines.iter().any(|l| attempts.iter().any(|a| l.contains(a))),
        "{lines:#?}"
    );
    // The config is read once: dev says a change needs a restart, and whether it would load.
    let path = dir.path().join("eddy.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n[delivery]\nhandler_concurrency = 4\n")).unwrap();
    let restart = wait_for_containing(&dev, "changed: restart eddy dev to use it").await;
    assert!(restart.contains("eddy.toml"), "{restart}");
    std::fs::write(&path, format!("{text}\nno_such_key = 1\n")).unwrap();
    let refused = wait_for_containing(&dev, "changed and would not load").await;
    assert!(refused.contains("no_such_key"), "{refused}");
}

/// Waits (at most 30 s) for a stderr line of `dev` holding `text`.
async fn wait_for_containing(dev: &Serve, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(line) = dev.stderr().into_iter().find(|l| l.contains(text)) {
            return line;
        }
        assert!(Instant::now() < deadline, "no line with {text:?}: {:#?}", dev.stderr());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most 30 s) until the one delivery of event `id` is dead.
async fn wait_until_dead(addr: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut event = Value::Null;
    while Instant::now() < deadline {
        let answer = reqwest::get(format!("http://{addr}/events/{id}")).await.unwrap();
        event = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap_or_default();
        if event["deliveries"][0]["status"] == "dead" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the delivery of {id} is not dead after 30 s: {event}");
}

#[tokio::test]
async fn a_log_filter_that_does_not_parse_stops_eddy_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = eddy("serve", &config(dir.path()));
    let child = command.env("EDDY_LOG", "eddy=loud").spawn().expect("eddy runs");
    // A server that started anyway is killed after 30 s, and the test fails.
    let (status, lines) = Serve::attach(child).wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(2), "{lines:#?}");
    let stderr = lines.join("\n");
    assert!(
        stderr.starts_with("error: EDDY_LOG=\"eddy=loud\" is not a log filter"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was opened");
}
