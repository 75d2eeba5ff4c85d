//! A test group: a creator-admin (Alice), members Bob and Carol, an outsider, and helpers to
//! make and forge records.

use std::time::Duration;

use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, IdentityCertificate, KeyPair, PeerName, Timestamp};
use peergroup_record_db::store::{MemoryStore, Store};
use peergroup_record_db::{
    Database, LocalSigner, NewRecord, Record, RecordId, RecordType, SecurityData,
};

pub(crate) const HOUR: Duration = Duration::from_secs(3600);
pub(crate) const DAY: Duration = Duration::from_secs(86_400);

pub(crate) fn t0() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

pub(crate) fn app_type() -> RecordType {
    "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b".parse().unwrap()
}

pub(crate) struct Member {
    pub(crate) key: KeyPair,
    pub(crate) chain: CertChain,
}

impl Member {
    pub(crate) fn signer(&self) -> LocalSigner<'_> {
        LocalSigner {
            key: &self.key,
            chain: &self.chain,
        }
    }

    pub(crate) fn peer(&self) -> &PeerName {
        self.chain.leaf().subject_peer()
    }
}

pub(crate) struct Group {
    pub(crate) root: GroupRoot,
    pub(crate) alice: Member,
    pub(crate) bob: Member,
    pub(crate) carol: Member,
    /// A member of another group.
    pub(crate) mallory: Member,
}

fn identity(seed: u64, name: &str) -> (KeyPair, PeerName) {
    let key = KeyPair::from_test_seed(seed);
    let peer = PeerName::new(&key.public(), Classifier::new(name).unwrap());
    IdentityCertificate::create(&key, &peer, name, t0()).unwrap();
    (key, peer)
}

fn request(key: &KeyPair, peer: &PeerName, role: Role, days: u64) -> MemberRequest {
    MemberRequest {
        subject_key: key.public(),
        subject_peer: peer.clone(),
        subject_friendly_name: peer.classifier().to_string(),
        roles: Roles::one(role),
        classifiers: vec![],
        not_before: t0(),
        not_after: t0().saturating_add(DAY * days as u32),
    }
}

impl Group {
    pub(crate) fn new() -> Self {
        let (ak, ap) = identity(1, "alice");
        let root = GroupRoot::with_key(
            KeyPair::from_test_seed(100),
            "Test group",
            Classifier::new("test").unwrap(),
            &ap,
            t0(),
        )
        .unwrap();
        let alice_chain = root.issue(&request(&ak, &ap, Role::Admin, 3650)).unwrap();
        let (bk, bp) = identity(2, "bob");
        let bob_chain = alice_chain
            .issue(&ak, &request(&bk, &bp, Role::Member, 365))
            .unwrap();
        let (ck, cp) = identity(3, "carol");
        let carol_chain = alice_chain
            .issue(&ak, &request(&ck, &cp, Role::Member, 365))
            .unwrap();
        let (mk, mp) = identity(4, "mallory");
        let other = GroupRoot::with_key(
            KeyPair::from_test_seed(200),
            "Other",
            Classifier::new("other").unwrap(),
            &mp,
            t0(),
        )
        .unwrap();
        let mallory_chain = other.issue(&request(&mk, &mp, Role::Admin, 365)).unwrap();
        Group {
            root,
            alice: Member {
                key: ak,
                chain: alice_chain,
            },
            bob: Member {
                key: bk,
                chain: bob_chain,
            },
            carol: Member {
                key: ck,
                chain: carol_chain,
            },
            mallory: Member {
                key: mk,
                chain: mallory_chain,
            },
        }
    }

    pub(crate) fn group(&self) -> &PeerName {
        self.root.group()
    }

    /// A replica that knows every member's chain.
    pub(crate) fn replica(&self) -> Database<MemoryStore> {
        self.replica_on(MemoryStore::new())
    }

    pub(crate) fn replica_on<S: Store>(&self, store: S) -> Database<S> {
        let mut db = Database::open(store, &self.alice.chain).unwrap();
        for m in [&self.alice, &self.bob, &self.carol] {
            db.learn_member(&m.chain).unwrap();
        }
        db
    }

    /// A replica that knows only the group root (membership must come from records).
    pub(crate) fn bare_replica(&self) -> Database<MemoryStore> {
        Database::open(MemoryStore::new(), self.root.chain()).unwrap()
    }
}

pub(crate) fn new_record(payload: &[u8], expires: Timestamp) -> NewRecord {
    NewRecord {
        record_type: app_type(),
        attributes: String::new(),
        payload: payload.to_vec(),
        expires,
        autorefresh: false,
    }
}

/// Signs a record by hand, bypassing every local check, so tests can forge bad ones.
pub(crate) fn forge(group: &PeerName, by: &Member, edit: impl FnOnce(&mut Record)) -> Record {
    let creator = by.peer().clone();
    let mut r = Record {
        record_type: app_type(),
        id: RecordId::derive(&creator, [9; 8]),
        version: 1,
        flags: Default::default(),
        creator,
        modified_by: None,
        attributes: String::new(),
        created: t0(),
        expires: t0().saturating_add(DAY),
        last_modified: t0(),
        payload: b"payload".to_vec(),
        security: SecurityData {
            creator_serial: by.chain.leaf().serial().to_vec(),
            modifier_serial: by.chain.leaf().serial().to_vec(),
            signature: peergroup_identity::Signature::from_bytes([0; 64]),
        },
    };
    edit(&mut r);
    resign(group, by, r)
}

pub(crate) fn resign(group: &PeerName, by: &Member, mut r: Record) -> Record {
    r.security.signature = by.key.sign(&r.signed_bytes(group));
    r
}
