//! Finds secret values in captured text in the forms they take on their way out of an
//! isolate: as written, percent-encoded (upper- or lower-case hex, `+` for a space, any mix
//! of encoded and plain characters, which covers `encodeURIComponent`, the URL parser and
//! form encoding), and JSON-escaped once or twice (`JSON.stringify` of a value, or of a
//! string holding one). Each value becomes one alternative of a single regex, so a text is
//! scanned once, in linear time, and a marker put in is never matched again.

use std::fmt::Write as _;

use regex::{Regex, RegexBuilder};

/// Compiled matchers of big values can be large; beyond this the plain forms are used.
const MAX_REGEX_BYTES: usize = 256 * 1024 * 1024;

/// One matcher for all values of a handler.
#[derive(Clone)]
pub(super) struct Forms {
    regex: Option<Regex>,
    /// Fallback when the regex cannot be built: (form, index of the value), longest first.
    plain: Vec<(String, usize)>,
}

impl Forms {
    /// `values` must be ordered longest first: earlier alternatives win at one position.
    pub(super) fn new(values: &[&str]) -> Self {
        let pattern = values
            .iter()
            .map(|v| format!("({})", value_pattern(v)))
            .collect::<Vec<_>>()
            .join("|");
        let regex = RegexBuilder::new(&pattern).size_limit(MAX_REGEX_BYTES).build().ok();
        let plain = if regex.is_some() {
            Vec::new()
        } else {
            plain_forms(values)
        };
        Self { regex, plain }
    }

    /// `text` with each found value replaced by `marker(index of the value)`.
    pub(super) fn replace(&self, text: &str, marker: impl Fn(usize) -> String) -> Option<String> {
        if let Some(regex) = &self.regex {
            if !regex.is_match(text) {
                return None;
            }
            let replaced = regex.replace_all(text, |caps: &regex::Captures<'_>| {
                let index = (1..caps.len()).find(|&i| caps.get(i).is_some()).unwrap_or(1);
                marker(index - 1)
            });
            return Some(replaced.into_owned());
        }
        let mut out: Option<String> = None;
        for (form, index) in &self.plain {
            let current = out.as_deref().unwrap_or(text);
            if current.contains(form.as_str()) {
                out = Some(current.replace(form.as_str(), &marker(*index)));
            }
        }
        out
    }
}

/// A regex matching `value` with each character in any of its forms.
fn value_pattern(value: &str) -> String {
    value.chars().map(char_pattern).collect()
}

fn char_pattern(c: char) -> String {
    let mut alternatives = vec![regex::escape(c.encode_utf8(&mut [0; 4]))];
    let mut percent = String::new();
    for b in c.encode_utf8(&mut [0; 4]).bytes() {
        let _ = write!(percent, "%{}{}", hex_class(b >> 4), hex_class(b & 0xf));
    }
    alternatives.push(percent);
    if c == ' ' {
        alternatives.push(r"\+".to_owned());
    }
    let once = json_escape(&c.to_string());
    if once != c.to_string() {
        let twice = json_escape(&once);
        alternatives.push(regex::escape(&once));
        alternatives.push(regex::escape(&twice));
    }
    if c == '/' {
        alternatives.push(regex::escape(r"\/"));
    }
    if !c.is_ascii_alphanumeric() {
        // `\uXXXX`, as other JSON encoders write non-ASCII and punctuation.
        let mut units = String::new();
        for unit in c.encode_utf16(&mut [0; 2]) {
            let _ = write!(units, r"\\u");
            for shift in [12, 8, 4, 0] {
                units.push_str(&hex_class(((*unit >> shift) & 0xf) as u8));
            }
        }
        alternatives.push(units);
    }
    format!("(?:{})", alternatives.join("|"))
}

/// One hex digit in either case.
fn hex_class(digit: u8) -> String {
    let upper = char::from_digit(u32::from(digit), 16)
        .unwrap_or('0')
        .to_ascii_uppercase();
    if upper.is_ascii_digit() {
        upper.to_string()
    } else {
        format!("[{upper}{}]", upper.to_ascii_lowercase())
    }
}

/// The JSON string body (no quotes) of `text`, as `JSON.stringify` writes it.
fn json_escape(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned());
    quoted[1..quoted.len() - 1].to_owned()
}

/// The usual forms of each value as plain strings, longest first.
fn plain_forms(values: &[&str]) -> Vec<(String, usize)> {
    const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'!')
        .remove(b'~')
        .remove(b'*')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')');
    let mut forms = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let encoded = percent_encoding::utf8_percent_encode(value, COMPONENT).to_string();
        let json = json_escape(value);
        for form in [
            value.to_string(),
            lower_hex(&encoded),
            encoded.replace("%20", "+"),
            encoded,
            json_escape(&json),
            json,
        ] {
            forms.push((form, index));
        }
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.0.len()));
    forms.dedup();
    forms
}

/// `encoded` with the hex digits of its escapes in lower case.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut escape = 0;
    for c in encoded.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "p\"a\\ss w/rd&é✓";

    fn redact(values: &[&str], text: &str) -> String {
        Forms::new(values)
            .replace(text, |i| format!("[{i}]"))
            .unwrap_or_else(|| text.to_owned())
    }

    #[test]
    fn every_form_is_found() {
        let component = "p%22a%5Css%20w%2Frd%26%C3%A9%E2%9C%93";
        let forms = [
            VALUE.to_owned(),
            component.to_owned(),
            component.to_ascii_lowercase(),
            component.replace("%20", "+"),
            // What the URL parser leaves in a query: only some characters encoded.
            "p%22a\\ss%20w/rd&%C3%A9%E2%9C%93".to_owned(),
            serde_json::to_string(VALUE).unwrap(),
            serde_json::to_string(&serde_json::to_string(VALUE).unwrap()).unwrap(),
            r"p\u0022a\\ss w\/rd&\u00e9\u2713".to_owned(),
        ];
        for form in forms {
            let out = redact(&[VALUE], &format!("before {form} after"));
            assert!(out.contains("[0]"), "{form} -> {out}");
            assert!(
                !out.contains("ss w") && !out.contains("ss%20") && !out.contains("ss+"),
                "{form} -> {out}"
            );
        }
    }

    #[test]
    fn plain_fallback_covers_the_usual_forms() {
        for (form, index) in plain_forms(&[VALUE]) {
            assert_eq!(index, 0);
            assert!(form.len() >= VALUE.len() - 4, "{form}");
        }
        let forms = Forms {
            regex: None,
            plain: plain_forms(&[VALUE]),
        };
        let text = format!(
            "{} p%22a%5css%20w%2frd%26%c3%a9%e2%9c%93 p%22a%5Css+w%2Frd%26%C3%A9%E2%9C%93",
            serde_json::to_string(VALUE).unwrap()
        );
        let out = forms.replace(&text, |i| format!("[{i}]")).unwrap();
        assert_eq!(out, "\"[0]\" [0] [0]");
    }

    #[test]
    fn longest_value_wins_and_markers_are_not_matched_again() {
        let out = redact(&["abcdefgh", "abcd", "0]x["], "abcdefgh abcd");
        assert_eq!(out, "[0] [1]");
        assert_eq!(redact(&["abcd"], "nothing"), "nothing");
    }
}
