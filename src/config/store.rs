//! `[store]`: how much memory the embedded store may keep.

use serde::Deserialize;

/// Largest `cache_mb` accepted: 1 TiB.
pub const MAX_CACHE_MB: u64 = 1024 * 1024;

/// `[store]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// MiB of the store's page cache. Pages past it are read back from disk when needed, so
    /// memory stops growing with the data; reads of cold records get slower.
    pub cache_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { cache_mb: 1024 }
    }
}

impl StoreConfig {
    /// The cache size in bytes.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_mb.saturating_mul(1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    #[test]
    fn the_cache_is_sized_in_mib_within_bounds() {
        let parse = |text: &str| Config::parse(text, Path::new("e.toml"));
        assert_eq!(parse("").unwrap().store.cache_bytes(), 1024 << 20);
        assert_eq!(parse("[store]\ncache_mb = 64\n").unwrap().store.cache_bytes(), 64 << 20);
        for bad in ["0", "1048577"] {
            let err = parse(&format!("[store]\ncache_mb = {bad}\n")).unwrap_err().to_string();
            assert!(err.contains("store.cache_mb must be between 1 and 1048576"), "{err}");
        }
        let err = parse("[store]\ncache = 1\n").unwrap_err().to_string();
        assert!(err.contains("cache"), "{err}");
    }
}
