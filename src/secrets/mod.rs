//! Secrets: which names a handler may ask for in `config.secrets` (those granted by the
//! operator in `[secrets] allow`, and those defined in the `.env` beside the handlers folder,
//! never eddy's own), and where their values come from (the process environment, then that
//! `.env`). The values reach a handler's isolate as [`Secrets`], which also redacts them.

mod grant;

use std::collections::HashMap;
use std::path::Path;

use eddy_runtime_js::Secrets;

pub use grant::{Grant, GrantPattern, RESERVED_PREFIX};

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
