//! The committed seeds as a regression test, without fuzzing or libFuzzer's instrumentation:
//! every seed of every target goes through the checks its fuzz target runs, so an input that
//! passed once and fails now fails `cargo test`.

use std::any::Any;
use std::collections::BTreeSet;
use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

use eddy_fuzz::targets::ALL;

#[test]
fn every_seed_of_every_target_passes_its_checks() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, check) in ALL {
        for seed in files(&fuzz_dir().join("seeds").join(target)) {
            let data = std::fs::read(&seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
            replayed += 1;
            if let Err(panic) = catch_unwind(|| check(&data)) {
                failures.push(format!("{target} {}: {}", seed.display(), message(&*panic)));
            }
        }
    }
    assert!(
        replayed > 0,
        "no seeds found under {}",
        fuzz_dir().join("seeds").display()
    );
    assert!(
        failures.is_empty(),
        "{} of {replayed} seeds failed their target's checks:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A target missing from the list, or a seed folder without a target, would go unreplayed.
#[test]
fn every_target_is_replayed_and_has_seeds() {
    let listed: BTreeSet<String> = ALL.iter().map(|(name, _)| name.to_string()).collect();
    let sources: BTreeSet<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|f| Some(f.file_name()?.to_str()?.strip_suffix(".rs")?.to_owned()))
        .collect();
    assert_eq!(listed, sources, "fuzz_targets/*.rs against eddy_fuzz::targets::ALL");
    let seeded: BTreeSet<String> = std::fs::read_dir(fuzz_dir().join("seeds"))
        .expect("seeds/")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(
        listed, seeded,
        "seeds/<target>/ folders against eddy_fuzz::targets::ALL"
    );
    for target in &listed {
        let seeds = files(&fuzz_dir().join("seeds").join(target));
        assert!(!seeds.is_empty(), "seeds/{target}/ holds no seed");
    }
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files in `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|path| path.is_file());
    files.sort();
    files
}

/// What a panic said.
fn message(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => text.to_string(),
        (_, Some(text)) => text.clone(),
        _ => "a panic without a message".into(),
    }
}
