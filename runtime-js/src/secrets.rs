//! The secret values granted to one handler, and their redaction from everything an
//! isolate captures. Which names are granted, and where the values come from, is decided
//! outside this crate (eddy's `secrets` module): nothing here reads the environment or files.

mod forms;

use std::borrow::Cow;

/// Values shorter than this are too short to tell apart from ordinary text: not redacted.
pub const MIN_REDACTED_LEN: usize = 4;

/// The secret values granted to one handler.
#[derive(Default, Clone)]
pub struct Secrets {
    /// Sorted longest value first, so a secret containing another is replaced whole.
    pairs: Vec<(String, String)>,
    /// Names of the values long enough to redact, in the order of `forms`' alternatives.
    redacted: Vec<String>,
    forms: Option<forms::Forms>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.pairs.iter().map(|p| p.0.as_str()).collect();
        f.debug_struct("Secrets").field("names", &names).finish()
    }
}

impl Secrets {
    /// Secrets holding exactly `pairs` (name, value).
    pub fn new(mut pairs: Vec<(String, String)>) -> Self {
        pairs.sort_by_key(|p| std::cmp::Reverse(p.1.len()));
        // Very short values would shred ordinary text; they are still never logged on purpose.
        let long: Vec<&(String, String)> = pairs.iter().filter(|p| p.1.len() >= MIN_REDACTED_LEN).collect();
        let redacted = long.iter().map(|p| p.0.clone()).collect();
        let values: Vec<&str> = long.iter().map(|p| p.1.as_str()).collect();
        let forms = (!values.is_empty()).then(|| forms::Forms::new(&values));
        Self { pairs, redacted, forms }
    }

    /// Name/value pairs, for `ctx.secrets`.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `text` with every secret value, as written, percent-encoded or JSON-escaped,
    /// replaced by `[secret:NAME]`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(forms) = &self.forms else {
            return Cow::Borrowed(text);
        };
        match forms.replace(text, |i| format!("[secret:{}]", self.redacted[i])) {
            Some(replaced) => Cow::Owned(replaced),
            None => Cow::Borrowed(text),
        }
    }
}

/// Finds values other than secrets (an event's redacted data) in captured text, in every
/// form [`Secrets::redact`] recognises: as written, percent-encoded and JSON-escaped.
#[derive(Clone)]
pub struct ValueForms(Option<forms::Forms>);

impl ValueForms {
    pub fn new(values: &[&str]) -> Self {
        let mut values = values.to_vec();
        // Longest first, so a value containing another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self((!values.is_empty()).then(|| forms::Forms::new(&values)))
    }

    /// `text` with every form of every value replaced by `marker`.
    pub fn replace<'a>(&self, text: &'a str, marker: &str) -> Cow<'a, str> {
        match self
            .0
            .as_ref()
            .and_then(|forms| forms.replace(text, |_| marker.to_owned()))
        {
            Some(replaced) => Cow::Owned(replaced),
            None => Cow::Borrowed(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first() {
        let s = Secrets::new(vec![
            ("SHORT".into(), "abcd".into()),
            ("LONG".into(), "abcdefgh".into()),
            ("TINY".into(), "abc".into()),
        ]);
        assert_eq!(
            s.redact("x abcdefgh y abcd abc"),
            "x [secret:LONG] y [secret:SHORT] abc"
        );
        assert!(matches!(s.redact("nothing here"), Cow::Borrowed(_)));
        assert!(!format!("{s:?}").contains("abcd"));
    }

    #[test]
    fn value_forms_find_values_as_written_encoded_and_escaped() {
        let forms = ValueForms::new(&["ada@x.io/k", "say \"hi\" now"]);
        assert_eq!(
            forms.replace(
                "ada@x.io/k ada%40x.io%2Fk ada%40x.io%2fk say%20%22hi%22+now say \\\"hi\\\" now",
                "[r]"
            ),
            "[r] [r] [r] [r] [r]"
        );
        assert!(matches!(forms.replace("nothing", "[r]"), Cow::Borrowed(_)));
        assert!(matches!(
            ValueForms::new(&[]).replace("ada@x.io/k", "[r]"),
            Cow::Borrowed(_)
        ));
    }
}
