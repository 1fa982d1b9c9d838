//! Routing patterns (`*` one segment, a final `**` one or more): parsing arbitrary patterns
//! and matching them against arbitrary event types, through `Pattern` and the routing table.
//!
//! Input: text; the first line is the pattern, every other line an event type to match.
//! Beyond "no panic": parsing and matching agree with an independent reading of the rules in
//! the README, a pattern that parses matches the types made from it by filling in its
//! wildcards, and a valid event type is a pattern matching exactly itself.

use eddy::event::{MAX_TYPE_LEN, validate_type};
use eddy::router::{Pattern, Routes, RoutingTable, routes_from_export};
use serde_json::Value;

/// One input: returns normally, or panics with what went wrong.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let source = lines.next().unwrap_or_default();
    let types: Vec<&str> = lines.collect();

    let parsed = Pattern::parse(source);
    assert_eq!(
        parsed.is_ok(),
        reference_valid(source),
        "parse({source:?}) = {parsed:?}"
    );
    assert_eq!(
        routes_from_export(Some(&Value::String(source.to_owned()))).is_ok(),
        parsed.is_ok()
    );
    if validate_type(source).is_ok() {
        let pattern = parsed.as_ref().expect("a valid event type is a valid pattern");
        assert!(pattern.is_literal() && pattern.matches(source), "{source:?}");
    }
    let Ok(pattern) = parsed else {
        return;
    };
    assert_eq!((pattern.as_str(), pattern.to_string()), (source, source.to_owned()));
    assert_eq!(pattern.is_literal(), !source.contains('*'));

    for filled in [fill(source, "x", "x"), fill(source, "Ab-9_", "x.y.z")] {
        assert!(pattern.matches(&filled), "{source:?} does not match {filled:?}");
    }

    let mut table = RoutingTable::new();
    table
        .set("fuzz", Routes::Patterns(vec![pattern.clone()]))
        .expect("a parsed pattern is a valid route");
    for event_type in types {
        let matched = pattern.matches(event_type);
        assert_eq!(
            matched,
            reference_matches(source, event_type),
            "{source:?} ~ {event_type:?}"
        );
        assert_eq!(table.route(event_type).len(), usize::from(matched));
        if pattern.is_literal() {
            assert_eq!(matched, event_type == source, "{source:?} ~ {event_type:?}");
        }
    }
}

/// The pattern syntax as the README states it, written independently of the router: at most
/// 200 bytes; `.`-separated segments, each `*`, `**` (last only), or one or more of
/// `[A-Za-z0-9_-]`.
fn reference_valid(pattern: &str) -> bool {
    let segments: Vec<&str> = pattern.split('.').collect();
    pattern.len() <= MAX_TYPE_LEN
        && segments.iter().enumerate().all(|(i, segment)| match *segment {
            "*" => true,
            "**" => i + 1 == segments.len(),
            literal => {
                !literal.is_empty()
                    && literal
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }
        })
}

/// Matching as the README states it: `*` is exactly one non-empty segment, a final `**` one
/// or more non-empty segments, anything else itself.
fn reference_matches(pattern: &str, event_type: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let parts: Vec<&str> = event_type.split('.').collect();
    let (fixed, open_ended) = match pattern.split_last() {
        Some((&"**", init)) => (init, true),
        _ => (&pattern[..], false),
    };
    let count_ok = if open_ended {
        parts.len() > fixed.len()
    } else {
        parts.len() == fixed.len()
    };
    count_ok
        && fixed
            .iter()
            .zip(&parts)
            .all(|(p, t)| if *p == "*" { !t.is_empty() } else { p == t })
        && parts[fixed.len()..].iter().all(|t| !t.is_empty())
}

/// The pattern with each `*` replaced by `one` and a final `**` by `rest`.
fn fill(pattern: &str, one: &str, rest: &str) -> String {
    let segments: Vec<&str> = pattern
        .split('.')
        .map(|segment| match segment {
            "*" => one,
            "**" => rest,
            literal => literal,
        })
        .collect();
    segments.join(".")
}
