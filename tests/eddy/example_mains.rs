//! Each example's `main` (`cargo run --example <name>`) run as its own process: exit code 0
//! when the story ends as its README says, non-zero when it cannot run as documented (here:
//! a setting of its `.env` overridden by the environment, which the launcher refuses).

use std::path::PathBuf;
use std::process::{Command, Output};

/// The example's binary in this test binary's target folder. `cargo test --workspace` builds
/// it; `cargo test --test eddy` does not, and a cargo started from here would see the test's
/// environment and rebuild dependencies, so a missing binary fails with what to run.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target folder");
    let binary = profile_dir.join("examples").join(name);
    assert!(
        binary.exists(),
        "no {} (run `cargo build --examples` first, or `cargo test --workspace`)",
        binary.display()
    );
    binary
}

/// Runs the example with `env` added to a clean copy of the names it reads.
fn run(name: &str, reads: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(example_binary(name));
    for read in reads {
        command.env_remove(read);
    }
    command.envs(env.iter().copied());
    command.output().expect("the example runs")
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const GITHUB_TO_SLACK: &[&str] = &[
    "GITHUB_WEBHOOK_SECRET",
    "SLACK_API_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_CHANNEL",
];
const CRM_SYNC: &[&str] = &["CRM_API_URL", "CRM_TOKEN"];

#[test]
fn each_example_main_exits_0_when_its_story_ends_as_promised() {
    for (name, reads) in [("github-to-slack", GITHUB_TO_SLACK), ("crm-sync", CRM_SYNC)] {
        let output = run(name, reads, &[]);
        assert_eq!(output.status.code(), Some(0), "{name}: {}", text(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("outcome: as expected"), "{name}: {}", text(&output));
    }
}

#[test]
fn each_example_main_exits_non_zero_when_it_cannot_run_as_documented() {
    for (name, reads) in [("github-to-slack", GITHUB_TO_SLACK), ("crm-sync", CRM_SYNC)] {
        let output = run(name, reads, &[(reads[1], "http://127.0.0.1:9/elsewhere")]);
        assert_eq!(output.status.code(), Some(1), "{name}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reads[1]), "{name} names the setting: {}", text(&output));
        assert!(!String::from_utf8_lossy(&output.stdout).contains("outcome: as expected"));
    }
}
