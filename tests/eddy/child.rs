//! `eddy serve` as a child process whose stderr is kept line by line, for the tests that
//! signal it, kill it and start it again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running `eddy serve`; a test that ends early kills it on drop.
pub struct Serve {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Ends at the end of stderr, which is the end of the process.
    reader: Option<JoinHandle<()>>,
}

impl Serve {
    /// Spawns `eddy serve --config config` on a free port, without the caller's `EDDY_*`
    /// variables: these servers answer without a token.
    pub fn spawn(config: &Path) -> Self {
        Self::attach(crate::crash::spawn_serve(config))
    }

    /// Keeps the stderr lines of `child`, spawned with its stderr piped.
    pub fn attach(mut child: Child) -> Self {
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// Spawns and waits until it listens; returns it and its address.
    pub async fn start(config: &Path) -> (Self, String) {
        let serve = Self::spawn(config);
        let addr = serve.address().await;
        (serve, addr)
    }

    /// Waits until it listens (its `eddy: listening on` line); returns its address.
    pub async fn address(&self) -> String {
        let line = self.wait_for_line("eddy: listening on http://").await;
        line["eddy: listening on http://".len()..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every stderr line so far.
    pub fn stderr(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (at most 60 s) for a stderr line starting with `prefix`; fails if the process
    /// ends first.
    pub async fn wait_for_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self.stderr().into_iter().find(|l| l.starts_with(prefix)) {
                return line;
            }
            let ended = self.reader.as_ref().is_none_or(JoinHandle::is_finished);
            assert!(
                !ended && Instant::now() < deadline,
                "eddy never printed {prefix:?}: {:#?}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends `signal` (`INT`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Waits (at most `patience`) for the process to end by itself; returns its status and
    /// all it wrote to stderr. Kills it and fails when it does not end in time.
    pub async fn wait_exit(mut self, patience: Duration) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, self.drain());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("eddy did not stop within {patience:?}: {:#?}", self.drain());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// kill -9, then every line it wrote before it died.
    pub fn kill_9(mut self) -> Vec<String> {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
        self.drain()
    }

    /// Every stderr line, once the pipe has closed.
    fn drain(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        self.stderr()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
