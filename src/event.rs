//! The event: CloudEvents attribute names (`id`, `type`, `source`, `time`, `subject`, `data`)
//! and the rules every event obeys before a handler sees it.

use serde::{Deserialize, Serialize};

/// Longest accepted event type.
pub const MAX_TYPE_LEN: usize = 200;
/// Longest accepted event id, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest accepted `source` or `subject`, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1024;
/// Longest accepted `time`, in bytes (RFC 3339 needs about 35 even with nanoseconds).
pub const MAX_TIME_BYTES: usize = 64;

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
    #[error("invalid event {0} {1:?}: {2}")]
    InvalidAttribute(&'static str, String, String),
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
        let event = Event {
            id: text("id")?.unwrap_or_else(new_id),
            source: text("source")?.unwrap_or_else(|| default_source.to_owned()),
            time: text("time")?.unwrap_or_else(now_rfc3339),
            subject: text("subject")?,
            kind,
            data: map.remove("data").unwrap_or(serde_json::Value::Null),
        };
        event.validate()?;
        Ok(event)
    }

    /// Checks every attribute: the type syntax, then `id` (1 to 256 bytes), `source` and
    /// `subject` (1 to 1024 bytes), none with control characters, and `time` in RFC 3339.
    /// Ids are store keys and appear in URLs and logs: they must be plain, bounded text.
    pub fn validate(&self) -> Result<(), EventError> {
        validate_type(&self.kind)?;
        validate_text("id", &self.id, MAX_ID_BYTES)?;
        validate_text("source", &self.source, MAX_SOURCE_BYTES)?;
        if let Some(subject) = &self.subject {
            validate_text("subject", subject, MAX_SOURCE_BYTES)?;
        }
        validate_text("time", &self.time, MAX_TIME_BYTES)?;
        if time::OffsetDateTime::parse(&self.time, &time::format_description::well_known::Rfc3339).is_err() {
            return Err(invalid(
                "time",
                &self.time,
                "it is not an RFC 3339 time (like 2026-01-31T12:00:00Z)",
            ));
        }
        Ok(())
    }
}

/// Checks one text attribute: not empty, at most `max` bytes, no control characters.
fn validate_text(name: &'static str, value: &str, max: usize) -> Result<(), EventError> {
    if value.is_empty() {
        return Err(invalid(name, value, "it is empty"));
    }
    if value.len() > max {
        return Err(invalid(name, value, &format!("it is longer than {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(name, value, "it holds control characters"));
    }
    Ok(())
}

/// The error for an attribute; a long value is shown by its start only.
fn invalid(name: &'static str, value: &str, why: &str) -> EventError {
    let shown: String = value.chars().take(64).collect();
    let shown = if shown.len() < value.len() {
        format!("{shown}...")
    } else {
        shown
    };
    EventError::InvalidAttribute(name, shown, why.to_owned())
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

/// Longest order key kept, in bytes: a longer value makes no key (the event is unordered).
pub const MAX_ORDER_KEY_BYTES: usize = 512;

/// Where in an event a handler's `config.orderBy` finds its order key: `subject`, `source`,
/// `type`, or a dotted path under `data` (`data.account.id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPath {
    Subject,
    Source,
    Type,
    /// The names under `data`, outermost first (`data` alone is the whole payload).
    Data(Vec<String>),
}

impl KeyPath {
    /// Parses `subject`, `source`, `type` or `data.a.b`; names may not be empty.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut names = text.split('.');
        let first = names.next().unwrap_or_default();
        let rest: Vec<String> = names.map(str::to_owned).collect();
        if rest.iter().any(String::is_empty) {
            return Err(format!("{text:?} has an empty name between its dots"));
        }
        match first {
            "data" => Ok(Self::Data(rest)),
            "subject" | "source" | "type" if !rest.is_empty() => Err(format!("{first} has no fields: {text:?}")),
            "subject" => Ok(Self::Subject),
            "source" => Ok(Self::Source),
            "type" => Ok(Self::Type),
            _ => Err(format!(
                "{text:?} must be subject, source, type or a path under data (data.account.id)"
            )),
        }
    }

    /// The event's key: a string as it is, a number or boolean as its JSON text; none when
    /// the path is missing, null, an object or an array, or longer than
    /// [`MAX_ORDER_KEY_BYTES`].
    pub fn key_of(&self, event: &Event) -> Option<String> {
        let key = match self {
            Self::Subject => event.subject.clone()?,
            Self::Source => event.source.clone(),
            Self::Type => event.kind.clone(),
            Self::Data(names) => {
                let value = names.iter().try_fold(&event.data, |value, name| value.get(name))?;
                match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(_) | serde_json::Value::Bool(_) => value.to_string(),
                    _ => return None,
                }
            }
        };
        (key.len() <= MAX_ORDER_KEY_BYTES).then_some(key)
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Subject => f.write_str("subject"),
            Self::Source => f.write_str("source"),
            Self::Type => f.write_str("type"),
            Self::Data(names) => {
                f.write_str("data")?;
                names.iter().try_for_each(|name| write!(f, ".{name}"))
            }
        }
    }
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
        let text = r#"{"type":"a","id":"x","source":"s","time":"2026-01-31T12:00:00.5+02:00","subject":"u"}"#;
        let e = Event::from_json(text, "cli").unwrap();
        assert_eq!(
            (e.id.as_str(), e.source.as_str(), e.time.as_str()),
            ("x", "s", "2026-01-31T12:00:00.5+02:00")
        );
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
    fn ids_sources_subjects_and_times_are_bounded_plain_text() {
        let with = |key: &str, value: &str| {
            let mut event = serde_json::json!({"type": "a"});
            event[key] = value.into();
            Event::from_value(event, "cli")
        };
        assert!(with("id", &"i".repeat(MAX_ID_BYTES)).is_ok());
        assert!(with("source", &"s".repeat(MAX_SOURCE_BYTES)).is_ok());
        assert!(with("id", "order:42/é").is_ok(), "any printable text");
        let bad = [
            ("id", String::new()),
            ("id", "victim\0other".to_owned()),
            ("id", "a\nb".to_owned()),
            ("id", "a\u{7f}".to_owned()),
            ("id", "a\u{85}".to_owned()),
            ("id", "i".repeat(MAX_ID_BYTES + 1)),
            ("id", "x".repeat(1 << 20)),
            ("source", String::new()),
            ("source", "s\0".to_owned()),
            ("source", "s".repeat(MAX_SOURCE_BYTES + 1)),
            ("subject", "\t".to_owned()),
            ("time", "t".to_owned()),
            ("time", "2026-01-31 12:00:00".to_owned()),
            ("time", "2026-02-30T12:00:00Z".to_owned()),
            ("time", String::new()),
        ];
        for (key, value) in bad {
            let err = with(key, &value).unwrap_err();
            assert!(
                matches!(&err, EventError::InvalidAttribute(name, shown, _) if *name == key && shown.len() <= 67),
                "{key} {:?}: {err}",
                &value[..value.len().min(20)]
            );
        }
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

    #[test]
    fn an_order_key_comes_from_the_path_it_names() {
        let text =
            r#"{"type":"crm.account","subject":"s1","data":{"account":{"id":42,"name":"Ada","tags":[1]},"ok":true}}"#;
        let e = Event::from_json(text, "crm").unwrap();
        let key = |path: &str| KeyPath::parse(path).unwrap().key_of(&e);
        assert_eq!(key("data.account.id").as_deref(), Some("42"));
        assert_eq!(key("data.account.name").as_deref(), Some("Ada"));
        assert_eq!(key("data.ok").as_deref(), Some("true"));
        assert_eq!(key("subject").as_deref(), Some("s1"));
        assert_eq!(key("source").as_deref(), Some("crm"));
        assert_eq!(key("type").as_deref(), Some("crm.account"));
        assert_eq!(key("data.account"), None, "an object is no key");
        assert_eq!(key("data.account.tags"), None, "nor an array");
        assert_eq!(key("data.missing.id"), None);
        for bad in ["account.id", "data..id", "subject.x", "", "data."] {
            assert!(KeyPath::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            KeyPath::parse("data.account.id").unwrap().to_string(),
            "data.account.id"
        );
    }
}
