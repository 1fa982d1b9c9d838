//! Group commit: callers that wrote concurrently share one flush to disk, so durability costs
//! one fsync per batch of writers, not one per write.

use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;
use super::failure::Failure;

/// Coordinates flushes of one database.
#[derive(Default)]
pub struct GroupCommit {
    /// Held by the caller that is flushing; the others wait and usually find their work done.
    lock: tokio::sync::Mutex<()>,
    /// Tickets handed out; a caller takes one after its writes.
    requested: AtomicU64,
    /// Every ticket up to this one is durable.
    flushed: AtomicU64,
}

impl GroupCommit {
    /// Returns once everything the caller wrote before calling is on disk; refused at once
    /// if the store has failed, since sled's flush would then never return.
    pub async fn commit(&self, db: &sled::Db, failure: &Failure) -> Result<(), StoreError> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let _flushing = self.lock.lock().await;
        if self.flushed.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Checked under the lock: the flush just before may have failed the store.
        failure.check()?;
        // Every ticket taken so far belongs to writes that already happened: one flush covers them.
        let covered = self.requested.load(Ordering::SeqCst);
        // sled's `flush_async` hands the flush to sled's own thread pool and can lose the
        // wake-up under load (sled issues 1241 and 1308): the commit then never returns and
        // every caller behind it waits for ever. The same flush on tokio's blocking pool
        // cannot.
        let db = db.clone();
        let result = tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Flush(e.to_string()))?;
        failure.watch(result.map_err(StoreError::from))?;
        self.flushed.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_callers_all_return_after_a_flush() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let commit = std::sync::Arc::new(GroupCommit::default());
        let tasks = (0..32).map(|i| {
            let (db, commit) = (db.clone(), commit.clone());
            tokio::spawn(async move {
                db.insert(format!("k{i}"), b"v".to_vec()).unwrap();
                commit.commit(&db, &Failure::default()).await.unwrap();
            })
        });
        for t in futures::future::join_all(tasks).await {
            t.unwrap();
        }
        assert_eq!(commit.flushed.load(Ordering::SeqCst), 32);
    }
}
