//! What a peer presents (its [`GroupCredentials`]) and what it accepts (a [`GroupTrust`]).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use peergroup_credential_roles::{
    CertChain, ChainError, RevocationSet, RevocationTarget, ValidatedChain,
};
use peergroup_identity::{KeyPair, PeerName, PublicKey, Timestamp};
use tokio::sync::watch;

use crate::error::CredentialsError;

/// Where certificate checks read the time: [`Timestamp::now`] unless a test or the peer-time
/// layer injects its own.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system clock as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// A member's own credentials for one group: its identity key and its chain GRC → … → GMC,
/// whose leaf certifies that key. The TLS certificate list is this chain, leaf first.
#[derive(Clone)]
pub struct GroupCredentials {
    /// The group.
    pub group: PeerName,
    /// The member's identity key (the key of the chain's leaf). Its secret never leaves the
    /// zeroizing Ed25519 key inside [`KeyPair`]: TLS signs through it.
    pub key: Arc<KeyPair>,
    /// The member's chain, root first.
    pub chain: CertChain,
}

impl GroupCredentials {
    /// Bundles credentials, checking that they fit together: the chain is for `group`, its
    /// structure is sound, its leaf is a member certificate certifying `key`.
    pub fn new(
        group: PeerName,
        key: Arc<KeyPair>,
        chain: CertChain,
    ) -> Result<Self, CredentialsError> {
        let creds = GroupCredentials { group, key, chain };
        creds.check()?;
        Ok(creds)
    }

    /// The checks of [`GroupCredentials::new`], for credentials built field by field.
    pub fn check(&self) -> Result<(), CredentialsError> {
        if self.chain.group() != &self.group {
            return Err(CredentialsError::GroupMismatch {
                expected: self.group.clone(),
                found: self.chain.group().clone(),
            });
        }
        if self.chain.len() < 2 {
            return Err(CredentialsError::NotMemberChain);
        }
        self.chain
            .check_structure()
            .map_err(CredentialsError::InvalidChain)?;
        if self.chain.leaf().public_key() != &self.key.public() {
            return Err(CredentialsError::KeyMismatch);
        }
        Ok(())
    }

    /// The member's identity peer name (the leaf's subject).
    pub fn peer(&self) -> &PeerName {
        self.chain.leaf().subject_peer()
    }
}

impl fmt::Debug for GroupCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCredentials")
            .field("group", &self.group)
            .field("peer", self.peer())
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Whom a peer accepts for one group: members whose chain validates for the group at the
/// clock's current time against the group's current revocations.
///
/// Cheap to clone; clones share the revocation set, so [`GroupTrust::revoke`] takes effect at
/// once for new handshakes *and* closes live connections whose peer it revokes (every
/// connection watches its trust). They share the group's frame limit too
/// ([`GroupTrust::set_max_frame`]).
#[derive(Clone)]
pub struct GroupTrust {
    inner: Arc<TrustInner>,
}

struct TrustInner {
    group: PeerName,
    clock: Clock,
    revocations: RwLock<RevocationSet>,
    /// The group's frame limit; 0 for none (the configuration's alone). Connections read it
    /// before every frame.
    max_frame: AtomicUsize,
    /// Bumped on every change; connections re-validate their peer when it moves.
    changes: watch::Sender<u64>,
}

impl GroupTrust {
    /// Trust for `group` with no revocations, on the system clock.
    pub fn new(group: PeerName) -> Self {
        Self::with_clock(group, system_clock())
    }

    /// Trust for `group` reading the time from `clock`.
    pub fn with_clock(group: PeerName, clock: Clock) -> Self {
        GroupTrust {
            inner: Arc::new(TrustInner {
                group,
                clock,
                revocations: RwLock::new(RevocationSet::new()),
                max_frame: AtomicUsize::new(0),
                changes: watch::Sender::new(0),
            }),
        }
    }

    /// The group.
    pub fn group(&self) -> &PeerName {
        &self.inner.group
    }

    /// The current time on this trust's clock.
    pub fn now(&self) -> Timestamp {
        (self.inner.clock)()
    }

    /// A copy of the current revocations.
    pub fn revocations(&self) -> RevocationSet {
        self.read().clone()
    }

    /// Replaces the revocations (say, after the record database learned new ones) and
    /// re-checks live connections.
    pub fn set_revocations(&self, set: RevocationSet) {
        *self.write() = set;
        self.recheck();
    }

    /// Adds one revocation and re-checks live connections.
    pub fn revoke(&self, target: RevocationTarget, at: Timestamp) {
        self.write().insert(target, at);
        self.recheck();
    }

    /// Sets the group's frame limit, in bytes of frame body (see [`crate::frame`]), for every
    /// connection of this group, both ways, new and live: a frame over it is refused from its
    /// length prefix (the connection closes with
    /// [`FrameError::TooLarge`](crate::FrameError::TooLarge) before a byte of it is
    /// buffered), and `send` refuses data that would not fit. `None` leaves the
    /// configuration's `max_frame` alone. The limit in force is the smaller of the two, and
    /// at least [`MIN_MAX_FRAME`](crate::MIN_MAX_FRAME); a live connection applies a change
    /// to every frame whose length prefix arrives after it. Both ends of a group should set the same limit: a peer still
    /// sending under a higher one is disconnected by the first frame over ours.
    ///
    /// The mesh sets it from the group's maximum record size plus its message overhead, so
    /// that a group whose records are at most 1 MiB never takes 16 MiB frames.
    pub fn set_max_frame(&self, max: Option<usize>) {
        self.inner
            .max_frame
            .store(max.map_or(0, |m| m.max(1)), Ordering::Relaxed);
    }

    /// The group's frame limit, if one was set ([`GroupTrust::set_max_frame`]).
    pub fn max_frame(&self) -> Option<usize> {
        match self.inner.max_frame.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// Asks every live connection of this trust to validate its peer again (for example after
    /// an injected clock moved past a certificate's end of validity).
    pub fn recheck(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Validates `chain` for this group, now, against the current revocations, requiring its
    /// leaf to certify `leaf_key`.
    pub fn validate(
        &self,
        chain: &CertChain,
        leaf_key: &PublicKey,
    ) -> Result<ValidatedChain, ChainError> {
        let now = self.now();
        chain.validate(&self.inner.group, now, &self.read(), Some(leaf_key))
    }

    /// A receiver that changes whenever the revocations change or [`GroupTrust::recheck`] is
    /// called.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, RevocationSet> {
        self.inner
            .revocations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, RevocationSet> {
        self.inner
            .revocations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for GroupTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupTrust")
            .field("group", &self.inner.group)
            .field("revocations", &self.read().len())
            .finish_non_exhaustive()
    }
}
