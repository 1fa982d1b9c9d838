//! Work an invocation leaves behind ends with it: its intervals stop using CPU once it
//! succeeded or timed out, and its fetches close their connections whether it returned
//! without awaiting them, timed out awaiting them, or was stopped at its CPU limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::crash::start_eddy;
use crate::support::*;
use eddy::runtime::{FailureKind, Outcome};

/// Kills the `eddy serve` child when the test ends, passed or not.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User plus system CPU time of process `pid`, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat format") + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports these in USER_HZ, 100 per second.
    Duration::from_millis(ticks * 10)
}

async fn deliveries(client: &reqwest::Client, addr: &str, handler: &str) -> Vec<Value> {
    let url = format!("http://{addr}/deliveries?handler={handler}");
    let Ok(res) = client.get(url).send().await else {
        return Vec::new();
    };
    let text = res.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or_default();
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Waits (at most 20 s) until `handler`'s one delivery has had an attempt, and returns it.
async fn attempted(client: &reqwest::Client, addr: &str, handler: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = deliveries(client, addr, handler).await;
        if let Some(d) = found.into_iter().find(|d| d["attempts"].as_u64().unwrap_or(0) >= 1) {
            return d;
        }
        assert!(Instant::now() < deadline, "{handler} was never attempted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_server_uses_no_cpu_after_invocations_left_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let handlers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/leftovers");
    let config = dir.path().join("eddy.toml");
    let text = format!("handlers = {:?}\ndata = {:?}\n", handlers, dir.path().join("data"));
    std::fs::write(&config, text).unwrap();
    let (child, addr) = start_eddy(&config);
    let serve = Serve(child);
    let client = reqwest::Client::new();
    for kind in ["interval", "interval_timeout"] {
        let res = client
            .post(format!("http://{addr}/events"))
            .header("content-type", "application/json")
            .body(json!({"type": kind, "data": {}}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 202);
    }
    let returned = attempted(&client, &addr, "interval").await;
    assert_eq!(returned["status"], "succeeded", "{returned}");
    let timed_out = attempted(&client, &addr, "interval_timeout").await;
    assert!(
        timed_out["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("did not finish"),
        "{timed_out}"
    );
    // A resource bound, not a speed one: left running, the intervals would use about the
    // whole window.
    let before = cpu_time(serve.0.id());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_time(serve.0.id()) - before;
    assert!(
        used < Duration::from_millis(200),
        "the idle server used {used:?} of CPU in 2 s"
    );
}

/// A server that accepts connections and never answers `GET /stuck`; `GET /ready` is
/// answered once `expected` stuck requests arrived. It counts connections that sent
/// `/stuck` and those of them the client has since closed.
struct Silent {
    base: String,
    stuck: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

impl Silent {
    async fn start(expected: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stuck, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let counts = (stuck.clone(), closed.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let counts = (counts.0.clone(), counts.1.clone());
                tokio::spawn(serve_silently(conn, expected, counts));
            }
        });
        Self { base, stuck, closed }
    }
}

async fn serve_silently(mut conn: TcpStream, expected: usize, (stuck, closed): (Arc<AtomicUsize>, Arc<AtomicUsize>)) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    if head.starts_with(b"GET /ready") {
        let deadline = Instant::now() + Duration::from_secs(10);
        while stuck.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let _ = conn.write_all(answer).await;
        return;
    }
    stuck.fetch_add(1, Ordering::SeqCst);
    // Never answer; the client closing the connection ends the read (EOF or reset).
    while let Ok(n) = conn.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    closed.fetch_add(1, Ordering::SeqCst);
}

async fn fetches_close_when_the_invocation_ends(mode: &str) -> eddy::runtime::InvocationReport {
    const COUNT: usize = 8;
    let server = Silent::start(COUNT).await;
    let rt = runtime();
    load(&rt, "fetch_stuck").await;
    let report = invoke(
        &rt,
        "fetch_stuck",
        json!({"base": server.base, "count": COUNT, "mode": mode}),
    )
    .await;
    assert_eq!(server.stuck.load(Ordering::SeqCst), COUNT, "{report:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.closed.load(Ordering::SeqCst) < COUNT {
        assert!(
            Instant::now() < deadline,
            "{mode}: {} of {COUNT} connections still open 10 s after the invocation ended",
            COUNT - server.closed.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn fetches_of_a_timed_out_invocation_close_their_connections() {
    let report = fetches_close_when_the_invocation_ends("wait").await;
    match report.outcome {
        Outcome::Failure(f) => assert_eq!(f.kind, FailureKind::Timeout),
        Outcome::Success => panic!("expected a timeout: {report:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetches_left_unawaited_close_when_the_invocation_returns() {
    let report = fetches_close_when_the_invocation_ends("return").await;
    assert_ok(&report);
}

#[tokio::test(flavor = "multi_thread")]
async fn fetches_of_an_isolate_stopped_at_its_cpu_limit_close_their_connections() {
    let report = fetches_close_when_the_invocation_ends("spin").await;
    match report.outcome {
        Outcome::Failure(f) => assert_eq!(f.kind, FailureKind::CpuLimit),
        Outcome::Success => panic!("expected the CPU limit: {report:?}"),
    }
}
