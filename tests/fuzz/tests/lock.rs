//! `tests/fuzz/Cargo.lock` is committed, so CI builds with `--locked`; this keeps it honest:
//! every package it shares with eddy's own `Cargo.lock` is at a version eddy is tested with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[test]
fn the_fuzz_lock_has_the_versions_of_the_main_lock() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let main = versions(&dir.join("../../Cargo.lock"));
    let fuzz = versions(&dir.join("Cargo.lock"));
    let differ: Vec<String> = fuzz
        .iter()
        .filter_map(|(name, ours)| {
            let theirs = main.get(name)?;
            (!ours.is_subset(theirs)).then(|| format!("{name}: {ours:?} here, {theirs:?} in Cargo.lock"))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "tests/fuzz/Cargo.lock is behind Cargo.lock; from the repository root run \
         `cp Cargo.lock tests/fuzz/ && cargo fetch --manifest-path tests/fuzz/Cargo.toml`:\n{}",
        differ.join("\n")
    );
}

/// Each package's versions in a lock file.
fn versions(lock: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(lock).unwrap_or_else(|e| panic!("{}: {e}", lock.display()));
    let mut all: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in text.split("[[package]]").skip(1) {
        let field = |key: &str| {
            let line = package.lines().find(|l| l.starts_with(&format!("{key} = ")))?;
            Some(line.split('"').nth(1)?.to_owned())
        };
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            panic!("{}: a package without a name or version:{package}", lock.display());
        };
        all.entry(name).or_default().insert(version);
    }
    assert!(!all.is_empty(), "{} lists no package", lock.display());
    all
}
