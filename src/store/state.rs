//! Durable per-handler key/value state (`ctx.state` in handlers).

use super::{StoreError, codec, keys};

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
    prefix: Vec<u8>,
}

impl HandlerState {
    pub(super) fn new(tree: sled::Tree, handler: &str) -> Self {
        Self {
            tree,
            prefix: keys::state_prefix(handler),
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

    /// Stores `value` under `key`.
    pub fn set(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        let key = self.key(key)?;
        let record = codec::encode(keys::STATE_RECORD_V1, value)?;
        if record.len() - 1 > MAX_VALUE_BYTES {
            return Err(StoreError::ValueTooLarge {
                len: record.len() - 1,
                max: MAX_VALUE_BYTES,
            });
        }
        self.tree.insert(key, record)?;
        Ok(())
    }

    /// Removes `key`; true if it existed.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.tree.remove(self.key(key)?)?.is_some())
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
    use crate::store::Store;
    use serde_json::json;

    #[test]
    fn get_set_delete_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let s = store.handler_state("accounts.patch");
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
        let store = Store::open(dir.path()).unwrap();
        store.handler_state("a").set("k", &json!(1)).unwrap();
        let b = store.handler_state("b");
        assert_eq!(b.get("k").unwrap(), None);
        assert!(b.list("", 100).unwrap().is_empty());
        // A handler id that is a prefix of another's must not leak either.
        store.handler_state("ab").set("k", &json!(2)).unwrap();
        assert_eq!(store.handler_state("a").list("", 100).unwrap().len(), 1);
    }

    #[test]
    fn limits() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap().handler_state("h");
        assert!(matches!(s.set("", &json!(1)), Err(StoreError::KeyLength { .. })));
        assert!(matches!(s.get(&"k".repeat(1025)), Err(StoreError::KeyLength { .. })));
        let big = json!("x".repeat(MAX_VALUE_BYTES));
        assert!(matches!(s.set("k", &big), Err(StoreError::ValueTooLarge { .. })));
    }
}
