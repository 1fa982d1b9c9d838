//! Tree names, key layouts and record versions: the on-disk format in one place.

/// Metadata tree: schema version and similar facts about the store itself.
pub const TREE_META: &str = "meta";
/// Handler state: key = handler id, 0x00, user key; value = [`STATE_RECORD_V1`] byte + JSON.
pub const TREE_STATE: &str = "state";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_do_not_overlap() {
        assert!(!state_prefix("ab").starts_with(&state_prefix("a")));
        assert!(!state_prefix("a").starts_with(&state_prefix("ab")));
    }
}
