//! The member index: every certificate chain a replica knows, by serial number.
//!
//! A chain enters the index once, after full validation (signatures included) at a time
//! inside its leaf's validity; record validation then only checks times and revocations
//! against the cached chain, so a record costs one signature check, not one per certificate.

use std::collections::HashMap;
use std::sync::Arc;

use peergroup_credential_roles::{CertChain, ChainError, RevocationSet, ValidatedChain};
use peergroup_identity::{PeerName, Timestamp};

/// A member certificate chain that passed validation.
#[derive(Clone, Debug)]
pub struct MemberCert {
    /// The validated chain.
    pub valid: ValidatedChain,
}

impl MemberCert {
    /// The member's identity peer name.
    pub fn peer(&self) -> &PeerName {
        self.valid.peer()
    }

    /// The leaf serial.
    pub fn serial(&self) -> &[u8] {
        self.valid.chain().leaf().serial()
    }

    /// Checks that the chain was valid at `at` (every certificate's validity nests inside its
    /// parent's, so the leaf's window decides) and nothing in it had been revoked by then.
    pub fn check_at(&self, at: Timestamp, revocations: &RevocationSet) -> Result<(), ChainError> {
        let chain = self.valid.chain();
        let leaf = chain.leaf();
        let index = chain.len() - 1;
        if at < leaf.not_before() {
            return Err(ChainError::NotYetValid {
                index,
                not_before: leaf.not_before(),
            });
        }
        if at > leaf.not_after() {
            return Err(ChainError::Expired {
                index,
                not_after: leaf.not_after(),
            });
        }
        for (index, cert) in chain.certificates().iter().enumerate() {
            if let Some(t) = revocations.serial_revoked_at(cert.serial())
                && t <= at
            {
                return Err(ChainError::Revoked {
                    index,
                    what: format!("serial {}", hex::encode(cert.serial())),
                });
            }
            if !cert.is_root()
                && let Some(t) = revocations.peer_revoked_at(cert.subject_peer())
                && t <= at
            {
                return Err(ChainError::Revoked {
                    index,
                    what: format!("peer {}", cert.subject_peer()),
                });
            }
        }
        Ok(())
    }
}

/// Known member chains by leaf serial, plus the group root.
///
/// A clone shares the tables until one side changes (copy on write): a database's rollback
/// snapshot costs nothing, and replicas adopting one index (the simulator's thousands of
/// nodes) hold it once.
#[derive(Clone, Debug, Default)]
pub struct MemberIndex {
    by_serial: Arc<HashMap<Vec<u8>, Arc<MemberCert>>>,
    by_peer: Arc<HashMap<PeerName, Vec<Vec<u8>>>>,
}

impl MemberIndex {
    /// Validates `chain` for `group` and adds it. Returns the entry (existing or new).
    pub fn insert(
        &mut self,
        group: &PeerName,
        chain: &CertChain,
    ) -> Result<Arc<MemberCert>, ChainError> {
        let entry = self.validated(group, chain)?;
        self.insert_validated(entry.clone());
        Ok(entry)
    }

    /// Validates `chain` for `group` without adding it: the entry already held for exactly
    /// this chain, or a new one.
    pub fn validated(
        &self,
        group: &PeerName,
        chain: &CertChain,
    ) -> Result<Arc<MemberCert>, ChainError> {
        if let Some(existing) = self.by_serial.get(chain.leaf().serial())
            && existing.valid.chain() == chain
        {
            return Ok(existing.clone());
        }
        // Any instant inside the leaf's window lies inside every parent's window too.
        let valid = chain.validate(
            group,
            chain.leaf().not_before(),
            &RevocationSet::new(),
            None,
        )?;
        Ok(Arc::new(MemberCert { valid }))
    }

    /// Adds an entry made by [`MemberIndex::validated`] for the same group.
    pub(crate) fn insert_validated(&mut self, entry: Arc<MemberCert>) {
        if self
            .by_serial
            .get(entry.serial())
            .is_some_and(|held| Arc::ptr_eq(held, &entry))
        {
            return; // Held already (and perhaps shared with other indexes: not copied).
        }
        let serial = entry.serial().to_vec();
        let peer = entry.peer().clone();
        if Arc::make_mut(&mut self.by_serial)
            .insert(serial.clone(), entry.clone())
            .is_none()
        {
            Arc::make_mut(&mut self.by_peer)
                .entry(peer)
                .or_default()
                .push(serial);
        }
    }

    /// Copies the entries of `other` that belong to `group` (already validated there). An
    /// empty index adopting one whose entries all belong to `group` shares its tables.
    pub fn adopt(&mut self, group: &PeerName, other: &MemberIndex) {
        if self.by_serial.is_empty() && other.by_serial.values().all(|e| e.valid.group() == group) {
            *self = other.clone();
            return;
        }
        for (serial, entry) in other.by_serial.iter() {
            if entry.valid.group() == group && !self.by_serial.contains_key(serial) {
                Arc::make_mut(&mut self.by_serial).insert(serial.clone(), entry.clone());
                Arc::make_mut(&mut self.by_peer)
                    .entry(entry.peer().clone())
                    .or_default()
                    .push(serial.clone());
            }
        }
    }

    /// The chain whose leaf has `serial`.
    pub fn get(&self, serial: &[u8]) -> Option<&Arc<MemberCert>> {
        self.by_serial.get(serial)
    }

    /// Every chain of `peer`.
    pub fn of_peer(&self, peer: &PeerName) -> impl Iterator<Item = &Arc<MemberCert>> {
        self.by_peer
            .get(peer)
            .into_iter()
            .flatten()
            .filter_map(|s| self.by_serial.get(s))
    }

    /// The known peers.
    pub fn peers(&self) -> impl Iterator<Item = &PeerName> {
        self.by_peer.keys()
    }

    /// Number of peers with a known chain.
    pub fn peer_count(&self) -> usize {
        self.by_peer.len()
    }

    /// Number of chains.
    pub fn len(&self) -> usize {
        self.by_serial.len()
    }

    /// Whether no chain is known.
    pub fn is_empty(&self) -> bool {
        self.by_serial.is_empty()
    }
}
