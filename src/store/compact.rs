//! Offline compaction: rewrites a data folder with only its live records. sled keeps removed
//! and overwritten records in its log until it rewrites those segments; compaction is what
//! makes a delete or a redact final on disk.

use std::path::{Path, PathBuf};

use super::{Store, StoreError, keys};

/// What a compaction did.
#[derive(Debug, Clone, PartialEq)]
pub struct Compacted {
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl Store {
    /// Compacts the (unopened) store in `dir`: copies its live records into a new folder,
    /// then swaps the folders. A crash leaves either the old or the new folder in place, and
    /// at worst a `<dir>.compacting` or `<dir>.old` beside it.
    pub fn compact(dir: &Path, cache_bytes: u64) -> Result<Compacted, StoreError> {
        if !super::holds_a_store(dir) {
            return Err(StoreError::Open {
                path: dir.to_owned(),
                detail: "there is no store there to compact".into(),
            });
        }
        // Measured before the open, which grows the log by a segment sled sets aside.
        let bytes_before = folder_bytes(dir);
        let store = Store::open(dir, cache_bytes)?;
        let fresh = sibling(dir, "compacting");
        let old = sibling(dir, "old");
        let io = |e: std::io::Error| StoreError::Open {
            path: dir.to_owned(),
            detail: format!("compaction: {e}"),
        };
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh).map_err(io)?;
        }
        let copy = sled::Config::new().path(&fresh).open()?;
        // Indexes are derived, so they are built anew rather than copied: that also drops any
        // entry a crash left behind.
        let is_index = |name: &[u8]| keys::INDEX_TREES.iter().any(|t| t.as_bytes() == name);
        let records = store.db.export().into_iter().filter(|(_, name, _)| !is_index(name));
        copy.import(records.collect());
        let copied = Store::with_db(copy.clone())?;
        copied.rebuild_indexes()?;
        copied.rebuild_state_usage()?;
        drop(copied);
        copy.flush()?;
        drop(copy);
        drop(store);
        std::fs::rename(dir, &old).map_err(io)?;
        std::fs::rename(&fresh, dir).map_err(io)?;
        std::fs::remove_dir_all(&old).map_err(io)?;
        super::seal::seal(dir)?;
        Ok(Compacted {
            bytes_before,
            bytes_after: folder_bytes(dir),
        })
    }
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                folder_bytes(&path)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::store::NewEvent;
    use serde_json::json;

    fn contains(dir: &Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).unwrap().flatten().any(|e| {
            let path = e.path();
            if path.is_dir() {
                contains(&path, needle)
            } else {
                std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle)
            }
        })
    }

    #[test]
    fn there_must_be_a_store_to_compact() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nothing");
        assert!(
            Store::compact(&missing, crate::store::testing::CACHE_BYTES)
                .unwrap_err()
                .to_string()
                .contains("no store there")
        );
        assert!(!missing.exists());
    }

    #[test]
    fn deleted_values_are_gone_from_disk_after_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let marker = "marker-7c1f9e2a";
        {
            let store = Store::open(&data, crate::store::testing::CACHE_BYTES).unwrap();
            for (id, value) in [("keep", "kept-value"), ("drop", marker)] {
                let event = Event::from_value(json!({"id": id, "type": "t", "data": {"v": value}}), "t").unwrap();
                store
                    .ingest(
                        vec![NewEvent {
                            event,
                            handlers: vec!["h".into()],
                        }],
                        1,
                    )
                    .unwrap();
            }
            store.db.flush().unwrap();
            assert!(store.delete_event("drop").unwrap());
            store.db.flush().unwrap();
        }
        assert!(
            contains(&data, marker.as_bytes()),
            "sled still holds the removed record before compaction"
        );
        // sled's flusher thread lets go of the closed store a moment after it is dropped.
        // Once sled has let go of the closed store, its files no longer change.
        while super::super::guard::held(&data.join("db")).unwrap() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let size_before = folder_bytes(&data);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let compacted = loop {
            match Store::compact(&data, crate::store::testing::CACHE_BYTES) {
                Ok(done) => break done,
                Err(e) if e.to_string().contains("in use") && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert!(compacted.bytes_after > 0);
        // What the folder took before compaction, not after the open that grows its log.
        assert_eq!(compacted.bytes_before, size_before);
        assert!(
            !contains(&data, marker.as_bytes()),
            "the deleted value is still on disk"
        );
        assert!(contains(&data, b"kept-value"));
        // The compaction's own handle, like the first, lets go a moment after it is dropped.
        let store = crate::store::testing::open_when_free(&data).unwrap();
        assert_eq!(store.event("keep").unwrap().unwrap().event.data["v"], "kept-value");
        assert!(store.event("drop").unwrap().is_none());
    }
}
