//! Tree names, key layouts and record versions: the on-disk format in one place.

use super::StoreError;
use super::records::DeliveryStatus;

/// Metadata tree: schema version and similar facts about the store itself.
pub const TREE_META: &str = "meta";
/// Handler state: key = handler id, 0x00, user key; value = [`STATE_RECORD_V1`] byte + JSON.
pub const TREE_STATE: &str = "state";

/// Events by id: [`EVENT_RECORD_V1`] records.
pub const TREE_EVENTS: &str = "events";
/// Ingest order up to schema 5: sequence number (u64 big-endian) -> event id. Dropped at the
/// upgrade to schema 6: [`TREE_EVENTS_BY_TIME`] is in the same order.
pub const TREE_EVENTS_SEQ_V5: &str = "events_by_seq";
/// Deliveries by id: [`DELIVERY_RECORD_V1`] records.
pub const TREE_DELIVERIES: &str = "deliveries";
/// Attempts: delivery id, 0x00, attempt number (u32 big-endian) -> [`ATTEMPT_RECORD_V1`].
pub const TREE_ATTEMPTS: &str = "attempts";
/// The delivery queue: handler, 0x00, due time (ms, u64 big-endian), delivery id -> empty. Each
/// handler's deliveries form one range ordered by due time, so the engine reads only the
/// deliveries it can start, a handler at a time, and never walks past those of a handler at
/// its limit.
pub const TREE_QUEUE: &str = "queue_by_handler";
/// The queue up to schema 3: due time, delivery id, all handlers in one order. Replaced by
/// [`TREE_QUEUE`], built from the delivery records, at the upgrade to schema 4.
pub const TREE_QUEUE_V3: &str = "queue";

// Secondary indexes. Every entry is derived from one record, holds no event data, and is
// checked against its record when read: a crash between the writes of one change can leave an
// entry whose record moved on, never a record without its entries (see `index.rs`).

/// Events by type: type, 0x00, seq (u64 big-endian) -> event id.
pub const TREE_EVENTS_BY_TYPE: &str = "events_by_type";
/// Events by time: order ms (u64 big-endian), seq (u64 big-endian) -> event id. The order ms
/// of an event is the largest `received_ms` of it and every event accepted before it, so it
/// never decreases along seq, so the entries are in ingest order (the listing of all events
/// reads them) and the first entry at or after a time is where ingest order reaches that time.
pub const TREE_EVENTS_BY_TIME: &str = "events_by_time";
/// Events that matched no handler: seq (u64 big-endian) -> event id.
pub const TREE_EVENTS_UNROUTED: &str = "events_unrouted";
/// Deliveries by status: status code, created ms (u64 big-endian), delivery id -> empty.
/// A claimed delivery keeps its pending entries (its claim is held in memory, see
/// `running.rs`); running entries are only found in folders of schema 4 and before, until the
/// engine's start queues those deliveries again.
pub const TREE_DELIVERIES_BY_STATUS: &str = "deliveries_by_status";
/// Deliveries by status and handler: status code, handler, 0x00, created ms, delivery id.
/// Running deliveries are left out, as in the status index.
pub const TREE_DELIVERIES_BY_HANDLER: &str = "deliveries_by_handler";
/// Deliveries by status and event type: status code, type, 0x00, created ms, delivery id.
/// Running deliveries are left out, as in the status index.
pub const TREE_DELIVERIES_BY_TYPE: &str = "deliveries_by_type";

/// The lines of ordered deliveries: handler, 0x00, order key length (u32 big-endian), order
/// key, place (u64 big-endian), delivery id -> empty. One line per handler and key, in the
/// order its deliveries joined it; the first entry whose record still names its place is
/// the delivery the key waits for (see `lines.rs`).
pub const TREE_LINES: &str = "order_lines";

/// Every index tree: rebuilt from the records by a schema upgrade and by compaction.
pub const INDEX_TREES: [&str; 7] = [
    TREE_EVENTS_BY_TYPE,
    TREE_EVENTS_BY_TIME,
    TREE_EVENTS_UNROUTED,
    TREE_DELIVERIES_BY_STATUS,
    TREE_DELIVERIES_BY_HANDLER,
    TREE_DELIVERIES_BY_TYPE,
    TREE_LINES,
];

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
/// The schema version this build writes and reads. 1: records only; 2: adds the index trees,
/// built from the records when a version 1 folder is opened; 3: adds [`TREE_STATE_USAGE`],
/// counted from the state tree when an older folder is opened (an older eddy, which would
/// write state without counting it, then refuses the folder); 4: the queue keyed by handler
/// ([`TREE_QUEUE`]), built from the delivery records; 5: claims held in memory, so after a
/// crash a pending delivery may have no queue entry until the next open queues it (an older
/// eddy, which would not, then refuses the folder); 6: no tree of events by seq alone (the
/// time index lists all events in ingest order); 7: ordered deliveries, with the `blocked`
/// status and [`TREE_LINES`] (an older eddy, which would run blocked deliveries or lose them,
/// refuses the folder).
pub const SCHEMA_VERSION: u32 = 7;
/// The oldest schema version this build upgrades at open.
pub const SCHEMA_UPGRADABLE_FROM: u32 = 1;

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

/// The prefix of every queue key of `handler`: its id and a 0x00, as for its state, so no
/// handler's range holds another's.
pub fn queue_prefix(handler: &str) -> Vec<u8> {
    state_prefix(handler)
}

/// The queue key of `handler`'s delivery due at `due_ms`.
pub fn queue_key(handler: &str, due_ms: u64, delivery_id: &str) -> Vec<u8> {
    let mut key = queue_prefix(handler);
    key.extend_from_slice(&position(due_ms, delivery_id));
    key
}

/// `(handler, due ms, delivery id)` from a queue key.
pub fn parse_queue_key(key: &[u8]) -> Result<(String, u64, String), StoreError> {
    let end = key
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| StoreError::Corrupt("queue key without a handler".into()))?;
    let handler =
        String::from_utf8(key[..end].to_vec()).map_err(|_| StoreError::Corrupt("handler id in a key".into()))?;
    let (due_ms, id) = parse_position(&key[end + 1..])?;
    Ok((handler, due_ms, id))
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

/// Every entry numbered under `owner` in `tree` (attempts of a delivery, versions of an
/// event): the keys `owner, 0x00, n` with `n` a u32. The length check makes this exact
/// whatever `owner` holds: "a" and "a\0b" share the prefix "a\0", but only keys of "a" are
/// exactly 4 bytes longer than it.
pub fn numbered(tree: &sled::Tree, owner: &str) -> impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> {
    let prefix = attempt_prefix(owner);
    let len = prefix.len() + 4;
    tree.scan_prefix(prefix)
        .filter(move |item| item.as_ref().map_or(true, |(key, _)| key.len() == len))
}

/// An ingest sequence number as a key: big-endian, so key order is ingest order.
pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// `seq` from a key made by [`seq_key`] (or the last 8 bytes of a longer key).
pub fn parse_seq(key: &[u8]) -> Result<u64, StoreError> {
    key.last_chunk::<8>()
        .map(|b| u64::from_be_bytes(*b))
        .ok_or_else(|| StoreError::Corrupt("short sequence key".into()))
}

/// The prefix of every [`TREE_EVENTS_BY_TYPE`] key of one type.
pub fn event_type_prefix(kind: &str) -> Vec<u8> {
    attempt_prefix(kind)
}

/// The [`TREE_EVENTS_BY_TYPE`] key of an event.
pub fn event_type_key(kind: &str, seq: u64) -> Vec<u8> {
    let mut key = event_type_prefix(kind);
    key.extend_from_slice(&seq_key(seq));
    key
}

/// The [`TREE_EVENTS_BY_TIME`] key of an event.
pub fn event_time_key(order_ms: u64, seq: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&order_ms.to_be_bytes());
    key[8..].copy_from_slice(&seq_key(seq));
    key
}

/// `(order ms, seq)` from a [`TREE_EVENTS_BY_TIME`] key.
pub fn parse_event_time_key(key: &[u8]) -> Result<(u64, u64), StoreError> {
    let key: &[u8; 16] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt("event time key".into()))?;
    let (order, seq) = key.split_at(8);
    Ok((parse_seq(order)?, parse_seq(seq)?))
}

/// The one-byte code of a status in index keys; fixed forever, unlike the enum's order.
pub fn status_code(status: DeliveryStatus) -> u8 {
    match status {
        DeliveryStatus::Pending => 1,
        DeliveryStatus::Running => 2,
        DeliveryStatus::Succeeded => 3,
        DeliveryStatus::Dead => 4,
        DeliveryStatus::Blocked => 5,
    }
}

/// Every status, in code order.
pub const STATUSES: [DeliveryStatus; 5] = [
    DeliveryStatus::Pending,
    DeliveryStatus::Running,
    DeliveryStatus::Succeeded,
    DeliveryStatus::Dead,
    DeliveryStatus::Blocked,
];

/// The prefix of the line of `handler`'s deliveries with order key `key`: the length makes
/// it exact whatever bytes the key holds.
pub fn line_prefix(handler: &str, key: &str) -> Vec<u8> {
    let mut prefix = state_prefix(handler);
    // Order keys are at most a few hundred bytes (see `event::MAX_ORDER_KEY_BYTES`).
    prefix.extend_from_slice(&(key.len() as u32).to_be_bytes());
    prefix.extend_from_slice(key.as_bytes());
    prefix
}

/// The entry of a delivery at `place` in the line with `prefix`.
pub fn line_key(prefix: &[u8], place: u64, delivery_id: &str) -> Vec<u8> {
    [prefix, &place.to_be_bytes(), delivery_id.as_bytes()].concat()
}

/// The prefix of the line a [`TREE_LINES`] key belongs to.
pub fn line_of_key(key: &[u8]) -> Result<&[u8], StoreError> {
    let corrupt = || StoreError::Corrupt("order line key".into());
    let end = key.iter().position(|&b| b == 0).ok_or_else(corrupt)?;
    let (len, rest) = key[end + 1..].split_first_chunk::<4>().ok_or_else(corrupt)?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len + 8 {
        return Err(corrupt());
    }
    Ok(&key[..end + 1 + 4 + len])
}

/// The prefix of a delivery index range: the status, then (for the handler and type indexes)
/// the handler or type and a 0x00, which neither can contain.
pub fn delivery_prefix(status: DeliveryStatus, within: Option<&str>) -> Vec<u8> {
    let mut key = vec![status_code(status)];
    if let Some(name) = within {
        key.extend_from_slice(name.as_bytes());
        key.push(0);
    }
    key
}

/// A position in a delivery index range: a time (u64 big-endian), then the delivery id.
/// Positions sort by time, then id.
pub fn position(at_ms: u64, delivery_id: &str) -> Vec<u8> {
    let mut key = at_ms.to_be_bytes().to_vec();
    key.extend_from_slice(delivery_id.as_bytes());
    key
}

/// `(time, delivery id)` from a position.
pub fn parse_position(position: &[u8]) -> Result<(u64, String), StoreError> {
    let (at, id) = position
        .split_first_chunk::<8>()
        .ok_or_else(|| StoreError::Corrupt("short key".into()))?;
    let id = String::from_utf8(id.to_vec()).map_err(|_| StoreError::Corrupt("delivery id in a key".into()))?;
    Ok((u64::from_be_bytes(*at), id))
}

/// The first key after every key that starts with `prefix`; None if there is none.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Usage of each handler's state: handler id -> [`STATE_USAGE_RECORD_V1`]. A tree of its own,
/// so no user key can name it; written after each state write, under the handler's lock.
pub const TREE_STATE_USAGE: &str = "state_usage";
/// A state usage record: this byte, then bytes of user keys and JSON values and the number of
/// keys (u64 big-endian each).
pub const STATE_USAGE_RECORD_V1: u8 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_sort_by_handler_then_due_time() {
        assert!(queue_key("h", 9, "b") < queue_key("h", 10, "a"));
        // Every key of one handler sorts before those of a handler whose id extends its id.
        assert!(queue_key("h", u64::MAX, "z") < queue_key("h.x", 0, "a"));
        assert_eq!(
            parse_queue_key(&queue_key("h.x", 42, "id-1")).unwrap(),
            ("h.x".to_owned(), 42, "id-1".to_owned())
        );
        assert!(attempt_key("d", 2) < attempt_key("d", 10));
    }

    #[test]
    fn namespaces_do_not_overlap() {
        assert!(!state_prefix("ab").starts_with(&state_prefix("a")));
        assert!(!state_prefix("a").starts_with(&state_prefix("ab")));
    }
}
