//! `POST /events` parsing: plain JSON (one event or an array), CloudEvents structured mode
//! (single and batch) and binary mode (`ce-*` headers), from arbitrary headers and bytes.
//!
//! Input: header lines, an empty line, the body (see the crate docs). Beyond "no panic":
//! whatever is accepted is a non-empty list of events that obey the event rules, and each
//! survives a trip through its JSON form with the same attributes.

use crate::Input;
use eddy::event::{Event, validate_type};
use eddy::ingest::{DEFAULT_SOURCE, events_from_request};

/// One input: returns normally, or panics with what went wrong.
pub fn check(data: &[u8]) {
    let input = Input::parse(data, 0);
    let Ok(events) = events_from_request(&input.headers(), input.body) else {
        return;
    };
    assert!(!events.is_empty(), "accepted a request holding no event");
    for event in &events {
        assert!(validate_type(&event.kind).is_ok(), "accepted type {:?}", event.kind);
        let text = serde_json::to_string(event).expect("an event always serialises");
        let again = Event::from_json(&text, DEFAULT_SOURCE).expect("an accepted event parses again");
        assert_eq!(attributes(event), attributes(&again), "from {text}");
    }
}

/// Everything but `data`, which may not come back bit for bit: serde_json can read a float
/// back one unit in the last place off.
fn attributes(event: &Event) -> [Option<&str>; 5] {
    [
        Some(event.id.as_str()),
        Some(event.kind.as_str()),
        Some(event.source.as_str()),
        Some(event.time.as_str()),
        event.subject.as_deref(),
    ]
}
