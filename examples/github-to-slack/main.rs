//! `cargo run --example github-to-slack`: runs the example against a fake Slack and signed
//! pull request webhooks, prints what happened, and exits non-zero unless the Slack
//! channel ends up as the example promises. See README.md.

// Both examples share the fakes and the launcher; each uses only some of them.
#[allow(dead_code, unused_imports)]
#[path = "../support/fakes/mod.rs"]
mod fakes;
#[allow(dead_code)]
#[path = "../support/launcher.rs"]
mod launcher;
mod scenario;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let problems = scenario::run(true).await.map(|outcome| outcome.problems());
    launcher::exit_code("github-to-slack", problems)
}
