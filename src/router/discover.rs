//! Handler discovery: the only part of the router that touches the file system.
//!
//! Owns which files under the handlers folder are handlers (`.js` files not inside or named as a
//! helper: names starting with `_` or `.`), their ids and the stamps used to notice changes. It only
//! lists and stats files: it must not read, load or route them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::RouterError;

/// Deepest folder nesting followed under the handlers folder; stops symlink loops.
const MAX_DEPTH: usize = 32;

/// Modification time and size of a file.
pub type Stamp = (SystemTime, u64);

/// One handler file found under the handlers folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerFile {
    /// Path under the handlers folder without `.js`, `/`-separated: `github.pull_request/notify`.
    pub id: String,
    /// The file: the handlers folder joined with its relative path (symlinks not resolved).
    pub path: PathBuf,
    /// Modification time and size, to notice changes by polling.
    pub stamp: Stamp,
}

/// Every handler file under `root` (recursive, following symlinks), skipping helpers; sorted by id.
/// A missing root is an error naming it. Files or folders that vanish while being listed are left
/// out, so listing a folder that is being edited does not fail.
pub fn discover(root: &Path) -> Result<Vec<HandlerFile>, RouterError> {
    Ok(discover_with_skipped(root)?.0)
}

/// Extensions of files that look like handlers but are not loaded: only `.js` ES modules are.
const NOT_LOADED: [&str; 6] = ["ts", "mts", "cts", "tsx", "jsx", "cjs"];

/// Why `file`, which [`discover_with_skipped`] names, is not loaded.
pub fn not_loaded_reason(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("cjs") => {
            "not loaded: handlers are ES modules in .js files (`export default async function (event, ctx) {}`), not CommonJS"
        }
        Some("jsx") => "not loaded: JSX is not JavaScript a handler can run; build it to a .js ES module first",
        _ => {
            "not loaded: TypeScript handlers are not supported yet; build the file to a .js ES module (for example with esbuild) or write it in JavaScript"
        }
    }
}

/// Like [`discover`], with the files that look like handlers but are not loaded (by their
/// extension: TypeScript, JSX, CommonJS), sorted by path, so they can be named.
pub fn discover_with_skipped(root: &Path) -> Result<(Vec<HandlerFile>, Vec<PathBuf>), RouterError> {
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(RouterError::NotAFolder(root.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(RouterError::MissingRoot(root.to_owned())),
        Err(e) => return Err(io_error(root, &e)),
    }
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    walk(root, root, 0, &mut found, &mut skipped)?;
    found.sort_by(|a, b| a.id.cmp(&b.id));
    skipped.sort();
    Ok((found, skipped))
}

/// Adds the handlers in `dir`, a folder under `root`, to `found`, and the files not loaded
/// to `skipped`.
fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    found: &mut Vec<HandlerFile>,
    skipped: &mut Vec<PathBuf>,
) -> Result<(), RouterError> {
    if depth > MAX_DEPTH {
        return Err(RouterError::TooDeep {
            path: dir.to_owned(),
            max: MAX_DEPTH,
        });
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if depth > 0 && e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(dir, &e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, &e))?.path();
        let name = path.file_name().and_then(|n| n.to_str());
        if name.is_some_and(|n| n.starts_with('_') || n.starts_with('.')) {
            continue;
        }
        let Some(meta) = metadata(&path)? else {
            continue;
        };
        let is_handler = meta.is_file() && path.extension().is_some_and(|e| e == "js");
        if meta.is_file() && path.extension().is_some_and(|e| NOT_LOADED.iter().any(|n| e == *n)) {
            skipped.push(path);
            continue;
        }
        if !(meta.is_dir() || is_handler) {
            continue;
        }
        if name.is_none() {
            return Err(RouterError::NotUtf8(path));
        }
        if meta.is_dir() {
            walk(root, &path, depth + 1, found, skipped)?;
        } else if let Some(id) = handler_id(root, &path) {
            let modified = meta.modified().map_err(|e| io_error(&path, &e))?;
            found.push(HandlerFile {
                id,
                path,
                stamp: (modified, meta.len()),
            });
        }
    }
    Ok(())
}

/// The handler id of `file` under `root`: its relative path without `.js`, with `/` between
/// folders (`github/notify` for `github/notify.js`); `None` for any other file.
pub fn handler_id(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let text = rel.to_str()?.strip_suffix(".js")?;
    Some(text.replace(std::path::MAIN_SEPARATOR, "/"))
}

/// Stamps of every helper module under `root` (`.js`/`.mjs` files named with, or inside a
/// folder named with, a leading `_`), sorted by path. Handlers import helpers, so a change here
/// means every handler may have changed.
pub fn helper_stamps(root: &Path) -> Result<Vec<(PathBuf, Stamp)>, RouterError> {
    let mut found = Vec::new();
    walk_helpers(root, false, 0, &mut found)?;
    found.sort();
    Ok(found)
}

fn walk_helpers(
    dir: &Path,
    in_helper: bool,
    depth: usize,
    found: &mut Vec<(PathBuf, Stamp)>,
) -> Result<(), RouterError> {
    if depth > MAX_DEPTH {
        return Err(RouterError::TooDeep {
            path: dir.to_owned(),
            max: MAX_DEPTH,
        });
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, &e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        let helper = in_helper || name.starts_with('_');
        let Some(meta) = metadata(&path)? else { continue };
        if meta.is_dir() {
            walk_helpers(&path, helper, depth + 1, found)?;
        } else if helper && (name.ends_with(".js") || name.ends_with(".mjs")) {
            let modified = meta.modified().map_err(|e| io_error(&path, &e))?;
            found.push((path, (modified, meta.len())));
        }
    }
    Ok(())
}

/// The metadata of `path`, following symlinks; `None` if it vanished (or is a broken symlink).
fn metadata(path: &Path) -> Result<Option<fs::Metadata>, RouterError> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, &e)),
    }
}

fn io_error(path: &Path, error: &io::Error) -> RouterError {
    RouterError::Io {
        path: path.to_owned(),
        detail: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn ids(root: &Path) -> Vec<String> {
        discover(root).unwrap().into_iter().map(|h| h.id).collect()
    }

    #[test]
    fn handler_ids_are_paths_without_js() {
        let root = Path::new("/h");
        assert_eq!(
            handler_id(root, Path::new("/h/accounts.patch.js")).as_deref(),
            Some("accounts.patch")
        );
        assert_eq!(
            handler_id(root, Path::new("/h/github/notify.js")).as_deref(),
            Some("github/notify")
        );
        assert_eq!(handler_id(root, Path::new("/h/readme.md")), None);
        assert_eq!(handler_id(root, Path::new("/elsewhere/a.js")), None);
    }

    #[test]
    fn helper_stamps_cover_helper_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "a.js", "");
        write(root, "_util.js", "");
        write(root, "_lib/deep/x.mjs", "");
        write(root, "type/_shared.js", "");
        write(root, "_lib/notes.txt", "");
        let stamps: Vec<_> = helper_stamps(root).unwrap().into_iter().map(|(p, _)| p).collect();
        let rel: Vec<_> = stamps
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(rel, ["_lib/deep/x.mjs", "_util.js", "type/_shared.js"]);
    }

    #[test]
    fn finds_handlers_and_skips_helpers_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for rel in [
            "accounts.patch.js",
            "accounts.patch/crm.js",
            "accounts.patch/_shared.js",
            "github.pull_request/notify.js",
            "deep/er/x.js",
            "_lib/util.js",
            "_lib/sub/a.js",
            ".hidden/a.js",
            ".eslintrc.js",
            "README.md",
            "a.mjs",
            "b.js.bak",
            "c.JS",
            "notes/todo.txt",
        ] {
            write(root, rel, "export default () => {};");
        }
        fs::create_dir(root.join("empty")).unwrap();
        assert_eq!(
            ids(root),
            [
                "accounts.patch",
                "accounts.patch/crm",
                "deep/er/x",
                "github.pull_request/notify"
            ]
        );
        let found = discover(root).unwrap();
        assert_eq!(found[1].path, root.join("accounts.patch").join("crm.js"));
        assert_eq!(found[1].stamp.1, 24);
    }

    #[test]
    fn stamps_change_when_a_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.js", "export default () => {};");
        let before = discover(dir.path()).unwrap()[0].stamp;
        write(dir.path(), "a.js", "export default () => { return 1; };");
        let after = discover(dir.path()).unwrap()[0].stamp;
        assert_ne!(before, after);
        assert_eq!(after.1, 35);
    }

    #[test]
    fn an_empty_folder_has_no_handlers() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(discover(dir.path()), Ok(vec![]));
    }

    #[test]
    fn a_missing_or_non_folder_root_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("handlers");
        let err = discover(&missing).unwrap_err();
        assert_eq!(err, RouterError::MissingRoot(missing.clone()));
        assert!(err.to_string().contains(&missing.display().to_string()));

        write(dir.path(), "file.js", "");
        let file = dir.path().join("file.js");
        assert_eq!(discover(&file), Err(RouterError::NotAFolder(file)));
    }

    #[cfg(unix)]
    #[test]
    fn follows_symlinks_skips_broken_ones_and_stops_loops() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("handlers");
        write(&root, "real.js", "");
        symlink(root.join("real.js"), root.join("alias.js")).unwrap();
        symlink(root.join("gone.js"), root.join("broken.js")).unwrap();
        assert_eq!(ids(&root), ["alias", "real"]);

        symlink(&root, root.join("loop")).unwrap();
        assert!(matches!(
            discover(&root),
            Err(RouterError::TooDeep { max: MAX_DEPTH, .. })
        ));
    }
}
