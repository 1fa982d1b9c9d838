//! The dependency picture ARCHITECTURE.md draws, checked against the code: every
//! `crate::<module>` path a module's files name (outside their unit tests) must be one the
//! table below allows, and every module under `src/` must be in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What each top-level module may use. Shared by all: `clock`, `event`, `metrics`, `logs`,
/// `config`, `secrets` and `provider`; `config` itself only the leaves below it.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "cli",
        &[
            "server",
            "api",
            "dashboard",
            "ingest",
            "http",
            "services",
            "delivery",
            "router",
            "runtime",
            "store",
        ],
    ),
    (
        "server",
        &[
            "api",
            "dashboard",
            "ingest",
            "http",
            "services",
            "delivery",
            "router",
            "runtime",
            "store",
        ],
    ),
    ("api", &["http", "services", "delivery", "router", "runtime", "store"]),
    (
        "dashboard",
        &["http", "services", "delivery", "router", "runtime", "store"],
    ),
    (
        "ingest",
        &["http", "services", "delivery", "router", "runtime", "store"],
    ),
    ("services", &["delivery", "router", "runtime", "store"]),
    ("http", &["services", "store"]),
    ("delivery", &["router", "runtime", "store"]),
    ("router", &["event"]),
    ("runtime", &["store"]),
    ("store", &[]),
    ("config", &["event", "provider", "secrets"]),
    ("secrets", &[]),
    ("provider", &[]),
    ("clock", &[]),
    ("event", &[]),
    ("metrics", &["clock"]),
    ("logs", &[]),
];

/// Usable from every module but those in `OWN_LIST_ONLY`.
const SHARED: &[&str] = &["clock", "event", "metrics", "logs", "config", "secrets", "provider"];
/// Modules held to their own list: `config`, the pure `router` and the leaves.
const OWN_LIST_ONLY: &[&str] = &[
    "config", "router", "secrets", "provider", "clock", "event", "metrics", "logs",
];

/// `crate::<name>` paths in `text`, written alone or in a `crate::{a, b::c}` group.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let name = item.trim().split("::").next().unwrap_or("");
                found.insert(name.to_owned());
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

/// For each top-level module under `src/`, the modules its files use outside unit tests.
fn uses(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_module: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let first = rel.components().next().unwrap().as_os_str().to_str().unwrap();
            let module = first.trim_end_matches(".rs").to_owned();
            if path.extension().is_none_or(|e| e != "rs") || module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let used = by_module.entry(module.clone()).or_default();
            used.extend(crate_paths(code).into_iter().filter(|m| *m != module));
        }
    }
    by_module
}

fn violations(found: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let layers: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, used) in found {
        let Some(allowed) = layers.get(module.as_str()) else {
            wrong.push(format!("{module}: not in tests/eddy/layers.rs (and ARCHITECTURE.md)"));
            continue;
        };
        for other in used {
            let shared = SHARED.contains(&other.as_str()) && !OWN_LIST_ONLY.contains(&module.as_str());
            if !(allowed.contains(&other.as_str()) || shared) {
                wrong.push(format!("{module} uses {other}"));
            }
        }
    }
    wrong
}

#[test]
fn every_module_uses_only_what_is_below_it() {
    let found = uses(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(found.len() >= LAYERS.len(), "modules found: {:?}", found.keys());
    let wrong = violations(&found);
    assert!(wrong.is_empty(), "against the layers of ARCHITECTURE.md: {wrong:#?}");
}

/// Modules that may name sled's `Store` itself (to open, seal or compact a folder); every
/// other holds the store as the `Backend` interface.
const KNOW_THE_BACKEND: &[&str] = &["store", "server", "cli"];

/// Whether `text` names `crate::store::Store`: alone, or in a `crate::store::{..}` group.
fn names_store(text: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let alone = text.match_indices("store::Store").any(|(at, _)| {
        text[at + "store::Store".len()..]
            .chars()
            .next()
            .is_none_or(|c| !word(c))
    });
    let grouped = text.match_indices("store::{").any(|(at, _)| {
        let group = &text[at + "store::{".len()..];
        let inner = &group[..group.find('}').unwrap_or(group.len())];
        inner.split(',').any(|item| item.trim() == "Store")
    });
    alone || grouped
}

#[test]
fn only_the_composition_root_and_the_cli_know_the_sled_store() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut pending = vec![src.clone()];
    let mut wrong = Vec::new();
    while let Some(dir) = pending.pop() {
        for path in std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()) {
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let module = rel.split('/').next().unwrap().trim_end_matches(".rs");
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            if !KNOW_THE_BACKEND.contains(&module) && names_store(code) {
                wrong.push(rel);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "these files name `Store` instead of the `Backend` interface: {wrong:?}"
    );
    assert!(names_store("use crate::store::{Backend, Store};") && names_store("crate::store::Store::open"));
    assert!(!names_store(
        "use crate::store::{SharedStore, StoreError};\nError::Store(e)"
    ));
}

#[test]
fn paths_are_read_alone_and_in_groups() {
    let text = "use crate::api::X;\nuse crate::{server::App, store};\nlet t = crate::clock::now_ms();";
    let found: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(found, ["api", "clock", "server", "store"]);
    let mut upward = BTreeMap::new();
    upward.insert("api".to_owned(), BTreeSet::from(["server".to_owned()]));
    assert_eq!(violations(&upward), ["api uses server"]);
}
