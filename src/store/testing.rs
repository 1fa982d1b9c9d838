//! Helpers for the store's unit tests.

use std::path::Path;

use super::{AttemptRecord, DeliveryRecord, Ingested, NewEvent, NextStep, Store, StoreError, keys};
use crate::event::Event;

/// The page cache of the stores tests open.
pub const CACHE_BYTES: u64 = 64 << 20;

/// Ingests event `id` (type `t`) routed to `handlers` at `now_ms`; returns its delivery ids.
pub fn ingest(store: &Store, id: &str, handlers: &[&str], now_ms: u64) -> Vec<String> {
    ingest_typed(store, id, "t", handlers, now_ms)
}

/// Ingests event `id` of type `kind` routed to `handlers` at `now_ms`; returns its delivery ids.
pub fn ingest_typed(store: &Store, id: &str, kind: &str, handlers: &[&str], now_ms: u64) -> Vec<String> {
    let event = Event::from_value(serde_json::json!({"id": id, "type": kind}), "test").expect("event");
    let handlers = handlers.iter().map(|h| (*h).into()).collect();
    match store
        .ingest(vec![NewEvent { event, handlers }], now_ms)
        .expect("ingest")
        .remove(0)
    {
        Ingested::New { deliveries, .. } => deliveries,
        Ingested::Duplicate { id } => panic!("{id} was ingested before"),
    }
}

/// Claims delivery `id` queued at `due_ms`, under the handler its record names, as the
/// engine does.
pub fn claim(store: &Store, due_ms: u64, id: &str, now_ms: u64) -> Result<Option<DeliveryRecord>, StoreError> {
    let handler = store.delivery(id)?.map(|d| d.handler).unwrap_or_default();
    store.claim(&handler, due_ms, id, now_ms)
}

/// The ids of the deliveries `filter` lists, in order.
pub fn delivery_ids(store: &Store, filter: &super::DeliveryFilter) -> Vec<String> {
    store
        .list_deliveries(filter)
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect()
}

/// Every queued delivery due by `now_ms`, whatever its handler, earliest first.
pub fn due(store: &Store, now_ms: u64) -> Vec<(u64, String)> {
    let mut all: Vec<(u64, String)> = store
        .queue_heads()
        .unwrap()
        .into_iter()
        .flat_map(|(handler, _)| store.due(&handler, now_ms, usize::MAX).unwrap())
        .collect();
    all.sort();
    all
}

/// Claims the queued delivery `id` and records one attempt at `now_ms` followed by `next`.
pub fn attempt(store: &Store, id: &str, next: NextStep, now_ms: u64) -> DeliveryRecord {
    let due = store.delivery(id).unwrap().unwrap().next_attempt_ms.expect("queued");
    let mut delivery = claim(store, due, id, now_ms).unwrap().expect("claimed");
    let record = AttemptRecord {
        n: delivery.attempts + 1,
        started_ms: now_ms,
        duration_ms: 1.0,
        succeeded: next == NextStep::Succeeded,
        report: serde_json::json!({}),
        replay: false,
        event_version: None,
        recorded_steps: false,
    };
    let in_line = delivery.line_place.is_some();
    store.finish_attempt(&mut delivery, &record, next, now_ms).unwrap();
    // As the engine does once the attempt is on disk.
    if let (true, None, Some(key)) = (in_line, delivery.line_place, &delivery.order_key) {
        store.advance_line(&delivery.handler, key, now_ms).unwrap();
    }
    delivery
}

/// Asserts that the queue count equals the queue, that order ms never decreases along seq,
/// and that every index and state usage counter holds exactly what rebuilding it from the
/// records gives.
pub fn assert_consistent(store: &Store) {
    assert_eq!(store.queue_depth(), store.trees.queue.len(), "queue count");
    let times: Vec<(u64, u64)> = store
        .trees
        .events_by_time
        .iter()
        .keys()
        .map(|k| keys::parse_event_time_key(&k.unwrap()).unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0].1 < w[1].1),
        "order ms decreases along seq: {times:?}"
    );
    let live = index_snapshot(store);
    store.rebuild_indexes().unwrap();
    assert_eq!(live, index_snapshot(store), "the indexes differ from their records");
    let usage = |store: &Store| store.trees.state_usage.iter().collect::<Result<Vec<_>, _>>().unwrap();
    let counted = usage(store);
    store.rebuild_state_usage().unwrap();
    assert_eq!(counted, usage(store), "the state usage differs from the state");
}

/// Every index entry, per index tree. Time entries are taken without their order ms, which a
/// rebuild computes only over the events still there.
pub fn index_snapshot(store: &Store) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    keys::INDEX_TREES
        .iter()
        .map(|name| {
            let tree = store.db.open_tree(name).unwrap();
            let entries = tree.iter().map(|item| {
                let (k, v) = item.unwrap();
                let k = if *name == keys::TREE_EVENTS_BY_TIME {
                    &k[8..]
                } else {
                    &k[..]
                };
                (k.to_vec(), v.to_vec())
            });
            let mut entries: Vec<_> = entries.collect();
            entries.sort();
            entries
        })
        .collect()
}

/// Opens the store once sled's threads have let go of a just-closed handle.
pub fn open_when_free(dir: &Path) -> Result<Store, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(dir, CACHE_BYTES) {
            Err(e) if e.to_string().contains("in use") && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
