//! sled repairs its log on open by cutting it at the first record it cannot read. After a
//! crash that drops a torn tail, which is right; on a truncated or garbled file it would
//! throw away everything after the damage, and the refusal to start would come too late.
//! So the store's files are copied aside before sled opens them: if the open finds damage
//! they are put back as they were, and if it succeeds the copy is dropped.
//!
//! The copy costs one read and write of the log (`copy_file_range`, or a reflink where the
//! file system has them) and, while the open runs, as much free disk. It is skipped when the
//! files are exactly as a clean close left them (see `seal.rs`): then sled's recovery has no
//! torn tail to cut, and nothing else has touched them.

use std::path::{Path, PathBuf};

use super::StoreError;

/// The folder, inside the data folder, holding the files as they were before the open.
const ASIDE: &str = "before-open";

/// Opens with `open`, keeping the files as they were if it fails on damage. `open` is told
/// whether the files are as a clean close left them (or there are none): if not, the process
/// that wrote them last may have stopped between two writes that belong together.
pub(super) fn guarded<T>(dir: &Path, open: impl FnOnce(bool) -> Result<T, StoreError>) -> Result<T, StoreError> {
    let aside = dir.join(ASIDE);
    // A copy being dropped after a good open is no longer needed; a copy left by a start
    // that died while opening is the state before that open.
    let dropping = aside.with_extension("drop");
    if dropping.exists() {
        std::fs::remove_dir_all(&dropping).map_err(|e| guard_error(dir, "remove an old copy", e))?;
    }
    if aside.is_dir() {
        put_back(&aside, dir)
            .map_err(|e| guard_error(dir, "restore the files set aside by an interrupted start", e))?;
    }
    let log = dir.join("db");
    if !std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
        return open(true);
    }
    // Files another process has open are that process's: nothing is copied or put back. The
    // lock is checked before the files are listed, because a store closing writes a snapshot
    // and removes the old one before it lets go of its lock.
    if held(&log).map_err(|e| guard_error(dir, "check the lock of", e))? {
        return Err(StoreError::InUse { path: dir.to_owned() });
    }
    let files = regular_files(dir).map_err(|e| guard_error(dir, "list", e))?;
    if super::seal::take(dir).map_err(|e| guard_error(dir, "check the clean-close record in", e))? {
        return open_catching_panics(dir, || open(true));
    }
    set_aside(&files, &aside).map_err(|e| guard_error(dir, "copy the store aside before opening it", e))?;
    match open_catching_panics(dir, || open(false)) {
        Ok(store) => {
            // Renamed first, so a crash while removing cannot leave half a copy to restore.
            std::fs::rename(&aside, &dropping)
                .and_then(|()| std::fs::remove_dir_all(&dropping))
                .map_err(|e| guard_error(dir, "remove the copy made before opening", e))?;
            Ok(store)
        }
        // Another process has the store: sled touched nothing, and the files are that
        // process's to write, so the copy is dropped rather than put back.
        Err(error @ StoreError::InUse { .. }) => {
            std::fs::remove_dir_all(&aside).map_err(|e| guard_error(dir, "remove the copy made before opening", e))?;
            Err(error)
        }
        Err(error) => {
            // Whatever sled changed while failing is undone.
            put_back(&aside, dir).map_err(|e| guard_error(dir, "put the files back after a failed open", e))?;
            Err(error)
        }
    }
}

/// Some damage makes sled's recovery panic rather than fail; that is damage all the same.
/// The panic is not printed (the refusal says what matters); its message goes to the log at
/// debug level.
fn open_catching_panics<T>(dir: &Path, open: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    quiet::install();
    quiet::QUIET.with(|quiet| quiet.set(true));
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(open));
    quiet::QUIET.with(|quiet| quiet.set(false));
    opened.unwrap_or_else(|_| {
        let caught = quiet::CAUGHT.with(|caught| caught.take()).unwrap_or_default();
        tracing::debug!("sled panicked while opening {}: {caught}", dir.display());
        Err(StoreError::Damaged { path: dir.to_owned() })
    })
}

/// A panic hook that keeps quiet on the threads that ask it to (an open of a possibly damaged
/// store) and leaves every other panic to the hook that was there before.
mod quiet {
    use std::cell::{Cell, RefCell};
    use std::sync::Once;

    thread_local! {
        /// Set while this thread opens a store.
        pub static QUIET: Cell<bool> = const { Cell::new(false) };
        /// The message of the last panic kept quiet on this thread.
        pub static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    pub fn install() {
        static INSTALLED: Once = Once::new();
        INSTALLED.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if QUIET.with(Cell::get) {
                    CAUGHT.with(|caught| *caught.borrow_mut() = Some(info.to_string()));
                } else {
                    previous(info);
                }
            }));
        });
    }
}

/// The regular files in `dir` (sled's log, config and snapshots, the durable mark), except
/// the clean-close seal and writes in progress (`.partial`, ended by a rename).
fn regular_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_file() && !name.starts_with(super::seal::SEAL_FILE) && !name.ends_with(".partial") {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// Whether an open store (in any process, this one included) holds sled's lock on its log;
/// the lock taken to find out is released at once.
pub(super) fn held(log: &Path) -> std::io::Result<bool> {
    use fs2::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(log)?;
    match file.try_lock_exclusive() {
        Ok(()) => {
            file.unlock()?;
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(true),
        Err(e) => Err(e),
    }
}

fn set_aside(files: &[PathBuf], aside: &Path) -> std::io::Result<()> {
    let partial = aside.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    std::fs::create_dir(&partial)?;
    for file in files {
        if let Some(name) = file.file_name() {
            std::fs::copy(file, partial.join(name))?;
            std::fs::File::open(partial.join(name))?.sync_all()?;
        }
    }
    // Only a complete copy takes the name that `guarded` trusts after a crash.
    std::fs::rename(&partial, aside)?;
    sync_dir(aside.parent().unwrap_or(Path::new(".")))
}

/// Makes the store's files in `dir` those set aside: files the open created (a new snapshot)
/// are removed, the others are moved back.
fn put_back(aside: &Path, dir: &Path) -> std::io::Result<()> {
    let kept: Vec<_> = std::fs::read_dir(aside)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    for file in regular_files(dir)? {
        if file.file_name().is_some_and(|name| !kept.iter().any(|k| k == name)) {
            std::fs::remove_file(file)?;
        }
    }
    for entry in std::fs::read_dir(aside)? {
        let entry = entry?;
        std::fs::rename(entry.path(), dir.join(entry.file_name()))?;
    }
    sync_dir(dir)?;
    std::fs::remove_dir(aside)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn guard_error(dir: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Open {
        path: dir.to_owned(),
        detail: format!("cannot {what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_panic_inside_sled_is_a_damaged_store_taken_quietly() {
        let dir = tempfile::tempdir().unwrap();
        let opened: Result<(), StoreError> = open_catching_panics(dir.path(), || panic!("sled: bad page {}", 7));
        assert!(matches!(opened, Err(StoreError::Damaged { .. })), "{opened:?}");
        assert!(!quiet::QUIET.with(std::cell::Cell::get), "quiet only while opening");
        // While quiet, the hook keeps the message instead of printing it...
        quiet::QUIET.with(|q| q.set(true));
        let _ = std::panic::catch_unwind(|| panic!("sled: bad page {}", 8));
        quiet::QUIET.with(|q| q.set(false));
        let caught = quiet::CAUGHT.with(|c| c.take()).unwrap_or_default();
        assert!(caught.contains("sled: bad page 8"), "{caught:?}");
        // ...and any other panic goes to the hook that was there before.
        let _ = std::panic::catch_unwind(|| panic!("elsewhere"));
        assert_eq!(quiet::CAUGHT.with(|c| c.take()), None);
    }

    #[test]
    fn a_failed_open_leaves_every_byte_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"log bytes").unwrap();
        std::fs::write(dir.path().join("conf"), b"conf").unwrap();
        let before = files_of(dir.path());
        let result: Result<(), _> = guarded(dir.path(), |_| {
            // What sled's recovery does to a damaged log, and a snapshot it may write.
            std::fs::write(dir.path().join("db"), b"").unwrap();
            std::fs::write(dir.path().join("snap.0001"), b"snapshot").unwrap();
            Err(StoreError::Damaged {
                path: dir.path().to_owned(),
            })
        });
        assert!(result.is_err());
        assert_eq!(files_of(dir.path()), before);
        assert!(!dir.path().join(ASIDE).exists());
    }

    #[test]
    fn a_good_open_keeps_its_changes_and_drops_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"old").unwrap();
        guarded(dir.path(), |_| {
            std::fs::write(dir.path().join("db"), b"new").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("db")).unwrap(), b"new");
        assert!(!dir.path().join(ASIDE).exists());
    }

    #[test]
    fn files_as_a_clean_close_left_them_are_opened_without_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"log").unwrap();
        assert!(super::super::seal::seal(dir.path()).unwrap());
        // What the open sees: whether a copy was made, and whether it is told of a clean close.
        let seen = |closed_cleanly| Ok((dir.path().join(ASIDE).exists(), closed_cleanly));
        assert_eq!(guarded(dir.path(), seen).unwrap(), (false, true));
        // The seal went with that open: the next one copies again, and is not told of one.
        assert_eq!(guarded(dir.path(), seen).unwrap(), (true, false));
    }

    #[test]
    fn files_changed_after_a_clean_close_are_copied_and_put_back_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"whole log").unwrap();
        assert!(super::super::seal::seal(dir.path()).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(30));
        std::fs::write(dir.path().join("db"), b"garbled!!").unwrap();
        let result: Result<(), _> = guarded(dir.path(), |_| {
            assert!(dir.path().join(ASIDE).exists(), "no copy was made");
            std::fs::write(dir.path().join("db"), b"").unwrap();
            Err(StoreError::Damaged {
                path: dir.path().to_owned(),
            })
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read(dir.path().join("db")).unwrap(), b"garbled!!");
    }

    #[test]
    fn files_set_aside_by_a_start_that_died_are_restored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"cut by a recovery").unwrap();
        std::fs::create_dir(dir.path().join(ASIDE)).unwrap();
        std::fs::write(dir.path().join(ASIDE).join("db"), b"whole log").unwrap();
        let seen = guarded(dir.path(), |_| Ok(std::fs::read(dir.path().join("db")).unwrap())).unwrap();
        assert_eq!(seen, b"whole log");
    }

    #[test]
    fn a_write_in_progress_is_not_copied_aside_nor_brought_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db"), b"log").unwrap();
        std::fs::write(dir.path().join("mark.partial"), b"4").unwrap();
        let result: Result<(), _> = guarded(dir.path(), |_| {
            let aside = dir.path().join(ASIDE);
            assert!(aside.join("db").exists() && !aside.join("mark.partial").exists());
            // The write it belongs to ends while the open runs.
            std::fs::remove_file(dir.path().join("mark.partial")).unwrap();
            Err(StoreError::Damaged {
                path: dir.path().to_owned(),
            })
        });
        assert!(result.is_err());
        assert!(
            !dir.path().join("mark.partial").exists(),
            "a finished write was brought back"
        );
    }
}
