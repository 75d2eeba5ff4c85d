//! The SQLite store against the memory store, local operations, expiry, export and import.

use std::time::Duration;

use peergroup_record_db::export::ImportMode;
use peergroup_record_db::store::{MemoryStore, SqliteStore, Store};
use peergroup_record_db::{
    ChangeKind, Database, Error, NewRecord, RecordId, RecordUpdate, ValidationError,
};

use crate::support::*;

fn exercise<S: Store>(g: &Group, db: &mut Database<S>) {
    let now = t0().saturating_add(HOUR);
    let a = db
        .create(
            g.bob.signer(),
            new_record(b"one", now.saturating_add(DAY)),
            now,
        )
        .unwrap();
    assert_eq!(a.kind, ChangeKind::Added);
    assert_eq!(a.record.version, 1);
    let attrs = r#"<attributes><attribute name="Owner" type="string">Bob</attribute><attribute name="Priority" type="int">3</attribute></attributes>"#;
    let b = db
        .create(
            g.carol.signer(),
            NewRecord {
                attributes: attrs.into(),
                ..new_record(b"two", now.saturating_add(DAY))
            },
            now,
        )
        .unwrap();
    let u = db
        .update(
            g.bob.signer(),
            a.record.id,
            RecordUpdate {
                payload: Some(b"one!".to_vec()),
                ..Default::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(u.kind, ChangeKind::Updated);
    assert_eq!(u.record.version, 2);
    assert_eq!(u.record.modified_by.as_ref(), Some(g.bob.peer()));
    // Expiry may only grow.
    let shrink = RecordUpdate {
        expires: Some(now.saturating_add(HOUR)),
        ..Default::default()
    };
    assert!(matches!(
        db.update(g.bob.signer(), a.record.id, shrink, now),
        Err(Error::Invalid(ValidationError::ExpiryShrinks { .. }))
    ));
    assert_eq!(db.records_of_type(app_type()).unwrap().len(), 2);
    let found = db
        .search(r#"<peersearch><clause attrib="Priority" type="int" compare="greaterorequal">2</clause></peersearch>"#)
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, b.record.id);
    let by_creator = format!(
        r#"<peersearch><clause attrib="peercreatorid" type="string">{}</clause></peersearch>"#,
        g.bob.peer()
    );
    assert_eq!(db.search(&by_creator).unwrap().len(), 1);
    assert!(matches!(db.search("<peersearch/>"), Err(Error::Search(_))));
    let d = db.delete(g.bob.signer(), a.record.id, now).unwrap();
    assert_eq!(d.kind, ChangeKind::Deleted);
    assert!(db.get(a.record.id).unwrap().is_none());
    assert!(db.get_any(a.record.id).unwrap().unwrap().is_deleted());
    assert!(matches!(
        db.delete(g.bob.signer(), a.record.id, now),
        Err(Error::NotFound(_))
    ));
    // Expiry removes the record and the tombstone.
    let gone = db.sweep(now.saturating_add(DAY * 2)).unwrap();
    assert_eq!(gone.len(), 1, "only the live record is reported");
    assert_eq!(gone[0].kind, ChangeKind::Expired);
    assert_eq!(db.len(), 0);
}

#[test]
fn memory_and_sqlite_behave_alike() {
    let g = Group::new();
    exercise(&g, &mut g.replica());
    exercise(
        &g,
        &mut g.replica_on(SqliteStore::open_in_memory().unwrap()),
    );
}

#[test]
fn sqlite_survives_reopen() {
    let g = Group::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.sqlite");
    let now = t0().saturating_add(HOUR);
    let (id, digest) = {
        let mut db = g.replica_on(SqliteStore::open(&path).unwrap());
        db.publish_membership(g.bob.signer(), &g.bob.chain, now)
            .unwrap();
        let r = db
            .create(
                g.bob.signer(),
                new_record(b"kept", now.saturating_add(DAY)),
                now,
            )
            .unwrap()
            .record;
        db.set_meta("peer_time_offset", vec![1, 2, 3]).unwrap();
        (r.id, db.digest())
    };
    let db = Database::open(SqliteStore::open(&path).unwrap(), g.root.chain()).unwrap();
    assert_eq!(db.get(id).unwrap().unwrap().payload, b"kept");
    assert_eq!(db.digest(), digest);
    assert_eq!(db.meta("peer_time_offset").unwrap(), Some(vec![1, 2, 3]));
    assert!(
        db.members().of_peer(g.bob.peer()).next().is_some(),
        "membership not reloaded"
    );
}

#[test]
fn autorefresh_republishes_before_expiry() {
    let g = Group::new();
    let mut db = g.replica();
    let now = t0().saturating_add(HOUR);
    let r = db
        .create(
            g.bob.signer(),
            NewRecord {
                autorefresh: true,
                ..new_record(b"alive", now.saturating_add(Duration::from_secs(300)))
            },
            now,
        )
        .unwrap()
        .record;
    assert!(
        db.refresh(g.bob.signer(), Duration::from_secs(20), now)
            .unwrap()
            .is_empty()
    );
    let later = now.saturating_add(Duration::from_secs(290));
    let refreshed = db
        .refresh(g.bob.signer(), Duration::from_secs(20), later)
        .unwrap();
    assert_eq!(refreshed.len(), 1);
    assert_eq!(refreshed[0].record.version, 2);
    assert_eq!(
        refreshed[0].record.expires,
        later.saturating_add(Duration::from_secs(300))
    );
    assert!(
        db.sweep(now.saturating_add(Duration::from_secs(301)))
            .unwrap()
            .is_empty()
    );
    assert!(db.get(r.id).unwrap().is_some());
}

#[test]
fn export_import_round_trip_and_damage() {
    let g = Group::new();
    let dir = tempfile::tempdir().unwrap();
    let now = t0().saturating_add(HOUR);
    let mut db = g.replica();
    db.publish_membership(g.bob.signer(), &g.bob.chain, now)
        .unwrap();
    for i in 0..20u8 {
        db.create(
            g.bob.signer(),
            new_record(&[i; 100], now.saturating_add(DAY)),
            now,
        )
        .unwrap();
    }
    let file = dir.path().join("db.export");
    assert_eq!(db.export(&file).unwrap(), 21);

    let mut fresh = Database::open(MemoryStore::new(), g.root.chain()).unwrap();
    let report = fresh.import(&file, now, ImportMode::AllOrNothing).unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert!(report.committed);
    assert_eq!((report.read, report.accepted), (21, 21));
    assert_eq!(fresh.digest(), db.digest());

    let bytes = std::fs::read(&file).unwrap();
    for (what, damaged) in [
        ("flipped byte", {
            let mut b = bytes.clone();
            b[200] ^= 1;
            b
        }),
        ("truncated", bytes[..bytes.len() - 40].to_vec()),
        ("empty", vec![]),
    ] {
        let bad = dir.path().join("bad.export");
        std::fs::write(&bad, damaged).unwrap();
        let mut target = g.replica();
        let before = target.digest();
        let err = target.import(&bad, now, ImportMode::Partial).unwrap_err();
        assert!(matches!(err, Error::BadExport(_)), "{what}: {err}");
        assert_eq!(target.digest(), before, "{what} changed the database");
    }
    // Another group's export.
    let other = Database::open(MemoryStore::new(), &g.mallory.chain).unwrap();
    let foreign = dir.path().join("foreign.export");
    other.export(&foreign).unwrap();
    assert!(matches!(
        g.replica().import(&foreign, now, ImportMode::Partial),
        Err(Error::BadExport(_))
    ));
}

/// Records found by item key (what sync and flood repair send), through the in-memory key
/// index and the store's id-prefix lookup: ids sharing a prefix, the lowest and highest
/// prefixes, replaced versions, and after reopening.
fn by_item_key<S: Store>(g: &Group, db: &mut Database<S>) -> Vec<peergroup_record_db::Record> {
    let gp = g.group().clone();
    let now = t0().saturating_add(HOUR);
    let records = vec![
        forge(&gp, &g.bob, |r| r.id = RecordId::derive(&r.creator, [9; 8])),
        forge(&gp, &g.carol, |r| {
            r.id = RecordId::derive(&r.creator, [9; 8])
        }),
        forge(&gp, &g.bob, |r| r.id = RecordId::derive(&r.creator, [0; 8])),
        forge(&gp, &g.bob, |r| {
            r.id = RecordId::derive(&r.creator, [0xff; 8])
        }),
    ];
    assert_eq!(records[0].id.0[..8], records[1].id.0[..8], "same prefix");
    let report = db.apply(records.clone(), now).unwrap();
    assert_eq!(report.accepted().len(), 4, "{:?}", report.rejected);
    for r in &records {
        assert_eq!(db.record_by_key(r.item_key()).unwrap().as_ref(), Some(r));
    }
    assert_eq!(db.record_by_key(0x1234_5678).unwrap(), None);
    // A new version has a new item key; the old one finds nothing.
    let old = records[0].clone();
    let newer = resign(&gp, &g.bob, {
        let mut r = old.clone();
        r.version = 2;
        r.last_modified = now;
        r.modified_by = Some(g.bob.peer().clone());
        r
    });
    let report = db.apply(vec![newer.clone()], now).unwrap();
    assert_eq!(report.accepted().len(), 1, "{:?}", report.rejected);
    assert_eq!(db.record_by_key(old.item_key()).unwrap(), None);
    assert_eq!(
        db.record_by_key(newer.item_key()).unwrap(),
        Some(newer.clone())
    );
    vec![
        newer,
        records[1].clone(),
        records[2].clone(),
        records[3].clone(),
    ]
}

#[test]
fn records_are_found_by_item_key_in_both_stores() {
    let g = Group::new();
    by_item_key(&g, &mut g.replica());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.sqlite");
    let held = by_item_key(&g, &mut g.replica_on(SqliteStore::open(&path).unwrap()));
    // A file from before the item-key index was dropped: opening it drops the index.
    let index_count = || -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'records_by_key'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("CREATE INDEX records_by_key ON records(item_key)", [])
        .unwrap();
    assert_eq!(index_count(), 1);
    let reopened = g.replica_on(SqliteStore::open(&path).unwrap());
    assert_eq!(index_count(), 0);
    for r in &held {
        assert_eq!(
            reopened.record_by_key(r.item_key()).unwrap().as_ref(),
            Some(r)
        );
    }
}

/// A store belongs to one group: opened for another, it is refused and left as it was
/// (before, the second group's records went in beside the first's).
#[test]
fn a_store_of_another_group_is_refused() {
    let g = Group::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.sqlite");
    let now = t0().saturating_add(HOUR);
    let id = {
        let mut db = g.replica_on(SqliteStore::open(&path).unwrap());
        db.create(
            g.bob.signer(),
            new_record(b"kept", now.saturating_add(DAY)),
            now,
        )
        .unwrap()
        .record
        .id
    };
    let err = Database::open(SqliteStore::open(&path).unwrap(), &g.mallory.chain).unwrap_err();
    assert!(matches!(err, Error::WrongGroup { .. }), "{err}");
    assert!(err.to_string().contains(&g.group().to_string()), "{err}");
    let db = g.replica_on(SqliteStore::open(&path).unwrap());
    assert!(
        db.get(id).unwrap().is_some(),
        "the first group's records are kept"
    );
}

/// A deleted record published again under its id (a presence withdrawn by presence
/// maintenance, then published again): the version after the tombstone, live, and accepted
/// by a replica that holds the tombstone. Only a tombstone can be recreated.
#[test]
fn a_deleted_record_is_recreated_after_its_tombstone() {
    let g = Group::new();
    let mut db = g.replica();
    let mut other = g.replica();
    let now = t0().saturating_add(HOUR);
    let a = db
        .create(
            g.bob.signer(),
            new_record(b"one", now.saturating_add(DAY)),
            now,
        )
        .unwrap()
        .record;
    let gone = db.delete(g.bob.signer(), a.id, now).unwrap().record;
    other.apply(vec![a.clone(), gone.clone()], now).unwrap();
    let later = now.saturating_add(Duration::from_secs(1));
    let back = db
        .recreate(
            g.bob.signer(),
            a.id,
            new_record(b"two", later.saturating_add(DAY)),
            later,
        )
        .unwrap();
    assert_eq!(back.kind, ChangeKind::Added);
    assert_eq!(back.record.version, gone.version + 1);
    assert!(!back.record.is_deleted());
    assert_eq!(db.get(a.id).unwrap().unwrap().payload, b"two");
    let report = other.apply(vec![back.record.clone()], later).unwrap();
    assert_eq!(report.accepted().len(), 1, "{:?}", report.rejected);
    assert_eq!(other.get(a.id).unwrap().unwrap().payload, b"two");
    // A live record is updated, not recreated; an unknown one is created.
    assert!(matches!(
        db.recreate(
            g.bob.signer(),
            a.id,
            new_record(b"x", later.saturating_add(DAY)),
            later
        ),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.recreate(
            g.bob.signer(),
            RecordId::derive(g.bob.peer(), *b"nothing!"),
            new_record(b"x", later.saturating_add(DAY)),
            later
        ),
        Err(Error::NotFound(_))
    ));
}
