//! Secrets: which names a handler may ask for in `config.secrets` (those granted by the
//! operator in `[secrets] allow`, and those defined in the `.env` beside the handlers folder,
//! never eddy's own), where their values come from (the process environment, then that
//! `.env`), and their redaction from everything captured.

mod forms;
mod grant;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

pub use grant::{Grant, GrantPattern, RESERVED_PREFIX};

/// Values shorter than this are too short to tell apart from ordinary text: not redacted.
pub const MIN_REDACTED_LEN: usize = 4;

/// Where secret values come from, and which names the operator granted.
#[derive(Default, Clone)]
pub struct SecretSource {
    dotenv: HashMap<String, String>,
    grant: Grant,
}

/// Errors granting or finding secrets.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SecretError {
    #[error("secret {0} is not set (set it in the environment or in {1})")]
    Missing(String, String),
    #[error("{0:?} is not a valid secret name (letters, digits and '_', not starting with a digit)")]
    BadName(String),
    #[error("cannot read {path}: {detail}")]
    DotEnv { path: String, detail: String },
    #[error("secret {name} is not granted: add \"{name}\" to [secrets] allow in eddy.toml (or define it in {dotenv})")]
    NotGranted { name: String, dotenv: String },
    #[error("secret {name} can never be granted to a handler: {why}")]
    Reserved { name: String, why: &'static str },
    #[error("[secrets] allow entry {entry:?}: {why}")]
    BadGrant { entry: String, why: String },
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.dotenv.keys().collect();
        names.sort();
        f.debug_struct("SecretSource")
            .field("dotenv_names", &names)
            .field("grant", &self.grant)
            .finish()
    }
}

impl SecretSource {
    /// Reads `<handlers>/../.env` if it exists; `grant` says what handlers may ask for.
    pub fn load(handlers_dir: &Path, grant: Grant) -> Result<Self, SecretError> {
        let path = dotenv_path(handlers_dir);
        let dotenv_error = |detail: String| SecretError::DotEnv {
            path: path.display().to_string(),
            detail,
        };
        let mut dotenv = HashMap::new();
        match dotenvy::from_path_iter(&path) {
            Ok(iter) => {
                for item in iter {
                    let (k, v) = item.map_err(|e| dotenv_error(e.to_string()))?;
                    dotenv.insert(k, v);
                }
            }
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(dotenv_error(e.to_string())),
        }
        Ok(Self { dotenv, grant })
    }

    /// A source holding exactly `pairs` as its `.env` (for tests and embedding).
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I, grant: Grant) -> Self {
        Self {
            dotenv: pairs.into_iter().collect(),
            grant,
        }
    }

    /// The values of `names` a handler asked for, each of which must be granted: by
    /// `[secrets] allow`, or by being defined in `.env`; reserved names never are.
    pub fn resolve(&self, names: &[String], handlers_dir: &Path) -> Result<Secrets, SecretError> {
        let mut pairs = Vec::with_capacity(names.len());
        for name in names {
            check_name(name)?;
            if let Some(why) = self.grant.reserved(name) {
                return Err(SecretError::Reserved {
                    name: name.clone(),
                    why,
                });
            }
            if !(self.grant.allows(name) || self.dotenv.contains_key(name)) {
                return Err(SecretError::NotGranted {
                    name: name.clone(),
                    dotenv: dotenv_path(handlers_dir).display().to_string(),
                });
            }
            pairs.push((name.clone(), self.value(name, handlers_dir)?));
        }
        Ok(Secrets::new(pairs))
    }

    /// A value eddy itself needs (a webhook source's signing secret): no grant applies.
    pub fn value(&self, name: &str, handlers_dir: &Path) -> Result<String, SecretError> {
        check_name(name)?;
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
            .ok_or_else(|| SecretError::Missing(name.to_owned(), dotenv_path(handlers_dir).display().to_string()))
    }
}

fn check_name(name: &str) -> Result<(), SecretError> {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(SecretError::BadName(name.to_owned()))
    }
}

fn dotenv_path(handlers_dir: &Path) -> std::path::PathBuf {
    let parent = handlers_dir.parent().filter(|p| !p.as_os_str().is_empty());
    parent.unwrap_or(Path::new(".")).join(".env")
}

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

    fn granted(allow: &[&str]) -> Grant {
        Grant::new(allow, ["HOOK_SECRET".to_owned()]).unwrap()
    }

    #[test]
    fn resolves_granted_names_and_reports_missing() {
        let src = SecretSource::from_pairs([("TEST_TOKEN_A".into(), "tok-123456".into())], granted(&["TEST_*"]));
        let dir = Path::new("/x/handlers");
        let s = src.resolve(&["TEST_TOKEN_A".into()], dir).unwrap();
        assert_eq!(s.pairs().collect::<Vec<_>>(), [("TEST_TOKEN_A", "tok-123456")]);
        let err = src.resolve(&["TEST_NOPE".into()], dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret TEST_NOPE is not set (set it in the environment or in /x/.env)"
        );
        assert!(matches!(src.resolve(&["1A".into()], dir), Err(SecretError::BadName(_))));
    }

    #[test]
    fn ungranted_and_reserved_names_are_refused_by_name() {
        let dotenv = [
            ("IN_DOTENV".to_owned(), "value-1".to_owned()),
            ("EDDY_API_TOKEN".to_owned(), "value-2".to_owned()),
            ("HOOK_SECRET".to_owned(), "value-3".to_owned()),
        ];
        let src = SecretSource::from_pairs(dotenv, granted(&["*"]));
        let dir = Path::new("/x/handlers");
        assert!(src.resolve(&["IN_DOTENV".into()], dir).is_ok());
        for name in ["EDDY_API_TOKEN", "HOOK_SECRET"] {
            let err = src.resolve(&[name.into()], dir).unwrap_err();
            assert!(matches!(err, SecretError::Reserved { .. }), "{err}");
            assert!(err.to_string().contains(name), "{err}");
        }
        let src = SecretSource::from_pairs([], granted(&["CRM_TOKEN"]));
        let err = src.resolve(&["OTHER".into()], dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret OTHER is not granted: add \"OTHER\" to [secrets] allow in eddy.toml (or define it in /x/.env)"
        );
    }

    #[test]
    fn defined_in_dotenv_counts_as_granted() {
        let src = SecretSource::from_pairs([("ONLY_HERE".into(), "v".into())], Grant::default());
        assert!(src.resolve(&["ONLY_HERE".into()], Path::new("h")).is_ok());
        assert!(src.resolve(&["PATH".into()], Path::new("h")).is_err());
    }

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

    #[test]
    fn reads_dotenv_file_beside_handlers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "# comment\nTEST_FROM_FILE=\"va lue\"\n").unwrap();
        let src = SecretSource::load(&dir.path().join("handlers"), Grant::default()).unwrap();
        let s = src
            .resolve(&["TEST_FROM_FILE".into()], &dir.path().join("handlers"))
            .unwrap();
        assert_eq!(s.pairs().next(), Some(("TEST_FROM_FILE", "va lue")));
        assert!(!format!("{src:?}").contains("va lue"));
    }
}
