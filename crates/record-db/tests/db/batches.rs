//! A batch of received records: each record gets its own verdict, and whatever fails, the
//! in-memory state (members, revocations, properties, signer keys, key index, deferred
//! records) is what was committed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use peergroup_credential_roles::{CertChain, RevocationTarget};
use peergroup_identity::{PublicKey, Timestamp};
use peergroup_record_db::reserved::{GroupProperties, MembershipPayload, RevocationPayload};
use peergroup_record_db::store::{Batch, MemoryStore, Store};
use peergroup_record_db::{
    Database, Error, Record, RecordId, RecordType, StoreError, ValidationError,
};

use crate::support::*;

/// A store that fails on demand: its commit, or reading one record. Clones share the
/// records and the switches.
#[derive(Clone, Default)]
struct FailingStore {
    inner: Arc<Mutex<MemoryStore>>,
    fail_commit: Arc<AtomicBool>,
    fail_get: Arc<Mutex<Option<RecordId>>>,
    commits: Arc<AtomicUsize>,
}

impl Store for FailingStore {
    fn get(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        if self.fail_get.lock().unwrap().as_ref() == Some(id) {
            return Err(StoreError::Io("injected read failure".into()));
        }
        self.inner.lock().unwrap().get(id)
    }
    fn by_id_prefix(&self, prefix: [u8; 8]) -> Result<Vec<Record>, StoreError> {
        self.inner.lock().unwrap().by_id_prefix(prefix)
    }
    fn by_type(&self, t: &RecordType) -> Result<Vec<Record>, StoreError> {
        self.inner.lock().unwrap().by_type(t)
    }
    fn for_each(&self, f: &mut dyn FnMut(Record)) -> Result<(), StoreError> {
        self.inner.lock().unwrap().for_each(f)
    }
    fn keys(&self) -> Result<Vec<(u64, RecordType, RecordId)>, StoreError> {
        self.inner.lock().unwrap().keys()
    }
    fn expiring(&self, t: Timestamp) -> Result<Vec<Record>, StoreError> {
        self.inner.lock().unwrap().expiring(t)
    }
    fn deferred(&self) -> Result<Vec<Record>, StoreError> {
        self.inner.lock().unwrap().deferred()
    }
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.lock().unwrap().meta(key)
    }
    fn len(&self) -> Result<usize, StoreError> {
        self.inner.lock().unwrap().len()
    }
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if self.fail_commit.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected commit failure".into()));
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.lock().unwrap().commit(batch)
    }
}

/// Everything a database holds in memory, in a comparable form.
#[derive(Debug, PartialEq)]
struct Memory {
    members: Vec<Vec<u8>>,
    revocations: peergroup_credential_roles::RevocationSet,
    properties: Option<GroupProperties>,
    signer_keys: Vec<(Vec<u8>, Option<PublicKey>)>,
    security_keys: Vec<u64>,
    data_keys: Vec<u64>,
    deferred: usize,
}

fn memory<S: Store>(db: &Database<S>, serials: &[&[u8]]) -> Memory {
    let mut members: Vec<Vec<u8>> = db
        .members()
        .peers()
        .flat_map(|p| db.members().of_peer(p).map(|m| m.serial().to_vec()))
        .collect();
    members.sort();
    let sorted = |mut v: Vec<u64>| {
        v.sort_unstable();
        v
    };
    let keys = db.signer_keys();
    Memory {
        members,
        revocations: db.revocations().clone(),
        properties: db.has_properties().then(|| db.properties()),
        signer_keys: serials.iter().map(|s| (s.to_vec(), keys.key(s))).collect(),
        security_keys: sorted(db.item_keys(true)),
        data_keys: sorted(db.item_keys(false)),
        deferred: db.deferred_len(),
    }
}

/// A membership record for `chain`, published by `by` (itself or an admin).
fn membership(g: &Group, by: &Member, chain: &CertChain) -> Record {
    forge(g.group(), by, |r| {
        r.record_type = RecordType::MEMBERSHIP;
        r.id = MembershipPayload::record_id(&r.creator, chain.leaf().serial());
        r.payload = MembershipPayload::new(chain).to_payload();
    })
}

/// `chain` with its leaf's signature damaged: it parses, but does not validate.
fn broken(chain: &CertChain) -> CertChain {
    let mut ders: Vec<Vec<u8>> = chain
        .certificates()
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
    let leaf = ders.last_mut().unwrap();
    let last = leaf.len() - 1;
    leaf[last] ^= 0x01;
    CertChain::from_ders(&ders).unwrap()
}

fn note(g: &Group, by: &Member, nonce: u8) -> Record {
    forge(g.group(), by, |r| {
        r.id = RecordId::derive(&r.creator, [nonce; 8]);
        r.payload = vec![nonce; 32];
    })
}

#[test]
fn a_malformed_membership_record_refuses_itself_only() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let mut db = g.replica();
    // Bob signs a membership record for his own serial whose chain does not validate.
    let bad = membership(&g, &g.bob, &broken(&g.bob.chain));
    let good = vec![
        note(&g, &g.alice, 1),
        note(&g, &g.carol, 2),
        note(&g, &g.carol, 3),
        note(&g, &g.bob, 4),
        membership(&g, &g.carol, &g.carol.chain),
    ];
    let mut burst = good.clone();
    burst.insert(2, bad.clone());
    let report = db.apply(burst, now).unwrap();
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    let (id, why) = &report.rejected[0];
    assert_eq!(*id, bad.id);
    assert!(
        matches!(why, ValidationError::BadReservedPayload { kind: "membership", reason }
            if reason.contains("invalid certificate chain")),
        "{why}"
    );
    let mut accepted: Vec<RecordId> = report.accepted().iter().map(|r| r.id).collect();
    let mut expected: Vec<RecordId> = good.iter().map(|r| r.id).collect();
    accepted.sort();
    expected.sort();
    assert_eq!(
        accepted, expected,
        "every good record is stored and passed on"
    );
    for r in &good {
        assert_eq!(db.get(r.id).unwrap().as_ref(), Some(r));
    }
    assert!(db.get(bad.id).unwrap().is_none());
    // The chain Bob is known by is still his good one.
    let bob = db.members().get(g.bob.chain.leaf().serial()).unwrap();
    assert_eq!(bob.valid.chain(), &g.bob.chain);
}

/// Security records of every kind, then data records: what a store failure interrupts.
fn eventful_batch(g: &Group, now: Timestamp) -> Vec<Record> {
    let revocation = forge(g.group(), &g.alice, |r| {
        r.record_type = RecordType::REVOCATION;
        r.id = RecordId::derive(&r.creator, [0x5e; 8]);
        r.payload = RevocationPayload {
            target: RevocationTarget::Peer(g.bob.peer().clone()),
            reason: "test".into(),
        }
        .to_payload();
    });
    let properties = forge(g.group(), &g.alice, |r| {
        r.record_type = RecordType::GROUP_PROPERTIES;
        r.id = GroupProperties::record_id(g.alice.peer());
        let mut p = GroupProperties::new("Renamed", g.alice.peer().clone());
        p.comment = "changed in the failed batch".into();
        r.payload = p.to_payload();
    });
    let _ = now;
    vec![
        membership(g, &g.carol, &g.carol.chain),
        revocation,
        properties,
        note(g, &g.carol, 7),
        note(g, &g.alice, 8),
    ]
}

#[test]
fn a_failed_commit_leaves_memory_as_committed() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let store = FailingStore::default();
    let mut db = Database::open(store.clone(), g.root.chain()).unwrap();
    // Committed: Alice's and Bob's memberships, a note by Bob, and a record by Carol held
    // back until her membership arrives.
    let first = vec![
        membership(&g, &g.alice, &g.alice.chain),
        membership(&g, &g.alice, &g.bob.chain),
        note(&g, &g.bob, 1),
        note(&g, &g.carol, 2),
    ];
    let report = db.apply(first, now).unwrap();
    assert_eq!(report.accepted().len(), 3, "{report:?}");
    assert_eq!(report.deferred, 1);
    let serials = [
        g.alice.chain.leaf().serial(),
        g.bob.chain.leaf().serial(),
        g.carol.chain.leaf().serial(),
    ];
    let committed = memory(&db, &serials);

    store.fail_commit.store(true, Ordering::SeqCst);
    let err = db.apply(eventful_batch(&g, now), now).unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err}");
    assert_eq!(memory(&db, &serials), committed, "memory after the failure");
    let reopened = Database::open(store.inner.lock().unwrap().clone(), g.root.chain()).unwrap();
    assert_eq!(memory(&reopened, &serials), committed, "what was committed");
    assert!(
        db.signer_keys()
            .key(g.carol.chain.leaf().serial())
            .is_none()
    );

    // The same batch goes through once the store works again.
    store.fail_commit.store(false, Ordering::SeqCst);
    let report = db.apply(eventful_batch(&g, now), now).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(db.properties().friendly_name, "Renamed");
    assert!(db.revocations().peer_revoked_at(g.bob.peer()).is_some());
    assert!(
        db.signer_keys()
            .key(g.carol.chain.leaf().serial())
            .is_some()
    );
    assert_eq!(db.deferred_len(), 0, "Carol's held record went in");
    let reopened = Database::open(store.inner.lock().unwrap().clone(), g.root.chain()).unwrap();
    assert_eq!(memory(&db, &serials), memory(&reopened, &serials));
}

#[test]
fn a_failed_read_mid_batch_leaves_memory_as_committed() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let store = FailingStore::default();
    let mut db = Database::open(store.clone(), g.root.chain()).unwrap();
    let stored = note(&g, &g.alice, 9);
    let first = vec![
        membership(&g, &g.alice, &g.alice.chain),
        membership(&g, &g.alice, &g.bob.chain),
        stored.clone(),
    ];
    assert_eq!(db.apply(first, now).unwrap().accepted().len(), 3);
    let serials = [
        g.alice.chain.leaf().serial(),
        g.bob.chain.leaf().serial(),
        g.carol.chain.leaf().serial(),
    ];
    let committed = memory(&db, &serials);

    // The batch's security records are taken in first; then reading the stored version of
    // the note it updates fails.
    let update = resign(g.group(), &g.alice, {
        let mut r = stored.clone();
        r.version = 2;
        r.modified_by = Some(g.alice.peer().clone());
        r.last_modified = now;
        r.payload = b"second".to_vec();
        r
    });
    let mut batch = eventful_batch(&g, now);
    batch.push(update.clone());
    *store.fail_get.lock().unwrap() = Some(stored.id);
    let err = db.apply(batch, now).unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err}");
    assert_eq!(memory(&db, &serials), committed);
    let reopened = Database::open(store.inner.lock().unwrap().clone(), g.root.chain()).unwrap();
    assert_eq!(memory(&reopened, &serials), committed);
    assert_eq!(db.get_any(update.id).ok(), None, "the store still fails");
    *store.fail_get.lock().unwrap() = None;
    assert_eq!(db.get(stored.id).unwrap(), Some(stored));
}

/// Group commit: records published together share one durable commit, and a record that
/// breaks a rule is refused alone — whether its own checks catch it (too large, expired) or
/// only the store can (an id already taken), when the others are stored one by one.
#[test]
fn group_commit_refuses_a_bad_record_alone() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let store = FailingStore::default();
    let mut db = g.replica_on(store.clone());
    let peer = g.bob.peer().clone();
    let id = |n: u8| RecordId::derive(&peer, [n; 8]);
    let ok = |n: u8| new_record(&[n; 16], now.saturating_add(DAY));
    let base = store.commits.load(Ordering::SeqCst);

    // Three good records and two that fail their own checks: one commit for the three.
    let too_big = new_record(&vec![0; db.max_record_size() + 1], now.saturating_add(DAY));
    let expired = new_record(b"late", now);
    let news = vec![
        (id(1), ok(1)),
        (id(2), too_big),
        (id(3), ok(3)),
        (id(4), expired),
        (id(5), ok(5)),
    ];
    let answers = db.create_each(g.bob.signer(), news, now);
    assert_eq!(store.commits.load(Ordering::SeqCst), base + 1, "one commit");
    assert_eq!(answers.len(), 5);
    for (i, n) in [(0, 1), (2, 3), (4, 5)] {
        let change = answers[i].as_ref().unwrap();
        assert_eq!(change.record.id, id(n), "answers keep the callers' order");
        assert_eq!(db.get(id(n)).unwrap().as_ref(), Some(&change.record));
    }
    assert!(
        matches!(
            answers[1],
            Err(Error::Invalid(ValidationError::TooLarge { .. }))
        ),
        "{:?}",
        answers[1]
    );
    assert!(
        matches!(answers[3], Err(Error::InvalidArgument(_))),
        "{:?}",
        answers[3]
    );

    // An id already stored is refused by the store's rules (a new version 1 must not
    // replace the stored one, whichever wins the tie between equal versions): the batch
    // falls back to one commit per record, and only that record is refused.
    let base = store.commits.load(Ordering::SeqCst);
    let answers = db.create_each(g.bob.signer(), vec![(id(6), ok(6)), (id(1), ok(7))], now);
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert!(
        matches!(&answers[1], Err(Error::InvalidArgument(why)) if why.contains("equal or newer")),
        "an id already taken is refused: {:?}",
        answers[1]
    );
    assert_eq!(db.get(id(1)).unwrap().unwrap().payload, vec![1; 16], "kept");
    assert!(db.get(id(6)).unwrap().is_some());
    assert_eq!(store.commits.load(Ordering::SeqCst), base + 1);
    // Each new version wins the tie half the time: try many, none replaces.
    for n in 20..52 {
        let answers = db.create_each(g.bob.signer(), vec![(id(1), ok(n))], now);
        assert!(answers[0].is_err(), "{:?}", answers[0]);
        assert_eq!(db.get(id(1)).unwrap().unwrap().payload, vec![1; 16], "kept");
    }

    // A failing store refuses every record, and nothing is half stored.
    store.fail_commit.store(true, Ordering::SeqCst);
    let answers = db.create_each(g.bob.signer(), vec![(id(8), ok(8)), (id(9), ok(9))], now);
    assert!(
        answers.iter().all(|a| matches!(a, Err(Error::Store(_)))),
        "{answers:?}"
    );
    store.fail_commit.store(false, Ordering::SeqCst);
    assert!(db.get(id(8)).unwrap().is_none() && db.get(id(9)).unwrap().is_none());
}
