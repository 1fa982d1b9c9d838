//! The fault suite: kill -9 again and again, while the store recovers at start-up and under
//! load; damaged data folders at boot.
//! `EDDY_FAULT_KILLS` sets the number of rounds (default 20; CI runs the default).

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::child::Serve;
use crate::crash::{Posted, crash_config, post_until_gone, spawn_serve, start_eddy};
use crate::support::FakeApi;

/// Acknowledgements each round under load must get before its kill.
const ACKS_PER_ROUND: usize = 50;

/// Rounds of two starts each: one killed while it recovers the store (its files being
/// copied aside or opened, before it listens), one killed at a random moment while clients
/// post and deliveries run. Then every acknowledged event must be delivered, and each event
/// in flight at a kill is either absent or whole and delivered.
#[tokio::test(flavor = "multi_thread")]
async fn repeated_kill_9_in_recovery_and_under_load_loses_no_acknowledged_event() {
    let rounds: usize = std::env::var("EDDY_FAULT_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20);
    let api = FakeApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = crash_config(dir.path());
    let posted = Arc::new(Mutex::new(Posted::default()));
    let mut in_recovery = 0;
    for round in 0..rounds {
        // The first round has no store to recover yet.
        if round > 0 && kill_during_recovery(&config, &dir.path().join("data")).await {
            in_recovery += 1;
        }
        kill_under_load(&config, &api, round, &posted).await;
    }
    let posted = std::mem::take(&mut *posted.lock().unwrap());
    eprintln!(
        "{rounds} rounds: {in_recovery} kills in recovery, {} acknowledged, {} in flight at a kill",
        posted.acked.len(),
        posted.unsettled.len()
    );
    assert!(
        in_recovery * 4 >= rounds.saturating_sub(1),
        "only {in_recovery} of {} start-up kills landed during recovery",
        rounds.saturating_sub(1)
    );
    assert!(posted.unsettled.len() >= rounds, "the kills caught no posts in flight");
    check_after_restart(&config, &api, &posted).await;
}

/// Starts eddy and kills it a few milliseconds after its store's files are set aside for
/// the open; returns whether it died inside that recovery (the copy is still there and it
/// never listened).
async fn kill_during_recovery(config: &Path, data: &Path) -> bool {
    let (aside, partial) = (data.join("before-open"), data.join("before-open.partial"));
    let eddy = Serve::spawn(config);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !aside.exists() && !partial.exists() {
        let listening = eddy.stderr().iter().any(|l| l.starts_with("eddy: listening"));
        if listening || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let wait = rand::thread_rng().gen_range(0..10);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let stderr = eddy.kill_9();
    let listened = stderr.iter().any(|l| l.starts_with("eddy: listening"));
    !listened && (aside.exists() || partial.exists())
}

/// Starts eddy, lets four clients post until the round has `ACKS_PER_ROUND` more
/// acknowledgements, and kills it at a random moment within the next 300 ms.
async fn kill_under_load(config: &Path, api: &FakeApi, round: usize, posted: &Arc<Mutex<Posted>>) {
    let (eddy, addr) = Serve::start(config).await;
    let before = posted.lock().unwrap().acked.len();
    let posting = tokio::spawn(post_until_gone(
        addr,
        4,
        format!("r{round}"),
        api.base(),
        posted.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while posted.lock().unwrap().acked.len() < before + ACKS_PER_ROUND {
        assert!(
            Instant::now() < deadline && !posting.is_finished(),
            "round {round}: {} acknowledgements, {ACKS_PER_ROUND} needed (clients stopped: {}): {:#?}",
            posted.lock().unwrap().acked.len() - before,
            posting.is_finished(),
            eddy.stderr()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wait = rand::thread_rng().gen_range(0..300);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    eddy.kill_9();
    posting.await.unwrap();
}

/// Starts eddy once more: every acknowledged event reaches the fake API; an event in flight
/// at a kill is either unknown or stored whole (its data and its delivery) and delivered.
async fn check_after_restart(config: &Path, api: &FakeApi, posted: &Posted) {
    let (eddy, addr) = Serve::start(config).await;
    let http = reqwest::Client::new();
    let mut must_arrive = posted.acked.clone();
    for id in &posted.unsettled {
        let answer = http.get(format!("http://{addr}/events/{id}")).send().await.unwrap();
        if answer.status() == 404 {
            continue;
        }
        assert_eq!(answer.status(), 200, "{id}");
        let stored: serde_json::Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
        let event = &stored["event"]["event"];
        assert!(
            event["id"] == id.as_str() && event["type"] == "orders.created" && event["data"]["base"] == api.base(),
            "{id} is stored damaged: {stored:#}"
        );
        assert_eq!(stored["deliveries"].as_array().map(Vec::len), Some(1), "{stored:#}");
        must_arrive.insert(id.clone());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let missing = loop {
        let seen = api.state.flaky_calls.lock().unwrap().clone();
        let missing: Vec<_> = must_arrive
            .iter()
            .filter(|id| !seen.contains_key(*id))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = eddy.kill_9();
    assert!(
        missing.is_empty(),
        "{} stored events never arrived: {:?}; {stderr:#?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// How a filled server is stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill9,
    /// SIGTERM: the server drains and seals the store as closed cleanly.
    Clean,
}

/// Fills a data folder through the binary (a few MiB of log), lets the durable mark catch
/// up, and stops it.
async fn a_store_with_events(dir: &Path, stop: Stop) -> (std::path::PathBuf, HashSet<String>) {
    let api = FakeApi::start().await;
    let config = crash_config(dir);
    let (mut eddy, addr) = start_eddy(&config);
    let posted = Arc::new(Mutex::new(Posted::default()));
    let posting = tokio::spawn(post_until_gone(
        addr.clone(),
        4,
        "r0".into(),
        api.base(),
        posted.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while posted.lock().unwrap().acked.len() < 2000 {
        if Instant::now() > deadline {
            let _ = eddy.kill();
            let _ = eddy.wait();
            panic!(
                "only {} of 2000 events acknowledged in 60 s",
                posted.lock().unwrap().acked.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    posting.abort();
    // The mark is written at most once a second: one more commit after a pause moves it up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let last = serde_json::json!({"type": "orders.created", "data": {"base": api.base()}});
    let answer = reqwest::Client::new()
        .post(format!("http://{addr}/events"))
        .header("content-type", "application/json")
        .body(last.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    match stop {
        Stop::Kill9 => eddy.kill().unwrap(),
        Stop::Clean => {
            let sent = Command::new("kill").args(["-TERM", &eddy.id().to_string()]).status();
            assert!(sent.unwrap().success());
        }
    }
    let status = eddy.wait().unwrap();
    if let Stop::Clean = stop {
        assert!(status.success(), "{status}");
        assert!(dir.join("data/closed-cleanly").exists(), "a clean stop left no seal");
    }
    let acked = posted.lock().unwrap().acked.clone();
    (config, acked)
}

/// The files of a data folder, except the clean-close seal (an open takes it either way).
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.ends_with("closed-cleanly"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Starts `eddy serve` on a damaged folder. It must exit with a clear message and leave
/// every file byte for byte as it found it; or, where `acked` is given (damage sled may find
/// harmless), start and serve every acknowledged event.
async fn refuses_or_keeps_everything(config: &Path, data: &Path, acked: Option<&HashSet<String>>) {
    let before = snapshot(data);
    let mut child = spawn_serve(config);
    let (lines, seen) = std::sync::mpsc::channel();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        std::io::BufRead::lines(stderr)
            .map_while(Result::ok)
            .for_each(|l| drop(lines.send(l)))
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        while let Ok(line) = seen.try_recv() {
            if let Some(addr) = line.strip_prefix("eddy: listening on http://") {
                let addr = addr.split(' ').next().unwrap_or_default().to_owned();
                let Some(acked) = acked else {
                    let _ = child.kill();
                    panic!("eddy started on a damaged data folder");
                };
                let missing = missing_events(&addr, acked).await;
                let _ = child.kill();
                let _ = child.wait();
                assert!(
                    missing.is_empty(),
                    "eddy started without {} acknowledged events: {missing:?}",
                    missing.len()
                );
                return;
            }
            text.push_str(&line);
            text.push('\n');
        }
        assert!(Instant::now() < deadline, "eddy neither started nor stopped: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    while let Ok(line) = seen.recv_timeout(Duration::from_secs(1)) {
        text.push_str(&line);
    }
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(text.contains("damaged") || text.contains("corrupt"), "{text}");
    // The clear message only: no panic of sled's recovery printed before it.
    assert!(!text.contains("panicked") && !text.contains("RUST_BACKTRACE"), "{text}");
    let after = snapshot(data);
    let names = |files: &[(String, Vec<u8>)]| {
        files
            .iter()
            .map(|(n, b)| format!("{n} ({} bytes)", b.len()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&after), names(&before), "the data folder changed: {text}");
    for ((name, now), (_, then)) in after.iter().zip(&before) {
        let first = now.iter().zip(then).position(|(a, b)| a != b);
        assert!(first.is_none(), "{name} changed at byte {first:?}: {text}");
    }
}

async fn missing_events(addr: &str, acked: &HashSet<String>) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut missing = Vec::new();
    for id in acked {
        let found = http
            .get(format!("http://{addr}/events/{id}"))
            .send()
            .await
            .map(|r| r.status().as_u16());
        if !matches!(found, Ok(200)) {
            missing.push(id.clone());
        }
    }
    missing
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_log_is_refused_and_left_as_it_was() {
    // After a crash the files are copied aside before every open; after a clean stop only
    // when they changed since, which truncation does.
    for stop in [Stop::Kill9, Stop::Clean] {
        let dir = tempfile::tempdir().unwrap();
        let (config, _) = a_store_with_events(dir.path(), stop).await;
        let log = dir.path().join("data/db");
        // Half a segment: everything after the first few hundred commits is gone.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(256 * 1024)
            .unwrap();
        refuses_or_keeps_everything(&config, &dir.path().join("data"), None).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garbled_log_is_refused_or_loses_nothing() {
    for stop in [Stop::Kill9, Stop::Clean] {
        let dir = tempfile::tempdir().unwrap();
        let (config, acked) = a_store_with_events(dir.path(), stop).await;
        let log = dir.path().join("data/db");
        let mut bytes = std::fs::read(&log).unwrap();
        // Inside the first segment, where the log of those early commits lies.
        for b in &mut bytes[300 * 1024..304 * 1024] {
            *b ^= 0x5a;
        }
        std::fs::write(&log, &bytes).unwrap();
        // Where the garbled bytes hold live records, sled's recovery fails or cuts the log
        // (and the durable mark catches the cut); where they hold space sled no longer
        // uses, there is nothing to lose.
        refuses_or_keeps_everything(&config, &dir.path().join("data"), Some(&acked)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cleanly_stopped_store_reopens_with_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (config, acked) = a_store_with_events(dir.path(), Stop::Clean).await;
    let data = dir.path().join("data");
    refuses_or_keeps_everything(&config, &data, Some(&acked)).await;
    // That open relied on the seal and used it up.
    assert!(!data.join("closed-cleanly").exists());
}
