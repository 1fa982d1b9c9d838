//! `cargo run --example crm-sync`: runs the example: account changes through eddy's proxy, synced
//! to a fake CRM that rate-limits; prints what happened, and exits non-zero unless the CRM
//! ends up as the example promises. See README.md.

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
    launcher::exit_code("crm-sync", problems)
}
