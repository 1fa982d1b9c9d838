//! `Event::from_json` (what `eddy send` and `eddy run --event` read) and `validate_type`, on
//! arbitrary text.
//!
//! Input: the whole input as text. Beyond "no panic": an accepted event has a valid type and
//! its given attributes unchanged, its id and source bounded plain text, and `validate_type`
//! agrees with the syntax it documents.

use eddy::event::{Event, MAX_ID_BYTES, MAX_SOURCE_BYTES, MAX_TYPE_LEN, validate_type};
use serde_json::Value;

/// One input: returns normally, or panics with what went wrong.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_type_syntax(text);
    if let Ok(event) = Event::from_json(text, "fuzz") {
        assert!(validate_type(&event.kind).is_ok(), "accepted type {:?}", event.kind);
        let given: Value = serde_json::from_str(text).expect("accepted text is JSON");
        assert_eq!(given["type"].as_str(), Some(event.kind.as_str()));
        for (key, value) in [("id", &event.id), ("source", &event.source), ("time", &event.time)] {
            if let Some(given) = given[key].as_str() {
                assert_eq!(given, value, "{key} was changed");
            } else {
                assert!(!value.is_empty(), "{key} was filled with nothing");
            }
            assert!(!value.chars().any(char::is_control), "{key} holds a control character");
        }
        assert!(
            !event.id.is_empty() && event.id.len() <= MAX_ID_BYTES,
            "id of {} bytes",
            event.id.len()
        );
        assert!(
            event.source.len() <= MAX_SOURCE_BYTES,
            "source of {} bytes",
            event.source.len()
        );
    }
}

/// The documented syntax, written independently: dot-separated, non-empty segments of
/// `[A-Za-z0-9_-]`, 1 to 200 bytes in all.
fn check_type_syntax(text: &str) {
    let expected = !text.is_empty()
        && text.len() <= MAX_TYPE_LEN
        && text.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    assert_eq!(validate_type(text).is_ok(), expected, "{text:?}");
}
