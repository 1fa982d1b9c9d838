//! The checks each fuzz target runs on one input, here rather than in `fuzz_targets/` so the
//! seed replay test can run them too: each `check` returns for an input that passes and
//! panics, saying why, for one that does not.

pub mod event_json;
pub mod events_request;
pub mod patterns;
pub mod proxy_naming;
pub mod webhook_headers;
pub mod webhook_signed;

/// What a fuzz target runs on one input.
pub type Check = fn(&[u8]);

/// Every fuzz target by its name (its file in `fuzz_targets/` and its folder in `seeds/`).
pub const ALL: [(&str, Check); 6] = [
    ("event_json", event_json::check),
    ("events_request", events_request::check),
    ("patterns", patterns::check),
    ("proxy_naming", proxy_naming::check),
    ("webhook_headers", webhook_headers::check),
    ("webhook_signed", webhook_signed::check),
];
