//! One running node per data directory: [`DirLock`] holds an OS file lock on
//! `<data dir>/node.lock` for as long as the node lives (`flock` on Unix, `LockFileEx` on
//! Windows, through the standard library). A second process — or a second infrastructure in
//! the same process — that starts on the same directory is refused with
//! [`ErrorKind::DirectoryInUse`], naming the process that holds it. The lock goes with the
//! process: a node killed with -9 leaves the file, not the lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "node.lock";

/// The most of a lock file read to name its holder.
const MAX_HOLDER_BYTES: u64 = 256;

/// The held lock of a data directory (released when dropped).
#[derive(Debug)]
pub(crate) struct DirLock {
    /// Holds the lock while open.
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir` (which exists), or says who holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(|e| {
            Error::with_source(
                ErrorKind::Io,
                format!("cannot open the lock file {}: {e}", path.display()),
                e,
            )
        })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = holder(&mut file);
                return Err(Error::new(
                    ErrorKind::DirectoryInUse,
                    format!(
                        "the data directory {} is in use by another running node{holder}; \
                         stop it first, or use another data directory",
                        dir.display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::with_source(
                    ErrorKind::Io,
                    format!("cannot lock {}: {e}", path.display()),
                    e,
                ));
            }
        }
        // Say who holds it, for the message another process gives (best effort: the lock,
        // not the text, is what excludes).
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "pid {}", std::process::id()));
        Ok(DirLock { _file: file })
    }
}

/// " (process N)" from the lock file's text, or nothing when it cannot be read.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let read = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.take(MAX_HOLDER_BYTES).read_to_string(&mut text));
    match read
        .ok()
        .and_then(|_| text.trim().strip_prefix("pid ")?.parse::<u32>().ok())
    {
        Some(pid) => format!(" (process {pid})"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_directory_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DirLock::acquire(dir.path()).expect("first lock");
        assert!(dir.path().join(LOCK_FILE).exists());
        let err = DirLock::acquire(dir.path()).expect_err("a second lock must be refused");
        assert_eq!(err.kind(), ErrorKind::DirectoryInUse);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("process {}", std::process::id())),
            "the message names the holder: {msg}"
        );
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        drop(first);
        DirLock::acquire(dir.path()).expect("free again once the holder is gone");
    }

    #[test]
    fn a_garbled_lock_file_does_not_matter() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(LOCK_FILE), vec![0xff; 10_000]).expect("write");
        let first = DirLock::acquire(dir.path()).expect("lock over a garbled file");
        let err = DirLock::acquire(dir.path()).expect_err("held");
        assert_eq!(err.kind(), ErrorKind::DirectoryInUse);
        drop(first);
    }
}
