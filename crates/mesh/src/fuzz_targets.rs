//! Bodies of the fuzz targets in `fuzz/`, public so the seed corpus also runs as a test.
//!
//! `mesh_core` reads raw bytes. With the `fuzzing` feature, [`signed_records`] and
//! [`mesh_signed`] read structured input (`arbitrary`) and turn it into records signed with
//! a fixed group's test keys, so what they exercise lies past the signature checks.

#[cfg(feature = "fuzzing")]
mod fixture;
#[cfg(feature = "fuzzing")]
mod mesh;
#[cfg(feature = "fuzzing")]
mod records;

#[cfg(feature = "fuzzing")]
pub use mesh::mesh_signed;
#[cfg(feature = "fuzzing")]
pub use records::signed_records;

use std::sync::OnceLock;
use std::time::Duration;

use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
use peergroup_record_db::Database;
use peergroup_record_db::store::MemoryStore;

use crate::MeshConfig;
use crate::core::{ConnId, Core, LocalMember, PeerInfo};
use crate::message::{MeshMessage, NodeId};

struct Fixture {
    root: CertChain,
    me: CertChain,
    other: CertChain,
    /// Both chains, validated once (each run adopts them instead of validating again).
    known: peergroup_record_db::members::MemberIndex,
}

fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let t0 = Timestamp::from_secs(1_800_000_000);
        let key = |n: u64| KeyPair::from_test_seed(n);
        let peer = |n: u64, c: &str| {
            Classifier::new(c)
                .ok()
                .map(|c| PeerName::new(&key(n).public(), c))
        };
        let (p1, p2) = (peer(1, "me")?, peer(2, "other")?);
        let root =
            GroupRoot::with_key(key(100), "Fuzz", Classifier::new("fuzz").ok()?, &p1, t0).ok()?;
        let req = |n: u64, p: &PeerName, role| MemberRequest {
            subject_key: key(n).public(),
            subject_peer: p.clone(),
            subject_friendly_name: p.classifier().to_string(),
            roles: Roles::one(role),
            classifiers: vec![],
            not_before: t0,
            not_after: t0.saturating_add(Duration::from_secs(86_400 * 365)),
        };
        let me = root.issue(&req(1, &p1, Role::Admin)).ok()?;
        let other = me.issue(&key(1), &req(2, &p2, Role::Member)).ok()?;
        let mut known = peergroup_record_db::members::MemberIndex::default();
        known.insert(root.group(), &me).ok()?;
        known.insert(root.group(), &other).ok()?;
        Some(Fixture {
            root: root.chain().clone(),
            me,
            other,
            known,
        })
    })
    .as_ref()
}

/// The mesh core fed an arbitrary sequence of messages on two connections (one dialed, one
/// accepted), with flushes, timer firings and disconnects in between. Input: a sequence of
/// `[op, len_hi, len_lo, bytes…]` items; `op` picks the connection and the action. Whatever
/// arrives, the core must not panic and must keep producing well-formed outputs.
pub fn mesh_core(data: &[u8]) {
    let Some(f) = fixture() else { return };
    let t0 = Timestamp::from_secs(1_800_000_100);
    let Ok(mut db) = Database::open(MemoryStore::new(), &f.root) else {
        return;
    };
    db.adopt_members(&f.known);
    let me = LocalMember {
        key: KeyPair::from_test_seed(1),
        chain: f.me.clone(),
    };
    let Ok(mut core) = Core::new(
        db,
        me,
        NodeId(1),
        MeshConfig::default(),
        crate::rng::Seed::from_u64(7),
        t0.into(),
    ) else {
        return;
    };
    let peer = f.other.leaf().subject_peer().clone();
    let info = |outbound| PeerInfo {
        peer: peer.clone(),
        addr: "127.0.0.1:9"
            .parse()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 9))),
        outbound,
        chain: Some(f.other.clone()),
        udp: false,
        relayed: false,
    };
    core.handle_connected(ConnId(1), info(true), t0.into());
    core.handle_connected(ConnId(2), info(false), t0.into());
    let mut now = t0;
    let mut rest = data;
    while let [op, hi, lo, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        let conn = ConnId(u64::from(op & 1) + 1);
        now = now.saturating_add(Duration::from_millis(u64::from(*op >> 4) * 100));
        match (op >> 1) & 0x7 {
            0..=3 => core.handle_message(conn, bytes, now.into()),
            4 => {
                let _ = core.flush(now.into());
            }
            5 => {
                let _ = core.handle_timeout(now.into());
            }
            6 => core.handle_disconnected(conn, now.into()),
            _ => core.handle_connected(conn, info(op & 1 == 0), now.into()),
        }
        while let Some(o) = core.poll_output() {
            if let crate::core::Output::Send { message, .. } = o {
                let bytes = message.encode();
                assert_eq!(
                    MeshMessage::decode(&bytes).ok().as_ref(),
                    Some(&message),
                    "output does not round-trip"
                );
            }
        }
        while core.poll_event().is_some() {}
    }
    let _ = core.flush(now.into());
}
