//! eddy under test as a child process: the binary cargo built for the benchmark, run in a
//! folder of its own with a config written for the occasion, and the endpoints read after.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::load::http_client;
use super::procs::Launch;

/// How long a started server may take to load its handlers.
const LOAD_HANDLERS: Duration = Duration::from_secs(30);

/// The `eddy` binary cargo built for this benchmark (release for `cargo bench`).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_eddy"))
}

/// `eddy serve` in `dir`, with `config` as its `eddy.toml`; `dir` is removed once the server
/// is gone. Relative paths in `config` are relative to `dir`.
pub fn launch(dir: tempfile::TempDir, config: &str) -> Result<Launch, String> {
    std::fs::write(dir.path().join("eddy.toml"), config).map_err(|e| e.to_string())?;
    Ok(Launch {
        program: binary(),
        args: vec!["serve".into(), "--config".into(), "eddy.toml".into()],
        cwd: dir.path().to_owned(),
        // The lines the benchmark reads for the address are the `eddy: ...` ones.
        env: vec![("EDDY_LOG_FORMAT", "pretty".into())],
        hold_stdin: false,
        dir: Some(dir),
    })
}

/// Waits until `GET /handlers` shows `count` loaded handlers. eddy prints its address before
/// it loads them, and an event posted meanwhile is routed to no handler.
pub async fn wait_for_handlers(url: &str, count: usize) -> Result<(), String> {
    let enough = |loaded: &[Value]| loaded.len() >= count;
    wait_for_loaded(url, enough, &format!("fewer than {count} handlers loaded")).await
}

/// Waits until `GET /handlers` lists the handler `id` as loaded (see [`wait_for_handlers`]).
pub async fn wait_for_handler(url: &str, id: &str) -> Result<(), String> {
    let listed = |loaded: &[Value]| loaded.iter().any(|h| h["id"] == id);
    wait_for_loaded(url, listed, &format!("handler {id} not loaded")).await
}

/// Polls `GET /handlers` until `done` holds for the loaded ones, for up to [`LOAD_HANDLERS`].
async fn wait_for_loaded(url: &str, done: impl Fn(&[Value]) -> bool, what: &str) -> Result<(), String> {
    let http = http_client();
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < LOAD_HANDLERS {
        if let Ok(answer) = http.get(format!("{url}/handlers")).send().await {
            last = answer.text().await.unwrap_or_default();
            let json: Value = serde_json::from_str(&last).unwrap_or_default();
            let all = json["handlers"].as_array().cloned().unwrap_or_default();
            let loaded: Vec<Value> = all.into_iter().filter(|h| h["loaded"] == true).collect();
            if done(&loaded) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{what} after {} s: {last}", LOAD_HANDLERS.as_secs()))
}

/// eddy's attempt counters from `GET /metrics`, summed over its handlers.
pub async fn attempt_counts(url: &str) -> Option<String> {
    let answer = http_client().get(format!("{url}/metrics")).send().await.ok()?;
    let text = answer.text().await.ok()?;
    // One line per handler and outcome; an outcome no attempt had has no line.
    let count = |outcome: &str| -> u64 {
        let label = format!("outcome=\"{outcome}\"");
        text.lines()
            .filter(|l| l.starts_with("eddy_attempts_total{") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    Some(format!(
        "attempts: {} succeeded, {} retried, {} dead",
        count("succeeded"),
        count("retried"),
        count("dead")
    ))
}
