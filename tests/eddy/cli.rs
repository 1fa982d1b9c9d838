//! The `eddy` binary: output, `--json`, exit codes, config errors, `eddy check`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::*;

fn eddy(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("eddy runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(rel: &str) -> String {
    fixtures().join(rel).display().to_string()
}

#[test]
fn run_prints_outcome_and_console_and_exits_zero() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().display().to_string();
    let out = eddy(
        &[
            "run",
            &fixture("uses_helper.js"),
            "--event",
            r#"{"type":"t","data":{"word":"hi"}}"#,
            "--data",
            &d,
        ],
        data.path(),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("ok: uses_helper succeeded in "), "{stdout}");
    assert!(
        stdout.contains("console:\n") && stdout.contains(" log   HI!"),
        "{stdout}"
    );
}

#[test]
fn run_json_is_one_object() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().display().to_string();
    let out = eddy(
        &[
            "run",
            &fixture("outcomes.js"),
            "--event",
            r#"{"type":"t","data":{"mode":"error"}}"#,
            "--data",
            &d,
            "--json",
        ],
        data.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(report["outcome"]["status"], "failure");
    assert_eq!(report["outcome"]["kind"], "error");
    assert_eq!(report["outcome"]["message"], "plain failure");
    assert!(report["logs"].is_array() && report["fetches"].is_array());
}

#[test]
fn run_takes_the_event_from_a_file_or_stdin() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().display().to_string();
    let event = data.path().join("event.json");
    std::fs::write(&event, r#"{"type":"t","data":{"word":"file"}}"#).unwrap();
    let at = format!("@{}", event.display());
    let out = eddy(
        &["run", &fixture("uses_helper.js"), "--event", &at, "--data", &d],
        data.path(),
    );
    assert!(text(&out).0.contains("FILE!"), "{:?}", text(&out));

    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["run", &fixture("uses_helper.js"), "--event", "-", "--data", &d])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"type":"t","data":{"word":"stdin"}}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(text(&out).0.contains("STDIN!"), "{:?}", text(&out));
}

#[test]
fn usage_and_load_errors_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let syntax = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken/syntax.js");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "run".into(),
                syntax.display().to_string(),
                "--event".into(),
                r#"{"type":"t"}"#.into(),
            ],
            "syntax.js:2:13: SyntaxError",
        ),
        (
            vec![
                "run".into(),
                fixture("globals.js"),
                "--event".into(),
                "{not json".into(),
            ],
            "event is not valid JSON",
        ),
        (
            vec![
                "run".into(),
                fixture("globals.js"),
                "--event".into(),
                r#"{"data":1}"#.into(),
            ],
            "event has no \"type\"",
        ),
        (
            vec![
                "run".into(),
                fixture("nope.js"),
                "--event".into(),
                r#"{"type":"t"}"#.into(),
            ],
            "cannot read handler",
        ),
        (vec!["run".into(), fixture("globals.js")], "--event"),
        (
            vec![
                "run".into(),
                fixture("globals.js"),
                "--event".into(),
                r#"{"type":"t"}"#.into(),
                "--config".into(),
                "missing.toml".into(),
            ],
            "missing.toml",
        ),
    ];
    for (mut args, expected) in cases {
        args.extend(["--data".into(), d.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = eddy(&args, dir.path());
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn unknown_config_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("eddy.toml"), "[net]\nallow_privat = []\n").unwrap();
    let out = eddy(
        &["run", &fixture("globals.js"), "--event", r#"{"type":"t"}"#],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("allow_privat"), "{:?}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn run_lists_every_fetch() {
    let api = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("eddy.toml"),
        "data = \"state\"\n[net]\nallow_private = [\"127.0.0.1/32\"]\n",
    )
    .unwrap();
    let event = format!(
        r#"{{"type":"accounts.patch","data":{{"base":"{}","id":7,"name":"Ada"}}}}"#,
        api.base()
    );
    let handler = fixture("crm_sync.js");
    let cwd = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || eddy(&["run", &handler, "--event", &event], &cwd))
        .await
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let line = format!("PATCH {}/contacts/7 -> 200 (", api.base());
    assert!(stdout.contains("fetch:\n") && stdout.contains(&line), "{stdout}");
    assert!(
        dir.path().join("state").is_dir(),
        "state goes to the configured data folder"
    );
}

#[test]
fn check_reports_each_error_as_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let broken = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken");
    let b = broken.display().to_string();
    let out = eddy(&["check", "--handlers", &b], dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{b}/syntax.js:2:13: SyntaxError: Unexpected token ';'")),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad_config.js: invalid `config` export: unknown field `allownet`"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("good.js") && !stdout.contains("not_a_handler"),
        "{stdout}"
    );
    assert!(stderr.contains("1 handler(s) loaded, 6 with errors"), "{stderr}");

    let good = dir.path().join("handlers");
    std::fs::create_dir(&good).unwrap();
    std::fs::write(good.join("ok.js"), "export default async () => {};").unwrap();
    let out = eddy(&["check"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn send_and_inspect_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    std::fs::create_dir(&handlers).unwrap();
    std::fs::write(
        handlers.join("user.signup.js"),
        "export default async (e) => console.log(e.data.name);\n",
    )
    .unwrap();
    let config = dir.path().join("eddy.toml");
    std::fs::write(&config, "api_token = \"cli-token-1\"\n").unwrap();
    let (mut server, addr) = crate::crash::start_eddy(&config);
    let url = format!("http://{addr}");
    let cwd = dir.path().to_owned();
    let run = move |args: Vec<String>, token: &'static str| {
        let cwd = cwd.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(env!("CARGO_BIN_EXE_eddy"))
                    .args(&args)
                    .env("EDDY_API_TOKEN", token)
                    .current_dir(&cwd)
                    .output()
                    .expect("eddy runs")
            })
            .await
            .unwrap()
        }
    };
    let args = |list: &[&str]| {
        list.iter()
            .map(|s| s.to_string())
            .chain(["--server".into(), url.clone()])
            .collect::<Vec<_>>()
    };
    let sent = run(
        args(&["send", "user.signup", r#"{"name":"Ada"}"#, "--id", "signup-1"]),
        "cli-token-1",
    )
    .await;
    assert_eq!(text(&sent).0.trim(), "signup-1", "{:?}", text(&sent));
    let denied = run(args(&["events", "list"]), "wrong").await;
    assert_eq!(denied.status.code(), Some(2));
    assert!(text(&denied).1.contains("401"), "{:?}", text(&denied));

    let mut listed = String::new();
    for _ in 0..200 {
        let out = run(args(&["deliveries", "list", "--status", "succeeded"]), "cli-token-1").await;
        listed = text(&out).0;
        if listed.contains("user.signup") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(listed.starts_with("ID") && listed.contains("succeeded"), "{listed}");
    let events = run(args(&["events", "list", "--json"]), "cli-token-1").await;
    let answer: serde_json::Value = serde_json::from_slice(&events.stdout).expect("JSON");
    assert_eq!(answer["events"][0]["event"]["id"], "signup-1");
    let shown = run(args(&["events", "show", "signup-1"]), "cli-token-1").await;
    assert!(text(&shown).0.contains("\"deliveries\""), "{:?}", text(&shown));
    let missing = run(args(&["deliveries", "show", "nope"]), "cli-token-1").await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).1.contains("404"), "{:?}", text(&missing));

    // A missing handlers folder is a clear error.
    let no_handlers = run(
        vec![
            "serve".into(),
            "--handlers".into(),
            "nope".into(),
            "--data".into(),
            "d2".into(),
        ],
        "",
    )
    .await;
    assert_eq!(no_handlers.status.code(), Some(2));
    assert!(
        text(&no_handlers).1.contains("the handlers folder nope does not exist"),
        "{:?}",
        text(&no_handlers)
    );
    // A second server on the same data folder is refused with a clear error.
    let second = run(vec!["serve".into(), "--listen".into(), "127.0.0.1:0".into()], "").await;
    assert_eq!(second.status.code(), Some(2));
    assert!(
        text(&second).1.contains("in use by another eddy process"),
        "{:?}",
        text(&second)
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    std::fs::create_dir(&handlers).unwrap();
    let file = handlers.join("jobs.js");
    std::fs::write(
        &file,
        "export default async () => { throw new NonRetryableError('broken'); };\n",
    )
    .unwrap();
    let config = dir.path().join("eddy.toml");
    std::fs::write(&config, "").unwrap();
    let (mut server, addr) = crate::crash::start_eddy(&config);
    let url = format!("http://{addr}");
    let eddy_at = |args: &[&str]| {
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        full.extend(["--server".into(), url.clone()]);
        let cwd = dir.path().to_owned();
        async move {
            let out =
                tokio::task::spawn_blocking(move || eddy(&full.iter().map(String::as_str).collect::<Vec<_>>(), &cwd))
                    .await
                    .unwrap();
            text(&out).0
        }
    };
    for id in ["job-1", "job-2"] {
        eddy_at(&["send", "jobs", "{}", "--id", id]).await;
    }
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let (http, url) = (http.clone(), format!("{url}{path}"));
        async move {
            serde_json::from_slice::<serde_json::Value>(&http.get(url).send().await.unwrap().bytes().await.unwrap())
                .unwrap()
        }
    };
    for _ in 0..400 {
        if get("/deliveries?status=dead").await["deliveries"]
            .as_array()
            .unwrap()
            .len()
            == 2
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let dry = eddy_at(&["replay", "--handler", "jobs", "--dry-run"]).await;
    assert!(dry.starts_with("2 deliveries would be replayed\nID"), "{dry}");

    let before = get("/handlers").await["handlers"][0]["loaded_at"].clone();
    std::fs::write(&file, "export default async () => console.log('repaired');\n").unwrap();
    for _ in 0..400 {
        if get("/handlers").await["handlers"][0]["loaded_at"] != before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let done = eddy_at(&["replay", "--handler", "jobs"]).await;
    assert_eq!(done.trim(), "replay done: 2 queued, 0 skipped of 2");
    let one = get("/deliveries?handler=jobs").await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let single = eddy_at(&["replay", &one]).await;
    assert!(
        single == format!("{one} queued\n") || single == format!("{one} already_queued\n"),
        "{single}"
    );
    let audit = get("/audit").await;
    assert!(
        audit["audit"].as_array().unwrap().iter().all(|a| a["actor"] == "cli"),
        "{audit}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_an_event_with_set_or_in_an_editor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("handlers")).unwrap();
    let config = dir.path().join("eddy.toml");
    std::fs::write(&config, "").unwrap();
    let (mut server, addr) = crate::crash::start_eddy(&config);
    let url = format!("http://{addr}");
    let run = |args: Vec<&'static str>, editor: &'static str| {
        let (url, cwd) = (url.clone(), dir.path().to_owned());
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(env!("CARGO_BIN_EXE_eddy"))
                    .args(&args)
                    .args(["--server", &url])
                    .env("EDITOR", editor)
                    .current_dir(&cwd)
                    .output()
                    .expect("eddy runs")
            })
            .await
            .unwrap()
        }
    };
    run(
        vec!["send", "user.signup", r#"{"name":"Ada","plan":"free"}"#, "--id", "u1"],
        "true",
    )
    .await;
    let set = run(
        vec![
            "events",
            "edit",
            "u1",
            "--set",
            "data.name=Grace",
            "--set",
            "data.plan=null",
        ],
        "true",
    )
    .await;
    assert_eq!(text(&set).0.trim(), "u1 is now version 2", "{:?}", text(&set));
    let edited = run(vec!["events", "edit", "u1"], "sed -i s/Grace/Hopper/").await;
    assert_eq!(text(&edited).0.trim(), "u1 is now version 3", "{:?}", text(&edited));
    let shown = run(vec!["events", "show", "u1"], "true").await;
    let event: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(event["event"]["event"]["data"], serde_json::json!({"name": "Hopper"}));
    assert_eq!(event["history"].as_array().unwrap().len(), 2);
    let bad = run(vec!["events", "edit", "u1", "--set", "=x"], "true").await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).1.contains("the path needs a field"), "{:?}", text(&bad));

    let dry = run(
        vec!["events", "delete", "--where", "data.name=Hopper", "--dry-run"],
        "true",
    )
    .await;
    assert_eq!(text(&dry).0, "1 events would be deleted\n  u1\n", "{:?}", text(&dry));
    let redacted = run(vec!["events", "redact", "u1", "--fields", "data.name"], "true").await;
    assert_eq!(text(&redacted).0.trim(), "u1 redacted", "{:?}", text(&redacted));
    let deleted = run(vec!["events", "delete", "u1"], "true").await;
    assert_eq!(text(&deleted).0.trim(), "u1 deleted", "{:?}", text(&deleted));
    let none = run(vec!["events", "delete", "--type", "user.signup"], "true").await;
    assert_eq!(text(&none).0.trim(), "0 events deleted", "{:?}", text(&none));
    server.kill().unwrap();
    server.wait().unwrap();
}
