//! Secrets: granted by the operator (`[secrets] allow`), never eddy's own, and redacted in
//! every form wherever an invocation's output is captured.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::cli::text;
use crate::support::FakeApi;

/// A value with every character that changes between its forms.
const SECRET: &str = "tok \"q\\ sl/a&b=é✓ end";

/// What `encodeURIComponent` leaves as it is.
pub(crate) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// `eddy <args>` in `dir` with `env` set.
fn eddy_with(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = crate::support::eddy_command();
    command.args(args).current_dir(dir);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("eddy runs")
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("eddy.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn serve_refuses_grants_of_eddys_own_variables_and_source_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("handlers")).unwrap();
    let source = "[sources.gh]\nkind = \"github\"\nsecret_env = \"GH_HOOK_SECRET\"\n";
    for entry in ["EDDY_API_TOKEN", "EDDY_*", "GH_HOOK_SECRET"] {
        let config = write_config(dir.path(), &format!("[secrets]\nallow = [{entry:?}]\n{source}"));
        let out = serve_until_it_exits(&config, dir.path());
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{entry}: {stdout}{stderr}");
        assert!(
            stderr.contains(&format!("[secrets] allow entry {entry:?}")) && stderr.contains("never be granted"),
            "{entry}: {stderr}"
        );
    }
}

/// `eddy serve` with `config`, which must stop by itself; one still running after 30 s is
/// killed and fails the test.
fn serve_until_it_exits(config: &str, dir: &Path) -> Output {
    let mut child = crate::support::eddy_command()
        .args(["serve", "--config", config, "--listen", "127.0.0.1:0"])
        .env("GH_HOOK_SECRET", "hook-secret-value")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("eddy runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("eddy serve can be waited for").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("eddy serve stops");
            panic!("eddy serve started with {config}: {:?}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("eddy serve output")
}

#[test]
fn check_names_the_grant_a_handler_lacks_and_accepts_granted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    std::fs::create_dir(&handlers).unwrap();
    let handler = "export const config = { secrets: [\"CRM_TOKEN\"] };\nexport default async () => {};\n";
    std::fs::write(handlers.join("crm.js"), handler).unwrap();
    let env = [("CRM_TOKEN", "crm-token-value")];
    let config = write_config(dir.path(), "[secrets]\nallow = [\"SLACK_*\"]\n");
    let out = eddy_with(&["check", "--config", &config], dir.path(), &env);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("crm.js: secret CRM_TOKEN is not granted: add \"CRM_TOKEN\" to [secrets] allow"),
        "{stdout}"
    );
    let config = write_config(dir.path(), "[secrets]\nallow = [\"CRM_*\"]\n");
    let out = eddy_with(&["check", "--config", &config], dir.path(), &env);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    // A .env that defines eddy's own token does not make it grantable.
    std::fs::write(dir.path().join(".env"), "EDDY_API_TOKEN=api-token-value\n").unwrap();
    let handler = "export const config = { secrets: [\"EDDY_API_TOKEN\"] };\nexport default async () => {};\n";
    std::fs::write(handlers.join("crm.js"), handler).unwrap();
    let config = write_config(dir.path(), "[secrets]\nallow = [\"*\"]\n");
    let out = eddy_with(&["check", "--config", &config], dir.path(), &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("crm.js: secret EDDY_API_TOKEN can never be granted to a handler"),
        "{stdout}"
    );
}

/// Every form of [`SECRET`] a report could hold.
fn forms() -> Vec<String> {
    let component = utf8_percent_encode(SECRET, COMPONENT).to_string();
    let json = serde_json::to_string(SECRET).unwrap();
    let json = json[1..json.len() - 1].to_owned();
    let url = url::Url::parse(&format!("http://h/?raw={SECRET}")).unwrap();
    let parsed = url.query().unwrap().trim_start_matches("raw=").to_owned();
    let form: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    let lower = ["%5C", "%2F", "%3D", "%C3%A9", "%E2%9C%93"]
        .iter()
        .fold(component.clone(), |text, escape| {
            text.replace(escape, &escape.to_lowercase())
        });
    vec![
        SECRET.to_owned(),
        component,
        lower,
        form,
        parsed,
        serde_json::to_string(&json).unwrap(),
        json,
    ]
}

/// Every string in `value`, keys included.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out);
        }),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_form_of_a_secret_leaves_the_isolate() {
    let api = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[net]\nallow_private = [\"127.0.0.1/32\"]\n[secrets]\nallow = [\"LEAK_SECRET\"]\n",
    );
    let handler = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/secrets/leak.js");
    let event = serde_json::json!({ "type": "leak", "data": { "base": api.base() } }).to_string();
    let args = [
        "run",
        &handler.display().to_string(),
        "--event",
        &event,
        "--config",
        &config,
        "--json",
    ]
    .map(str::to_owned);
    let dir_path = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        eddy_with(&args, &dir_path, &[("LEAK_SECRET", SECRET)])
    })
    .await
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("one JSON report");

    let mut all = Vec::new();
    strings(&report, &mut all);
    for form in forms() {
        assert!(!stdout.contains(&form), "{form:?} in {stdout}");
        for s in &all {
            assert!(!s.contains(&form), "{form:?} in {s:?}");
        }
    }
    let marker = "[secret:LEAK_SECRET]";
    let outcome = &report["outcome"];
    for field in ["name", "message", "stack"] {
        assert!(
            outcome[field].as_str().unwrap().contains(marker),
            "{field}: {outcome:#}"
        );
    }
    let causes = outcome["causes"].as_array().expect("causes");
    assert_eq!(causes.len(), 3, "{outcome:#}");
    assert!(
        causes.iter().all(|c| c["message"].as_str().unwrap().contains(marker)),
        "{causes:#?}"
    );
    assert!(causes[2]["name"].as_str().unwrap().contains(marker), "{causes:#?}");
    let properties = outcome["properties"].as_object().expect("properties");
    assert_eq!(properties["token"], marker);
    assert!(
        properties["detail"].as_str().unwrap().contains(marker),
        "{properties:?}"
    );
    assert!(properties.keys().any(|k| k.contains(marker)), "{properties:?}");
    let logs = report["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 5, "{logs:#?}");
    assert!(
        logs.iter().all(|l| l["message"].as_str().unwrap().contains(marker)),
        "{logs:#?}"
    );
    let fetches = report["fetches"].as_array().unwrap();
    assert_eq!(fetches.len(), 4, "{fetches:#?}");
    assert!(
        fetches.iter().all(|f| f["url"].as_str().unwrap().contains(marker)),
        "{fetches:#?}"
    );
    // The secret really went out: the fake API answered.
    assert_eq!(fetches[0]["status"], 200, "{fetches:#?}");
}
