//! Secrets a handler asked for in `config.secrets`: read from the process environment, then
//! from the `.env` file beside the handlers folder, and redacted from everything captured.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

/// Where secret values come from.
#[derive(Debug, Default, Clone)]
pub struct SecretSource {
    dotenv: HashMap<String, String>,
}

/// Errors finding secrets.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SecretError {
    #[error("secret {0} is not set (set it in the environment or in {1})")]
    Missing(String, String),
    #[error("{0:?} is not a valid secret name (letters, digits and '_', not starting with a digit)")]
    BadName(String),
    #[error("cannot read {path}: {detail}")]
    DotEnv { path: String, detail: String },
}

impl SecretSource {
    /// Reads `<handlers>/../.env` if it exists.
    pub fn load(handlers_dir: &Path) -> Result<Self, SecretError> {
        let path = dotenv_path(handlers_dir);
        let mut dotenv = HashMap::new();
        match dotenvy::from_path_iter(&path) {
            Ok(iter) => {
                for item in iter {
                    let (k, v) = item.map_err(|e| SecretError::DotEnv {
                        path: path.display().to_string(),
                        detail: e.to_string(),
                    })?;
                    dotenv.insert(k, v);
                }
            }
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(SecretError::DotEnv {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                });
            }
        }
        Ok(Self { dotenv })
    }

    /// A source holding exactly `pairs` (for tests and embedding).
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self {
            dotenv: pairs.into_iter().collect(),
        }
    }

    /// The values of `names`; the environment wins over `.env`.
    pub fn resolve(&self, names: &[String], handlers_dir: &Path) -> Result<Secrets, SecretError> {
        let mut pairs = Vec::with_capacity(names.len());
        for name in names {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(SecretError::BadName(name.clone()));
            }
            let value = std::env::var(name).ok().or_else(|| self.dotenv.get(name).cloned());
            let value = value
                .ok_or_else(|| SecretError::Missing(name.clone(), dotenv_path(handlers_dir).display().to_string()))?;
            pairs.push((name.clone(), value));
        }
        Ok(Secrets::new(pairs))
    }
}

fn dotenv_path(handlers_dir: &Path) -> std::path::PathBuf {
    let parent = handlers_dir.parent().filter(|p| !p.as_os_str().is_empty());
    parent.unwrap_or(Path::new(".")).join(".env")
}

/// The secret values granted to one handler.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    /// Sorted longest value first, so a secret containing another is replaced whole.
    pairs: Vec<(String, String)>,
}

impl Secrets {
    fn new(mut pairs: Vec<(String, String)>) -> Self {
        pairs.sort_by_key(|p| std::cmp::Reverse(p.1.len()));
        Self { pairs }
    }

    /// Name/value pairs, for `ctx.secrets`.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `text` with every secret value replaced by `[secret:NAME]`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (name, value) in &self.pairs {
            // Very short values would shred ordinary text; they are still never logged on purpose.
            if value.len() < 4 || !out.contains(value.as_str()) {
                continue;
            }
            out = Cow::Owned(out.replace(value.as_str(), &format!("[secret:{name}]")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_from_dotenv_and_reports_missing() {
        let src = SecretSource::from_pairs([("EDDY_TEST_TOKEN_A".into(), "tok-123456".into())]);
        let dir = Path::new("/x/handlers");
        let s = src.resolve(&["EDDY_TEST_TOKEN_A".into()], dir).unwrap();
        assert_eq!(s.pairs().collect::<Vec<_>>(), [("EDDY_TEST_TOKEN_A", "tok-123456")]);
        let err = src.resolve(&["EDDY_TEST_NOPE".into()], dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret EDDY_TEST_NOPE is not set (set it in the environment or in /x/.env)"
        );
        assert!(matches!(src.resolve(&["1A".into()], dir), Err(SecretError::BadName(_))));
    }

    #[test]
    fn redacts_longest_first() {
        let s = Secrets::new(vec![
            ("SHORT".into(), "abcd".into()),
            ("LONG".into(), "abcdefgh".into()),
        ]);
        assert_eq!(s.redact("x abcdefgh y abcd"), "x [secret:LONG] y [secret:SHORT]");
        assert!(matches!(s.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn reads_dotenv_file_beside_handlers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "# comment\nEDDY_TEST_FROM_FILE=\"va lue\"\n").unwrap();
        let src = SecretSource::load(&dir.path().join("handlers")).unwrap();
        let s = src
            .resolve(&["EDDY_TEST_FROM_FILE".into()], &dir.path().join("handlers"))
            .unwrap();
        assert_eq!(s.pairs().next(), Some(("EDDY_TEST_FROM_FILE", "va lue")));
    }
}
