//! Shared fixtures for the benchmarks: a group with an admin and a member, signed records,
//! (in [`net`]) real nodes on loopback, (in [`remote`]) a node in a process of its own, and
//! (in [`cpu`]) CPU time.

#![forbid(unsafe_code)]
#![allow(
    clippy::expect_used,
    reason = "benchmark fixtures: a failure is a broken benchmark, not an error to handle"
)]

pub mod cpu;
pub mod net;
pub mod remote;

use std::time::Duration;

use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
use peergroup_record_db::store::{MemoryStore, Store};
use peergroup_record_db::{
    Database, LocalSigner, NewRecord, Record, RecordFlags, RecordId, RecordType, SecurityData,
};

/// Test-key seeds of the group root, the creator (admin) and the member.
const ROOT_SEED: u64 = 100;
const ADMIN_SEED: u64 = 1;
const MEMBER_SEED: u64 = 2;

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
    /// When the certificates start being valid; records are made a minute later.
    pub start: Timestamp,
}

impl Fixture {
    /// Builds the group at [`t0`].
    pub fn new() -> Self {
        Self::starting(t0())
    }

    /// Builds the group with certificates valid from `start` for ten years (the network
    /// benchmarks use the real clock: the transport checks chains against it).
    pub fn starting(start: Timestamp) -> Self {
        let request = |key: &KeyPair, name: &str, role| MemberRequest {
            subject_key: key.public(),
            subject_peer: PeerName::new(&key.public(), Classifier::new(name).expect("classifier")),
            subject_friendly_name: name.to_owned(),
            roles: Roles::one(role),
            classifiers: vec![],
            not_before: start,
            not_after: start.saturating_add(Duration::from_secs(3650 * 86_400)),
        };
        let ak = KeyPair::from_test_seed(ADMIN_SEED);
        let creator = PeerName::new(&ak.public(), Classifier::new("admin").expect("classifier"));
        let root = GroupRoot::with_key(
            KeyPair::from_test_seed(ROOT_SEED),
            "Bench",
            Classifier::new("bench").expect("c"),
            &creator,
            start,
        )
        .expect("group root");
        let admin_chain = root
            .issue(&request(&ak, "admin", Role::Admin))
            .expect("admin");
        let mk = KeyPair::from_test_seed(MEMBER_SEED);
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
            start,
        }
    }

    /// The fixture as bytes, for a node in another process ([`Fixture::from_bytes`]): the
    /// start and the three chains (the keys come from their seeds; serials are random, so a
    /// fixture built anew would be another group's certificates).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.start.as_millis().to_le_bytes().to_vec();
        for chain in [self.root.chain(), &self.admin.chain, &self.member.chain] {
            let der = chain.to_pkcs7();
            out.extend_from_slice(&(der.len() as u64).to_le_bytes());
            out.extend_from_slice(&der);
        }
        out
    }

    /// The fixture [`Fixture::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let (start, mut rest) = bytes.split_at(8);
        let start = Timestamp::from_millis(u64::from_le_bytes(start.try_into().expect("8 bytes")));
        let mut chains = Vec::new();
        for _ in 0..3 {
            let (len, after) = rest.split_at(8);
            let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
            let (der, after) = after.split_at(usize::try_from(len).expect("a length"));
            chains.push(CertChain::from_pkcs7(der).expect("a chain"));
            rest = after;
        }
        let [root, admin, member] = <[CertChain; 3]>::try_from(chains).expect("three chains");
        Fixture {
            root: GroupRoot::from_parts(KeyPair::from_test_seed(ROOT_SEED), root).expect("root"),
            admin: Member {
                key: KeyPair::from_test_seed(ADMIN_SEED),
                chain: admin,
            },
            member: Member {
                key: KeyPair::from_test_seed(MEMBER_SEED),
                chain: member,
            },
            start,
        }
    }

    /// `n` more members (seeds 1000 and up), issued by the admin: the many-peer benchmarks
    /// run one node per member. Certificates as [`Fixture::starting`] makes them.
    pub fn more_members(&self, n: usize) -> Vec<Member> {
        (0..n)
            .map(|i| {
                let key = KeyPair::from_test_seed(1000 + i as u64);
                let name = format!("peer{i}");
                let request = MemberRequest {
                    subject_key: key.public(),
                    subject_peer: PeerName::new(
                        &key.public(),
                        Classifier::new(&name).expect("classifier"),
                    ),
                    subject_friendly_name: name,
                    roles: Roles::one(Role::Member),
                    classifiers: vec![],
                    not_before: self.start,
                    not_after: self
                        .start
                        .saturating_add(Duration::from_secs(3650 * 86_400)),
                };
                let chain = self
                    .admin
                    .chain
                    .issue(&self.admin.key, &request)
                    .expect("member");
                Member { key, chain }
            })
            .collect()
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
        let now = self.start.saturating_add(Duration::from_secs(60));
        (0..n)
            .map(|i| {
                let mut data = vec![0u8; payload];
                data[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let new = NewRecord {
                    record_type: app_type(),
                    attributes: String::new(),
                    payload: data,
                    expires: self.start.saturating_add(Duration::from_secs(86_400)),
                    autorefresh: false,
                };
                db.create(self.member.signer(), new, now)
                    .expect("create")
                    .record
            })
            .collect()
    }

    /// `n` records of `payload` bytes signed by the member at `now`, built and signed directly
    /// (no scratch database: about 30 µs a record, on every core), exactly as
    /// [`Database::create`] would make them. `batch` keeps the ids and payloads of different
    /// calls apart.
    pub fn sign_records(
        &self,
        batch: u32,
        n: usize,
        payload: usize,
        now: Timestamp,
    ) -> Vec<Record> {
        let group = self.root.chain().group().clone();
        let peer = self.member.chain.leaf().subject_peer().clone();
        let serial = self.member.chain.leaf().serial().to_vec();
        let one = |i: usize| {
            let nonce = (u64::from(batch) << 32) | i as u64;
            let mut data = vec![0u8; payload];
            let len = data.len().min(8);
            data[..len].copy_from_slice(&nonce.to_le_bytes()[..len]);
            let mut r = Record {
                record_type: app_type(),
                id: RecordId::derive(&peer, nonce.to_be_bytes()),
                version: 1,
                flags: RecordFlags::default(),
                creator: peer.clone(),
                modified_by: None,
                attributes: String::new(),
                created: now,
                expires: now.saturating_add(Duration::from_secs(86_400)),
                last_modified: now,
                payload: data,
                security: SecurityData {
                    creator_serial: serial.clone(),
                    modifier_serial: serial.clone(),
                    signature: peergroup_identity::Signature::from_bytes([0; 64]),
                },
            };
            r.security.signature = self.member.key.sign(&r.signed_bytes(&group));
            r
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = n.div_ceil(threads).max(1);
        std::thread::scope(|s| {
            let parts: Vec<_> = (0..n)
                .step_by(per)
                .map(|start| {
                    s.spawn(move || {
                        (start..(start + per).min(n))
                            .map(one)
                            .collect::<Vec<Record>>()
                    })
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().expect("signing thread"))
                .collect::<Vec<Record>>()
        })
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}
