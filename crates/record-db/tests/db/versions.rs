//! Several versions of one record reaching a replica together: the replica ends with the
//! greatest valid one, as a replica that got them one at a time does.

use std::time::Duration;

use peergroup_identity::Timestamp;
use peergroup_record_db::store::MemoryStore;
use peergroup_record_db::{ChangeKind, Database, Record, RecordFlags, RecordId};

use crate::support::*;

fn now() -> Timestamp {
    t0().saturating_add(HOUR)
}

/// Version `version` of Bob's record `nonce`, made by `by` (Bob or another member).
fn version(g: &Group, by: &Member, nonce: u8, version: u32) -> Record {
    edited(g, by, nonce, version, |_| {})
}

/// [`version`], with `edit` applied before it is signed.
fn edited(
    g: &Group,
    by: &Member,
    nonce: u8,
    version: u32,
    edit: impl FnOnce(&mut Record),
) -> Record {
    let bob = g.bob.peer().clone();
    let serial = g.bob.chain.leaf().serial().to_vec();
    forge(g.group(), by, |r| {
        r.creator = bob.clone();
        r.id = RecordId::derive(&bob, [nonce; 8]);
        r.security.creator_serial = serial;
        r.version = version;
        if version > 1 {
            r.modified_by = Some(by.peer().clone());
            r.last_modified = t0().saturating_add(Duration::from_secs(u64::from(version)));
        }
        r.payload = format!("v{version}").into_bytes();
        edit(r);
    })
}

/// Bob's membership record, published by the group's admin, and a replica that knows no
/// member yet (records signed by Bob are held there until it gets the membership).
fn bob_joining(g: &Group) -> (Record, Database<MemoryStore>) {
    let membership = g
        .replica()
        .publish_membership(g.bob.signer(), &g.bob.chain, now())
        .unwrap()
        .unwrap()
        .record;
    (membership, g.bare_replica())
}

/// The stored version of every record, by id.
fn stored(db: &Database<MemoryStore>) -> Vec<(RecordId, u32)> {
    let mut out = Vec::new();
    db.for_each(&mut |r| out.push((r.id, r.version))).unwrap();
    out.sort();
    out
}

/// Versions held back for an unknown signer are retried together when its membership
/// record arrives: the greatest of each record is kept, whatever order they come back in
/// (the last one staged used to win).
#[test]
fn retried_versions_keep_the_greatest() {
    let g = Group::new();
    let (membership, mut db) = bob_joining(&g);
    // Eight records, versions 3 first, then versions 2, each in its own batch: all held.
    for v in [3, 2] {
        let batch: Vec<Record> = (0..8).map(|n| version(&g, &g.bob, n, v)).collect();
        let report = db.apply(batch, now()).unwrap();
        assert_eq!(report.deferred, 8, "{report:?}");
    }
    let mut report = db.apply(vec![membership.clone()], now()).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.accepted().len(), 9);
    let expected: Vec<(RecordId, u32)> = {
        let mut e: Vec<_> = (0..8)
            .map(|n| (RecordId::derive(g.bob.peer(), [n; 8]), 3))
            .chain([(membership.id, 1)])
            .collect();
        e.sort();
        e
    };
    assert_eq!(stored(&db), expected);
    // The application hears of each record once, as added, with its greatest version.
    let data: Vec<_> = report
        .take_changes()
        .into_iter()
        .filter(|c| c.record.id != membership.id)
        .collect();
    assert_eq!(data.len(), 8, "{data:?}");
    assert!(
        data.iter()
            .all(|c| c.kind == ChangeKind::Added && c.record.version == 3),
        "{data:?}"
    );
    assert!(report.replaced.is_empty(), "{:?}", report.replaced);
}

/// A refused version does not hide a valid one of the same record in the same batch: the
/// versions are tried from the greatest down and the first accepted is kept, as a replica
/// that got them one at a time keeps it (the batch used to keep only its greatest version
/// before validating, and lost the record).
#[test]
fn a_refused_version_hides_no_valid_one() {
    let g = Group::new();
    let v1 = version(&g, &g.bob, 1, 1);
    // Greater versions that every replica refuses, each for another reason.
    let mut tampered = version(&g, &g.bob, 1, 4);
    tampered.payload = b"changed after signing".to_vec();
    let by_carol = version(&g, &g.carol, 1, 3);
    let expired = {
        let mut r = version(&g, &g.bob, 1, 2);
        r.expires = r.last_modified.saturating_add(Duration::from_secs(1));
        resign(g.group(), &g.bob, r)
    };
    let refused = [tampered, by_carol, expired];
    for batch in [
        vec![v1.clone(), refused[0].clone()],
        vec![refused[1].clone(), v1.clone()],
        vec![refused[2].clone(), v1.clone(), refused[0].clone()],
        [vec![v1.clone()], refused.to_vec()].concat(),
    ] {
        let mut one_by_one = g.replica();
        for r in &batch {
            one_by_one.apply(vec![r.clone()], now()).unwrap();
        }
        let mut db = g.replica();
        let report = db.apply(batch.clone(), now()).unwrap();
        assert_eq!(db.get(v1.id).unwrap().as_ref(), Some(&v1), "{report:?}");
        assert_eq!(report.accepted(), vec![v1.clone()]);
        assert_eq!(report.rejected.len(), batch.len() - 1, "{report:?}");
        assert_eq!(db.digest(), one_by_one.digest(), "{batch:?}");
    }
}

/// A greater version whose signer is unknown is held back, and the valid version under it
/// is stored meanwhile; when the signer is learned the greater one replaces it.
#[test]
fn a_held_version_hides_no_valid_one() {
    let g = Group::new();
    let mut author = g.replica();
    let membership = author
        .publish_membership(g.alice.signer(), &g.alice.chain, now())
        .unwrap()
        .unwrap()
        .record;
    let v1 = version(&g, &g.bob, 1, 1);
    // Alice (an admin) updates Bob's record; this replica does not know her yet.
    let by_admin = version(&g, &g.alice, 1, 2);
    let mut db = Database::open(MemoryStore::new(), &g.bob.chain).unwrap();
    db.learn_member(&g.bob.chain).unwrap();
    let report = db.apply(vec![by_admin.clone(), v1.clone()], now()).unwrap();
    assert_eq!(report.deferred, 1, "{report:?}");
    assert_eq!(db.get(v1.id).unwrap().as_ref(), Some(&v1));
    let report = db.apply(vec![membership], now()).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(db.get(v1.id).unwrap().as_ref(), Some(&by_admin));
    assert_eq!(report.replaced, vec![v1]);
}

/// A batch reports each change once, with the record it stored (taken, not copied): a new
/// record is added, a newer version of a held one updated, a tombstone of a held one deleted,
/// and a tombstone of a record never held changes nothing. Each stored record's item key is
/// the one it came with.
#[test]
fn changes_are_taken_from_the_records_stored() {
    let g = Group::new();
    let (membership, mut db) = bob_joining(&g);
    let held = [version(&g, &g.bob, 1, 1), version(&g, &g.bob, 2, 1)];
    let report = db
        .apply([vec![membership], held.to_vec()].concat(), now())
        .unwrap();
    assert_eq!(report.changes_len(), 3, "{report:?}");
    let tombstone = |nonce: u8| {
        edited(&g, &g.bob, nonce, 2, |r| {
            r.flags = RecordFlags::from_bits(RecordFlags::DELETED);
            r.payload.clear();
        })
    };
    let batch = vec![
        version(&g, &g.bob, 1, 2),
        tombstone(2),
        tombstone(3),
        version(&g, &g.bob, 4, 1),
    ];
    let mut report = db.apply(batch.clone(), now()).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.accepted().len(), 4);
    for (r, key) in report.accepted_keyed() {
        assert_eq!(key, r.item_key());
    }
    let expected = [
        (batch[0].id, Some(ChangeKind::Updated)),
        (batch[1].id, Some(ChangeKind::Deleted)),
        (batch[2].id, None),
        (batch[3].id, Some(ChangeKind::Added)),
    ];
    for (id, kind) in expected {
        assert_eq!(report.change_of(&id), kind, "{id}");
    }
    let changes = report.take_changes();
    assert!(report.accepted().is_empty(), "the changes took the records");
    assert_eq!(report.changes_len(), 0);
    let mut got: Vec<(RecordId, ChangeKind, u32)> = changes
        .iter()
        .map(|c| (c.record.id, c.kind, c.record.version))
        .collect();
    got.sort_by_key(|c| c.0);
    let mut want = vec![
        (batch[0].id, ChangeKind::Updated, 2),
        (batch[1].id, ChangeKind::Deleted, 2),
        (batch[3].id, ChangeKind::Added, 1),
    ];
    want.sort_by_key(|c| c.0);
    assert_eq!(got, want);
    for c in &changes {
        let sent = batch.iter().find(|r| r.id == c.record.id).unwrap();
        assert_eq!(&c.record, sent);
    }
}
