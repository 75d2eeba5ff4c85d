//! Revocation records: every replica keeps the same ones whatever order they arrive in, and
//! the revocations it holds in memory are those of the records it stores.

use std::time::Duration;

use peergroup_credential_roles::RevocationTarget;
use peergroup_identity::Timestamp;
use peergroup_record_db::store::MemoryStore;
use peergroup_record_db::{Database, Record, ValidationError};

use crate::support::*;

fn at(minutes: u64) -> Timestamp {
    t0().saturating_add(HOUR)
        .saturating_add(Duration::from_secs(60 * minutes))
}

/// A revocation record by Alice (the group's admin) made at `when`.
fn revocation(g: &Group, target: RevocationTarget, when: Timestamp) -> Record {
    g.replica()
        .revoke(g.alice.signer(), target, "test", when)
        .unwrap()
        .record
}

/// The same replica opened again on its store: what it knows after a restart.
fn reopened(g: &Group, db: Database<MemoryStore>) -> Database<MemoryStore> {
    g.replica_on(db.into_store())
}

/// An admin revokes itself, then (its key still in use) revokes a member. Each replica keeps
/// both records whatever the order and batching: a revocation record is judged without the
/// revocations, and never purged. (The self-revocation used to be kept by a replica that
/// took it in alone and purged by one that took in a later revocation; a revocation made
/// after its signer's was kept or refused depending on the order.)
#[test]
fn revocations_are_kept_whatever_the_order() {
    let g = Group::new();
    let own = revocation(&g, RevocationTarget::Peer(g.alice.peer().clone()), at(0));
    let later = revocation(&g, RevocationTarget::Peer(g.carol.peer().clone()), at(10));
    let now = at(20);
    let mut replicas = Vec::new();
    for batches in [
        vec![vec![own.clone()], vec![later.clone()]],
        vec![vec![later.clone()], vec![own.clone()]],
        vec![vec![own.clone(), later.clone()]],
        vec![vec![later.clone(), own.clone()]],
    ] {
        let mut db = g.replica();
        for batch in batches {
            let report = db.apply(batch, now).unwrap();
            assert!(report.rejected.is_empty(), "{:?}", report.rejected);
            assert!(report.purged.is_empty(), "{:?}", report.purged);
        }
        assert_eq!(db.get(own.id).unwrap().as_ref(), Some(&own));
        assert_eq!(db.get(later.id).unwrap().as_ref(), Some(&later));
        replicas.push(db);
    }
    let expected = replicas[0].revocations().clone();
    assert_eq!(expected.peer_revoked_at(g.alice.peer()), Some(at(0)));
    assert_eq!(expected.peer_revoked_at(g.carol.peer()), Some(at(10)));
    let digest = replicas[0].digest();
    for db in replicas {
        assert_eq!(db.digest(), digest);
        assert_eq!(db.revocations(), &expected);
        // Memory is what is stored: a restart changes nothing.
        assert_eq!(reopened(&g, db).revocations(), &expected);
    }
}

/// Records made after their signer's revocation are still purged; revocation records are
/// not, whoever signed them.
#[test]
fn a_revoked_admins_records_go_but_its_revocations_stay() {
    let g = Group::new();
    let own = revocation(&g, RevocationTarget::Peer(g.alice.peer().clone()), at(0));
    let note = forge(g.group(), &g.alice, |r| {
        r.created = at(5);
        r.last_modified = at(5);
    });
    let later = revocation(&g, RevocationTarget::Peer(g.bob.peer().clone()), at(10));
    let mut db = g.replica();
    let report = db.apply(vec![note.clone(), later.clone()], at(20)).unwrap();
    assert_eq!(report.accepted().len(), 2, "{report:?}");
    let report = db.apply(vec![own.clone()], at(20)).unwrap();
    assert_eq!(report.purged, vec![note.clone()]);
    assert!(db.get(note.id).unwrap().is_none());
    assert!(db.get(later.id).unwrap().is_some());
    assert_eq!(db.revocations().peer_revoked_at(g.bob.peer()), Some(at(10)));
}

/// A revocation record cannot be changed (nor deleted): memory holds the target of each, and
/// what was purged in a target's name would not come back if it were withdrawn.
#[test]
fn a_revocation_cannot_be_changed() {
    let g = Group::new();
    let original = revocation(&g, RevocationTarget::Peer(g.carol.peer().clone()), at(0));
    let mut changed = original.clone();
    changed.version = 2;
    changed.modified_by = Some(g.alice.peer().clone());
    changed.last_modified = at(1);
    changed.payload = peergroup_record_db::reserved::RevocationPayload {
        target: RevocationTarget::Peer(g.bob.peer().clone()),
        reason: String::new(),
    }
    .to_payload();
    let changed = resign(g.group(), &g.alice, changed);
    let mut db = g.replica();
    db.apply(vec![original.clone()], at(2)).unwrap();
    let report = db.apply(vec![changed.clone()], at(2)).unwrap();
    assert!(
        matches!(
            report.rejected.as_slice(),
            [(_, ValidationError::BadReservedPayload { reason, .. })] if reason.contains("changed")
        ),
        "{:?}",
        report.rejected
    );
    assert_eq!(db.get(original.id).unwrap(), Some(original));
    assert_eq!(db.revocations().peer_revoked_at(g.bob.peer()), None);
    // Alone, it is refused too.
    let report = g.replica().apply(vec![changed], at(2)).unwrap();
    assert_eq!(report.rejected.len(), 1);
}

/// A revocation lasts as long as its record (at most its signer's membership): when the
/// record expires and is swept, the revocation goes from memory too, as after a restart.
#[test]
fn a_revocation_ends_with_its_record() {
    let g = Group::new();
    let r = revocation(&g, RevocationTarget::Peer(g.carol.peer().clone()), at(0));
    let mut db = g.replica();
    db.apply(vec![r.clone()], at(1)).unwrap();
    assert!(db.revocations().peer_revoked_at(g.carol.peer()).is_some());
    db.sweep(r.expires.saturating_sub(Duration::from_secs(1)))
        .unwrap();
    assert!(db.revocations().peer_revoked_at(g.carol.peer()).is_some());
    db.sweep(r.expires).unwrap();
    assert!(db.get(r.id).unwrap().is_none());
    assert!(db.revocations().is_empty());
    assert!(reopened(&g, db).revocations().is_empty());
}

/// A purge takes the record's id with it. A replica that had replaced a version with one its
/// signer made after being revoked no longer holds the older version once the revocation
/// purges the newer; one that got the revocation first refused the newer and kept the older.
/// Synchronisation brings them together: the older version's item key is missing on the
/// first, which takes it in again (it is valid). (Until then the two differ: a replica keeps
/// only the winning version of each record, and the one that purged has nothing to fall back
/// on.)
#[test]
fn a_version_a_purge_lost_comes_back_by_synchronisation() {
    let g = Group::new();
    let mut author = g.replica();
    let v1 = author
        .create(
            g.bob.signer(),
            new_record(b"v1", at(0).saturating_add(DAY)),
            at(0),
        )
        .unwrap()
        .record;
    let revocation = revocation(&g, RevocationTarget::Peer(g.bob.peer().clone()), at(5));
    let v2 = author
        .update(
            g.bob.signer(),
            v1.id,
            peergroup_record_db::RecordUpdate {
                payload: Some(b"v2".to_vec()),
                ..Default::default()
            },
            at(10),
        )
        .unwrap()
        .record;
    let mut refused = g.replica();
    for r in [&v1, &revocation, &v2] {
        refused.apply(vec![r.clone()], at(11)).unwrap();
    }
    assert_eq!(refused.get(v1.id).unwrap().as_ref(), Some(&v1));
    let mut purged = g.replica();
    for r in [&v1, &v2, &revocation] {
        purged.apply(vec![r.clone()], at(11)).unwrap();
    }
    crate::sync::sync(&mut refused, &mut purged);
    assert_eq!(purged.get(v1.id).unwrap().as_ref(), Some(&v1));
    assert_eq!(refused.digest(), purged.digest());
}
