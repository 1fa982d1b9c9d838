//! `eddy types` and the `eddy.d.ts` it writes (and `eddy init` too): written, refreshed, and
//! in step with what the runtime hands a handler and what a handler's config may say.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::cli::{eddy, text};
use crate::support::fixtures;

const TYPES: &str = include_str!("../../src/cli/init/eddy.d.ts");

/// The member names of `interface <name>` in [`TYPES`].
fn members(name: &str) -> BTreeSet<String> {
    let start = TYPES
        .find(&format!("  interface {name}"))
        .unwrap_or_else(|| panic!("no {name}"));
    let body = &TYPES[start..];
    let body = &body[..body.find("\n  }").expect("the interface ends")];
    body.lines()
        .filter_map(|line| line.strip_prefix("    "))
        .filter(|line| line.starts_with(|c: char| c.is_ascii_alphabetic()))
        .map(|line| line[..line.find(['?', ':', '<', '(']).unwrap_or(line.len())].to_owned())
        .collect()
}

#[test]
fn the_types_name_every_member_of_ctx_and_event() {
    let dir = tempfile::tempdir().unwrap();
    let handler = fixtures().join("ctx_keys.js").display().to_string();
    let event = r#"{"type":"t","subject":"s","data":{}}"#;
    let out = eddy(&["run", &handler, "--event", event, "--json"], dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let line = report["logs"][0]["message"].as_str().unwrap();
    let seen: Value = serde_json::from_str(line).unwrap();
    let names = |key: &str| -> BTreeSet<String> {
        seen[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("ctx"), members("Context"), "ctx as the runtime makes it");
    assert_eq!(names("event"), members("Event"), "an event with a subject");
}

#[test]
fn every_config_key_the_types_name_is_one_eddy_takes() {
    let keys = members("Config");
    assert!(keys.contains("orderBy") && keys.contains("retry"), "{keys:?}");
    let value = |key: &str| match key {
        "secrets" | "allowNet" => "[]",
        "retry" => r#"{ schedule: ["1s"] }"#,
        "orderBy" => r#""data.id""#,
        "onDead" => r#""continue""#,
        _ => "1000",
    };
    let config: Vec<String> = keys.iter().map(|k| format!("{k}: {}", value(k))).collect();
    let dir = tempfile::tempdir().unwrap();
    let handlers = dir.path().join("handlers");
    std::fs::create_dir_all(&handlers).unwrap();
    let source = format!(
        "export const config = {{ {} }};\nexport default async () => {{}};\n",
        config.join(", ")
    );
    std::fs::write(handlers.join("all.js"), source).unwrap();
    let out = eddy(&["check"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[test]
fn types_writes_the_file_again_and_keeps_a_jsconfig() {
    let dir = tempfile::tempdir().unwrap();
    let out = eddy(&["types"], dir.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("created  eddy.d.ts") && stdout.contains("created  jsconfig.json"),
        "{stdout}"
    );
    let path = dir.path().join("eddy.d.ts");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), TYPES);
    std::fs::write(&path, "// from an older eddy\n").unwrap();
    std::fs::write(dir.path().join("jsconfig.json"), "{}").unwrap();
    let (stdout, _) = text(&eddy(&["types"], dir.path()));
    assert!(
        stdout.contains("updated  eddy.d.ts") && stdout.contains("kept     jsconfig.json"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), TYPES);
    assert_eq!(std::fs::read_to_string(dir.path().join("jsconfig.json")).unwrap(), "{}");
    let (stdout, _) = text(&eddy(&["types"], dir.path()));
    assert!(stdout.contains("unchanged eddy.d.ts"), "{stdout}");
    let missing = eddy(&["types", "no-such-folder"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).1.contains("no-such-folder is not a folder"));
}
