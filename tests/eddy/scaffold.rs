//! `eddy init` and `eddy dev`, through the real binary.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::cli::{eddy, text};

#[test]
fn init_makes_a_project_whose_handler_runs_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = eddy(&["init", "shop"], dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("created  handlers/user.signup.js") && stdout.contains("cd shop && eddy dev"),
        "{stdout}"
    );
    let project = dir.path().join("shop");
    for file in [
        "eddy.toml",
        ".env.example",
        ".gitignore",
        "README.md",
        "eddy.d.ts",
        "jsconfig.json",
    ] {
        assert!(project.join(file).is_file(), "{file} is created");
        // The files stand alone: nothing points into eddy's source repository.
        let text = std::fs::read_to_string(project.join(file)).unwrap();
        for only_in_the_repository in [
            "eddy.example.toml",
            "repository",
            "examples/",
            "BENCHMARKS",
            "ARCHITECTURE",
        ] {
            assert!(
                !text.contains(only_in_the_repository),
                "{file} mentions {only_in_the_repository}"
            );
        }
    }
    let out = eddy(&["check"], &project);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let event = r#"{"type":"user.signup","data":{"name":"Ada","email":"ada@example.com"}}"#;
    let out = eddy(&["run", "handlers/user.signup.js", "--event", event], &project);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("welcome, Ada: signup number 1"), "{stdout}");

    let out = eddy(&["init", "shop"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("already has eddy.toml"), "{stderr}");
}

#[test]
fn init_grants_the_secret_its_handler_suggests() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(eddy(&["init"], dir.path()).status.code(), Some(0));
    let handler = dir.path().join("handlers/user.signup.js");
    let code = std::fs::read_to_string(&handler).unwrap();
    assert!(code.contains("  // secrets: [\"EXAMPLE_API_TOKEN\"],"), "{code}");
    let code = code
        .replace(
            "  // secrets: [\"EXAMPLE_API_TOKEN\"],",
            "  secrets: [\"EXAMPLE_API_TOKEN\"],",
        )
        .replace(
            "console.log(`welcome",
            "console.log(`token ${ctx.secrets.EXAMPLE_API_TOKEN.length}, welcome",
        );
    std::fs::write(&handler, code).unwrap();
    let event = r#"{"type":"user.signup","data":{"name":"Ada","email":"ada@example.com"}}"#;
    let out = crate::support::eddy_command()
        .args(["run", "handlers/user.signup.js", "--event", event])
        .env("EXAMPLE_API_TOKEN", "tok-0123456789")
        .current_dir(dir.path())
        .output()
        .expect("eddy runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("token 14, welcome, Ada"), "{stdout}");
}

#[test]
fn proxy_without_an_upstream_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = eddy(&["proxy"], dir.path());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("--upstream"), "{stderr}");
    let out = eddy(&["proxy", "--upstream", "ftp://example.com"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
}

/// Reads stdout lines until one contains `needle` (at most 20 s).
fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    while !seen.iter().any(|l| l.contains(needle)) {
        match lines.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with {needle:?} in:\n{}", seen.join("\n")),
        }
    }
}

#[test]
fn dev_prints_each_attempt_with_its_console_lines() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(eddy(&["init"], dir.path()).status.code(), Some(0));
    let mut child = crate::support::eddy_command()
        .args(["dev", "--listen", "127.0.0.1:0", "--color", "never"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("eddy dev starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let addr = stderr
        .find_map(|line| {
            line.strip_prefix("eddy: listening on http://")
                .map(|r| r.split(' ').next().unwrap_or("").to_owned())
        })
        .expect("eddy dev says where it listens");
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || stderr.for_each(drop));
    let (send, lines) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || stdout.lines().map_while(Result::ok).for_each(|l| drop(send.send(l))));
    let mut seen = Vec::new();
    wait_for_line(&lines, "loaded user.signup", &mut seen);

    let server = format!("http://{addr}");
    let send_event = |data: &str| {
        let out = eddy(&["send", "user.signup", data, "--server", &server], dir.path());
        assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    };
    send_event(r#"{"name":"Ada","email":"ada@example.com"}"#);
    wait_for_line(&lines, "OK    user.signup -> user.signup #1", &mut seen);
    wait_for_line(&lines, "| log   welcome, Ada: signup number 1", &mut seen);
    send_event(r#"{"name":"Bob"}"#);
    wait_for_line(&lines, "DEAD  user.signup -> user.signup #1", &mut seen);
    assert!(
        seen.iter()
            .any(|l| l.contains("a signup without an email cannot be processed")),
        "{seen:#?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains('\x1b')),
        "--color never prints no escape codes"
    );

    // Saving the handler reloads it.
    let handler = dir.path().join("handlers/user.signup.js");
    let code = std::fs::read_to_string(&handler)
        .unwrap()
        .replace("welcome,", "hello again,");
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&handler, code).unwrap();
    wait_for_line(&lines, "reloaded user.signup", &mut seen);
    send_event(r#"{"name":"Cy","email":"cy@example.com"}"#);
    wait_for_line(&lines, "hello again, Cy", &mut seen);
    let _ = child.kill();
    let _ = child.wait();
}
