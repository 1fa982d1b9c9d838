//! The store's failed state. Once sled has met an I/O error on a write, its later flushes
//! can wait for ever on a log buffer that will never be written (and so would every caller
//! of [`Store::commit`](super::Store::commit) behind them). The first such error is kept,
//! logged once, and every later write and commit is refused at once with it; reads go on
//! as long as sled serves them. Only a restart clears it.

use std::sync::OnceLock;

use super::StoreError;

/// The first fatal error of one open store, if any.
#[derive(Default)]
pub(super) struct Failure(OnceLock<String>);

impl Failure {
    /// Refuses with [`StoreError::Unavailable`] once the store has failed: one atomic load
    /// while it has not.
    pub(super) fn check(&self) -> Result<(), StoreError> {
        match self.0.get() {
            None => Ok(()),
            Some(cause) => Err(StoreError::Unavailable { cause: cause.clone() }),
        }
    }

    /// Passes `result` through, failing the store if it is an error of the disk (or one sled
    /// reports as its own bug or as corruption): that error comes back as
    /// [`StoreError::Unavailable`], like every write after it.
    pub(super) fn watch<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match result {
            Err(StoreError::Sled(e)) if is_fatal(&e) => {
                // Logged by the first to fail the store only; every caller gets that first cause.
                let cause = self.0.get_or_init(|| {
                    tracing::error!("store failed: {e}; writes are refused until eddy restarts");
                    e.to_string()
                });
                Err(StoreError::Unavailable { cause: cause.clone() })
            }
            other => other,
        }
    }

    /// Runs the write `change` unless the store has failed, and watches what it returns.
    pub(super) fn guard<T>(&self, change: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.check()?;
        self.watch(change())
    }

    /// The error that failed the store, if one did.
    pub(super) fn cause(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// Errors after which sled's state on disk is unknown.
fn is_fatal(e: &sled::Error) -> bool {
    matches!(
        e,
        sled::Error::Io(_) | sled::Error::ReportableBug(_) | sled::Error::Corruption { .. }
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::ingest;
    use super::super::{NewEvent, StateQuota, Store};
    use super::*;
    use crate::event::Event;

    /// A store whose next large write fails as on a failing disk: sled keeps each large value
    /// in a file of its own under `blobs/`, and a file now stands in that folder's place.
    fn store_with_broken_blobs(dir: &std::path::Path) -> Store {
        let store = Store::open(dir, crate::store::testing::CACHE_BYTES).unwrap();
        // Never dropped: were the store not failed as it should be, sled's flush on drop would
        // wait for ever and the test would hang instead of failing.
        std::mem::forget(store.clone());
        std::fs::remove_dir_all(dir.join("blobs")).unwrap();
        std::fs::write(dir.join("blobs"), "").unwrap();
        store
    }

    fn event(id: &str, data: &str) -> NewEvent {
        let value = serde_json::json!({"id": id, "type": "t", "data": data});
        NewEvent {
            event: Event::from_value(value, "test").unwrap(),
            handlers: vec!["h".into()],
        }
    }

    fn assert_unavailable<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>) {
        match result {
            Err(StoreError::Unavailable { cause }) => assert!(cause.contains("Not a directory"), "{what}: {cause}"),
            other => panic!("{what}: expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn after_a_disk_error_every_write_and_commit_is_refused_and_reads_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_broken_blobs(dir.path());
        let delivery = ingest(&store, "small", &["h"], 1_000).remove(0);
        assert_eq!(store.failure(), None);

        assert_unavailable(
            "the write that meets the error",
            store.ingest(vec![event("large", &"x".repeat(400_000))], 2_000),
        );
        assert!(store.failure().is_some_and(|c| c.contains("Not a directory")));
        // A runtime of its own, left without waiting for its threads: a commit that reached
        // sled's flush would keep one for ever, and waiting for it would hang the test.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let commit = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(60), store.commit()).await });
        runtime.shutdown_background();
        assert_unavailable("commit", commit.expect("commit returns at once"));
        assert_unavailable("a small ingest", store.ingest(vec![event("after", "")], 3_000));
        assert_unavailable("postpone", store.postpone(&delivery, 5_000, 4_000));
        let state = store.handler_state("h", StateQuota::UNLIMITED);
        assert_unavailable("handler state", state.set("k", &serde_json::json!(1)));
        assert_unavailable("claim", crate::store::testing::claim(&store, 1_000, &delivery, 5_000));
        assert!(store.event("small").unwrap().is_some(), "reads go on");
    }

    #[test]
    fn a_failed_store_is_dropped_without_waiting_for_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::store::testing::CACHE_BYTES).unwrap();
        std::fs::remove_dir_all(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("blobs"), "").unwrap();
        let big = serde_json::json!("x".repeat(400_000));
        assert_unavailable(
            "a large state value",
            store.handler_state("h", StateQuota::UNLIMITED).set("k", &big),
        );
        // On a thread of its own: a drop that waits for sled's flush fails the test, not hangs it.
        let (dropped, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(store);
            let _ = dropped.send(());
        });
        done.recv_timeout(Duration::from_secs(60))
            .expect("the last handle on a failed store is dropped at once");
    }

    #[test]
    fn errors_of_the_request_do_not_fail_the_store() {
        let failure = Failure::default();
        let refused: Result<(), _> = failure.guard(|| Err(StoreError::KeyLength { len: 0, max: 1 }));
        assert!(matches!(refused, Err(StoreError::KeyLength { .. })));
        assert!(failure.check().is_ok());
        assert_eq!(failure.cause(), None);
    }
}
