//! The schema version of a data folder, and upgrading an older one at open.
//!
//! An upgrade only adds trees derived from the records (the index trees, schema 2; the state
//! usage counters, schema 3; the queue keyed by handler, schema 4, which replaces the queue
//! of one order; schema 5 adds nothing, it only keeps older versions out; schema 6 drops the
//! events by seq alone, which the time index replaces; schema 7 adds the lines of ordered
//! deliveries, empty in an older folder, which has none), so it is rebuilt from scratch: those trees are cleared and
//! filled from the records, flushed, and only then is the new version recorded. A crash
//! before that leaves the old version on disk and the next open starts again from scratch;
//! no record is rewritten.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::records::{DeliveryRecord, DeliveryStatus, EventRecord};
use super::{Store, StoreError, codec, keys};

/// Checks the folder's schema version (recording it in a new folder); Some(version) if the
/// folder is older and must be upgraded.
pub(super) fn check_schema(db: &sled::Db, dir: &Path, existed: bool) -> Result<Option<u32>, StoreError> {
    let meta = db.open_tree(keys::TREE_META)?;
    let found = match meta.get(keys::META_SCHEMA_VERSION)? {
        // Every store eddy creates records its schema first thing: a store without it lost
        // its records, and starting over it would hide that.
        None if existed => return Err(StoreError::Damaged { path: dir.to_owned() }),
        None => {
            meta.insert(keys::META_SCHEMA_VERSION, &keys::SCHEMA_VERSION.to_be_bytes())?;
            db.flush()?;
            return Ok(None);
        }
        Some(raw) => <[u8; 4]>::try_from(raw.as_ref())
            .map(u32::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("schema version record".into()))?,
    };
    match found {
        keys::SCHEMA_VERSION => Ok(None),
        old if (keys::SCHEMA_UPGRADABLE_FROM..keys::SCHEMA_VERSION).contains(&old) => Ok(Some(old)),
        _ => Err(StoreError::Version {
            path: dir.to_owned(),
            found,
            expected: keys::SCHEMA_VERSION,
        }),
    }
}

impl Store {
    /// Brings a folder of schema version `from` to the current one.
    pub(super) fn upgrade(&self, from: u32) -> Result<(), StoreError> {
        let events = self.trees.events.len();
        if events > 0 && from < 2 {
            // The only slow step of an upgrade, and it happens once: say why start-up waits.
            tracing::info!("upgrading the data folder from schema {from}: indexing {events} events (once)");
        }
        if from < 2 {
            self.rebuild_indexes()?;
        }
        if from < 3 {
            self.rebuild_state_usage()?;
        }
        if from < 4 {
            self.rebuild_queue()?;
            self.db.drop_tree(keys::TREE_QUEUE_V3)?;
        }
        if from < 6 {
            self.db.drop_tree(keys::TREE_EVENTS_SEQ_V5)?;
        }
        self.db.flush()?;
        let meta = self.db.open_tree(keys::TREE_META)?;
        meta.insert(keys::META_SCHEMA_VERSION, &keys::SCHEMA_VERSION.to_be_bytes())?;
        self.db.flush()?;
        self.load_counters()
    }

    /// Empties the index trees and fills them from the records. Nothing else may write meanwhile.
    pub(super) fn rebuild_indexes(&self) -> Result<(), StoreError> {
        for name in keys::INDEX_TREES {
            self.db.open_tree(name)?.clear()?;
        }
        let mut times = Vec::new();
        for item in self.trees.events.iter() {
            let record: EventRecord = codec::decode(keys::EVENT_RECORD_V1, &item?.1)?;
            // The time entries need ingest order, which is seq order, not id order.
            times.push((record.seq, record.received_ms, record.event.id.clone()));
            for (tree, key) in self.event_entries(&record) {
                tree.insert(key, record.event.id.as_bytes())?;
            }
        }
        times.sort_unstable_by_key(|(seq, ..)| *seq);
        let mut order_ms = 0;
        for (seq, received_ms, id) in times {
            order_ms = received_ms.max(order_ms);
            self.trees
                .events_by_time
                .insert(keys::event_time_key(order_ms, seq), id.as_bytes())?;
        }
        for item in self.trees.deliveries.iter() {
            let delivery: DeliveryRecord = codec::decode(keys::DELIVERY_RECORD_V1, &item?.1)?;
            for (tree, key) in self.delivery_entries(&delivery) {
                tree.insert(key, &[] as &[u8])?;
            }
        }
        Ok(())
    }

    /// Empties the queue and queues every pending delivery at its due time, as its record
    /// says. Nothing else may write meanwhile.
    fn rebuild_queue(&self) -> Result<(), StoreError> {
        self.trees.queue.clear()?;
        for item in self.trees.deliveries.iter() {
            let delivery: DeliveryRecord = codec::decode(keys::DELIVERY_RECORD_V1, &item?.1)?;
            if let (DeliveryStatus::Pending, Some(due_ms)) = (delivery.status, delivery.next_attempt_ms) {
                self.enqueue(&delivery.handler, due_ms, &delivery.id)?;
            }
        }
        Ok(())
    }

    /// Sets the counters kept in memory from the trees: once per open, O(queued deliveries).
    pub(super) fn load_counters(&self) -> Result<(), StoreError> {
        self.shared.queued.store(self.trees.queue.len(), Ordering::SeqCst);
        let last = match self.trees.events_by_time.last()? {
            Some((key, _)) => keys::parse_event_time_key(&key)?.0,
            None => 0,
        };
        *self.shared.last_order_ms.lock().unwrap_or_else(|e| e.into_inner()) = last;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{assert_consistent, attempt, ingest_typed, open_when_free};
    use crate::store::{DeliveryFilter, DeliveryStatus, EventFilter, NextStep};

    /// Opens the folder with sled alone, once the previous handle has let go of it.
    fn raw_when_free(dir: &Path) -> sled::Db {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match sled::Config::new().path(dir).open() {
                Ok(db) => return db,
                Err(e) if std::time::Instant::now() < deadline => {
                    assert!(e.to_string().contains("lock"), "{e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Fills a store, then turns the folder into what schema 1 wrote: the same records and
    /// no index trees, with one stray entry as an upgrade that died midway would leave.
    fn version_1_folder(dir: &Path) -> Vec<String> {
        let ids = {
            let store = Store::open(dir, crate::store::testing::CACHE_BYTES).unwrap();
            let mut ids = ingest_typed(&store, "e1", "a", &["h1", "h2"], 300);
            ids.extend(ingest_typed(&store, "e2", "b", &["h1"], 200));
            ingest_typed(&store, "e3", "a", &[], 400);
            attempt(
                &store,
                &ids[0],
                NextStep::Dead {
                    error: "x".into(),
                    holds_key: true,
                },
                500,
            );
            attempt(&store, &ids[1], NextStep::Succeeded, 500);
            store.db.flush().unwrap();
            ids
        };
        let db = raw_when_free(dir);
        for name in keys::INDEX_TREES {
            db.drop_tree(name).unwrap();
        }
        // The queue as schema 3 and before kept it: one order for every handler, with an
        // entry a crash left behind.
        let queue = db.open_tree(keys::TREE_QUEUE).unwrap();
        let old = db.open_tree(keys::TREE_QUEUE_V3).unwrap();
        for item in queue.iter() {
            let (_, due_ms, id) = keys::parse_queue_key(&item.unwrap().0).unwrap();
            old.insert(keys::position(due_ms, &id), &[] as &[u8]).unwrap();
        }
        old.insert(keys::position(1, "stray"), &[] as &[u8]).unwrap();
        drop((queue, old));
        db.drop_tree(keys::TREE_QUEUE).unwrap();
        // Events by seq alone, as schema 5 and before kept them.
        let by_seq = db.open_tree(keys::TREE_EVENTS_SEQ_V5).unwrap();
        for (seq, id) in ["e1", "e2", "e3"].iter().enumerate() {
            by_seq.insert(keys::seq_key(seq as u64 + 1), id.as_bytes()).unwrap();
        }
        drop(by_seq);
        let stray = db.open_tree(keys::TREE_DELIVERIES_BY_STATUS).unwrap();
        stray.insert([1u8, 0, 0, 0, 0, 0, 0, 0, 0, b'x'], &[] as &[u8]).unwrap();
        let meta = db.open_tree(keys::TREE_META).unwrap();
        meta.insert(keys::META_SCHEMA_VERSION, &1u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
        ids
    }

    /// The folder's recorded schema version is this build's.
    fn assert_schema_is_current(store: &Store) {
        // A tree handle keeps the folder open: this one is dropped before any reopen.
        let version = store
            .db
            .open_tree(keys::TREE_META)
            .unwrap()
            .get(keys::META_SCHEMA_VERSION);
        assert_eq!(version.unwrap().unwrap().as_ref(), keys::SCHEMA_VERSION.to_be_bytes());
    }

    #[test]
    fn a_version_1_folder_is_indexed_once_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let ids = version_1_folder(dir.path());
        let store = open_when_free(dir.path()).unwrap();
        assert_schema_is_current(&store);
        assert_consistent(&store);
        assert_eq!(store.queue_depth(), 1, "e2's delivery is still queued");
        assert_eq!(store.queue_heads().unwrap(), [("h1".to_owned(), 200)]);
        let names = store.db.tree_names();
        for gone in [keys::TREE_QUEUE_V3, keys::TREE_EVENTS_SEQ_V5] {
            assert!(!names.iter().any(|name| name == gone.as_bytes()), "{gone}");
        }
        let all = store.list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        });
        let all: Vec<String> = all.unwrap().into_iter().map(|e| e.event.id).collect();
        assert_eq!(all, ["e1", "e2", "e3"], "in ingest order");
        let dead = DeliveryFilter {
            status: Some(DeliveryStatus::Dead),
            handler: Some("h1".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.list_deliveries(&dead).unwrap()[0].id, ids[0]);
        let typed = EventFilter {
            since_ms: Some(350),
            limit: 10,
            ..EventFilter::of_type("a")
        };
        let events = store.list_events(&typed).unwrap();
        assert_eq!(events.iter().map(|e| e.event.id.as_str()).collect::<Vec<_>>(), ["e3"]);
        drop(store);
        let again = open_when_free(dir.path()).unwrap();
        assert_consistent(&again);
    }

    #[test]
    fn counters_and_time_order_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), crate::store::testing::CACHE_BYTES).unwrap();
            let ids = ingest_typed(&store, "e1", "a", &["h", "i"], 500);
            attempt(&store, &ids[0], NextStep::Succeeded, 510);
            store.db.flush().unwrap();
        }
        let store = open_when_free(dir.path()).unwrap();
        assert_eq!(store.queue_depth(), 1);
        // The clock is behind the last event's: order ms must still not go back.
        ingest_typed(&store, "e2", "a", &["h"], 100);
        assert_eq!(store.queue_depth(), 2);
        assert_consistent(&store);
        let since = EventFilter {
            since_ms: Some(100),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(store.list_events(&since).unwrap().len(), 2);
    }

    #[test]
    fn compaction_rebuilds_the_indexes_without_stray_entries() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        {
            let store = Store::open(&data, crate::store::testing::CACHE_BYTES).unwrap();
            ingest_typed(&store, "e1", "a", &["h"], 10);
            store
                .trees
                .events_by_type
                .insert(b"a\0stray", b"nothing".as_slice())
                .unwrap();
            store.db.flush().unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Err(e) = Store::compact(&data, crate::store::testing::CACHE_BYTES) {
            assert!(
                e.to_string().contains("in use") && std::time::Instant::now() < deadline,
                "{e}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let store = open_when_free(&data).unwrap();
        assert!(!store.trees.events_by_type.contains_key(b"a\0stray").unwrap());
        assert_eq!(store.trees.events_by_type.len(), 1);
        assert_consistent(&store);
    }

    #[test]
    fn a_version_2_folder_gets_its_state_usage_counted_once_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let expected = {
            let store = Store::open(dir.path(), crate::store::testing::CACHE_BYTES).unwrap();
            for (handler, key) in [("a", "k1"), ("a", "k2"), ("ab", "k"), ("b", "x")] {
                let state = store.handler_state(handler, crate::store::StateQuota::UNLIMITED);
                state.set(key, &serde_json::json!({ "v": key })).unwrap();
            }
            let expected = ["a", "ab", "b"].map(|h| store.state_usage(h).unwrap());
            store.db.flush().unwrap();
            expected
        };
        let db = raw_when_free(dir.path());
        db.drop_tree(keys::TREE_STATE_USAGE).unwrap();
        let meta = db.open_tree(keys::TREE_META).unwrap();
        meta.insert(keys::META_SCHEMA_VERSION, &2u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
        drop((meta, db));
        let store = open_when_free(dir.path()).unwrap();
        assert_eq!(["a", "ab", "b"].map(|h| store.state_usage(h).unwrap()), expected);
        assert_eq!(expected[0].keys, 2);
        assert_schema_is_current(&store);
        assert_consistent(&store);
    }
}
