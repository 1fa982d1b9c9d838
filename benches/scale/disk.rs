//! Disk use of small unrouted events: the bytes each takes in the data folder as written and
//! after `eddy compact`, against the size of the JSON that was posted.

use std::path::Path;
use std::time::{Duration, Instant};

use eddy::event::Event;
use eddy::store::{NewEvent, Store};

/// Events unless `EDDY_SCALE_DISK_EVENTS` says otherwise: the count the disk goal is stated for.
const DEFAULT_EVENTS: usize = 400_000;
/// Events per ingest call.
const BATCH: usize = 1_000;

/// Fills a new store in `dir` with small unrouted events, closes it, compacts it, and prints
/// the bytes per event before and after.
pub fn measure(dir: &Path, cache_bytes: u64, tokio: &tokio::runtime::Runtime) {
    let events = std::env::var("EDDY_SCALE_DISK_EVENTS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_EVENTS);
    let data = dir.join("disk");
    let started = Instant::now();
    {
        let store = Store::open(&data, cache_bytes).expect("store");
        let now = eddy::clock::now_ms();
        for first in (0..events).step_by(BATCH) {
            let batch = (first..(first + BATCH).min(events))
                .map(|n| NewEvent {
                    event: Event::from_value(posted(n), "bench").expect("event"),
                    handlers: Vec::new(),
                })
                .collect();
            store.ingest(batch, now).expect("ingest");
        }
        tokio.block_on(store.commit()).expect("commit");
    }
    let filled = started.elapsed().as_secs_f64();
    let compacted = compact_when_free(&data, cache_bytes);
    let payload = posted(events / 2).to_string().len();
    println!("\ndisk use of {events} unrouted events of about {payload} bytes of JSON each (filled in {filled:.0} s)");
    for (when, bytes) in [
        ("as written", compacted.bytes_before),
        ("after eddy compact", compacted.bytes_after),
    ] {
        let per_event = bytes as f64 / events as f64;
        println!(
            "  {when:<20} {:>8.1} MiB, {per_event:>6.0} bytes per event, {:>5.1}x the JSON",
            bytes as f64 / f64::from(1 << 20),
            per_event / payload as f64
        );
    }
}

/// The JSON of event `n` as a client would post it.
fn posted(n: usize) -> serde_json::Value {
    serde_json::json!({ "type": "audit.ping", "data": { "user": n, "action": "login", "ok": true } })
}

/// Compacts the store in `data` once the handle just dropped has let go of it (at most 30 s).
fn compact_when_free(data: &Path, cache_bytes: u64) -> eddy::store::Compacted {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Store::compact(data, cache_bytes) {
            Ok(compacted) => return compacted,
            Err(e) if e.to_string().contains("in use") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("compaction: {e}"),
        }
    }
}
