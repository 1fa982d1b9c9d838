//! The `eddy` binary: output, `--json`, exit codes, config errors, the data folder of `eddy run`, `eddy check`.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::support::*;

pub fn eddy(args: &[&str], cwd: &Path) -> Output {
    crate::support::eddy_command()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("eddy runs")
}

pub fn text(out: &Output) -> (String, String) {
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

    let mut child = crate::support::eddy_command()
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

#[test]
fn run_opens_the_data_folder_only_when_the_handler_uses_state() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.display().to_string();
    let run = |handler: &str| {
        eddy(
            &[
                "run",
                &fixture(handler),
                "--event",
                r#"{"type":"t","data":{"word":"hi"}}"#,
                "--data",
                &d,
            ],
            dir.path(),
        )
    };
    let quiet = run("uses_helper.js");
    assert_eq!(quiet.status.code(), Some(0), "{:?}", text(&quiet));
    assert!(!data.exists(), "a handler without ctx.state leaves no data folder");
    for n in 1..=2 {
        let out = run("state.js");
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
        assert!(
            text(&out).0.contains(&format!("runs {n}")),
            "state is kept between runs: {:?}",
            text(&out)
        );
    }

    // Held by another process: a handler that needs no state still runs; one that does fails and says why.
    let held = eddy::store::Store::open(&data, 1 << 20).unwrap();
    let quiet = run("uses_helper.js");
    assert_eq!(quiet.status.code(), Some(0), "{:?}", text(&quiet));
    let out = run("state.js");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("in use by another eddy process"), "{stdout}{stderr}");
    drop(held);
}

#[test]
fn a_slow_first_open_of_the_data_folder_is_not_charged_to_the_cpu_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = eddy::store::Store::open(&data, 1 << 20).unwrap();
        let filler = store.handler_state("filler", eddy::store::StateQuota::UNLIMITED);
        let big = serde_json::json!("x".repeat(512 * 1024));
        for n in 0..64 {
            filler.set(&format!("k{n}"), &big).unwrap();
        }
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(store.commit())
            .unwrap();
        // Dropped without a seal, as by a crash: the next open copies the files aside first.
    }
    // The limit is a third of what opening a copy of the folder takes on this build and
    // machine: an open charged to it fails, while the handler's own polls keep room on a
    // loaded machine (the limit counts wall time inside polls).
    let limit_ms = (open_ms(&data, &dir.path().join("copy")) / 3).max(10);
    let config = dir.path().join("eddy.toml");
    std::fs::write(&config, format!("[runtime]\ncpu_limit_ms = {limit_ms}\n")).unwrap();
    let (c, d) = (config.display().to_string(), data.display().to_string());
    let event = r#"{"type":"t"}"#;
    let out = eddy(
        &[
            "run",
            &fixture("state.js"),
            "--event",
            event,
            "--data",
            &d,
            "--config",
            &c,
        ],
        dir.path(),
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("runs 1"), "{stdout}");
}

/// How long opening a copy of the unsealed store in `data` takes, in ms, as `eddy run`'s
/// first state call opens it (the files copied aside, the state usage counted again).
fn open_ms(data: &Path, copy: &Path) -> u64 {
    copy_dir(data, copy);
    let started = std::time::Instant::now();
    drop(eddy::store::Store::open(copy, 1 << 30).unwrap());
    started.elapsed().as_millis() as u64
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
    assert!(
        stdout.contains("ungranted_secret.js: secret CRM_TOKEN is not granted: add \"CRM_TOKEN\" to [secrets] allow"),
        "{stdout}"
    );
    assert!(
        stdout.contains("own_secret.js: secret EDDY_API_TOKEN can never be granted"),
        "{stdout}"
    );
    // Handlers that load but whose exports serve refuses are refused by check too.
    assert!(
        stdout.contains("bad_route.js: export const on: invalid pattern \"orders.**.created\"")
            && stdout.contains("bad_retry.js: config.retry: retry delay \"8d\" is longer"),
        "{stdout}"
    );
    // CommonJS gets a hint; TypeScript, which is not loaded, is named rather than passed over.
    assert!(
        stdout.contains(&format!(
            "{b}/commonjs.js:2:1: ReferenceError: module is not defined (handlers are ES modules"
        )) && stdout.contains("write `export default async function (event, ctx)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{b}/typed.ts: not loaded: TypeScript handlers are not supported yet"
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains("1 handler(s) loaded, 11 with errors, 1 file(s) not loaded"),
        "{stderr}"
    );

    let good = dir.path().join("handlers");
    std::fs::create_dir(&good).unwrap();
    std::fs::write(good.join("ok.js"), "export default async () => {};").unwrap();
    let out = eddy(&["check"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    // And the config as serve reads it: a public address without a token is refused.
    std::fs::write(dir.path().join("eddy.toml"), "listen = \"0.0.0.0:8787\"\n").unwrap();
    let out = eddy(&["check"], dir.path());
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("eddy.toml: refusing to serve eddy's API on 0.0.0.0:8787 without a token"),
        "{stdout}"
    );
}

#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let data = tempfile::tempdir().unwrap();
    let mut child = crate::support::eddy_command()
        .args([
            "run",
            &fixture("uses_helper.js"),
            "--event",
            r#"{"type":"t","data":{"word":"hi"}}"#,
        ])
        .arg("--data")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("eddy runs");
    // The reader goes away before eddy writes its first line, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let (_, stderr) = text(&out);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
