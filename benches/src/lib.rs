//! Shared fixtures for the benchmarks: a group with an admin and a member, and signed records.

#![forbid(unsafe_code)]
#![allow(
    clippy::expect_used,
    reason = "benchmark fixtures: a failure is a broken benchmark, not an error to handle"
)]

use std::time::Duration;

use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
use peergroup_record_db::store::{MemoryStore, Store};
use peergroup_record_db::{Database, LocalSigner, NewRecord, Record, RecordType};

/// The instant the fixtures are built at.
pub fn t0() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

/// An application record type.
pub fn app_type() -> RecordType {
    "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b"
        .parse()
        .expect("a GUID")
}

/// A member: key and chain.
pub struct Member {
    /// Identity key.
    pub key: KeyPair,
    /// Certificate chain.
    pub chain: CertChain,
}

impl Member {
    /// As a signer.
    pub fn signer(&self) -> LocalSigner<'_> {
        LocalSigner {
            key: &self.key,
            chain: &self.chain,
        }
    }
}

/// A group with its creator (admin) and one member.
pub struct Fixture {
    /// The group root.
    pub root: GroupRoot,
    /// The creator, an admin.
    pub admin: Member,
    /// A member.
    pub member: Member,
}

impl Fixture {
    /// Builds the group.
    pub fn new() -> Self {
        let request = |key: &KeyPair, name: &str, role| MemberRequest {
            subject_key: key.public(),
            subject_peer: PeerName::new(&key.public(), Classifier::new(name).expect("classifier")),
            subject_friendly_name: name.to_owned(),
            roles: Roles::one(role),
            classifiers: vec![],
            not_before: t0(),
            not_after: t0().saturating_add(Duration::from_secs(3650 * 86_400)),
        };
        let ak = KeyPair::from_test_seed(1);
        let creator = PeerName::new(&ak.public(), Classifier::new("admin").expect("classifier"));
        let root = GroupRoot::with_key(
            KeyPair::from_test_seed(100),
            "Bench",
            Classifier::new("bench").expect("c"),
            &creator,
            t0(),
        )
        .expect("group root");
        let admin_chain = root
            .issue(&request(&ak, "admin", Role::Admin))
            .expect("admin");
        let mk = KeyPair::from_test_seed(2);
        let member_chain = admin_chain
            .issue(&ak, &request(&mk, "member", Role::Member))
            .expect("member");
        Fixture {
            root,
            admin: Member {
                key: ak,
                chain: admin_chain,
            },
            member: Member {
                key: mk,
                chain: member_chain,
            },
        }
    }

    /// A database on `store` that knows both members.
    pub fn database<S: Store>(&self, store: S) -> Database<S> {
        let mut db = Database::open(store, &self.admin.chain).expect("open");
        db.learn_member(&self.admin.chain).expect("admin chain");
        db.learn_member(&self.member.chain).expect("member chain");
        db
    }

    /// `n` signed records of `payload` bytes by the member, made on a scratch replica.
    pub fn records(&self, n: usize, payload: usize) -> Vec<Record> {
        let mut db = self.database(MemoryStore::new());
        let now = t0().saturating_add(Duration::from_secs(60));
        (0..n)
            .map(|i| {
                let mut data = vec![0u8; payload];
                data[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let new = NewRecord {
                    record_type: app_type(),
                    attributes: String::new(),
                    payload: data,
                    expires: t0().saturating_add(Duration::from_secs(86_400)),
                    autorefresh: false,
                };
                db.create(self.member.signer(), new, now)
                    .expect("create")
                    .record
            })
            .collect()
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}
