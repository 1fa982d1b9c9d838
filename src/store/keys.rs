//! Tree names, key layouts and record versions: the on-disk format in one place.

/// Metadata tree: schema version and similar facts about the store itself.
pub const TREE_META: &str = "meta";
/// Handler state: key = handler id, 0x00, user key; value = [`STATE_RECORD_V1`] byte + JSON.
pub const TREE_STATE: &str = "state";

/// Events by id: [`EVENT_RECORD_V1`] records.
pub const TREE_EVENTS: &str = "events";
/// Ingest order: sequence number (u64 big-endian) -> event id.
pub const TREE_EVENTS_SEQ: &str = "events_by_seq";
/// Deliveries by id: [`DELIVERY_RECORD_V1`] records.
pub const TREE_DELIVERIES: &str = "deliveries";
/// Attempts: delivery id, 0x00, attempt number (u32 big-endian) -> [`ATTEMPT_RECORD_V1`].
pub const TREE_ATTEMPTS: &str = "attempts";
/// The delivery queue: due time (ms, u64 big-endian), delivery id -> empty; ordered by due time.
pub const TREE_QUEUE: &str = "queue";

/// Previous versions of edited events: event id, 0x00, version (u32 big-endian) ->
/// [`EVENT_VERSION_V1`].
pub const TREE_EVENT_HISTORY: &str = "event_history";
/// Audit entries: time-ordered id -> [`AUDIT_RECORD_V1`].
pub const TREE_AUDIT: &str = "audit";

/// Record versions (first byte of each value).
pub const EVENT_RECORD_V1: u8 = 1;
pub const DELIVERY_RECORD_V1: u8 = 1;
pub const ATTEMPT_RECORD_V1: u8 = 1;
pub const AUDIT_RECORD_V1: u8 = 1;
pub const EVENT_VERSION_V1: u8 = 1;

/// Key in [`TREE_META`] holding the schema version as a big-endian u32.
pub const META_SCHEMA_VERSION: &[u8] = b"schema_version";
/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// First byte of a state value: the record version.
pub const STATE_RECORD_V1: u8 = 1;

/// The prefix shared by every key of `handler`'s state; the 0x00 separator cannot occur in
/// a handler id, so no handler's namespace is a prefix of another's.
pub fn state_prefix(handler: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(handler.len() + 1);
    key.extend_from_slice(handler.as_bytes());
    key.push(0);
    key
}

/// The queue key of a delivery due at `due_ms`.
pub fn queue_key(due_ms: u64, delivery_id: &str) -> Vec<u8> {
    let mut key = due_ms.to_be_bytes().to_vec();
    key.extend_from_slice(delivery_id.as_bytes());
    key
}

/// `(due_ms, delivery id)` from a queue key.
pub fn parse_queue_key(key: &[u8]) -> Result<(u64, String), super::StoreError> {
    let (due, id) = key
        .split_first_chunk::<8>()
        .ok_or_else(|| super::StoreError::Corrupt("short queue key".into()))?;
    let id = String::from_utf8(id.to_vec()).map_err(|_| super::StoreError::Corrupt("queue key id".into()))?;
    Ok((u64::from_be_bytes(*due), id))
}

/// The prefix of every history version of one event.
pub fn history_prefix(event_id: &str) -> Vec<u8> {
    attempt_prefix(event_id)
}

/// The key of version `n` of an event in [`TREE_EVENT_HISTORY`]; versions sort by number.
pub fn history_key(event_id: &str, n: u32) -> Vec<u8> {
    attempt_key(event_id, n)
}

/// The prefix of every attempt key of one delivery.
pub fn attempt_prefix(delivery_id: &str) -> Vec<u8> {
    let mut key = delivery_id.as_bytes().to_vec();
    key.push(0);
    key
}

/// The key of attempt `n` of a delivery; attempts sort by number.
pub fn attempt_key(delivery_id: &str, n: u32) -> Vec<u8> {
    let mut key = attempt_prefix(delivery_id);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_sort_by_due_time() {
        assert!(queue_key(9, "b") < queue_key(10, "a"));
        assert_eq!(
            parse_queue_key(&queue_key(42, "id-1")).unwrap(),
            (42, "id-1".to_owned())
        );
        assert!(attempt_key("d", 2) < attempt_key("d", 10));
    }

    #[test]
    fn namespaces_do_not_overlap() {
        assert!(!state_prefix("ab").starts_with(&state_prefix("a")));
        assert!(!state_prefix("a").starts_with(&state_prefix("ab")));
    }
}
