//! eddy in-process for an example: a temporary copy of the example's eddy.toml and handlers,
//! a `.env` with the demo's settings, eddy's API (and, when asked, its proxy) on 127.0.0.1:0,
//! bounded waits for what the handlers do, a bounded stop, and the exit status of an example's
//! `main`. The scenarios keep only their story; this is the part both tell the same way.

use std::fmt::Display;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eddy::config::Config;
use eddy::server::{Listeners, ServerError, Setup, Stopped};
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};

use super::fakes::local_client;

/// Longest wait for one step; the slowest step waits out one 1 s Retry-After.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// eddy in-process over a copy of an example, on 127.0.0.1:0. Stop it with [`Eddy::stop`].
pub struct Eddy {
    /// The admin API and ingest (`/events`, `/webhooks/{source}`).
    pub url: String,
    proxy_url: Option<String>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<Stopped, ServerError>>,
    /// Holds the copy (and eddy's data) until eddy has stopped.
    _dir: TempDir,
}

impl Eddy {
    /// Copies `examples/{example}`'s eddy.toml and handlers/ to a temporary folder, writes
    /// `env` there as `.env`, and starts eddy; with `proxy_upstream`, also the `[proxy]` of
    /// its eddy.toml, forwarding there. Refuses when the environment sets a name of `env`,
    /// since it would win over the `.env` and the demo would talk to something else.
    pub async fn start(example: &str, env: &[(&str, String)], proxy_upstream: Option<&str>) -> anyhow::Result<Self> {
        if let Some((name, _)) = env.iter().find(|(name, _)| std::env::var_os(name).is_some()) {
            bail!("{name} is set in the environment and would override the demo's settings; unset it to run the demo");
        }
        let dir = tempfile::tempdir()?;
        let config_path = copy_example(example, dir.path(), env)?;
        let mut config = Config::parse(&std::fs::read_to_string(&config_path)?, &config_path)?;
        let (proxy, proxy_url) = match proxy_upstream {
            Some(upstream) => {
                let (listener, url) = proxy_on(&mut config, upstream).await?;
                (Some(listener), Some(url))
            }
            None => {
                config.proxy = None;
                (None, None)
            }
        };
        let api = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", api.local_addr()?);
        let setup = Setup { config, on_start: None };
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let server = tokio::spawn(eddy::server::run(setup, Listeners { api, proxy }, shutdown));
        let eddy = Self {
            url,
            proxy_url,
            stop,
            server,
            _dir: dir,
        };
        eddy.ready().await?;
        Ok(eddy)
    }

    /// The proxy's address, when it was started with one.
    pub fn proxy_url(&self) -> Option<&str> {
        self.proxy_url.as_deref()
    }

    /// Waits until eddy answers; fails with the load error when a handler does not load,
    /// rather than timing out later.
    async fn ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let answer = loop {
            match self.get("/handlers").await {
                Ok(answer) => break answer,
                Err(e) if Instant::now() > deadline => return Err(e.context("eddy did not start")),
                Err(_) => tokio::time::sleep(POLL).await,
            }
        };
        let handlers = answer["handlers"].as_array().cloned().unwrap_or_default();
        if let Some(broken) = handlers.iter().find(|h| !h["error"].is_null() || h["loaded"] != true) {
            bail!("handler {} does not load: {}", broken["id"], broken["error"]);
        }
        if handlers.is_empty() {
            bail!("no handlers were found");
        }
        Ok(())
    }

    /// GETs `path` of eddy's admin API as JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut request = local_client().get(format!("{}{path}", self.url));
        if let Ok(token) = std::env::var("EDDY_API_TOKEN") {
            request = request.bearer_auth(token);
        }
        let body = request.send().await?.error_for_status()?.bytes().await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Polls `done` until it holds. Fails at once when a delivery is dead (no retry will
    /// come), and on time-out with eddy's deliveries, so the error says what went wrong.
    pub async fn wait_until(&self, what: &str, done: impl Fn() -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        for round in 0.. {
            if done() {
                return Ok(());
            }
            if Instant::now() > deadline {
                break;
            }
            if round % 5 == 4 {
                let dead = self.get("/deliveries?status=dead").await?;
                if let Some(first) = dead["deliveries"].as_array().and_then(|all| all.first()) {
                    bail!(
                        "while waiting until {what}: a delivery is dead: {}",
                        first["last_error"]
                    );
                }
            }
            tokio::time::sleep(POLL).await;
        }
        let deliveries = self.get("/deliveries").await.unwrap_or_default();
        bail!(
            "timed out waiting until {what}; eddy's deliveries: {:#}",
            deliveries["deliveries"]
        )
    }

    /// The deliveries once none is pending or running: a fake can show a change before
    /// eddy has recorded the attempt that made it.
    pub async fn settled_deliveries(&self) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let answer = self.get("/deliveries").await?;
            let deliveries = answer["deliveries"].as_array().cloned().unwrap_or_default();
            let busy = deliveries
                .iter()
                .any(|d| d["status"] == "pending" || d["status"] == "running");
            if !busy || Instant::now() > deadline {
                return Ok(deliveries);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops intake and waits (bounded) for attempts in flight, then removes the copy.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(STEP_TIMEOUT, self.server).await {
            Ok(ended) => report_stop("eddy", ended),
            Err(_) => eprintln!("eddy did not stop within {STEP_TIMEOUT:?}"),
        }
    }
}

/// Says on stderr how the server ended, when it did not end cleanly.
fn report_stop<E: Display>(what: &str, ended: Result<Result<Stopped, E>, JoinError>) {
    match ended {
        Ok(Ok(Stopped::Sealed | Stopped::StillInUse)) => {}
        Ok(Ok(Stopped::StoreFailed { cause })) => eprintln!("{what} stopped with a failed store: {cause}"),
        Ok(Err(e)) => eprintln!("{what} stopped with an error: {e}"),
        Err(e) => eprintln!("{what}'s task failed: {e}"),
    }
}

/// Points the `[proxy]` of `config` at `upstream` and binds it on 127.0.0.1:0; returns the
/// listener and its URL.
async fn proxy_on(config: &mut Config, upstream: &str) -> anyhow::Result<(TcpListener, String)> {
    let proxy = config.proxy.as_mut().context("eddy.toml has no [proxy]")?;
    proxy.upstream = Some(eddy::config::Upstream::parse(upstream).map_err(anyhow::Error::msg)?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

/// Copies the example's eddy.toml and handlers/ into `dir` and writes `env` as `dir/.env`;
/// returns the copied eddy.toml's path.
fn copy_example(example: &str, dir: &Path, env: &[(&str, String)]) -> anyhow::Result<std::path::PathBuf> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(example);
    let config_path = dir.join("eddy.toml");
    std::fs::copy(example.join("eddy.toml"), &config_path)?;
    copy_dir(&example.join("handlers"), &dir.join("handlers"))?;
    let lines: String = env.iter().map(|(name, value)| format!("{name}={value}\n")).collect();
    std::fs::write(dir.join(".env"), lines)?;
    Ok(config_path)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// How an example's `main` ends: "outcome: as expected" and success when the scenario ran
/// and found no `problems`, else each problem (or the error) on stderr and failure.
// Only the examples' `main.rs` call it; the tests, which include this file too, do not.
#[allow(dead_code)]
pub fn exit_code(example: &str, problems: anyhow::Result<Vec<String>>) -> ExitCode {
    let problems = match problems {
        Ok(problems) => problems,
        Err(e) => {
            eprintln!("{example}: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if problems.is_empty() {
        println!("\noutcome: as expected");
        return ExitCode::SUCCESS;
    }
    for problem in problems {
        eprintln!("{example}: {problem}");
    }
    ExitCode::FAILURE
}
