//! Importing an export: each refused record is named with its reason; by default one refusal
//! imports nothing, `Partial` imports the others; the file is bounded before it is read.

use std::path::Path;

use peergroup_record_db::export::{ImportMode, MAX_EXPORT_FILE_BYTES, RefusalReason, read_export};
use peergroup_record_db::{Error, Record, ValidationError, codec};

use crate::support::*;

/// Rewrites an export file with `edit` applied to its records (and a valid checksum: the
/// file is well formed, its records are not).
fn rewrite(path: &Path, group: &str, edit: impl FnOnce(&mut Vec<Record>)) {
    let mut records = read_export(path, group).unwrap();
    edit(&mut records);
    let mut out = b"PGDBEXP\0".to_vec();
    out.push(1);
    out.extend_from_slice(&(group.len() as u16).to_le_bytes());
    out.extend_from_slice(group.as_bytes());
    out.extend_from_slice(&(records.len() as u64).to_le_bytes());
    for r in &records {
        let bytes = codec::encode(r);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    let digest = peergroup_identity::sha256(&out);
    out.extend_from_slice(&digest);
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_tampered_record_is_named_and_by_default_nothing_is_imported() {
    let g = Group::new();
    let dir = tempfile::tempdir().unwrap();
    let now = t0().saturating_add(HOUR);
    let mut source = g.replica();
    let mut ids = Vec::new();
    for i in 0..3u8 {
        let c = source
            .create(
                g.bob.signer(),
                new_record(&[i; 10], now.saturating_add(DAY)),
                now,
            )
            .unwrap();
        ids.push(c.record.id);
    }
    let file = dir.path().join("db.export");
    source.export(&file).unwrap();
    let group = g.group().to_string();
    rewrite(&file, &group, |records| {
        let r = records.iter_mut().find(|r| r.id == ids[1]).unwrap();
        r.payload = b"tampered".to_vec();
    });

    // The target already holds a record of its own: nothing of it may be lost.
    let mut target = g.replica();
    let own = target
        .create(
            g.carol.signer(),
            new_record(b"mine", now.saturating_add(DAY)),
            now,
        )
        .unwrap()
        .record;
    let before = target.digest();
    let report = target.import(&file, now, ImportMode::AllOrNothing).unwrap();
    assert_eq!(report.read, 3);
    assert!(!report.committed);
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].id, ids[1]);
    assert_eq!(
        report.refused[0].reason,
        RefusalReason::Invalid(ValidationError::BadSignature)
    );
    assert_eq!(report.refused[0].reason.to_string(), "bad record signature");
    assert_eq!(target.digest(), before, "nothing imported");
    assert_eq!(target.get(own.id).unwrap(), Some(own.clone()));

    let report = target.import(&file, now, ImportMode::Partial).unwrap();
    assert!(report.committed);
    assert_eq!((report.accepted, report.refused.len()), (2, 1));
    for id in [ids[0], ids[2]] {
        assert!(target.get(id).unwrap().is_some());
    }
    assert!(target.get(ids[1]).unwrap().is_none());
    assert_eq!(target.get(own.id).unwrap(), Some(own));

    // Again: what is held is counted as such.
    let report = target.import(&file, now, ImportMode::Partial).unwrap();
    assert_eq!((report.accepted, report.already_held), (0, 2));
}

#[test]
fn files_are_bounded_before_they_are_read() {
    let g = Group::new();
    let dir = tempfile::tempdir().unwrap();
    let now = t0().saturating_add(HOUR);
    let mut db = g.replica();
    // A (sparse) file one byte over the limit: refused from its size.
    let huge = dir.path().join("huge.export");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_EXPORT_FILE_BYTES + 1)
        .unwrap();
    let err = db.import(&huge, now, ImportMode::Partial).unwrap_err();
    assert!(
        matches!(&err, Error::BadExport(m) if m.contains("at most 1073741824 bytes")),
        "{err}"
    );
    // A device that never ends.
    let err = db
        .import(Path::new("/dev/zero"), now, ImportMode::Partial)
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadExport(m) if m.contains("not a regular file")),
        "{err}"
    );
    // A header claiming more records than the file can hold.
    let file = dir.path().join("claims.export");
    db.export(&file).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let group = g.group().to_string();
    let at = 8 + 1 + 2 + group.len();
    bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let body = bytes.len() - 32;
    let digest = peergroup_identity::sha256(&bytes[..body]);
    bytes[body..].copy_from_slice(&digest);
    std::fs::write(&file, &bytes).unwrap();
    let err = db.import(&file, now, ImportMode::Partial).unwrap_err();
    assert!(
        matches!(&err, Error::BadExport(m) if m.contains("claims")),
        "{err}"
    );
}
