//! `cargo run --example crm-sync`: runs the example: account changes through eddy's proxy, synced
//! to a fake CRM that rate-limits; prints what happened, and exits non-zero unless the CRM
//! ends up as the example promises. See README.md.

// Both examples share the fakes; each uses only some of them.
#[allow(dead_code)]
#[path = "../support/fakes.rs"]
mod fakes;
mod scenario;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match scenario::run(true).await {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("crm-sync: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let problems = outcome.problems();
    if problems.is_empty() {
        println!("\noutcome: as expected");
        return ExitCode::SUCCESS;
    }
    for problem in problems {
        eprintln!("crm-sync: {problem}");
    }
    ExitCode::FAILURE
}
