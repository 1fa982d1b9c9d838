//! Per-key order across a crash: one handler with `config.orderBy` sends every change of 100
//! accounts (10 changes of one account in a row, the accounts taking turns) to a fake CRM, which records, per account, the changes in the order they arrive
//! and counts calls of one account that overlap. The release `eddy serve` runs as a child
//! process and is killed with SIGKILL halfway through, then started again on the same data
//! folder; what was not acknowledged is posted again. Once every change has arrived, each
//! account's changes, repeats in a row collapsed (a delivery running at the kill runs again),
//! must be exactly the ones sent, in the order they were sent.
//!
//! Run it with `cargo bench --bench ordering`; `EDDY_BENCH_RUNS` sets how many runs (default 1),
//! `EDDY_ORDERING_KEYS` how many accounts (default 100).

#[path = "ordering/crm.rs"]
mod crm;
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crm::{check_order, start_crm};

/// Events posted per run, `n` from 0, each a change of account [`account_of`] `n`.
const EVENTS: usize = 10_000;
/// Changes of one account in a row: the handler's concurrency would take several of them at
/// once if order did not hold them back.
const RUN: usize = 10;
/// Accounts unless `EDDY_ORDERING_KEYS` says otherwise.
const KEYS: usize = 100;
/// Events per `POST /events`.
const BATCH: usize = 100;
/// The handler's `config.concurrency`.
const CONCURRENCY: usize = 32;
/// How long the CRM takes to answer a call.
const CRM_DELAY: Duration = Duration::from_millis(2);
/// eddy is killed once this many calls have reached the CRM.
const KILL_AT: usize = 4_000;
/// The longest the bench waits for the calls before the kill, and for all of them after.
const PATIENCE: Duration = Duration::from_secs(120);

/// The handlers folder (`sync.js`) and the config; returns the config's path.
fn write_project(folder: &Path) -> PathBuf {
    let handlers = folder.join("handlers");
    std::fs::create_dir_all(&handlers).expect("handlers folder");
    let handler = format!(
        "export const on = \"accounts.*\";\n\
         export const config = {{ orderBy: \"data.account.id\", concurrency: {CONCURRENCY}, allowNet: [\"127.0.0.1\"] }};\n\
         export default async (event) => {{\n\
         \x20 const res = await fetch(`${{event.data.base}}/apply`, {{\n\
         \x20   method: \"POST\",\n\
         \x20   headers: {{ \"content-type\": \"application/json\" }},\n\
         \x20   body: JSON.stringify({{ account: event.data.account.id, n: event.data.n }}),\n\
         \x20 }});\n\
         \x20 if (!res.ok) throw new Error(`the CRM answered ${{res.status}}`);\n\
         }};\n"
    );
    std::fs::write(handlers.join("sync.js"), handler).expect("handler");
    let config = folder.join("eddy.toml");
    let text = format!(
        "handlers = {:?}\ndata = {:?}\n[net]\nallow_private = [\"127.0.0.1/32\"]\n\
         [breaker]\nfailures = 100000\n",
        handlers.display().to_string(),
        folder.join("data").display().to_string(),
    );
    std::fs::write(&config, text).expect("config");
    config
}

/// `eddy serve` as a child process; killed (SIGKILL) when dropped, so a failing run leaves
/// no server behind.
struct Eddy {
    child: Child,
    url: String,
}

impl Eddy {
    /// Starts `eddy serve --config <config>` on a free port of 127.0.0.1 and reads its address
    /// from the `eddy: listening on http://...` line of its stderr, which is drained after.
    fn start(config: &Path) -> Eddy {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eddy"));
        // The bench's own environment says nothing about the server's (a token, a log filter).
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("EDDY_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .env_remove("RUST_LOG")
            .env("EDDY_LOG_FORMAT", "pretty")
            .args(["serve", "--config", &config.display().to_string()])
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("eddy starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = loop {
            let line = lines.next().expect("eddy says where it listens").expect("read stderr");
            if let Some(rest) = line.strip_prefix("eddy: listening on http://") {
                break rest.split_whitespace().next().unwrap_or_default().to_owned();
            }
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Eddy {
            child,
            url: format!("http://{addr}"),
        }
    }

    /// Starts eddy and waits until its handler is loaded (events posted before would be
    /// routed to no handler).
    async fn start_loaded(config: &Path) -> Eddy {
        let config = config.to_owned();
        let eddy = tokio::task::spawn_blocking(move || Eddy::start(&config))
            .await
            .expect("start eddy");
        support::eddy::wait_for_handlers(&eddy.url, 1)
            .await
            .expect("the handler loads");
        eddy
    }

    /// kill -9, and wait for the process to be gone.
    fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait for eddy");
    }
}

impl Drop for Eddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The account event `n` changes: runs of [`RUN`] changes, the accounts taking turns.
fn account_of(n: usize, keys: usize) -> usize {
    (n / RUN) % keys
}

/// The JSON array of batch `b`: events `o-<n>` for n in `b * BATCH..(b + 1) * BATCH`.
fn batch_body(b: usize, keys: usize, base: &str) -> String {
    let events: Vec<Value> = (b * BATCH..(b + 1) * BATCH)
        .map(|n| {
            let data = json!({"base": base, "account": {"id": format!("acct{}", account_of(n, keys))}, "n": n});
            json!({"id": format!("o-{n}"), "type": "accounts.updated", "data": data})
        })
        .collect();
    Value::Array(events).to_string()
}

/// Posts batches `from..` one after the other (so each account's changes are ingested in the
/// order of n) until one is not acknowledged, as when the server goes away; returns the first
/// batch not acknowledged (the number of batches when all were).
async fn post_batches(url: String, base: String, keys: usize, from: usize, acked: Arc<AtomicUsize>) -> usize {
    let http = support::load::http_client();
    for b in from..EVENTS / BATCH {
        let posted = support::load::post_json(&http, &format!("{url}/events"), batch_body(b, keys, &base)).await;
        if !posted.ok() {
            return b;
        }
        acked.store(b + 1, Ordering::SeqCst);
    }
    EVENTS / BATCH
}

/// A line of the printed table: what, what it must be, the figure of a run, its decimals.
type Row = (&'static str, &'static str, fn(&Run) -> f64, usize);

struct Run {
    keys: usize,
    calls: usize,
    at_kill: usize,
    acked_before_kill: usize,
    reposted: usize,
    duplicates: usize,
    violations: usize,
    overlaps: usize,
    /// From the kill to the restarted server's handler loaded.
    down: Duration,
    wall: Duration,
}

async fn run_once(folder: &Path, keys: usize) -> Run {
    let (crm, base) = start_crm().await;
    let config = write_project(folder);
    let mut eddy = Eddy::start_loaded(&config).await;

    let started = Instant::now();
    let acked = Arc::new(AtomicUsize::new(0));
    let posting = tokio::spawn(post_batches(eddy.url.clone(), base.clone(), keys, 0, acked.clone()));
    let deadline = Instant::now() + PATIENCE;
    while crm.calls.load(Ordering::SeqCst) < KILL_AT && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let calls = crm.calls.load(Ordering::SeqCst);
    assert!(
        calls >= KILL_AT,
        "only {calls} calls reached the CRM in {} s",
        PATIENCE.as_secs()
    );
    let killed = Instant::now();
    eddy.kill();
    crm.killed.store(true, Ordering::SeqCst);
    let at_kill = crm.calls.load(Ordering::SeqCst);
    // The poster stops at its first request without an answer.
    let first_unacked = posting.await.expect("posting");
    let acked_before_kill = acked.load(Ordering::SeqCst);
    drop(eddy);

    let eddy = Eddy::start_loaded(&config).await;
    let down = killed.elapsed();
    let reposted = EVENTS / BATCH - first_unacked;
    let again = post_batches(eddy.url.clone(), base.clone(), keys, first_unacked, acked.clone()).await;
    assert_eq!(
        again,
        EVENTS / BATCH,
        "batch {again} was not acknowledged after the restart"
    );

    let deadline = Instant::now() + PATIENCE;
    let mut distinct = 0;
    while Instant::now() < deadline {
        distinct = crm.ledger.lock().unwrap().distinct;
        if distinct == EVENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wall = started.elapsed();
    drop(eddy);
    assert_eq!(
        distinct,
        EVENTS,
        "{} changes never reached the CRM within {} s of the restart",
        EVENTS - distinct,
        PATIENCE.as_secs()
    );

    let ledger = crm.ledger.lock().unwrap();
    let calls = crm.calls.load(Ordering::SeqCst);
    let (violations, wrong_keys) = check_order(&ledger.applied, keys);
    let overlaps = crm.overlaps.load(Ordering::SeqCst);
    if !violations.is_empty() || !wrong_keys.is_empty() || overlaps > 0 {
        for v in violations.iter().take(10) {
            println!("order violation: {v}");
        }
        for wrong in wrong_keys.iter().take(5) {
            println!("not as sent (repeats collapsed): {wrong}");
        }
        panic!(
            "{} order violations, {} accounts not as sent, {overlaps} overlapping calls of one account",
            violations.len(),
            wrong_keys.len()
        );
    }
    Run {
        keys: ledger.applied.len(),
        calls,
        at_kill,
        acked_before_kill: acked_before_kill * BATCH,
        reposted: reposted * BATCH,
        duplicates: calls - distinct,
        violations: violations.len(),
        overlaps,
        down,
        wall,
    }
}

/// How many accounts: `EDDY_ORDERING_KEYS`, or [`KEYS`]; a value that is not a number from 1
/// to the number of events is refused rather than ignored.
fn key_count() -> usize {
    match std::env::var("EDDY_ORDERING_KEYS") {
        Err(_) => KEYS,
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=EVENTS).contains(&n) => n,
            _ => panic!("EDDY_ORDERING_KEYS must be a number of accounts from 1 to {EVENTS}, not {text:?}"),
        },
    }
}

fn main() {
    let (runtime, folder) = support::begin("ordering");
    let runs = support::runs(1);
    let keys = key_count();
    println!(
        "{EVENTS} events over {keys} accounts (event n changes acct<(n / {RUN}) % {keys}>: {RUN} changes of one account in a row), posted in batches of {BATCH} \
         one after the other; one handler with config.orderBy = \"data.account.id\", concurrency = {CONCURRENCY}, \
         calls the CRM once per event; the CRM answers after {} ms; eddy (a child process) is killed with \
         SIGKILL once {KILL_AT} calls have arrived and started again on the same data folder; {runs} run{}\n",
        CRM_DELAY.as_millis(),
        if runs == 1 { "" } else { "s" }
    );
    let mut results = Vec::new();
    for n in 0..runs {
        let dir = folder.path().join(format!("run{n}"));
        results.push(runtime.block_on(run_once(&dir, keys)));
    }
    let of = |f: fn(&Run) -> f64, decimals: usize| {
        support::format_spread(&results.iter().map(f).collect::<Vec<f64>>(), decimals)
    };
    println!("| | must be | measured (median, lowest–highest) |");
    println!("|---|--:|--:|");
    println!("| events | | {EVENTS} |");
    let rows: [Row; 11] = [
        ("keys (accounts)", "", |r| r.keys as f64, 0),
        ("calls received by the CRM", "", |r| r.calls as f64, 0),
        ("calls arrived at the kill", "", |r| r.at_kill as f64, 0),
        (
            "events acknowledged before the kill",
            "",
            |r| r.acked_before_kill as f64,
            0,
        ),
        ("events posted again after the restart", "", |r| r.reposted as f64, 0),
        (
            "duplicates (calls beyond one per event)",
            "",
            |r| r.duplicates as f64,
            0,
        ),
        (
            "order violations (an older change after a newer one)",
            "0",
            |r| r.violations as f64,
            0,
        ),
        ("overlapping calls of one account", "0", |r| r.overlaps as f64, 0),
        (
            "kill to the restarted handler loaded, ms",
            "",
            |r| support::ms(r.down),
            0,
        ),
        (
            "wall time, first post to every change applied, s",
            "",
            |r| r.wall.as_secs_f64(),
            2,
        ),
        (
            "events per second end to end",
            "",
            |r| EVENTS as f64 / r.wall.as_secs_f64(),
            0,
        ),
    ];
    for (what, must, figure, decimals) in rows {
        // An empty cell is one space, as in the header's rows.
        let must = if must.is_empty() {
            " ".to_owned()
        } else {
            format!(" {must} ")
        };
        println!("| {what} |{must}| {} |", of(figure, decimals));
    }
    support::machine::print_end();
}
