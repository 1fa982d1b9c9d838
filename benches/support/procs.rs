//! Servers under test as child processes: start one on 127.0.0.1 (port 0, the system picks),
//! learn its address from the line it prints, read (or sample) its resident memory, and kill it.
//!
//! Every server runs under `timeout`, so none outlives [`LIFETIME`] even if the benchmark is
//! killed; one started with `hold_stdin` may also exit when its standard input closes, that
//! is, when the benchmark's end of the pipe goes away (the peers' JS servers do).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a server may live.
const LIFETIME: Duration = Duration::from_secs(240);
/// The longest a server may take to print its address.
const STARTUP: Duration = Duration::from_secs(60);
/// Output lines kept to explain a failed start.
const KEPT_LINES: usize = 20;
/// What a server prints once it accepts connections, followed by its address.
const READY: &str = "listening on http://";

/// How to start one server.
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(&'static str, String)>,
    /// Keep a pipe to its standard input open for its whole life (the JS servers exit on EOF).
    pub hold_stdin: bool,
    /// A folder removed once the server is gone.
    pub dir: Option<tempfile::TempDir>,
}

/// A running server; dropping it kills the process.
pub struct Server {
    /// `timeout`, the server's parent.
    child: Child,
    /// The server itself.
    pid: Option<u32>,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    _stdin: Option<ChildStdin>,
    _dir: Option<tempfile::TempDir>,
}

/// Resident memory of a process, KiB.
pub struct Rss {
    pub peak_kib: u64,
    pub now_kib: u64,
}

impl Server {
    /// Starts `launch` and waits until it prints its address; the error holds its last output.
    pub fn start(launch: Launch) -> Result<Server, String> {
        let mut command = Command::new("timeout");
        command
            .args(["-s", "KILL", &LIFETIME.as_secs().to_string()])
            .arg(&launch.program)
            .args(&launch.args)
            .current_dir(&launch.cwd)
            .envs(launch.env.iter().map(|(k, v)| (*k, v)))
            .stdin(if launch.hold_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", launch.program.display()))?;
        let (lines, kept) = (mpsc::channel(), Arc::new(Mutex::new(VecDeque::new())));
        forward(child.stdout.take(), lines.0.clone(), kept.clone());
        forward(child.stderr.take(), lines.0, kept.clone());
        let mut server = Server {
            pid: None,
            url: String::new(),
            _stdin: child.stdin.take(),
            _dir: launch.dir,
            child,
        };
        server.url = wait_ready(&lines.1).ok_or_else(|| {
            let kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            format!("it did not start: {}", Vec::from(kept.clone()).join(" / "))
        })?;
        server.pid = server_pid(server.child.id());
        Ok(server)
    }

    /// Peak and current resident memory of the server (not of `timeout`).
    pub fn rss(&self) -> Option<Rss> {
        rss(self.pid?)
    }

    /// The server's own pid (not `timeout`'s).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }
}

/// Peak and current resident memory of process `pid`, from `/proc`.
pub fn rss(pid: u32) -> Option<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()
    };
    Some(Rss {
        peak_kib: field("VmHWM:")?,
        now_kib: field("VmRSS:")?,
    })
}

/// Reads a process's resident memory every [`SAMPLE_EVERY`] until stopped, keeping the
/// highest: the kernel's own peak (`VmHWM`) covers the whole life, not one phase.
pub struct RssSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<u64>>,
}

/// How often [`RssSampler`] reads.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(50);

impl RssSampler {
    /// Starts sampling `pid` on the current tokio runtime.
    pub fn start(pid: u32) -> RssSampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut peak = None;
            loop {
                if let Some(now) = rss(pid).map(|r| r.now_kib) {
                    peak = peak.max(Some(now));
                }
                tokio::select! {
                    _ = tokio::time::sleep(SAMPLE_EVERY) => {}
                    _ = &mut stopped => return peak,
                }
            }
        });
        RssSampler { stop, task }
    }

    /// The highest resident memory seen, KiB; `None` if the process could not be read.
    pub async fn stop(self) -> Option<u64> {
        let _ = self.stop.send(());
        self.task.await.ok().flatten()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each line of `pipe` to `lines`, keeping the last few in `kept`, until the pipe closes.
fn forward(pipe: Option<impl Read + Send + 'static>, lines: mpsc::Sender<String>, kept: Arc<Mutex<VecDeque<String>>>) {
    let Some(pipe) = pipe else { return };
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            {
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line.clone());
            }
            // The receiver is gone once the server is ready: the rest is only drained.
            let _ = lines.send(line);
        }
    });
}

/// The base URL from the ready line; `None` if the server exits or stays silent too long.
fn wait_ready(lines: &mpsc::Receiver<String>) -> Option<String> {
    let deadline = Instant::now() + STARTUP;
    loop {
        let line = lines
            .recv_timeout(deadline.checked_duration_since(Instant::now())?)
            .ok()?;
        if let Some(at) = line.find(READY) {
            let url = line[at + READY.len() - "http://".len()..].split_whitespace().next()?;
            return Some(url.trim_end_matches('/').to_owned());
        }
    }
}

/// The pid of the one child of `timeout` (pid `parent`).
fn server_pid(parent: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// The first line `program args` prints, for the report.
pub fn version(program: &Path, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output();
    match output {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
        Err(e) => format!("unknown ({e})"),
    }
}
