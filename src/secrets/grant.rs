//! `[secrets] allow`: the names the operator grants to handlers. eddy's own variables
//! (`EDDY_*`) and the signing secrets of webhook sources are reserved: no entry, pattern or
//! `.env` line can grant them, since a handler holding them could forge what eddy trusts.

use std::collections::BTreeSet;

use super::SecretError;

/// Prefix of eddy's own environment variables (`EDDY_API_TOKEN`, ...).
pub const RESERVED_PREFIX: &str = "EDDY_";

/// One `allow` entry: a name, or a prefix written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantPattern {
    /// Exactly this name.
    Name(String),
    /// Every name starting with this prefix (`"*"` is the empty prefix).
    Prefix(String),
}

impl GrantPattern {
    /// Parses an entry: letters, digits and `_` (not starting with a digit), optionally
    /// ending in `*`.
    pub fn parse(entry: &str) -> Result<Self, SecretError> {
        let (body, prefix) = match entry.strip_suffix('*') {
            Some(body) => (body, true),
            None => (entry, false),
        };
        let chars_ok = body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let valid = chars_ok && !body.starts_with(|c: char| c.is_ascii_digit()) && (prefix || !body.is_empty());
        if !valid {
            return Err(bad_grant(
                entry,
                "an entry is a variable name (letters, digits, '_') or a prefix ending in '*'",
            ));
        }
        Ok(if prefix {
            Self::Prefix(body.to_owned())
        } else {
            Self::Name(body.to_owned())
        })
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Name(n) => n == name,
            Self::Prefix(p) => name.starts_with(p.as_str()),
        }
    }
}

/// What the operator granted, and the names nobody can grant.
#[derive(Debug, Default, Clone)]
pub struct Grant {
    patterns: Vec<GrantPattern>,
    /// `secret_env` of every `[sources]` entry.
    source_secrets: BTreeSet<String>,
}

impl Grant {
    /// Checks `allow` against the reserved names: an exact reserved name, or a pattern that
    /// could only ever match reserved names, is an error.
    pub fn new<S: AsRef<str>>(
        allow: &[S],
        source_secrets: impl IntoIterator<Item = String>,
    ) -> Result<Self, SecretError> {
        let source_secrets: BTreeSet<String> = source_secrets.into_iter().collect();
        let mut patterns = Vec::with_capacity(allow.len());
        for entry in allow {
            let entry = entry.as_ref();
            let pattern = GrantPattern::parse(entry)?;
            match &pattern {
                GrantPattern::Name(name) => {
                    if let Some(why) = reserved_reason(name, &source_secrets) {
                        return Err(bad_grant(entry, &format!("it can never be granted: {why}")));
                    }
                }
                GrantPattern::Prefix(prefix) if prefix.starts_with(RESERVED_PREFIX) => {
                    return Err(bad_grant(
                        entry,
                        "it matches only eddy's own EDDY_* variables, which can never be granted",
                    ));
                }
                GrantPattern::Prefix(_) => {}
            }
            patterns.push(pattern);
        }
        Ok(Self {
            patterns,
            source_secrets,
        })
    }

    /// Why `name` can never be granted, if it cannot.
    pub fn reserved(&self, name: &str) -> Option<&'static str> {
        reserved_reason(name, &self.source_secrets)
    }

    /// True when an `allow` entry covers `name` and `name` is not reserved.
    pub fn allows(&self, name: &str) -> bool {
        self.reserved(name).is_none() && self.patterns.iter().any(|p| p.matches(name))
    }
}

fn reserved_reason(name: &str, source_secrets: &BTreeSet<String>) -> Option<&'static str> {
    if name.starts_with(RESERVED_PREFIX) {
        Some("EDDY_* variables are eddy's own settings")
    } else if source_secrets.contains(name) {
        Some("it is the signing secret of a webhook source ([sources] secret_env)")
    } else {
        None
    }
}

fn bad_grant(entry: &str, why: &str) -> SecretError {
    SecretError::BadGrant {
        entry: entry.to_owned(),
        why: why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(allow: &[&str]) -> Result<Grant, SecretError> {
        Grant::new(allow, ["GITHUB_SECRET".to_owned()])
    }

    #[test]
    fn names_and_prefixes_match() {
        let g = grant(&["CRM_TOKEN", "SLACK_*"]).unwrap();
        assert!(g.allows("CRM_TOKEN"));
        assert!(!g.allows("CRM_TOKEN_2"));
        assert!(g.allows("SLACK_BOT_TOKEN"));
        assert!(g.allows("SLACK_"));
        assert!(!g.allows("SLACKER"));
        assert!(!g.allows("PATH"));
    }

    #[test]
    fn broad_patterns_never_reach_reserved_names() {
        for allow in [["*"], ["E*"], ["EDDY*"], ["GITHUB_*"]] {
            let g = grant(&allow).unwrap();
            assert!(!g.allows("EDDY_API_TOKEN"), "{allow:?}");
            assert!(!g.allows("GITHUB_SECRET"), "{allow:?}");
        }
        assert!(grant(&["*"]).unwrap().allows("ANYTHING"));
        assert!(grant(&["GITHUB_*"]).unwrap().allows("GITHUB_TOKEN"));
    }

    #[test]
    fn reserved_entries_are_errors() {
        for entry in ["EDDY_API_TOKEN", "EDDY_*", "EDDY_API*", "GITHUB_SECRET"] {
            let err = grant(&[entry]).unwrap_err();
            assert!(matches!(err, SecretError::BadGrant { .. }), "{entry}: {err}");
            assert!(err.to_string().contains(entry), "{err}");
            assert!(err.to_string().contains("never be granted"), "{err}");
        }
    }

    #[test]
    fn malformed_entries_are_errors() {
        for entry in ["", "A-B", "1A", "A*B", "**", "A B", "*A"] {
            assert!(grant(&[entry]).is_err(), "{entry:?}");
        }
        assert!(grant(&["A1_*", "_X"]).is_ok());
    }
}
