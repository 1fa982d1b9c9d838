//! How far the log is known to be durable, kept outside it. Every commit also writes a
//! counter into the log; once a commit is on disk its counter is copied (at most once a
//! second, with no fsync of its own) into `durable-mark` beside the log, and at a clean close
//! the last counter is (synced). The file only ever lags, so at open a log whose counter is
//! below the file's lost acknowledged writes: it was truncated, cut at a garbled record by
//! sled's recovery, or replaced.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;

/// The counter's key in sled's default tree.
const COMMITS_KEY: &[u8] = b"eddy.commits";
/// The file beside the log.
pub(super) const MARK_FILE: &str = "durable-mark";
/// Least time between two writes of the file.
const EVERY_MS: u64 = 1000;

#[derive(Default)]
pub(super) struct Mark {
    /// The data folder; unset for temporary stores.
    dir: OnceLock<PathBuf>,
    /// The last counter written into the log.
    written: AtomicU64,
    /// The highest counter copied into the file.
    marked: AtomicU64,
    /// The highest counter whose flush has completed.
    flushed: AtomicU64,
    last_file_write_ms: AtomicU64,
}

impl Mark {
    /// Compares the log with the file; refuses a log that is behind.
    pub(super) fn attach(&self, db: &sled::Db, dir: &Path) -> Result<(), StoreError> {
        let logged = match db.get(COMMITS_KEY)? {
            Some(raw) => u64::from_be_bytes(
                raw.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("the commit counter is not 8 bytes".into()))?,
            ),
            None => 0,
        };
        // Unreadable or missing: no claim to check against (the file is never fsynced).
        let acknowledged = std::fs::read_to_string(dir.join(MARK_FILE))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if logged < acknowledged {
            return Err(StoreError::Truncated {
                path: dir.to_owned(),
                logged,
                acknowledged,
            });
        }
        self.written.store(logged, Ordering::SeqCst);
        self.flushed.store(logged, Ordering::SeqCst);
        self.marked.store(acknowledged, Ordering::SeqCst);
        let _ = self.dir.set(dir.to_owned());
        Ok(())
    }

    /// Writes the next counter into the log, ahead of a flush; returns it.
    pub(super) fn before_flush(&self, db: &sled::Db) -> Result<u64, StoreError> {
        let next = self.written.fetch_add(1, Ordering::SeqCst) + 1;
        db.fetch_and_update(COMMITS_KEY, |old| {
            let old = old.and_then(|raw| raw.try_into().ok()).map_or(0, u64::from_be_bytes);
            Some(old.max(next).to_be_bytes().to_vec())
        })?;
        Ok(next)
    }

    /// Records that `durable` is on disk (throttled).
    pub(super) fn after_flush(&self, durable: u64, now_ms: u64) {
        self.flushed.fetch_max(durable, Ordering::SeqCst);
        let Some(dir) = self.dir.get() else { return };
        let last = self.last_file_write_ms.load(Ordering::SeqCst);
        if now_ms.saturating_sub(last) < EVERY_MS || self.marked.fetch_max(durable, Ordering::SeqCst) >= durable {
            return;
        }
        self.last_file_write_ms.store(now_ms, Ordering::SeqCst);
        write_file(dir, durable, false);
    }

    /// At a clean close (the caller checks that the store has not failed): the file takes
    /// the last counter whose flush completed, synced. A log cut after a clean stop is then
    /// refused as surely as one cut after a crash, however many commits the last second held.
    /// (Not the last counter written: a commit given up while its flush ran, its request
    /// never answered, may not be on disk yet.)
    pub(super) fn on_close(&self) {
        let Some(dir) = self.dir.get() else { return };
        let flushed = self.flushed.load(Ordering::SeqCst);
        if self.marked.fetch_max(flushed, Ordering::SeqCst) >= flushed {
            return;
        }
        write_file(dir, flushed, true);
    }
}

/// Replaces the file in `dir` with `counter`, through a rename; `sync` makes it durable. A
/// failure is logged: the file only ever lags, so a missed write weakens the check, no more.
fn write_file(dir: &Path, counter: u64, sync: bool) {
    if let Err(e) = replace_file(dir, counter, sync) {
        tracing::warn!("cannot update {}: {e}", dir.join(MARK_FILE).display());
    }
}

fn replace_file(dir: &Path, counter: u64, sync: bool) -> std::io::Result<()> {
    let partial = dir.join(format!("{MARK_FILE}.partial"));
    let mut file = std::fs::File::create(&partial)?;
    std::io::Write::write_all(&mut file, counter.to_string().as_bytes())?;
    if sync {
        file.sync_all()?;
    }
    std::fs::rename(&partial, dir.join(MARK_FILE))?;
    if sync {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_behind_its_mark_is_refused_and_one_level_with_it_opens() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let mark = Mark::default();
        mark.attach(&db, dir.path()).unwrap();
        let durable = mark.before_flush(&db).unwrap();
        db.flush().unwrap();
        mark.after_flush(durable, 10_000);
        assert_eq!(std::fs::read_to_string(dir.path().join(MARK_FILE)).unwrap(), "1");
        assert!(Mark::default().attach(&db, dir.path()).is_ok());
        std::fs::write(dir.path().join(MARK_FILE), "5").unwrap();
        let refused = Mark::default().attach(&db, dir.path()).unwrap_err();
        assert!(refused.to_string().contains("1 of 5"), "{refused}");
    }

    #[test]
    fn a_clean_close_writes_the_last_counter_whatever_the_throttle_held_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let mark = Mark::default();
        mark.attach(&db, dir.path()).unwrap();
        for now in [5_000, 5_100, 5_200] {
            let durable = mark.before_flush(&db).unwrap();
            db.flush().unwrap();
            mark.after_flush(durable, now);
        }
        assert_eq!(std::fs::read_to_string(dir.path().join(MARK_FILE)).unwrap(), "1");
        // A fourth commit whose flush never completed is not claimed as durable.
        mark.before_flush(&db).unwrap();
        mark.on_close();
        assert_eq!(std::fs::read_to_string(dir.path().join(MARK_FILE)).unwrap(), "3");
    }

    #[test]
    fn the_file_is_written_at_most_once_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let mark = Mark::default();
        mark.attach(&db, dir.path()).unwrap();
        for now in [5_000, 5_500] {
            let durable = mark.before_flush(&db).unwrap();
            mark.after_flush(durable, now);
        }
        assert_eq!(std::fs::read_to_string(dir.path().join(MARK_FILE)).unwrap(), "1");
    }
}
