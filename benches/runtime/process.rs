//! The whole `eddy run` process on a trivial handler, against `deno run` of a script that
//! imports the same module and calls it with the same event: what every dev loop pays.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{ms, percentiles};

/// Paired runs: eddy, then Deno, this many times.
const RUNS: usize = 20;

const HANDLER: &str = "export default async function (event, ctx) {}\n";
const EVENT: &str = r#"{"type":"trivial","data":{}}"#;
/// What `deno run` runs: the handler, imported and called as eddy calls it.
const DENO_MAIN: &str = "import handler from \"./handlers/trivial.js\";\n\
    await handler({ type: \"trivial\", data: {} }, {});\n";

/// Prints the wall time of both, median and range over [`RUNS`] paired runs.
pub fn compare(eddy: &Path, deno: Result<PathBuf, String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir(root.join("handlers")).expect("handlers");
    std::fs::write(root.join("handlers/trivial.js"), HANDLER).expect("handler");
    std::fs::write(root.join("event.json"), EVENT).expect("event");
    std::fs::write(root.join("main.js"), DENO_MAIN).expect("main");
    let eddy_run = || {
        let args = ["run", "handlers/trivial.js", "--event", "@event.json"];
        timed(Command::new(eddy).args(args).current_dir(root))
    };
    let deno_run = |deno: &Path| {
        let mut command = Command::new(deno);
        command
            .args(["run", "--no-prompt", "main.js"])
            .env("DENO_DIR", root.join("deno-dir"))
            .current_dir(root);
        timed(&mut command)
    };
    // One run each first: the data folder and Deno's cache of the module are made, not timed.
    eddy_run();
    if let Ok(deno) = &deno {
        deno_run(deno);
    }
    let (mut eddy_times, mut deno_times) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        eddy_times.push(eddy_run());
        if let Ok(deno) = &deno {
            deno_times.push(deno_run(deno));
        }
    }
    println!(
        "process start to exit, trivial handler ({RUNS} paired runs): {}",
        summary(&mut eddy_times, "eddy run")
    );
    match deno {
        Ok(_) => println!("  {}", summary(&mut deno_times, "deno run")),
        Err(why) => println!("  deno run: not measured ({why})"),
    }
}

/// Wall time of one run, which must succeed.
fn timed(command: &mut Command) -> Duration {
    let started = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the program starts");
    let took = started.elapsed();
    assert!(status.success(), "{command:?} failed: {status}");
    took
}

fn summary(times: &mut [Duration], what: &str) -> String {
    let (min, max) = (times.iter().min().copied(), times.iter().max().copied());
    let (p50, _) = percentiles(times);
    format!(
        "{what} median {:.1} ms (range {:.1} to {:.1} ms)",
        ms(p50),
        min.map_or(0.0, ms),
        max.map_or(0.0, ms)
    )
}
