//! The commands that talk to a running `eddy serve`: send, events, deliveries, replay, edit,
//! redact, delete; and `serve` itself refusing bad set-ups.

use serde_json::json;

use crate::cli::{eddy, text};

/// `eddy serve`, killed when dropped: a failing test does not leave it running.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &std::path::Path) -> (Serve, String) {
    let (child, addr) = crate::crash::start_eddy(config);
    (Serve(child), addr)
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
    let (server, addr) = start(&config);
    let url = format!("http://{addr}");
    let cwd = dir.path().to_owned();
    let run = move |args: Vec<String>, token: &'static str| {
        let cwd = cwd.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                crate::support::eddy_command()
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
    let again = run(
        args(&["send", "user.signup", r#"{"name":"Ada"}"#, "--id", "signup-1"]),
        "cli-token-1",
    )
    .await;
    let said = text(&again).0;
    assert_eq!(
        said.trim(),
        "signup-1 (a duplicate: accepted before, not stored again)",
        "{said}"
    );
    // A server given as host:port, without a scheme, is reached over http.
    let bare: Vec<String> = [
        "send",
        "user.signup",
        "{}",
        "--id",
        "signup-2",
        "--server",
        &addr.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let bare = run(bare, "cli-token-1").await;
    assert_eq!(text(&bare).0.trim(), "signup-2", "{:?}", text(&bare));
    let ftp = ["events", "list", "--server", "ftp://x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ftp = run(ftp, "cli-token-1").await;
    assert_eq!(ftp.status.code(), Some(2));
    assert!(
        text(&ftp).1.contains("\"ftp://x\" is not a server address"),
        "{:?}",
        text(&ftp)
    );
    // A server that is not there is said once, with what to check.
    let nowhere = ["events", "list", "--server", "127.0.0.1:1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let nowhere = run(nowhere, "cli-token-1").await;
    let (_, said) = text(&nowhere);
    assert_eq!(nowhere.status.code(), Some(2));
    assert!(
        said.contains("cannot reach the eddy server at http://127.0.0.1:1: Connection refused"),
        "{said}"
    );
    assert_eq!(
        said.matches("127.0.0.1:1").count(),
        1,
        "the address is named once: {said}"
    );
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
    let listed_ids = |out: std::process::Output| {
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let events = answer["events"].as_array().cloned().unwrap_or_default();
        events
            .iter()
            .map(|e| e["event"]["id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let newest = run(args(&["events", "list", "--json", "--type", "user.*"]), "cli-token-1").await;
    assert_eq!(listed_ids(newest), "signup-2 signup-1", "newest first, by type pattern");
    let oldest = run(args(&["events", "list", "--json", "--order", "oldest"]), "cli-token-1").await;
    assert_eq!(listed_ids(oldest), "signup-1 signup-2");
    let before = run(args(&["events", "list", "--json", "--until", "1h"]), "cli-token-1").await;
    assert_eq!(listed_ids(before), "", "nothing was received before an hour ago");
    let other = run(args(&["events", "list", "--json", "--type", "crm.*"]), "cli-token-1").await;
    assert_eq!(listed_ids(other), "");
    let bad = run(args(&["events", "list", "--since", "soon"]), "cli-token-1").await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad).1.contains("since must be an RFC 3339 time"),
        "{:?}",
        text(&bad)
    );
    let shown = run(args(&["events", "show", "signup-1"]), "cli-token-1").await;
    let (readable, _) = text(&shown);
    assert!(
        readable.starts_with("event     signup-1\ntype      user.signup\n"),
        "{readable}"
    );
    assert!(
        readable.contains("deliveries\n  DELIVERY") && readable.contains("user.signup"),
        "{readable}"
    );
    let shown = run(args(&["events", "show", "signup-1", "--json"]), "cli-token-1").await;
    let answer: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("JSON with --json");
    assert_eq!(answer["event"]["event"]["id"], "signup-1");
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
    drop(server);
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
    std::fs::write(&config, "[replay]\nconfirm_above = 1\n").unwrap();
    let (server, addr) = start(&config);
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
    let count = |listing: serde_json::Value| listing["deliveries"].as_array().map_or(0, Vec::len);
    let mut dead = 0;
    for _ in 0..400 {
        dead = count(get("/deliveries?status=dead").await);
        if dead == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(dead, 2, "both deliveries went dead");
    let dry = eddy_at(&["replay", "--handler", "jobs", "--dry-run"]).await;
    assert!(dry.starts_with("2 deliveries would be replayed\nID"), "{dry}");

    let before = get("/handlers").await["handlers"][0].clone();
    std::fs::write(&file, "export default async () => console.log('repaired');\n").unwrap();
    let mut after = before.clone();
    for _ in 0..400 {
        after = get("/handlers").await["handlers"][0].clone();
        if after["loaded_at"] != before["loaded_at"] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_ne!(
        after["loaded_at"], before["loaded_at"],
        "the repaired file was reloaded: {after}"
    );
    assert_eq!(
        (&after["loaded"], &after["error"]),
        (&json!(true), &json!(null)),
        "{after}"
    );
    // From a terminal, more than [replay] confirm_above deliveries need --yes.
    let typed = format!("{} replay --handler jobs --server {url}", env!("CARGO_BIN_EXE_eddy"));
    let cwd = dir.path().to_owned();
    let refused = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-qec", &typed, "/dev/null"])
            .current_dir(cwd)
            .env("EDDY_LOG_FORMAT", "pretty")
            .output()
            .expect("script runs eddy in a terminal")
    })
    .await
    .unwrap();
    let (shown, _) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("2 deliveries match, more than [replay] confirm_above (1): nothing was queued"),
        "{shown}"
    );
    assert_eq!(count(get("/deliveries?status=dead").await), 2, "nothing was replayed");
    let args = ["replay", "--handler", "jobs", "--outcomes", "--server", url.as_str()].map(str::to_owned);
    let cwd = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || eddy(&args.each_ref().map(String::as_str), &cwd))
        .await
        .unwrap();
    let (done, progress) = text(&out);
    assert_eq!(
        done.trim(),
        "replay done: 2 queued, 0 skipped of 2\n2 succeeded, 0 failed again, 0 still waiting"
    );
    // stderr is not a terminal here: no progress bar drawn into it.
    assert!(!progress.contains('\r') && !progress.contains("[#"), "{progress:?}");
    // The replays ran the repaired code.
    let mut succeeded = 0;
    for _ in 0..400 {
        succeeded = count(get("/deliveries?status=succeeded&handler=jobs").await);
        if succeeded == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(succeeded, 2, "both replays succeeded");
    for delivery in get("/deliveries?handler=jobs").await["deliveries"].as_array().unwrap() {
        let shown = get(&format!("/deliveries/{}", delivery["id"].as_str().unwrap())).await;
        let attempts = shown["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{shown}");
        assert_eq!(attempts[1]["report"]["logs"][0]["message"], "repaired", "{shown}");
    }
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
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_an_event_with_set_or_in_an_editor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("handlers")).unwrap();
    let config = dir.path().join("eddy.toml");
    std::fs::write(&config, "").unwrap();
    let (server, addr) = start(&config);
    let url = format!("http://{addr}");
    let run = |args: Vec<&'static str>, editor: &'static str| {
        let (url, cwd) = (url.clone(), dir.path().to_owned());
        async move {
            tokio::task::spawn_blocking(move || {
                crate::support::eddy_command()
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
    let shown = run(vec!["events", "show", "u1", "--json"], "true").await;
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
    drop(server);
}
