//! A log file that cannot fill the disk. The chat's terminal UI logs to `chat.log` in the data
//! directory, and what it logs can be caused by other members (a refused record, a refused
//! connection is a warning): a hostile member must not be able to grow it without end. Past
//! [`MAX_LOG_BYTES`] the file is renamed to `<name>.1` (replacing the one before) and begun
//! again, so the two take at most twice that.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Bytes one log file holds before it is rotated.
pub(crate) const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;

/// An append-only log file rotated at a size (see the module documentation).
#[derive(Debug)]
pub(crate) struct BoundedLog {
    path: PathBuf,
    file: File,
    written: u64,
    max: u64,
}

impl BoundedLog {
    /// Opens `path` for appending, rotating it first if it is already full.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        Self::with_max(path, MAX_LOG_BYTES)
    }

    fn with_max(path: &Path, max: u64) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        let mut log = BoundedLog {
            path: path.to_owned(),
            file,
            written,
            max: max.max(1),
        };
        if log.written >= log.max {
            log.rotate()?;
        }
        Ok(log)
    }

    /// `<name>.1`: the file before this one.
    fn previous(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".1");
        self.path.with_file_name(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        std::fs::rename(&self.path, self.previous())?;
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for BoundedLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written > 0 && self.written.saturating_add(buf.len() as u64) > self.max {
            self.rotate()?;
        }
        // A single write longer than the whole file is cut to it.
        let room = usize::try_from(self.max - self.written.min(self.max)).unwrap_or(usize::MAX);
        let take = buf.len().min(room.max(1));
        self.file.write_all(&buf[..take])?;
        self.written += take as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_written_past_its_bound_keeps_two_files_within_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.log");
        let mut log = BoundedLog::with_max(&path, 1000).unwrap();
        for i in 0..1000 {
            writeln!(
                log,
                "warning {i:04}: a refused record from a hostile member"
            )
            .unwrap();
        }
        log.flush().unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        let before = std::fs::read_to_string(dir.path().join("chat.log.1")).unwrap();
        assert!(
            now.len() <= 1000 && before.len() <= 1000,
            "{} and {}",
            now.len(),
            before.len()
        );
        // The newest line is kept, whole.
        assert!(now.ends_with("warning 0999: a refused record from a hostile member\n"));
        assert!(!before.is_empty());
        // A write longer than the bound is cut to it.
        log.write_all(&[b'x'; 5000]).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() <= 1000);
    }

    #[test]
    fn a_full_log_is_rotated_when_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.log");
        std::fs::write(&path, vec![b'a'; 2000]).unwrap();
        let mut log = BoundedLog::with_max(&path, 1000).unwrap();
        writeln!(log, "fresh").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "fresh\n");
        assert_eq!(
            std::fs::metadata(dir.path().join("chat.log.1"))
                .unwrap()
                .len(),
            2000
        );
    }
}
