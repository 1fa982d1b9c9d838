//! The record of a clean close, which lets the next open skip the copy `guard.rs` makes.
//!
//! After every handle on a store is dropped, sled has flushed and closed its files; the seal
//! then notes each file's size, change times and inode. If the next open finds the files
//! exactly so, nothing has written to them since a close that left them whole, sled's
//! recovery has nothing to cut, and copying them aside would only cost disk and time. Any
//! write, truncation or replacement changes the inode change time (which, unlike the
//! modification time, no tool can set back; it moves by the kernel's clock tick of a few
//! ms), so such files take the copying path.
//!
//! The seal is removed before the files are opened: a store is sealed only between a close
//! and the next open.
//!
//! What the seal cannot see is damage that bypasses the file system (a failing disk). sled's
//! checksums and the durable mark still refuse such a store, but without the copy, what
//! sled's recovery cut before refusing is not put back.

use std::path::Path;

use super::StoreError;

/// The seal's file inside the data folder.
pub(super) const SEAL_FILE: &str = "closed-cleanly";

/// Seals the store in `dir` if no process (this one included) has it open; returns whether it did.
pub(super) fn seal(dir: &Path) -> Result<bool, StoreError> {
    let failed = |what: &str, e: std::io::Error| StoreError::Open {
        path: dir.to_owned(),
        detail: format!("cannot {what}: {e}"),
    };
    let log = dir.join("db");
    if !log.exists() || super::guard::held(&log).map_err(|e| failed("check the lock of", e))? {
        return Ok(false);
    }
    let fingerprint = fingerprint(dir).map_err(|e| failed("read the file sizes in", e))?;
    let partial = dir.join(format!("{SEAL_FILE}.partial"));
    std::fs::write(&partial, fingerprint)
        .and_then(|()| std::fs::rename(&partial, dir.join(SEAL_FILE)))
        .map_err(|e| failed("write the clean-close record in", e))?;
    Ok(true)
}

/// Removes the seal; returns whether the files are as it describes.
pub(super) fn take(dir: &Path) -> std::io::Result<bool> {
    let path = dir.join(SEAL_FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    // No fsync needed: a seal that survives a crash no longer matches the files once
    // sled has written to them.
    std::fs::remove_file(&path)?;
    Ok(fingerprint(dir)? == recorded)
}

/// One line per store file: name, size, modification and change time in ns, inode.
fn fingerprint(dir: &Path) -> std::io::Result<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // A `.partial` file is a write in progress that a rename ends (the durable mark's).
        if name.starts_with(SEAL_FILE) || name.ends_with(".partial") {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => continue,
            // Gone between the listing and the look: renamed over another entry.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        lines.push(format!("{name} {} {}", meta.len(), times(&meta)?));
    }
    lines.sort();
    Ok(lines.join("\n"))
}

#[cfg(unix)]
fn times(meta: &std::fs::Metadata) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    Ok(format!(
        "{}.{:09} {}.{:09} {}",
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.ino()
    ))
}

#[cfg(not(unix))]
fn times(meta: &std::fs::Metadata) -> std::io::Result<String> {
    let modified = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(format!("{}", modified.as_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_files(dir: &Path) {
        std::fs::write(dir.join("db"), b"log").unwrap();
        std::fs::write(dir.join("conf"), b"conf").unwrap();
    }

    #[test]
    fn untouched_files_match_their_seal_once() {
        let dir = tempfile::tempdir().unwrap();
        store_files(dir.path());
        assert!(seal(dir.path()).unwrap());
        assert!(take(dir.path()).unwrap());
        // Taken: the next open cannot rely on it.
        assert!(!take(dir.path()).unwrap());
    }

    #[test]
    fn any_write_after_the_seal_breaks_it() {
        let rewrite = |p: &Path| std::fs::write(p.join("db"), b"log").unwrap();
        let truncate = |p: &Path| {
            let file = std::fs::OpenOptions::new().write(true).open(p.join("db")).unwrap();
            file.set_len(1).unwrap();
        };
        let add = |p: &Path| std::fs::write(p.join("snap.1"), b"x").unwrap();
        for change in [&rewrite as &dyn Fn(&Path), &truncate, &add] {
            let dir = tempfile::tempdir().unwrap();
            store_files(dir.path());
            assert!(seal(dir.path()).unwrap());
            // File times move by the kernel's clock tick (a few ms).
            std::thread::sleep(std::time::Duration::from_millis(30));
            change(dir.path());
            assert!(!take(dir.path()).unwrap());
        }
    }

    #[test]
    fn a_write_in_progress_beside_the_files_is_not_part_of_them() {
        let dir = tempfile::tempdir().unwrap();
        store_files(dir.path());
        let before = fingerprint(dir.path()).unwrap();
        std::fs::write(dir.path().join("durable-mark.partial"), b"7").unwrap();
        assert_eq!(fingerprint(dir.path()).unwrap(), before);
    }

    #[test]
    fn a_store_in_use_is_not_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let _db = sled::Config::new().path(dir.path()).open().unwrap();
        assert!(!seal(dir.path()).unwrap());
        assert!(!dir.path().join(SEAL_FILE).exists());
    }
}
