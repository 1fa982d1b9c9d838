//! Per-handler state usage (bytes of keys and JSON values, and key count), persisted in
//! [`keys::TREE_STATE_USAGE`] and written after each state write it counts, under the
//! handler's lock, so it is exact under concurrent writers; after a crash, from the next open
//! on, which counts it again (see `state.rs`).

use super::{Store, StoreError, keys};

/// The operator's quota on one handler's state (`[state]` in `eddy.toml`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateQuota {
    /// Most bytes of keys and JSON values.
    pub max_bytes: u64,
    /// Most keys.
    pub max_keys: u64,
}

impl StateQuota {
    /// No limit: for tools that read or repair state rather than run handlers.
    pub const UNLIMITED: Self = Self {
        max_bytes: u64::MAX,
        max_keys: u64::MAX,
    };
}

/// What one handler's state holds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StateUsage {
    /// Bytes of user keys plus serialised JSON values.
    pub bytes: u64,
    /// Number of keys.
    pub keys: u64,
}

/// A state write refused because it would take the handler over its quota.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuotaExceeded {
    #[error(
        "state quota exceeded: [state] max_keys_per_handler is {max}; this handler's state \
         holds {keys} keys and this set would add one"
    )]
    Keys { keys: u64, max: u64 },
    #[error(
        "state quota exceeded: [state] max_bytes_per_handler is {max} bytes; this handler's \
         state uses {bytes} bytes and this set would make it {after}"
    )]
    Bytes { bytes: u64, after: u64, max: u64 },
}

impl StateUsage {
    /// Usage once an entry of `old` bytes (None: absent) is replaced by one of `new` bytes,
    /// or the reason `quota` refuses it. A write that does not grow a dimension passes even
    /// over a quota lowered since, so a handler can always shrink its state.
    pub fn after_set(self, old: Option<u64>, new: u64, quota: StateQuota) -> Result<Self, QuotaExceeded> {
        let keys = self.keys.saturating_add(u64::from(old.is_none()));
        if keys > quota.max_keys && keys > self.keys {
            return Err(QuotaExceeded::Keys {
                keys: self.keys,
                max: quota.max_keys,
            });
        }
        let bytes = self.bytes.saturating_sub(old.unwrap_or(0)).saturating_add(new);
        if bytes > quota.max_bytes && bytes > self.bytes {
            return Err(QuotaExceeded::Bytes {
                bytes: self.bytes,
                after: bytes,
                max: quota.max_bytes,
            });
        }
        Ok(Self { bytes, keys })
    }

    /// Usage once an entry of `old` bytes is removed.
    pub fn after_delete(self, old: u64) -> Self {
        Self {
            bytes: self.bytes.saturating_sub(old),
            keys: self.keys.saturating_sub(1),
        }
    }

    /// The [`keys::STATE_USAGE_RECORD_V1`] record.
    pub(super) fn encode(self) -> [u8; 17] {
        let mut raw = [0; 17];
        raw[0] = keys::STATE_USAGE_RECORD_V1;
        raw[1..9].copy_from_slice(&self.bytes.to_be_bytes());
        raw[9..].copy_from_slice(&self.keys.to_be_bytes());
        raw
    }

    /// Reads a record made by [`StateUsage::encode`]; no record is no usage.
    pub(super) fn decode(raw: Option<&[u8]>) -> Result<Self, StoreError> {
        let Some(raw) = raw else { return Ok(Self::default()) };
        match raw.split_first() {
            Some((&keys::STATE_USAGE_RECORD_V1, rest)) if rest.len() == 16 => {
                let (bytes, count) = rest.split_at(8);
                Ok(Self {
                    bytes: keys::parse_seq(bytes)?,
                    keys: keys::parse_seq(count)?,
                })
            }
            _ => Err(StoreError::Corrupt("state usage record".into())),
        }
    }
}

/// The bytes one entry counts for: its user key and its JSON value (the stored record less
/// its version byte).
pub(super) fn entry_bytes(user_key_len: usize, record_len: usize) -> u64 {
    (user_key_len + record_len.saturating_sub(1)) as u64
}

impl Store {
    /// What handler `handler`'s state holds.
    pub fn state_usage(&self, handler: &str) -> Result<StateUsage, StoreError> {
        StateUsage::decode(self.trees.state_usage.get(handler.as_bytes())?.as_deref())
    }

    /// Empties the usage tree and counts every handler's state again: when a folder of an
    /// older schema is opened, at an open after the folder was not closed cleanly (a crash
    /// may have come between a state entry and its usage, see `state.rs`), and by compaction.
    /// Nothing else may write meanwhile.
    pub(super) fn rebuild_state_usage(&self) -> Result<(), StoreError> {
        self.trees.state_usage.clear()?;
        // State keys are handler, 0x00, user key, and 0x00 sorts first: each handler's
        // entries are contiguous, so one running total is enough.
        let mut current: Option<(Vec<u8>, StateUsage)> = None;
        for item in self.trees.state.iter() {
            let (key, value) = item?;
            let split = key
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| StoreError::Corrupt("state key without its handler".into()))?;
            let (handler, user_key) = (&key[..split], &key[split + 1..]);
            if current.as_ref().is_some_and(|(h, _)| h != handler) {
                self.write_usage(current.take())?;
            }
            let (_, usage) = current.get_or_insert_with(|| (handler.to_vec(), StateUsage::default()));
            usage.keys += 1;
            usage.bytes += entry_bytes(user_key.len(), value.len());
        }
        self.write_usage(current)
    }

    fn write_usage(&self, entry: Option<(Vec<u8>, StateUsage)>) -> Result<(), StoreError> {
        if let Some((handler, usage)) = entry {
            self.trees.state_usage.insert(handler, &usage.encode())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: StateQuota = StateQuota {
        max_bytes: 100,
        max_keys: 2,
    };

    #[test]
    fn sets_count_the_difference_and_stop_at_the_quota() {
        let empty = StateUsage::default();
        let one = empty.after_set(None, 40, QUOTA).unwrap();
        assert_eq!(one, StateUsage { bytes: 40, keys: 1 });
        let grown = one.after_set(Some(40), 90, QUOTA).unwrap();
        assert_eq!(grown, StateUsage { bytes: 90, keys: 1 });
        assert_eq!(
            grown.after_set(None, 11, QUOTA),
            Err(QuotaExceeded::Bytes {
                bytes: 90,
                after: 101,
                max: 100
            })
        );
        let two = grown.after_set(None, 10, QUOTA).unwrap();
        assert_eq!(
            two.after_set(None, 0, QUOTA),
            Err(QuotaExceeded::Keys { keys: 2, max: 2 })
        );
        assert_eq!(two.after_delete(90), StateUsage { bytes: 10, keys: 1 });
    }

    #[test]
    fn a_handler_over_a_lowered_quota_can_still_shrink() {
        let over = StateUsage { bytes: 500, keys: 5 };
        assert_eq!(
            over.after_set(Some(100), 50, QUOTA).unwrap(),
            StateUsage { bytes: 450, keys: 5 }
        );
        assert!(over.after_set(Some(100), 101, QUOTA).is_err());
        assert!(over.after_set(None, 0, QUOTA).is_err());
    }

    #[test]
    fn records_round_trip_and_nothing_wraps() {
        let usage = StateUsage {
            bytes: u64::MAX - 1,
            keys: 7,
        };
        assert_eq!(StateUsage::decode(Some(&usage.encode())).unwrap(), usage);
        assert_eq!(StateUsage::decode(None).unwrap(), StateUsage::default());
        assert!(StateUsage::decode(Some(&[1, 2, 3])).is_err());
        let huge = usage.after_set(None, u64::MAX, StateQuota::UNLIMITED).unwrap();
        assert_eq!(huge.bytes, u64::MAX);
        assert_eq!(StateUsage::default().after_delete(5), StateUsage::default());
    }
}
