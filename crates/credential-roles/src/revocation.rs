//! Revocations: certificate serial numbers and peer names that are no longer trusted.
//!
//! Revoking a peer name revokes every certificate whose subject is that peer, including
//! certificates issued later; revoking a serial revokes one certificate. Either way every
//! chain through a revoked certificate is refused, so revoking an admin also cuts off the
//! members it certified (they can be given new credentials by another admin).

use std::collections::{BTreeMap, BTreeSet};

use peergroup_identity::{PeerName, Timestamp};
use serde::{Deserialize, Serialize};

use crate::cert::GroupCertificate;

/// What a revocation names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RevocationTarget {
    /// One certificate, by serial number bytes.
    Serial(Vec<u8>),
    /// Every certificate of a peer.
    Peer(PeerName),
}

impl std::fmt::Display for RevocationTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RevocationTarget::Serial(s) => write!(f, "serial {}", hex::encode(s)),
            RevocationTarget::Peer(p) => write!(f, "peer {p}"),
        }
    }
}

/// The revocations a member knows, each with the time it took effect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationSet {
    serials: BTreeMap<Vec<u8>, Timestamp>,
    peers: BTreeMap<PeerName, Timestamp>,
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a revocation effective at `at`; an earlier time for the same target wins.
    pub fn insert(&mut self, target: RevocationTarget, at: Timestamp) {
        let slot = match target {
            RevocationTarget::Serial(s) => self.serials.entry(s).or_insert(at),
            RevocationTarget::Peer(p) => self.peers.entry(p).or_insert(at),
        };
        *slot = (*slot).min(at);
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.serials.is_empty() && self.peers.is_empty()
    }

    /// The number of revocations.
    pub fn len(&self) -> usize {
        self.serials.len() + self.peers.len()
    }

    /// When `peer` was revoked, if it was.
    pub fn peer_revoked_at(&self, peer: &PeerName) -> Option<Timestamp> {
        self.peers.get(peer).copied()
    }

    /// When the certificate with `serial` was revoked, if it was.
    pub fn serial_revoked_at(&self, serial: &[u8]) -> Option<Timestamp> {
        self.serials.get(serial).copied()
    }

    /// Every peer revoked, with when.
    pub fn peers(&self) -> impl Iterator<Item = (&PeerName, Timestamp)> {
        self.peers.iter().map(|(p, t)| (p, *t))
    }

    /// If `cert` is revoked, says by what.
    pub fn revokes(&self, cert: &GroupCertificate) -> Option<String> {
        if self.serials.contains_key(cert.serial()) {
            return Some(RevocationTarget::Serial(cert.serial().to_vec()).to_string());
        }
        if !cert.is_root() && self.peers.contains_key(cert.subject_peer()) {
            return Some(RevocationTarget::Peer(cert.subject_peer().clone()).to_string());
        }
        None
    }

    /// The targets, for display.
    pub fn targets(&self) -> BTreeSet<RevocationTarget> {
        self.serials
            .keys()
            .cloned()
            .map(RevocationTarget::Serial)
            .chain(self.peers.keys().cloned().map(RevocationTarget::Peer))
            .collect()
    }
}
