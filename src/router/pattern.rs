//! Routing patterns: event types with wildcard segments.
//!
//! Owns the pattern syntax (literal segments, `*` for exactly one segment, a final `**` for one
//! or more) and matching. Must stay pure: no IO, no knowledge of handlers or files.

use std::fmt;

use super::RouterError;
use crate::event::{self, EventError};

/// One segment of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches this exact segment (case-sensitive).
    Literal(String),
    /// `*`: matches exactly one segment.
    One,
    /// `**`, only last: matches one or more segments.
    Rest,
}

/// A compiled routing pattern: literal segments, `*` (one segment) and a final `**` (one or more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

impl Pattern {
    /// Compiles `text`. A pattern obeys the event type syntax (see [`event::validate_type`]),
    /// except that a whole segment may be `*`, and the last one may be `**`.
    pub fn parse(text: &str) -> Result<Self, RouterError> {
        let bad = |reason| RouterError::Pattern {
            pattern: text.to_owned(),
            reason,
        };
        if text.len() > event::MAX_TYPE_LEN {
            return Err(bad("it is longer than 200 characters"));
        }
        let parts: Vec<&str> = text.split('.').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match *part {
                "*" => Segment::One,
                "**" if i + 1 == parts.len() => Segment::Rest,
                "**" => return Err(bad("'**' may only be the last segment")),
                p if p.contains('*') => return Err(bad("'*' and '**' must be a whole segment, not part of one")),
                p => Segment::Literal(p.to_owned()),
            };
            segments.push(segment);
        }
        // The rest of the syntax is the event type's: check it with every wildcard as a letter.
        let as_type: Vec<&str> = parts.iter().map(|p| if p.contains('*') { "x" } else { p }).collect();
        event::validate_type(&as_type.join(".")).map_err(|e| bad(type_reason(&e)))?;
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// Whether `event_type` matches. Matching is case-sensitive and a wildcard never matches an
    /// empty segment.
    pub fn matches(&self, event_type: &str) -> bool {
        let mut parts = event_type.split('.');
        for segment in &self.segments {
            match segment {
                Segment::Rest => {
                    let mut rest = parts.peekable();
                    return rest.peek().is_some() && rest.all(|p| !p.is_empty());
                }
                Segment::One => {
                    if parts.next().is_none_or(str::is_empty) {
                        return false;
                    }
                }
                Segment::Literal(literal) => {
                    if parts.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What every type the pattern matches starts with: its literal segments before the
    /// first wildcard, each with its dot.
    pub fn literal_prefix(&self) -> String {
        let mut prefix = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(literal) => {
                    prefix.push_str(literal);
                    prefix.push('.');
                }
                Segment::One | Segment::Rest => return prefix,
            }
        }
        // No wildcard: the type itself.
        prefix.pop();
        prefix
    }

    /// Whether the pattern has no wildcard, so it matches exactly one event type.
    pub fn is_literal(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Literal(_)))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why `validate_type` refused a type, as a pattern error reason.
pub(super) fn type_reason(error: &EventError) -> &'static str {
    match error {
        EventError::InvalidType(_, why) => why,
        _ => "it is not a valid event type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, event_type: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(event_type)
    }

    #[test]
    fn exact_patterns_match_only_their_type() {
        for (pattern, event_type, expected) in [
            ("accounts.patch", "accounts.patch", true),
            ("accounts.patch", "accounts", false),
            ("accounts.patch", "accounts.patch.x", false),
            ("accounts.patch", "accounts.patched", false),
            ("accounts.patch", "Accounts.patch", false),
            ("Accounts.patch", "accounts.patch", false),
            ("a", "a", true),
            ("a", "", false),
        ] {
            assert_eq!(matches(pattern, event_type), expected, "{pattern} ~ {event_type}");
        }
    }

    #[test]
    fn the_literal_prefix_starts_every_type_matched() {
        for (pattern, prefix) in [("crm.*", "crm."), ("a.b.**", "a.b."), ("*.x", ""), ("a.b", "a.b")] {
            let compiled = Pattern::parse(pattern).unwrap();
            assert_eq!(compiled.literal_prefix(), prefix, "{pattern}");
        }
    }

    #[test]
    fn star_matches_exactly_one_segment() {
        for (pattern, event_type, expected) in [
            ("github.pull_request.*", "github.pull_request.opened", true),
            ("github.pull_request.*", "github.pull_request", false),
            ("github.pull_request.*", "github.pull_request.review.submitted", false),
            ("github.*.opened", "github.issues.opened", true),
            ("github.*.opened", "github.issues.closed", false),
            ("*.patch", "accounts.patch", true),
            ("*", "accounts", true),
            ("*", "accounts.patch", false),
            ("*.*", "a.b", true),
            ("a.*", "a.", false),
        ] {
            assert_eq!(matches(pattern, event_type), expected, "{pattern} ~ {event_type}");
        }
    }

    #[test]
    fn final_double_star_matches_one_or_more_segments() {
        for (pattern, event_type, expected) in [
            ("a.**", "a.b", true),
            ("a.**", "a.b.c.d", true),
            ("a.**", "a", false),
            ("a.**", "ab.c", false),
            ("a.**", "b.a.c", false),
            ("a.**", "a.b..c", false),
            ("a.*.**", "a.b", false),
            ("a.*.**", "a.b.c", true),
            ("**", "anything.at.all", true),
            ("**", "x", true),
            ("**", "", false),
        ] {
            assert_eq!(matches(pattern, event_type), expected, "{pattern} ~ {event_type}");
        }
    }

    #[test]
    fn keeps_its_text() {
        let pattern = Pattern::parse("github.*.**").unwrap();
        assert_eq!(pattern.as_str(), "github.*.**");
        assert_eq!(pattern.to_string(), "github.*.**");
        assert!(!pattern.is_literal());
        assert!(Pattern::parse("a.b").unwrap().is_literal());
    }

    #[test]
    fn rejects_invalid_patterns() {
        for (text, reason) in [
            ("", "it is empty"),
            ("a..b", "it has an empty segment"),
            (".a", "it has an empty segment"),
            ("a.", "it has an empty segment"),
            ("a.**.b", "'**' may only be the last segment"),
            ("**.a", "'**' may only be the last segment"),
            ("a*b", "'*' and '**' must be a whole segment, not part of one"),
            ("a.b*", "'*' and '**' must be a whole segment, not part of one"),
            ("a.***", "'*' and '**' must be a whole segment, not part of one"),
            ("a b", "segments may only hold A-Z, a-z, 0-9, '_' and '-'"),
            ("a/b", "segments may only hold A-Z, a-z, 0-9, '_' and '-'"),
            ("*.ü", "segments may only hold A-Z, a-z, 0-9, '_' and '-'"),
        ] {
            let expected = RouterError::Pattern {
                pattern: text.to_owned(),
                reason,
            };
            assert_eq!(Pattern::parse(text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn length_limit_is_the_event_types() {
        assert!(Pattern::parse(&"a".repeat(200)).is_ok());
        let long = format!("{}.**", "a".repeat(198));
        assert!(Pattern::parse(&long).is_err());
        assert!(matches!(
            Pattern::parse(&"a".repeat(201)),
            Err(RouterError::Pattern {
                reason: "it is longer than 200 characters",
                ..
            })
        ));
    }
}
