//! Database export and import files.
//!
//! ```text
//! "PGDBEXP\0" | version u8 = 1 | group peer name (u16 LE length + UTF-8) | count u64 LE
//! | count × (length u32 LE | canonical record encoding) | SHA-256 of all the above (32 bytes)
//! ```
//!
//! Import checks the file's size ([`MAX_EXPORT_FILE_BYTES`], from its metadata, before
//! reading a byte: a huge file or a device such as `/dev/zero` is refused at once), then the
//! magic, version, group and checksum, and decodes every record before it changes anything;
//! then every record is validated again, exactly as if received from a member, and applied
//! in one commit. A damaged file changes nothing. Each record refused is named with its
//! reason ([`ImportReport::refused`]); by default ([`ImportMode::AllOrNothing`]) one refusal
//! means nothing is imported, [`ImportMode::Partial`] imports the others.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use peergroup_identity::Timestamp;

use crate::codec;
use crate::db::Database;
use crate::error::{Error, ValidationError};
use crate::record::{Record, RecordId};
use crate::store::Store;

const MAGIC: &[u8; 8] = b"PGDBEXP\0";
const VERSION: u8 = 1;

/// The largest export file written or read: 1 GiB. An import holds every record of the file
/// in memory before it applies them (so a damaged file changes nothing), so the file's size
/// bounds that memory; a larger file is refused before anything is read.
pub const MAX_EXPORT_FILE_BYTES: u64 = 1 << 30;

/// The header before the records (magic, version, group name length, record count) and the
/// checksum after them, without the group name.
const FIXED_BYTES: u64 = 8 + 1 + 2 + 8 + 32;

/// What to do with the other records when an import refuses some.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImportMode {
    /// Import nothing when any record is refused (the default).
    #[default]
    AllOrNothing,
    /// Import every record that is valid; report the others.
    Partial,
}

/// Why an import refused a record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusalReason {
    /// It is not valid in this group (exactly as if a member had sent it).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Its signer is not known yet and the table of records held for unknown signers is full
    /// for it (see [`crate::MAX_DEFERRED_BYTES`]).
    #[error("its signer is unknown and the records held for unknown signers are at their limit")]
    DeferredFull,
}

/// A record an import refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The record's id.
    pub id: RecordId,
    /// Why.
    pub reason: RefusalReason,
}

/// What [`Database::import`] did with an export file's records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// Records in the file.
    pub read: usize,
    /// Records stored (new here, or newer than the version held).
    pub accepted: usize,
    /// Records already held, or older than the version held.
    pub already_held: usize,
    /// Records held until their signer's membership record arrives (their signer is not in
    /// the file nor known here).
    pub deferred: usize,
    /// Records refused, each with why.
    pub refused: Vec<Refusal>,
    /// Whether anything was committed: false when [`ImportMode::AllOrNothing`] met a
    /// refusal (then `accepted` and `deferred` say what would have been imported).
    pub committed: bool,
}

struct HashingWriter<W: Write> {
    inner: W,
    hash: ring::digest::Context,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        if self.written + 32 > MAX_EXPORT_FILE_BYTES {
            return Err(std::io::Error::other(format!(
                "the database is too large for one export file (at most {MAX_EXPORT_FILE_BYTES} bytes)"
            )));
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| {
        Error::Store(crate::error::StoreError::Io(format!(
            "{}: {e}",
            path.display()
        )))
    }
}

impl<S: Store> Database<S> {
    /// Writes every stored record (tombstones included) to `path`, atomically: the file
    /// appears complete or not at all. Returns the number of records written.
    pub fn export(&self, path: &Path) -> Result<u64, Error> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.partial",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let result = (|| {
            let file = File::create(&tmp).map_err(io(&tmp))?;
            let mut w = HashingWriter {
                inner: BufWriter::new(file),
                hash: ring::digest::Context::new(&ring::digest::SHA256),
                written: 0,
            };
            let group = self.group().to_string();
            w.write_all(MAGIC).map_err(io(&tmp))?;
            w.write_all(&[VERSION]).map_err(io(&tmp))?;
            w.write_all(&(group.len() as u16).to_le_bytes())
                .map_err(io(&tmp))?;
            w.write_all(group.as_bytes()).map_err(io(&tmp))?;
            w.write_all(&(self.len() as u64).to_le_bytes())
                .map_err(io(&tmp))?;
            let mut count = 0u64;
            let mut failure = None;
            self.for_each(&mut |r| {
                if failure.is_some() {
                    return;
                }
                let bytes = codec::encode(&r);
                let res = w
                    .write_all(&(bytes.len() as u32).to_le_bytes())
                    .and_then(|_| w.write_all(&bytes));
                match res {
                    Ok(()) => count += 1,
                    Err(e) => failure = Some(e),
                }
            })?;
            if let Some(e) = failure {
                return Err(io(&tmp)(e));
            }
            if count != self.len() as u64 {
                return Err(Error::BadExport(
                    "the database changed during export".into(),
                ));
            }
            let digest = w.hash.clone().finish();
            let mut inner = w.inner;
            inner.write_all(digest.as_ref()).map_err(io(&tmp))?;
            let file = inner.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
            file.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, path).map_err(io(path))?;
            peergroup_identity::fs::sync_dir(dir)
                .map_err(|e| Error::Store(crate::error::StoreError::Io(e.to_string())))?;
            Ok(count)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Reads an export of this group's database and applies every record as if it had been
    /// received, in one commit. Fails without changing anything when the file is too large,
    /// damaged or of another group. Records refused are reported with their reasons; with
    /// [`ImportMode::AllOrNothing`] any refusal leaves the database unchanged
    /// ([`ImportReport::committed`] is false).
    pub fn import(
        &mut self,
        path: &Path,
        now: Timestamp,
        mode: ImportMode,
    ) -> Result<ImportReport, Error> {
        let records = read_export(path, &self.group().to_string())?;
        let read = records.len();
        let (apply, committed) = self.apply_import(records, now, mode == ImportMode::Partial)?;
        let accepted = apply.accepted().len();
        let mut refused: Vec<Refusal> = apply
            .rejected
            .into_iter()
            .map(|(id, e)| Refusal {
                id,
                reason: RefusalReason::Invalid(e),
            })
            .collect();
        refused.extend(apply.deferred_dropped.into_iter().map(|id| Refusal {
            id,
            reason: RefusalReason::DeferredFull,
        }));
        Ok(ImportReport {
            read,
            accepted,
            already_held: apply.duplicates + apply.stale.len(),
            deferred: apply.deferred,
            refused,
            committed,
        })
    }
}

/// Reads and checks an export file completely, returning its records.
pub fn read_export(path: &Path, expected_group: &str) -> Result<Vec<Record>, Error> {
    let bad = |why: String| Error::BadExport(format!("{}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let len = meta.len();
    if len > MAX_EXPORT_FILE_BYTES {
        return Err(bad(format!(
            "the file is {len} bytes; an export is at most {MAX_EXPORT_FILE_BYTES} bytes (1 GiB)"
        )));
    }
    if len < FIXED_BYTES {
        return Err(bad("too short".into()));
    }
    // What the file is, before whether it is whole: another kind of file is named as such.
    let mut reader = BufReader::new(File::open(path).map_err(io(path))?);
    let mut magic = [0u8; 8];
    reader.read_exact(&mut magic).map_err(io(path))?;
    if &magic != MAGIC {
        let looks = if magic.starts_with(b"<") || magic.starts_with(b"\xef\xbb\xbf<") {
            " (it is XML: an invitation or a configuration?)"
        } else {
            ""
        };
        return Err(bad(format!("not a peergroup database export{looks}")));
    }
    // Pass 1: the checksum over everything but the trailer.
    let mut reader = BufReader::new(File::open(path).map_err(io(path))?);
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut remaining = len - 32;
    let mut buf = vec![0u8; 64 * 1024];
    while remaining > 0 {
        let want = usize::try_from(remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        reader.read_exact(&mut buf[..want]).map_err(io(path))?;
        hash.update(&buf[..want]);
        remaining -= want as u64;
    }
    let mut trailer = [0u8; 32];
    reader.read_exact(&mut trailer).map_err(io(path))?;
    if hash.finish().as_ref() != trailer {
        return Err(bad("checksum mismatch (the file is damaged)".into()));
    }
    // Pass 2: parse.
    let mut r = BufReader::new(File::open(path).map_err(io(path))?).take(len - 32);
    let mut head = [0u8; 9];
    r.read_exact(&mut head).map_err(io(path))?;
    if &head[..8] != MAGIC {
        return Err(bad("not a peergroup database export".into()));
    }
    if head[8] != VERSION {
        return Err(bad(format!("unknown export version {}", head[8])));
    }
    let mut n = [0u8; 2];
    r.read_exact(&mut n).map_err(io(path))?;
    let mut group = vec![0u8; usize::from(u16::from_le_bytes(n))];
    r.read_exact(&mut group).map_err(io(path))?;
    if group != expected_group.as_bytes() {
        return Err(bad(format!(
            "it belongs to group {}, not {expected_group}",
            String::from_utf8_lossy(&group)
        )));
    }
    let mut c = [0u8; 8];
    r.read_exact(&mut c).map_err(io(path))?;
    let count = u64::from_le_bytes(c);
    // Each record takes at least its 4-byte length and one byte.
    let room = len - FIXED_BYTES - group.len() as u64;
    if count > room / 5 {
        return Err(bad(format!("it claims {count} records in {room} bytes")));
    }
    let mut records = Vec::new();
    for i in 0..count {
        let mut l = [0u8; 4];
        r.read_exact(&mut l)
            .map_err(|_| bad(format!("record {i} is cut short")))?;
        let l = u32::from_le_bytes(l) as usize;
        if l > codec::MAX_ENCODED_LEN || l as u64 > r.limit() {
            return Err(bad(format!("record {i} claims {l} bytes")));
        }
        let mut bytes = vec![0u8; l];
        r.read_exact(&mut bytes)
            .map_err(|_| bad(format!("record {i} is cut short")))?;
        records.push(codec::decode(&bytes).map_err(|e| bad(format!("record {i}: {e}")))?);
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra).map_err(io(path))? != 0 {
        return Err(bad("bytes after the last record".into()));
    }
    Ok(records)
}
