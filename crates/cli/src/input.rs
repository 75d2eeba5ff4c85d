//! Files and standard input, read through a size limit before anything is allocated for them.
//!
//! A file named on the command line may be anything: `/dev/zero`, a FIFO that never ends, a
//! 100 MB file handed over by mistake or by someone hostile. Each kind of input has a named
//! [`Limit`]; the reader takes at most one byte more than the limit and refuses the input at
//! once when that byte is there, naming the file and the limit, so memory never grows past
//! the limit and an endless input is refused as soon as the limit is passed.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};
use zeroize::Zeroizing;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// How much of one kind of input is accepted, and why.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    /// What the input is, for messages ("password file").
    pub(crate) what: &'static str,
    /// The most bytes accepted.
    pub(crate) bytes: u64,
    /// Why that much and no more, for messages.
    pub(crate) why: &'static str,
}

/// A password file: the password is its first line. 4 KiB is far above any passphrase; the
/// limit keeps a wrong path (a log, a disk image, `/dev/zero`) from being read whole, with a
/// copy of a secret in every buffer a growing read leaves behind.
pub(crate) const PASSWORD_FILE: Limit = Limit {
    what: "password file",
    bytes: 4 * KIB,
    why: "the most a password file may hold",
};

/// The XML blobs of `peergroup-invitation-xml` (identity info, invitations, identity exports,
/// group configurations): the parser refuses more than [`peergroup_invitation_xml::MAX_INPUT_BYTES`]
/// (512 KiB), so reading more would only spend memory on a file that is refused anyway.
const XML_BLOB_BYTES: u64 = peergroup_invitation_xml::MAX_INPUT_BYTES as u64;
const XML_BLOB_WHY: &str = "the most the XML parser accepts";

/// A PEERIDENTITYINFO file (`invite --identity-info`, `/invite` in the chat).
pub(crate) const IDENTITY_INFO: Limit = Limit {
    what: "identity info",
    bytes: XML_BLOB_BYTES,
    why: XML_BLOB_WHY,
};

/// A PEERINVITATION file (`invitation show`, `join`).
pub(crate) const INVITATION: Limit = Limit {
    what: "invitation",
    bytes: XML_BLOB_BYTES,
    why: XML_BLOB_WHY,
};

/// A PEERIDENTITYEXPORT file (`identity import`).
pub(crate) const IDENTITY_EXPORT: Limit = Limit {
    what: "identity export",
    bytes: XML_BLOB_BYTES,
    why: XML_BLOB_WHY,
};

/// A PEERGROUPCONFIG file (`config import`).
pub(crate) const GROUP_CONFIG: Limit = Limit {
    what: "group configuration",
    bytes: XML_BLOB_BYTES,
    why: XML_BLOB_WHY,
};

/// A record's attribute XML (`record add --attributes`): the record database refuses more
/// than [`peergroup_record_db::search::MAX_ATTRIBUTES_XML_BYTES`] (64 KiB).
pub(crate) const ATTRIBUTES: Limit = Limit {
    what: "attributes file",
    bytes: peergroup_record_db::search::MAX_ATTRIBUTES_XML_BYTES as u64,
    why: "the most record attributes may hold",
};

/// A search query (`record search`): the record database refuses more than
/// [`peergroup_record_db::search::MAX_QUERY_XML_BYTES`] (64 KiB).
pub(crate) const SEARCH_QUERY: Limit = Limit {
    what: "search query",
    bytes: peergroup_record_db::search::MAX_QUERY_XML_BYTES as u64,
    why: "the most a search query may hold",
};

/// A record's payload (`record add --data`) when the group's maximum record size cannot be
/// read: the largest maximum any group may set
/// ([`peergroup_record_db::reserved::MAX_RECORD_SIZE_LIMIT`], what a transport frame carries:
/// 16 MiB less 64 KiB), so no group's record is refused by this and nothing larger is read.
/// One message over a direct connection (`send`).
pub(crate) const DIRECT_DATA: Limit = Limit {
    what: "direct data",
    bytes: peergroup::MAX_DATA as u64,
    why: "the most one direct message carries",
};

pub(crate) const RECORD_DATA_CEILING: Limit = Limit {
    what: "record data",
    bytes: peergroup_record_db::reserved::MAX_RECORD_SIZE_LIMIT as u64,
    why: "the largest record any group allows",
};

/// A record's payload in a group whose maximum record size is `max_record_size` (payload and
/// attributes together may not be larger): the group refuses anything larger.
pub(crate) fn record_data(max_record_size: u32) -> Limit {
    Limit {
        what: "record data",
        bytes: u64::from(max_record_size).min(RECORD_DATA_CEILING.bytes),
        why: "the group's maximum record size",
    }
}

/// One line typed on standard input (a chat message or command, a `run --control` command).
/// A chat message becomes a record, which no group allows past 16 MiB and the default group
/// past 1 MiB; 64 KiB is far above anything typed, and keeps an endless line (`yes | tr -d
/// '\n'`) from being gathered whole.
pub(crate) const INPUT_LINE_BYTES: usize = 64 * 1024;

/// An input over its [`Limit`].
#[derive(Debug)]
pub(crate) struct TooLarge {
    limit: Limit,
    /// The file, or `-` for standard input.
    path: PathBuf,
}

impl TooLarge {
    /// Why it is refused, without naming it: "larger than 512 KiB, the most …".
    pub(crate) fn reason(&self) -> String {
        format!("larger than {}, {}", size(self.limit.bytes), self.limit.why)
    }
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} is {}",
            self.limit.what,
            display_path(&self.path),
            self.reason()
        )
    }
}

impl std::error::Error for TooLarge {}

/// A size for people: `4 KiB`, `1 MiB`, `1500 bytes`.
pub(crate) fn size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn display_path(path: &Path) -> String {
    if is_stdin(path) {
        "(standard input)".to_owned()
    } else {
        path.display().to_string()
    }
}

fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

/// Reads all of `reader`, refusing it (as a [`TooLarge`] naming `path`) once it holds more
/// than `limit.bytes`. At most `limit.bytes + 1` bytes are read.
pub(crate) fn read_bounded(reader: impl Read, path: &Path, limit: Limit) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader
        .take(limit.bytes.saturating_add(1))
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {}", display_path(path)))?;
    if buf.len() as u64 > limit.bytes {
        return Err(TooLarge {
            limit,
            path: path.to_owned(),
        }
        .into());
    }
    Ok(buf)
}

/// Reads the file at `path` through `limit`. A regular file whose size is already over the
/// limit is refused without reading it.
pub(crate) fn read_file(path: &Path, limit: Limit) -> Result<Vec<u8>> {
    let file = std::fs::File::open(crate::control::path(path))
        .with_context(|| format!("reading {}", path.display()))?;
    if let Ok(meta) = file.metadata()
        && meta.is_file()
        && meta.len() > limit.bytes
    {
        return Err(TooLarge {
            limit,
            path: path.to_owned(),
        }
        .into());
    }
    read_bounded(file, path, limit)
}

/// Reads a file holding a secret through `limit` (a small one: the buffer is allocated at
/// its full size up front, so a growing read leaves no copies behind) into a buffer zeroed
/// when dropped.
pub(crate) fn read_secret_file(path: &Path, limit: Limit) -> Result<Zeroizing<Vec<u8>>> {
    let file = std::fs::File::open(crate::control::path(path))
        .with_context(|| format!("reading {}", path.display()))?;
    // The limit, the one byte over it that refuses the file, and one more so that even a
    // refused read never fills the buffer and reallocates.
    let capacity = usize::try_from(limit.bytes.saturating_add(2)).unwrap_or(usize::MAX);
    let mut buf = Zeroizing::new(Vec::with_capacity(capacity));
    file.take(limit.bytes.saturating_add(1))
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {}", path.display()))?;
    if buf.len() as u64 > limit.bytes {
        return Err(TooLarge {
            limit,
            path: path.to_owned(),
        }
        .into());
    }
    Ok(buf)
}

/// Reads the file at `path`, or standard input for `-`, through `limit`.
pub(crate) fn read_file_or_stdin(path: &Path, limit: Limit) -> Result<Vec<u8>> {
    if is_stdin(path) {
        crate::control::no_stdin(Path::new(limit.what))?;
        read_bounded(std::io::stdin().lock(), path, limit)
    } else {
        read_file(path, limit)
    }
}

/// Like [`read_file_or_stdin`], as UTF-8 text.
pub(crate) fn read_text(path: &Path, limit: Limit) -> Result<String> {
    let bytes = read_file_or_stdin(path, limit)?;
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{} {} is not UTF-8 text", limit.what, display_path(path)))
}

/// One line read by [`LineReader::next_line`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InputLine {
    /// A line, without its line ending (`\n` or `\r\n`); invalid UTF-8 replaced.
    Text(String),
    /// A line longer than [`INPUT_LINE_BYTES`]: it was read to its end and dropped.
    TooLong,
}

/// Reads lines holding at most [`INPUT_LINE_BYTES`] of one in memory: a longer line is skipped
/// to its end and reported as [`InputLine::TooLong`]. Unlike `AsyncBufReadExt::lines`, which
/// gathers a line whatever its length, an endless line cannot exhaust memory.
pub(crate) struct LineReader<R> {
    reader: R,
    /// The line so far (empty once it is known to be too long).
    line: Vec<u8>,
    too_long: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(crate) fn new(reader: R) -> Self {
        LineReader {
            reader,
            line: Vec::new(),
            too_long: false,
        }
    }

    /// The next line; `None` at the end of the input. Cancel safe (for `select!`): the line
    /// read so far is kept in `self` between calls, and nothing is lost if the future is
    /// dropped while it waits.
    pub(crate) async fn next_line(&mut self) -> std::io::Result<Option<InputLine>> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                // The end of the input: a last line without a newline still counts.
                if self.line.is_empty() && !self.too_long {
                    return Ok(None);
                }
                break;
            }
            let (chunk, end) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (&available[..i], Some(i + 1)),
                None => (available, None),
            };
            if !self.too_long {
                if self.line.len() + chunk.len() > INPUT_LINE_BYTES {
                    self.too_long = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            let used = end.unwrap_or(available.len());
            self.reader.consume(used);
            if end.is_some() {
                break;
            }
        }
        if std::mem::take(&mut self.too_long) {
            return Ok(Some(InputLine::TooLong));
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(InputLine::Text(
            String::from_utf8_lossy(&line).into_owned(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limit = Limit {
        what: "test input",
        bytes: 10,
        why: "the test's limit",
    };

    #[test]
    fn at_the_limit_is_read_one_over_is_refused() {
        let path = Path::new("f");
        assert_eq!(
            read_bounded(&[7u8; 10][..], path, SMALL).unwrap(),
            [7u8; 10]
        );
        let e = read_bounded(&[7u8; 11][..], path, SMALL).unwrap_err();
        assert_eq!(
            e.to_string(),
            "test input f is larger than 10 bytes, the test's limit"
        );
        assert!(e.is::<TooLarge>());
    }

    #[test]
    fn an_endless_reader_is_refused_after_the_limit() {
        let e = read_bounded(std::io::repeat(0), Path::new("-"), PASSWORD_FILE).unwrap_err();
        assert_eq!(
            e.to_string(),
            "password file (standard input) is larger than 4 KiB, the most a password file \
             may hold"
        );
    }

    #[test]
    fn dev_zero_is_refused() {
        if !Path::new("/dev/zero").exists() {
            return;
        }
        let e = read_file(Path::new("/dev/zero"), record_data(1024 * 1024)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "record data /dev/zero is larger than 1 MiB, the group's maximum record size"
        );
    }

    #[test]
    fn a_large_regular_file_is_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(100 * MIB).unwrap();
        let e = read_file(&path, RECORD_DATA_CEILING).unwrap_err();
        let limit = size(RECORD_DATA_CEILING.bytes);
        assert!(
            e.to_string().contains(&format!("larger than {limit}")),
            "{e}"
        );
    }

    #[test]
    fn record_data_is_never_allowed_past_the_ceiling() {
        assert_eq!(record_data(1024).bytes, 1024);
        assert_eq!(record_data(u32::MAX).bytes, RECORD_DATA_CEILING.bytes);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(4096), "4 KiB");
        assert_eq!(size(512 * 1024), "512 KiB");
        assert_eq!(size(60 * MIB), "60 MiB");
        assert_eq!(size(1500), "1500 bytes");
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        let long = "x".repeat(INPUT_LINE_BYTES + 1);
        let input = format!("one\r\ntwo\n{long}\nthree");
        let mut reader = LineReader::new(tokio::io::BufReader::with_capacity(7, input.as_bytes()));
        let mut got = Vec::new();
        while let Some(l) = reader.next_line().await.unwrap() {
            got.push(l);
        }
        assert_eq!(
            got,
            [
                InputLine::Text("one".into()),
                InputLine::Text("two".into()),
                InputLine::TooLong,
                InputLine::Text("three".into()),
            ]
        );
        let exact = "y".repeat(INPUT_LINE_BYTES);
        let mut reader = LineReader::new(exact.as_bytes());
        assert_eq!(
            reader.next_line().await.unwrap(),
            Some(InputLine::Text(exact.clone()))
        );
        assert_eq!(reader.next_line().await.unwrap(), None);
    }
}
