//! What eddy is built from, checked from `cargo metadata` (offline, for the platform the
//! tests run on): every crate's licence is one eddy can ship under, and a second version of a
//! crate only comes in with a reason written down here.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Licences every crate in the build may use (SPDX identifiers; `WITH` exceptions too).
const LICENCES: &[&str] = &[
    "0BSD",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSL-1.0",
    "CDLA-Permissive-2.0",
    "ISC",
    "LLVM-exception",
    "MIT",
    "MPL-2.0",
    "Unicode-3.0",
    "Unlicense",
    "Zlib",
];

/// Crates built at two versions, each because crates in the tree ask for different major
/// versions (found with `cargo metadata`'s resolve graph).
const KNOWN_DUPLICATES: &[(&str, &str)] = &[
    ("base64", "0.22 for deno_core, reqwest and eddy; 0.23 for hyper-util"),
    ("bindgen", "0.72 builds v8; 0.70 builds v8x, which deno_v8 also lists"),
    (
        "getrandom",
        "0.2 for ring and rand 0.8; 0.4 for uuid, tempfile and rand 0.10",
    ),
    ("linux-raw-sys", "follows the two rustix versions"),
    ("miniz_oxide", "0.8 in v8's build script; 0.9 for flate2 (deno_web)"),
    ("parking_lot", "0.11 for sled 0.34; 0.12 for tokio and deno_core"),
    ("parking_lot_core", "follows parking_lot"),
    ("rand", "0.8 for eddy; 0.10 for quinn-proto, in reqwest's tree"),
    ("rand_core", "follows rand"),
    ("rustc-hash", "1.1 for bindgen 0.70; 2.1 for bindgen 0.72 and sourcemap"),
    ("rustix", "0.38 for which (v8's build); 1.1 for tempfile"),
    ("shlex", "1.3 for bindgen; 2.0 for cc"),
    (
        "syn",
        "2 for deno_ops, bindgen and other macros; 3 for serde, thiserror, tokio and others",
    ),
];

/// The host triple `rustc` builds for, as `cargo metadata --filter-platform` wants it.
fn host() -> String {
    let out = Command::new("rustc").arg("-vV").output().expect("rustc -vV");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find_map(|l| l.strip_prefix("host: "));
    line.expect("rustc -vV names the host").to_owned()
}

/// Every package of the build for this platform, from the committed lock file.
fn packages() -> Vec<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .args(["--filter-platform", &host()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"].as_array().unwrap().clone()
}

/// The licence identifiers an SPDX expression names (`(MIT OR Apache-2.0) AND Unicode-3.0`);
/// the old `/` spelling of OR too.
fn licence_ids(expression: &str) -> BTreeSet<String> {
    expression
        .split(|c: char| c.is_whitespace() || "()/".contains(c))
        .filter(|word| !word.is_empty() && !["OR", "AND", "WITH"].contains(word))
        .map(str::to_owned)
        .collect()
}

/// `name version: licence` for each package naming a licence not on `allowed` (or none).
fn refused_licences(packages: &[Value], allowed: &[&str]) -> Vec<String> {
    let mut refused = Vec::new();
    for package in packages {
        let (name, version) = (&package["name"], &package["version"]);
        let Some(expression) = package["license"].as_str() else {
            refused.push(format!("{name} {version}: no SPDX licence in its Cargo.toml"));
            continue;
        };
        if licence_ids(expression).iter().any(|id| !allowed.contains(&id.as_str())) {
            refused.push(format!("{name} {version}: {expression}"));
        }
    }
    refused
}

/// Crate names built at more than one version, with those versions.
fn duplicates(packages: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in packages {
        let name = package["name"].as_str().unwrap().to_owned();
        versions
            .entry(name)
            .or_default()
            .insert(package["version"].as_str().unwrap().to_owned());
    }
    versions.retain(|_, v| v.len() > 1);
    versions
}

#[test]
fn every_crate_has_a_licence_eddy_can_ship_under() {
    let packages = packages();
    assert!(
        packages.len() > 100,
        "cargo metadata listed {} packages",
        packages.len()
    );
    let refused = refused_licences(&packages, LICENCES);
    assert!(
        refused.is_empty(),
        "licences not on tests/eddy/deps.rs's list: {refused:#?}"
    );
}

#[test]
fn a_crate_at_two_versions_is_one_the_list_explains() {
    let found = duplicates(&packages());
    let known: BTreeSet<&str> = KNOWN_DUPLICATES.iter().map(|(name, _)| *name).collect();
    let new: Vec<String> = found
        .iter()
        .filter(|(name, _)| !known.contains(name.as_str()))
        .map(|(name, versions)| format!("{name} {versions:?}"))
        .collect();
    assert!(
        new.is_empty(),
        "built at two versions: {new:?}; align them, or add each to KNOWN_DUPLICATES with why"
    );
    let gone: Vec<&&str> = known.iter().filter(|name| !found.contains_key(**name)).collect();
    assert!(
        gone.is_empty(),
        "no longer duplicated, remove from KNOWN_DUPLICATES: {gone:?}"
    );
}

#[test]
fn licence_expressions_are_read_identifier_by_identifier() {
    let ids = licence_ids("(MIT OR Apache-2.0) AND Unicode-3.0 OR Apache-2.0 WITH LLVM-exception");
    let expected = ["Apache-2.0", "LLVM-exception", "MIT", "Unicode-3.0"];
    assert_eq!(ids, expected.iter().map(|s| s.to_string()).collect());
    assert_eq!(licence_ids("MIT/Apache-2.0").len(), 2);
    let gpl = serde_json::json!([{"name": "x", "version": "1.0.0", "license": "MIT OR GPL-3.0"}]);
    assert_eq!(refused_licences(gpl.as_array().unwrap(), LICENCES).len(), 1);
}
