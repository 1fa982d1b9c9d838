//! The embedded store: the only module that uses sled.
//!
//! It owns tree names, key layouts and record versions (see [`keys`]), and refuses to open a
//! data folder written by a newer schema or one that is locked or damaged: eddy never starts
//! empty over existing data.

// The one module allowed to use sled's types (see clippy.toml, which also refuses sled's
// transactions and batches here: see `state.rs`).
#![allow(clippy::disallowed_types)]

mod backend;
mod codec;
mod commit;
mod compact;
mod counts;
mod deliveries;
mod edit;
mod event_listing;
mod events;
mod failure;
mod guard;
mod index;
mod keys;
mod lines;
mod listing;
mod mark;
mod migrate;
mod on_use;
mod postpone;
mod quota;
mod records;
mod redact;
mod replay;
mod retention;
mod running;
mod seal;
mod state;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

pub use backend::{Backend, Pending, SharedStore, StateSource, StateStore, event_ids};
pub use compact::Compacted;
pub use counts::HandlerCount;
pub use deliveries::DeliveryFilter;
pub use edit::{Edited, merge_patch};
pub use events::{EventFilter, Ingested, NewEvent, Route};
pub use lines::Skipped;
pub use on_use::OpenOnUse;
pub use quota::{QuotaExceeded, StateQuota, StateUsage};
pub use records::{AttemptRecord, AuditRecord, DeliveryRecord, DeliveryStatus, EventRecord, EventVersion, NextStep};
pub use redact::REDACTED;
pub use replay::Replayed;
pub use retention::{Expired, Retention};
pub use state::{HandlerState, StateEntry};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the data folder {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error("data folder {path} has schema version {found}, this eddy reads version {expected}")]
    Version { path: PathBuf, found: u32, expected: u32 },
    #[error("store error: {0}")]
    Sled(#[from] sled::Error),
    #[error("state key must be 1 to {max} bytes, got {len}")]
    KeyLength { len: usize, max: usize },
    #[error("state value is {len} bytes, the limit is {max}")]
    ValueTooLarge { len: usize, max: usize },
    #[error("{0}")]
    Quota(#[from] QuotaExceeded),
    #[error("stored record is damaged: {0}")]
    Corrupt(String),
    #[error("the flush to disk did not finish: {0}")]
    Flush(String),
    #[error("a store task failed: {0}")]
    Task(String),
    #[error(
        "store unavailable: {cause}; it takes no writes until eddy restarts (reads still work): \
         restart eddy after fixing the disk"
    )]
    Unavailable { cause: String },
    #[error(
        "the store in {path} is damaged: its records cannot be read; eddy stopped without \
         using it (restore a backup, or move the folder away to start empty)"
    )]
    Damaged { path: PathBuf },
    /// An earlier open's error, repeated to each later call (see [`OpenOnUse`]).
    #[error("{0}")]
    NotOpened(String),
    #[error(
        "cannot open the store in {path}: it is in use by another eddy process (pass another data \
         folder, or stop that process)"
    )]
    InUse { path: PathBuf },
    #[error(
        "the store in {path} is damaged: its log holds {logged} of {acknowledged} acknowledged \
         commits (it was truncated or replaced); eddy stopped and left the files as they were \
         (restore a backup; or, if the log was replaced on purpose, delete {path}/durable-mark)"
    )]
    Truncated {
        path: PathBuf,
        logged: u64,
        acknowledged: u64,
    },
}

/// A handle on the open store; cheap to clone and shared by every thread.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    trees: Trees,
    shared: Arc<Shared>,
}

/// What every handle on one open store shares.
#[derive(Default)]
struct Shared {
    /// Set by the first error of the disk; refuses writes from then on (see `failure.rs`).
    failure: Arc<failure::Failure>,
    commit: commit::GroupCommit,
    /// The durable mark kept beside the log (see `mark.rs`).
    mark: mark::Mark,
    /// Serialise changes to one delivery (see `index.rs`).
    stripes: index::Stripes,
    /// Deliveries claimed for an attempt (see `running.rs`); queued again as the last
    /// handle goes.
    claims: running::Claims,
    /// Serialise writes to one handler's state, so its usage is exact (see `state.rs`).
    state_stripes: Arc<index::Stripes>,
    /// Serialise ingests of one event id, so a duplicate is seen before anything is written.
    /// Held around delivery locks, never inside one, so the two cannot deadlock.
    event_stripes: index::Stripes,
    /// Serialise changes to one order key's line (see `lines.rs`). Held around delivery
    /// locks, never inside one.
    line_stripes: index::Stripes,
    /// Entries in the queue tree: counted once at open, then moved only by what sled answers
    /// to each insert and remove, so it equals the tree's length without walking it.
    queued: AtomicUsize,
    /// The order ms of the last accepted event (see [`keys::TREE_EVENTS_BY_TIME`]); held while
    /// an ingest takes its seq, so order ms never decreases along seq.
    last_order_ms: Mutex<u64>,
}

#[derive(Clone)]
struct Trees {
    state: sled::Tree,
    state_usage: sled::Tree,
    events: sled::Tree,
    events_by_type: sled::Tree,
    events_by_time: sled::Tree,
    events_unrouted: sled::Tree,
    deliveries: sled::Tree,
    deliveries_by_status: sled::Tree,
    deliveries_by_handler: sled::Tree,
    deliveries_by_type: sled::Tree,
    attempts: sled::Tree,
    queue: sled::Tree,
    audit: sled::Tree,
    history: sled::Tree,
    lines: sled::Tree,
}

impl Trees {
    fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            state: db.open_tree(keys::TREE_STATE)?,
            state_usage: db.open_tree(keys::TREE_STATE_USAGE)?,
            events: db.open_tree(keys::TREE_EVENTS)?,
            events_by_type: db.open_tree(keys::TREE_EVENTS_BY_TYPE)?,
            events_by_time: db.open_tree(keys::TREE_EVENTS_BY_TIME)?,
            events_unrouted: db.open_tree(keys::TREE_EVENTS_UNROUTED)?,
            deliveries: db.open_tree(keys::TREE_DELIVERIES)?,
            deliveries_by_status: db.open_tree(keys::TREE_DELIVERIES_BY_STATUS)?,
            deliveries_by_handler: db.open_tree(keys::TREE_DELIVERIES_BY_HANDLER)?,
            deliveries_by_type: db.open_tree(keys::TREE_DELIVERIES_BY_TYPE)?,
            attempts: db.open_tree(keys::TREE_ATTEMPTS)?,
            queue: db.open_tree(keys::TREE_QUEUE)?,
            audit: db.open_tree(keys::TREE_AUDIT)?,
            history: db.open_tree(keys::TREE_EVENT_HISTORY)?,
            lines: db.open_tree(keys::TREE_LINES)?,
        })
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, its page cache held to `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        guard::guarded(dir, |closed_cleanly| {
            Self::open_in_place(dir, cache_bytes, closed_cleanly)
        })
    }

    /// Records that the store in `dir` was closed cleanly, so the next open can skip copying
    /// its files aside (see `seal.rs`). Waits up to `wait` for the last handle on it to be
    /// dropped; returns whether it was sealed.
    pub async fn seal(dir: &Path, wait: std::time::Duration) -> Result<bool, StoreError> {
        let until = std::time::Instant::now() + wait;
        // The last handles usually go within a few ms (isolate threads winding down): look
        // again soon at first, then every 20 ms.
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            if seal::seal(dir)? {
                return Ok(true);
            }
            if std::time::Instant::now() >= until {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(20));
        }
    }

    fn open_in_place(dir: &Path, cache_bytes: u64, closed_cleanly: bool) -> Result<Self, StoreError> {
        let open_err = |detail: String| StoreError::Open {
            path: dir.to_owned(),
            detail,
        };
        let existed = holds_a_store(dir);
        let config = sled::Config::new().path(dir).cache_capacity(cache_bytes);
        let db = config.open().map_err(|e| match e {
            // sled reports a held file lock as an I/O error whose text names the lock.
            sled::Error::Io(io) if io.to_string().contains("acquire lock") => {
                StoreError::InUse { path: dir.to_owned() }
            }
            other => open_err(describe_open_error(&other)),
        })?;
        let upgrade = migrate::check_schema(&db, dir, existed)?;
        let store = Self::with_db(db)?;
        store.shared.mark.attach(&store.db, dir)?;
        if let Some(from) = upgrade {
            store.upgrade(from)?;
        }
        if !closed_cleanly {
            // A state write is two writes (see `state.rs`): a crash between them leaves the
            // usage behind its entries.
            store.rebuild_state_usage()?;
            // Claims live in memory (see `running.rs`): a crash leaves their deliveries unqueued.
            let requeued = store.queue_lost_claims()?;
            if requeued > 0 {
                tracing::info!("{requeued} deliveries interrupted by the last stop will run again");
            }
        }
        Ok(store)
    }

    fn with_db(db: sled::Db) -> Result<Self, StoreError> {
        let trees = Trees::open(&db)?;
        let mut shared = Shared::default();
        shared.claims = running::Claims::new(trees.queue.clone());
        let store = Self {
            trees,
            db,
            shared: Arc::new(shared),
        };
        store.load_counters()?;
        Ok(store)
    }

    /// A store that lives in memory and disappears with the process.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::with_db(sled::Config::new().temporary(true).open()?)
    }

    /// The state namespace of one handler, held to `quota`.
    pub fn handler_state(&self, handler: &str, quota: StateQuota) -> HandlerState {
        HandlerState::new(self, handler, quota)
    }

    /// What failed the store, if it failed: then it refuses every write until eddy restarts.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.cause().map(str::to_owned)
    }

    /// Runs the write `change`, refused at once if the store has failed; an error of the
    /// disk that `change` meets fails the store.
    fn write<T>(&self, change: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.shared.failure.guard(change)
    }

    /// Makes every write the caller made so far durable; concurrent callers share one flush
    /// (group commit).
    pub async fn commit(&self) -> Result<(), StoreError> {
        let failure = &self.shared.failure;
        let counter = failure.guard(|| self.shared.mark.before_flush(&self.db))?;
        self.shared.commit.commit(&self.db, failure).await?;
        self.shared.mark.after_flush(counter, crate::clock::now_ms());
        Ok(())
    }
}

/// sled flushes when the last handle on a tree goes, and once the store has failed that flush
/// never returns: a failed store's handles are leaked instead of dropped.
impl Drop for Shared {
    fn drop(&mut self) {
        let failed = self.failure.cause().is_some();
        self.claims.drop_with_store(failed);
        if !failed {
            self.mark.on_close();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.shared.failure.cause().is_some() {
            std::mem::forget((self.db.clone(), self.trees.clone()));
        }
    }
}

/// Whether `dir` already holds sled files with content.
fn holds_a_store(dir: &Path) -> bool {
    std::fs::metadata(dir.join("db")).is_ok_and(|m| m.len() > 0) || dir.join("conf").exists()
}

fn describe_open_error(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption { .. } => format!("{e}; the files were left as they are"),
        other => other.to_string(),
    }
}

/// Helpers for the store's unit tests.
#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::testing::open_when_free;
    use super::*;

    #[test]
    fn second_open_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), crate::store::testing::CACHE_BYTES).unwrap();
        let err = Store::open(dir.path(), crate::store::testing::CACHE_BYTES)
            .err()
            .expect("second open must fail");
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_log_cut_after_a_clean_close_is_refused_however_fast_the_commits_came() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), crate::store::testing::CACHE_BYTES).unwrap();
            // Many commits within the second in which the mark is written at most once.
            for i in 0..50 {
                crate::store::testing::ingest(&store, &format!("e{i}"), &["h"], 10);
                store.commit().await.unwrap();
            }
        }
        let sealed = Store::seal(dir.path(), std::time::Duration::from_secs(10))
            .await
            .unwrap();
        assert!(sealed, "the store closed cleanly");
        let log = dir.path().join("db");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let refused = open_when_free(dir.path()).err().expect("a cut log must not open");
        assert!(
            matches!(refused, StoreError::Truncated { .. } | StoreError::Damaged { .. }),
            "{refused}"
        );
    }

    #[test]
    fn a_garbled_store_is_refused_not_started_over() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), crate::store::testing::CACHE_BYTES).unwrap();
            store
                .handler_state("h", StateQuota::UNLIMITED)
                .set("k", &serde_json::json!(1))
                .unwrap();
            store.db.flush().unwrap();
        }
        let db = dir.path().join("db");
        let mut bytes = std::fs::read(&db).unwrap();
        for b in bytes.iter_mut().step_by(97) {
            *b ^= 0xff;
        }
        std::fs::write(&db, &bytes).unwrap();
        let err = open_when_free(dir.path()).err().expect("a garbled store must not open");
        assert!(
            matches!(err, StoreError::Damaged { .. } | StoreError::Open { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("damaged") || err.to_string().contains("corrupt"),
            "{err}"
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            let meta = db.open_tree(keys::TREE_META).unwrap();
            meta.insert(keys::META_SCHEMA_VERSION, &99u32.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let err = open_when_free(dir.path()).err().expect("must refuse");
        assert!(matches!(err, StoreError::Version { found: 99, .. }), "{err}");
    }
}
