//! Durable per-handler key/value state (`ctx.state` in handlers), held to the handler's
//! [`StateQuota`].
//!
//! A write changes two trees: the entry in `state` and the handler's usage in `state_usage`.
//! Writes to one handler's state take its lock (striped by handler), so the usage is read,
//! checked and written with no other write of that handler in between, and is exact while the
//! store is open. They are not a sled transaction: sled's first transaction (or batch) puts
//! every later read and write of the process behind one lock, which a flush holds while it
//! waits for the disk, and that halved the store's throughput. So a crash between the two
//! writes can leave the usage behind its entries; the next open, which knows the store was not
//! closed cleanly, counts the usage again from the entries (see `Store::open`).

use std::sync::Arc;

use super::failure::Failure;
use super::index::Stripes;
use super::quota::{StateQuota, StateUsage, entry_bytes};
use super::{Store, StoreError, codec, keys};

/// Longest state key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest state value (serialised JSON), in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most entries one `list` call returns.
pub const MAX_LIST: usize = 1000;

/// One entry returned by [`HandlerState::list`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StateEntry {
    pub key: String,
    pub value: serde_json::Value,
}

/// One handler's state namespace; it cannot name keys of any other handler.
#[derive(Clone)]
pub struct HandlerState {
    tree: sled::Tree,
    /// [`keys::TREE_STATE_USAGE`], changed with every write.
    usage: sled::Tree,
    handler: Vec<u8>,
    prefix: Vec<u8>,
    quota: StateQuota,
    /// The store's failed state: writes are refused once it is set.
    failure: Arc<Failure>,
    /// The store's locks by handler, shared by every `HandlerState` of the store.
    locks: Arc<Stripes>,
}

/// As for [`super::Store`]: a failed store's trees are leaked, not flushed for ever on drop.
impl Drop for HandlerState {
    fn drop(&mut self) {
        if self.failure.cause().is_some() {
            std::mem::forget((self.tree.clone(), self.usage.clone()));
        }
    }
}

impl HandlerState {
    pub(super) fn new(store: &Store, handler: &str, quota: StateQuota) -> Self {
        Self {
            tree: store.trees.state.clone(),
            usage: store.trees.state_usage.clone(),
            failure: store.shared.failure.clone(),
            locks: store.shared.state_stripes.clone(),
            handler: handler.as_bytes().to_vec(),
            prefix: keys::state_prefix(handler),
            quota,
        }
    }

    fn key(&self, user_key: &str) -> Result<Vec<u8>, StoreError> {
        if user_key.is_empty() || user_key.len() > MAX_KEY_BYTES {
            return Err(StoreError::KeyLength {
                len: user_key.len(),
                max: MAX_KEY_BYTES,
            });
        }
        let mut key = self.prefix.clone();
        key.extend_from_slice(user_key.as_bytes());
        Ok(key)
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.tree.get(self.key(key)?)?.map(|raw| decode(&raw)).transpose()
    }

    /// Stores `value` under `key`, unless that would take the handler over its quota
    /// ([`StoreError::Quota`], nothing written).
    pub fn set(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        self.failure.guard(|| {
            let user_len = key.len();
            let key = self.key(key)?;
            let record = codec::encode(keys::STATE_RECORD_V1, value)?;
            if record.len() - 1 > MAX_VALUE_BYTES {
                return Err(StoreError::ValueTooLarge {
                    len: record.len() - 1,
                    max: MAX_VALUE_BYTES,
                });
            }
            let new = entry_bytes(user_len, record.len());
            let _held = self.locks.lock(&self.handler);
            let old = self.tree.get(&key)?.map(|raw| entry_bytes(user_len, raw.len()));
            let next = self
                .usage()?
                .after_set(old, new, self.quota)
                .map_err(StoreError::Quota)?;
            self.tree.insert(key.as_slice(), record.as_slice())?;
            self.usage.insert(self.handler.as_slice(), next.encode().as_slice())?;
            Ok(())
        })
    }

    /// Removes `key`; true if it existed.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.failure.guard(|| {
            let user_len = key.len();
            let key = self.key(key)?;
            let _held = self.locks.lock(&self.handler);
            let Some(old) = self.tree.remove(key.as_slice())? else {
                return Ok(false);
            };
            let next = self.usage()?.after_delete(entry_bytes(user_len, old.len()));
            if next.keys == 0 {
                self.usage.remove(self.handler.as_slice())?;
            } else {
                self.usage.insert(self.handler.as_slice(), next.encode().as_slice())?;
            }
            Ok(true)
        })
    }

    /// The handler's usage as recorded; callers hold its lock.
    fn usage(&self) -> Result<StateUsage, StoreError> {
        StateUsage::decode(self.usage.get(&self.handler)?.as_deref())
    }

    /// Entries whose key starts with `prefix`, in key order, at most `limit` (capped at [`MAX_LIST`]).
    pub fn list(&self, prefix: &str, limit: usize) -> Result<Vec<StateEntry>, StoreError> {
        let mut scan = self.prefix.clone();
        scan.extend_from_slice(prefix.as_bytes());
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(scan).take(limit.min(MAX_LIST)) {
            let (key, raw) = item?;
            let key = String::from_utf8(key[self.prefix.len()..].to_vec())
                .map_err(|_| StoreError::Corrupt("state key is not UTF-8".into()))?;
            out.push(StateEntry {
                key,
                value: decode(&raw)?,
            });
        }
        Ok(out)
    }
}

fn decode(raw: &[u8]) -> Result<serde_json::Value, StoreError> {
    codec::decode(keys::STATE_RECORD_V1, raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{assert_consistent, open_when_free};
    use crate::store::{QuotaExceeded, Store};
    use serde_json::json;

    #[test]
    fn get_set_delete_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::store::testing::CACHE_BYTES).unwrap();
        let s = store.handler_state("accounts.patch", StateQuota::UNLIMITED);
        assert_eq!(s.get("a").unwrap(), None);
        s.set("contact:1", &json!({"n": 1})).unwrap();
        s.set("contact:2", &json!([2])).unwrap();
        s.set("other", &json!("x")).unwrap();
        assert_eq!(s.get("contact:1").unwrap(), Some(json!({"n": 1})));
        let listed = s.list("contact:", 10).unwrap();
        assert_eq!(
            listed.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["contact:1", "contact:2"]
        );
        assert_eq!(s.list("", 1).unwrap().len(), 1);
        assert!(s.delete("other").unwrap());
        assert!(!s.delete("other").unwrap());
    }

    #[test]
    fn handlers_cannot_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), crate::store::testing::CACHE_BYTES).unwrap();
        store
            .handler_state("a", StateQuota::UNLIMITED)
            .set("k", &json!(1))
            .unwrap();
        let b = store.handler_state("b", StateQuota::UNLIMITED);
        assert_eq!(b.get("k").unwrap(), None);
        assert!(b.list("", 100).unwrap().is_empty());
        // A handler id that is a prefix of another's must not leak either.
        store
            .handler_state("ab", StateQuota::UNLIMITED)
            .set("k", &json!(2))
            .unwrap();
        assert_eq!(
            store
                .handler_state("a", StateQuota::UNLIMITED)
                .list("", 100)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn limits() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), crate::store::testing::CACHE_BYTES)
            .unwrap()
            .handler_state("h", StateQuota::UNLIMITED);
        assert!(matches!(s.set("", &json!(1)), Err(StoreError::KeyLength { .. })));
        assert!(matches!(s.get(&"k".repeat(1025)), Err(StoreError::KeyLength { .. })));
        let big = json!("x".repeat(MAX_VALUE_BYTES));
        assert!(matches!(s.set("k", &big), Err(StoreError::ValueTooLarge { .. })));
    }

    fn usage(bytes: u64, keys: u64) -> StateUsage {
        StateUsage { bytes, keys }
    }

    #[test]
    fn usage_is_exact_after_set_overwrite_delete_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), crate::store::testing::CACHE_BYTES).unwrap();
            let s = store.handler_state("h", StateQuota::UNLIMITED);
            s.set("ab", &json!("xyz")).unwrap(); // 2 + 5 bytes of JSON
            assert_eq!(store.state_usage("h").unwrap(), usage(7, 1));
            s.set("ab", &json!(1)).unwrap();
            assert_eq!(store.state_usage("h").unwrap(), usage(3, 1));
            s.set("c", &json!([1, 2])).unwrap();
            assert_eq!(store.state_usage("h").unwrap(), usage(9, 2));
            assert!(s.delete("ab").unwrap());
            assert!(!s.delete("ab").unwrap());
            assert_eq!(store.state_usage("h").unwrap(), usage(6, 1));
            assert_eq!(store.state_usage("other").unwrap(), usage(0, 0));
            store.db.flush().unwrap();
        }
        let store = open_when_free(dir.path()).unwrap();
        assert_eq!(store.state_usage("h").unwrap(), usage(6, 1));
        assert_consistent(&store);
        store.handler_state("h", StateQuota::UNLIMITED).delete("c").unwrap();
        assert_eq!(store.state_usage("h").unwrap(), usage(0, 0));
        assert!(store.trees.state_usage.is_empty(), "an empty handler keeps no record");
    }

    #[test]
    fn usage_left_behind_by_a_crash_is_counted_again_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), crate::store::testing::CACHE_BYTES).unwrap();
            store
                .handler_state("h", StateQuota::UNLIMITED)
                .set("a", &json!(1))
                .unwrap();
            // The entry of a second set, written just before a crash; its usage never was.
            let mut key = keys::state_prefix("h");
            key.extend_from_slice(b"bc");
            let record = codec::encode(keys::STATE_RECORD_V1, &json!("xyz")).unwrap();
            store.trees.state.insert(key, record).unwrap();
            store.db.flush().unwrap();
            assert_eq!(store.state_usage("h").unwrap(), usage(2, 1), "behind before the crash");
        }
        // Dropped without a clean close (`Store::seal`), as a crash leaves it.
        let store = open_when_free(dir.path()).unwrap();
        assert_eq!(store.state_usage("h").unwrap(), usage(2 + 2 + 5, 2));
        assert_consistent(&store);
    }

    #[test]
    fn a_set_over_the_quota_writes_nothing() {
        let store = Store::temporary().unwrap();
        let quota = StateQuota {
            max_bytes: 20,
            max_keys: 2,
        };
        let s = store.handler_state("h", quota);
        s.set("a", &json!("12345678")).unwrap(); // 1 + 10
        let err = s.set("b", &json!("1234567890")).unwrap_err(); // would be 11 + 13
        assert!(
            matches!(
                err,
                StoreError::Quota(QuotaExceeded::Bytes {
                    bytes: 11,
                    after: 24,
                    max: 20
                })
            ),
            "{err}"
        );
        assert_eq!(s.get("b").unwrap(), None);
        s.set("b", &json!(1)).unwrap();
        let err = s.set("c", &json!(1)).unwrap_err();
        assert!(
            matches!(err, StoreError::Quota(QuotaExceeded::Keys { keys: 2, max: 2 })),
            "{err}"
        );
        assert_eq!(s.get("c").unwrap(), None);
        assert_eq!(store.state_usage("h").unwrap(), usage(13, 2));
        s.set("a", &json!(2)).unwrap(); // an overwrite adds no key
        assert_eq!(store.state_usage("h").unwrap(), usage(4, 2));
    }

    #[test]
    fn usage_stays_exact_under_concurrent_writers() {
        let store = Store::temporary().unwrap();
        let quota = StateQuota {
            max_bytes: 400,
            max_keys: 1000,
        };
        let start = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            for t in 0..8 {
                // A handle each, as each isolate of a handler has its own.
                let s = store.handler_state("h", quota);
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    for i in 0..2000 {
                        let key = format!("k{}", (i * 7 + t) % 40);
                        match i % 3 {
                            0 => drop(s.delete(&key).unwrap()),
                            _ => match s.set(&key, &json!("v".repeat(i % 11))) {
                                Ok(()) | Err(StoreError::Quota(_)) => {}
                                Err(e) => panic!("{e}"),
                            },
                        }
                    }
                });
            }
        });
        let used = store.state_usage("h").unwrap();
        assert!(used.bytes <= 400, "{used:?}");
        assert_consistent(&store);
    }
}
