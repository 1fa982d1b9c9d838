//! The event: CloudEvents attribute names (`id`, `type`, `source`, `time`, `subject`, `data`)
//! and the rules every event obeys before a handler sees it.

use serde::{Deserialize, Serialize};

/// Longest accepted event type.
pub const MAX_TYPE_LEN: usize = 200;

/// Errors in an event given by a user.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("event is not valid JSON: {0}")]
    Json(String),
    #[error("event must be a JSON object")]
    NotObject,
    #[error("event has no \"type\"")]
    MissingType,
    #[error("invalid event type {0:?}: {1}")]
    InvalidType(String, &'static str),
    #[error("event \"{0}\" must be a string")]
    NotString(&'static str),
}

/// One event as handlers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Event {
    /// Builds an event from user JSON, filling a missing `id` (UUIDv7), `time` (now) and
    /// `source` (`default_source`).
    pub fn from_json(text: &str, default_source: &str) -> Result<Self, EventError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| EventError::Json(e.to_string()))?;
        Self::from_value(value, default_source)
    }

    /// As [`Event::from_json`], from a parsed value.
    pub fn from_value(value: serde_json::Value, default_source: &str) -> Result<Self, EventError> {
        let serde_json::Value::Object(mut map) = value else {
            return Err(EventError::NotObject);
        };
        let mut text = |key: &'static str| match map.remove(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(EventError::NotString(key)),
        };
        let kind = text("type")?.ok_or(EventError::MissingType)?;
        validate_type(&kind)?;
        Ok(Event {
            id: text("id")?.unwrap_or_else(new_id),
            source: text("source")?.unwrap_or_else(|| default_source.to_owned()),
            time: text("time")?.unwrap_or_else(now_rfc3339),
            subject: text("subject")?,
            kind,
            data: map.remove("data").unwrap_or(serde_json::Value::Null),
        })
    }
}

/// Checks the type syntax: dot-separated segments of `[A-Za-z0-9_-]`, at most 200 characters.
pub fn validate_type(kind: &str) -> Result<(), EventError> {
    let bad = |why| Err(EventError::InvalidType(kind.to_owned(), why));
    if kind.is_empty() {
        return bad("it is empty");
    }
    if kind.len() > MAX_TYPE_LEN {
        return bad("it is longer than 200 characters");
    }
    for segment in kind.split('.') {
        if segment.is_empty() {
            return bad("it has an empty segment");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return bad("segments may only hold A-Z, a-z, 0-9, '_' and '-'");
        }
    }
    Ok(())
}

/// A new sortable id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current time as RFC 3339 with milliseconds, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_missing_attributes() {
        let e = Event::from_json(r#"{"type":"accounts.patch","data":{"id":1}}"#, "cli").unwrap();
        assert_eq!(e.kind, "accounts.patch");
        assert_eq!(e.source, "cli");
        assert_eq!(e.id.len(), 36);
        assert!(e.time.ends_with('Z'));
        assert_eq!(e.data["id"], 1);
    }

    #[test]
    fn keeps_given_attributes() {
        let e = Event::from_json(r#"{"type":"a","id":"x","source":"s","time":"t","subject":"u"}"#, "cli").unwrap();
        assert_eq!((e.id.as_str(), e.source.as_str(), e.time.as_str()), ("x", "s", "t"));
        assert_eq!(e.subject.as_deref(), Some("u"));
        assert_eq!(e.data, serde_json::Value::Null);
    }

    #[test]
    fn rejects_bad_events() {
        assert!(matches!(Event::from_json("{", "c"), Err(EventError::Json(_))));
        assert_eq!(Event::from_json("[]", "c"), Err(EventError::NotObject));
        assert_eq!(Event::from_json("{}", "c"), Err(EventError::MissingType));
        assert_eq!(
            Event::from_json(r#"{"type":1}"#, "c"),
            Err(EventError::NotString("type"))
        );
    }

    #[test]
    fn type_syntax() {
        for ok in ["a", "accounts.patch", "github.pull_request.opened", "a-b_c.D9"] {
            assert!(validate_type(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "a.", ".a", "a..b", "a b", "a/b", "ü"] {
            assert!(validate_type(bad).is_err(), "{bad}");
        }
        assert!(validate_type(&"a".repeat(200)).is_ok());
        assert!(validate_type(&"a".repeat(201)).is_err());
    }
}
