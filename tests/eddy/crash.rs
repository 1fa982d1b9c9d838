//! Crash safety: the `eddy` binary is killed with SIGKILL while clients post events; after a
//! restart, every event that got a 2xx reaches the fake API at least once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::FakeApi;

/// Spawns `eddy serve` with `config` on a free port, its stderr piped.
pub fn spawn_serve(config: &Path) -> Child {
    crate::support::eddy_command()
        .args([
            "serve",
            "--config",
            &config.display().to_string(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("eddy starts")
}

/// Starts `eddy serve` on a free port; returns the process and its address.
pub fn start_eddy(config: &Path) -> (Child, String) {
    let mut child = spawn_serve(config);
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("eddy says where it listens").expect("read stderr");
        if let Some(rest) = line.strip_prefix("eddy: listening on http://") {
            break rest.split_whitespace().next().unwrap_or_default().to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_event_is_delivered_after_a_kill_9() {
    let api = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = crash_config(dir.path());
    let (mut eddy, addr) = start_eddy(&config);

    let posted = Arc::new(Mutex::new(Posted::default()));
    let posting = tokio::spawn(post_until_gone(addr, 8, "c".into(), api.base(), posted.clone()));
    // Kill while the clients are still posting.
    let deadline = Instant::now() + Duration::from_secs(30);
    while posted.lock().unwrap().acked.len() < 300 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eddy.kill().expect("kill -9");
    eddy.wait().unwrap();
    posting.await.unwrap();
    let acked: HashSet<String> = posted.lock().unwrap().acked.clone();
    assert!(acked.len() >= 300, "the clients got {} acknowledgements", acked.len());

    let duplicates = restart_and_check_delivered(&config, &api, &acked, Duration::from_secs(60)).await;
    eprintln!("{} acknowledged, {} delivered more than once", acked.len(), duplicates);
}

/// A config over the crash fixture handler, which reports each event to the fake API.
pub fn crash_config(dir: &Path) -> std::path::PathBuf {
    let handlers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crash");
    let config = dir.join("eddy.toml");
    let text = format!(
        "handlers = {:?}\ndata = \"data\"\n[net]\nallow_private = [\"127.0.0.1/32\"]\n",
        handlers.display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// What posting clients know: events answered 2xx, and the event each had in flight when
/// the server went away.
#[derive(Default)]
pub struct Posted {
    pub acked: HashSet<String>,
    pub unsettled: HashSet<String>,
}

/// Posts events (ids `<prefix>-c<client>-<n>`) from `clients` clients until the server goes
/// away (or each has posted 100,000), recording every answer in `posted`.
pub async fn post_until_gone(addr: String, clients: usize, prefix: String, base: String, posted: Arc<Mutex<Posted>>) {
    let clients: Vec<_> = (0..clients)
        .map(|client| {
            let (addr, prefix, base, posted) = (addr.clone(), prefix.clone(), base.clone(), posted.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for n in 0..100_000 {
                    let id = format!("{prefix}-c{client}-{n}");
                    let body = serde_json::json!({"type": "orders.created", "id": id, "data": {"base": base}});
                    let sent = http
                        .post(format!("http://{addr}/events"))
                        .header("content-type", "application/json")
                        .body(body.to_string())
                        .send()
                        .await;
                    let mut posted = posted.lock().unwrap();
                    match sent {
                        Ok(r) if r.status().is_success() => drop(posted.acked.insert(id)),
                        _ => {
                            posted.unsettled.insert(id);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    // Aborting this future stops the clients too.
    let mut clients = AbortOnDrop(clients);
    for client in &mut clients.0 {
        client.await.unwrap();
    }
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Starts eddy once more and waits (at most `patience`) until every acknowledged event has
/// reached the fake API; fails naming the missing ones, else returns how many arrived twice.
pub async fn restart_and_check_delivered(
    config: &Path,
    api: &FakeApi,
    acked: &HashSet<String>,
    patience: Duration,
) -> usize {
    let (mut eddy, _addr) = start_eddy(config);
    let deadline = Instant::now() + patience;
    let missing = loop {
        let seen = api.state.flaky_calls.lock().unwrap().clone();
        let missing: Vec<_> = acked.iter().filter(|id| !seen.contains_key(*id)).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eddy.kill().unwrap();
    eddy.wait().unwrap();
    assert!(
        missing.is_empty(),
        "{} acknowledged events never arrived: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let seen = api.state.flaky_calls.lock().unwrap().clone();
    seen.values().map(|n| n - 1).sum()
}
