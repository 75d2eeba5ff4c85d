//! Membership records: every replica learns the same member chains from the same records,
//! whatever order they arrive in; a membership ends with its certificate or by revocation,
//! never by deleting its record.

use std::time::Duration;

use peergroup_credential_roles::RevocationTarget;
use peergroup_identity::Timestamp;
use peergroup_record_db::store::MemoryStore;
use peergroup_record_db::{Database, Error, Record, ValidationError};

use crate::support::*;

fn at(minutes: u64) -> Timestamp {
    t0().saturating_add(HOUR)
        .saturating_add(Duration::from_secs(60 * minutes))
}

/// A replica that knows the group root and Alice (the admin), not Bob.
fn without_bob(g: &Group) -> Database<MemoryStore> {
    let mut db = g.bare_replica();
    db.learn_member(&g.alice.chain).unwrap();
    db
}

/// Bob's membership record (published by Bob), made at `when`.
fn bobs_membership(g: &Group, when: Timestamp) -> Record {
    g.replica()
        .publish_membership(g.bob.signer(), &g.bob.chain, when)
        .unwrap()
        .unwrap()
        .record
}

/// A record of Bob's made at `when` (one per instant).
fn bobs_note(g: &Group, when: Timestamp) -> Record {
    forge(g.group(), &g.bob, |r| {
        r.id = peergroup_record_db::RecordId::derive(&r.creator, when.as_millis().to_be_bytes());
        r.created = when;
        r.last_modified = when;
    })
}

fn knows_bob(db: &Database<MemoryStore>, g: &Group) -> bool {
    db.members().get(g.bob.chain.leaf().serial()).is_some()
}

/// A membership record cannot be deleted, by its member or an admin, here or received: a
/// replica that took in the record before its tombstone learned the member, one that got the
/// tombstone first never did, and the member's records were stored by the one and held back
/// for good by the other.
#[test]
fn a_membership_record_cannot_be_deleted() {
    let g = Group::new();
    let membership = bobs_membership(&g, at(0));
    let note = bobs_note(&g, at(1));
    let mut tombstone = membership.clone();
    tombstone.version = 2;
    tombstone.modified_by = Some(g.alice.peer().clone());
    tombstone.security.modifier_serial = g.alice.chain.leaf().serial().to_vec();
    tombstone.last_modified = at(2);
    tombstone.flags = tombstone.flags.with_deleted(true);
    tombstone.payload.clear();
    let tombstone = resign(g.group(), &g.alice, tombstone);
    let mut replicas = Vec::new();
    for order in [
        [&membership, &tombstone, &note],
        [&tombstone, &membership, &note],
        [&note, &tombstone, &membership],
    ] {
        let mut db = without_bob(&g);
        for r in order {
            db.apply(vec![r.clone()], at(3)).unwrap();
        }
        assert!(knows_bob(&db, &g));
        assert_eq!(db.get(membership.id).unwrap().as_ref(), Some(&membership));
        assert_eq!(db.get(note.id).unwrap().as_ref(), Some(&note));
        replicas.push(db);
    }
    assert!(
        replicas
            .iter()
            .all(|db| db.digest() == replicas[0].digest())
    );
    let report = without_bob(&g).apply(vec![tombstone], at(3)).unwrap();
    assert!(
        matches!(
            report.rejected.as_slice(),
            [(_, ValidationError::BadReservedPayload { reason, .. })] if reason.contains("deleted")
        ),
        "{:?}",
        report.rejected
    );
    // Nor locally, by the member or an admin.
    let mut db = g.replica();
    db.apply(vec![membership.clone()], at(3)).unwrap();
    for who in [&g.bob, &g.alice] {
        let e = db.delete(who.signer(), membership.id, at(3)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid(ValidationError::BadReservedPayload { .. })
            ),
            "{e}"
        );
    }
}

/// A membership record signed after its signer's revocation still teaches the member's chain
/// (it is judged without the revocations, and never purged): the member's records from
/// before the revocation are stored by every replica, whatever the order. They used to be
/// stored by a replica that got the membership record before the revocation and held back
/// for good by one that got it after.
#[test]
fn a_membership_record_made_after_a_revocation_still_teaches_the_chain() {
    let g = Group::new();
    let note = bobs_note(&g, at(0));
    let revocation = g
        .replica()
        .revoke(
            g.alice.signer(),
            RevocationTarget::Peer(g.bob.peer().clone()),
            "",
            at(5),
        )
        .unwrap()
        .record;
    let membership = bobs_membership(&g, at(10));
    let late = bobs_note(&g, at(10));
    let mut digests = Vec::new();
    for order in [
        [&note, &revocation, &membership, &late],
        [&membership, &note, &late, &revocation],
        [&late, &revocation, &note, &membership],
    ] {
        let mut db = without_bob(&g);
        for r in order {
            db.apply(vec![r.clone()], at(11)).unwrap();
        }
        assert!(knows_bob(&db, &g));
        assert_eq!(db.get(note.id).unwrap().as_ref(), Some(&note));
        assert_eq!(db.get(membership.id).unwrap().as_ref(), Some(&membership));
        assert!(
            db.get(late.id).unwrap().is_none(),
            "signed after the revocation"
        );
        digests.push(db.digest());
    }
    assert!(digests.iter().all(|d| *d == digests[0]));
}

/// When its membership record expires and is swept, a member learned only from it is
/// forgotten, as on a restart; one learned out of band (a neighbor's TLS chain, the
/// replica's own) is not.
#[test]
fn a_member_is_forgotten_with_its_last_membership_record() {
    let g = Group::new();
    let membership = forge(g.group(), &g.bob, |r| {
        *r = bobs_membership(&g, at(0));
        r.expires = at(30);
    });
    let mut db = without_bob(&g);
    let mut told = without_bob(&g);
    told.learn_member(&g.bob.chain).unwrap();
    for db in [&mut db, &mut told] {
        let report = db.apply(vec![membership.clone()], at(1)).unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert!(knows_bob(db, &g));
        db.sweep(at(29)).unwrap();
        assert!(knows_bob(db, &g));
        db.sweep(at(30)).unwrap();
    }
    assert!(!knows_bob(&db, &g));
    assert!(knows_bob(&told, &g), "learned out of band");
    let mut reopened = Database::open(db.into_store(), g.root.chain()).unwrap();
    reopened.learn_member(&g.alice.chain).unwrap();
    assert!(!knows_bob(&reopened, &g));
    // Bob's records wait again until a membership record (or his chain) comes.
    let report = reopened.apply(vec![bobs_note(&g, at(31))], at(31)).unwrap();
    assert_eq!(report.deferred, 1);
}

#[test]
fn a_member_index_adopted_whole_learns_on_its_own_and_leaves_the_shared_one_alone() {
    use peergroup_record_db::members::MemberIndex;
    let g = Group::new();
    let mut template = MemberIndex::default();
    for m in [&g.alice, &g.bob] {
        template.insert(g.group(), &m.chain).unwrap();
    }
    let mut replica = MemberIndex::default();
    replica.adopt(g.group(), &template);
    assert_eq!((replica.len(), replica.peer_count()), (2, 2));
    // A replica of the replica shares the same tables; each learns on its own.
    let mut other = MemberIndex::default();
    other.adopt(g.group(), &replica);
    replica.insert(g.group(), &g.carol.chain).unwrap();
    assert_eq!((replica.len(), replica.peer_count()), (3, 3));
    assert_eq!((other.len(), other.peer_count()), (2, 2));
    assert!(other.get(g.carol.chain.leaf().serial()).is_none());
    assert_eq!(template.len(), 2);
    // Every peer once, its chain found through either layer.
    let peers: std::collections::BTreeSet<String> =
        replica.peers().map(|p| p.to_string()).collect();
    assert_eq!(peers.len(), 3);
    for m in [&g.alice, &g.bob, &g.carol] {
        let found: Vec<_> = replica.of_peer(m.peer()).collect();
        assert_eq!(found.len(), 1, "{}", m.peer());
        assert_eq!(found[0].valid.chain(), &m.chain);
    }
    // Learning a chain held already adds nothing.
    replica.insert(g.group(), &g.alice.chain).unwrap();
    assert_eq!((replica.len(), replica.peer_count()), (3, 3));
    // Another group's chains are not adopted, the group's are.
    let mut mixed = MemberIndex::default();
    mixed.adopt(g.group(), &template);
    let mut foreign = MemberIndex::default();
    foreign
        .insert(g.mallory.chain.group(), &g.mallory.chain)
        .unwrap();
    foreign.insert(g.group(), &g.carol.chain).unwrap();
    mixed.adopt(g.group(), &foreign);
    assert_eq!((mixed.len(), mixed.peer_count()), (3, 3));
    assert!(mixed.get(g.mallory.chain.leaf().serial()).is_none());
}
