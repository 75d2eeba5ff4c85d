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

/// Known member chains by leaf serial.
///
/// Two layers: the tables adopted whole from another index (shared, never changed here) and
/// the entries added here since. A clone shares both until one side adds (copy on write of
/// its own additions only): a database's rollback snapshot costs nothing, and replicas
/// adopting one index (the simulator's thousands of nodes) hold it once, each paying only
/// for the members it learns after (a copy of the whole table at a replica's first new
/// member made the simulator's 1,000-node membership churn hold 2,044 KiB per node, 926
/// since).
#[derive(Clone, Debug, Default)]
pub struct MemberIndex {
    /// Adopted whole from another index.
    shared: Arc<Tables>,
    /// Added here, by serial: none is in `shared`, unless it replaces that entry (in a
    /// replica that adopted no index, every member). Cheap to copy — a snapshot for rollback
    /// shares them and the next insert copies them: serials and entries are shared pointers —
    /// and found by peer by going through them (only the start of an adoption and presence
    /// maintenance's count, every 10 s, ask by peer).
    own: Arc<HashMap<Serial, Arc<MemberCert>>>,
}

/// A leaf serial, shared by the tables that hold it.
type Serial = Arc<[u8]>;

#[derive(Clone, Debug, Default)]
struct Tables {
    by_serial: HashMap<Serial, Arc<MemberCert>>,
    by_peer: HashMap<PeerName, Vec<Serial>>,
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
        if let Some(existing) = self.get(chain.leaf().serial())
            && existing.valid.chain() == chain
        {
            return Ok(existing.clone());
        }
        // Validated once while remembered (see `crate::memo`), the entry shared by every
        // index that takes it in. Any instant inside the leaf's window lies inside every
        // parent's window too.
        let key = crate::memo::chain_key(group, chain);
        crate::memo::VALIDATED_CHAINS.get_or(key, || {
            let valid = chain.validate(
                group,
                chain.leaf().not_before(),
                &RevocationSet::new(),
                None,
            )?;
            Ok(Arc::new(MemberCert { valid }))
        })
    }

    /// Adds an entry made by [`MemberIndex::validated`] for the same group.
    pub(crate) fn insert_validated(&mut self, entry: Arc<MemberCert>) {
        let held = self.get(entry.serial());
        if held.is_some_and(|held| Arc::ptr_eq(held, &entry)) {
            return; // Held already (and perhaps shared with other indexes: not copied).
        }
        let serial: Serial = entry.serial().into();
        Arc::make_mut(&mut self.own).insert(serial, entry);
    }

    /// Copies the entries of `other` that belong to `group` (already validated there). An
    /// empty index adopting one whose entries all belong to `group` shares its tables.
    pub fn adopt(&mut self, group: &PeerName, other: &MemberIndex) {
        if self.is_empty() && other.all().all(|e| e.valid.group() == group) {
            self.shared = if other.own.is_empty() {
                other.shared.clone()
            } else {
                // Both layers, once, into one table for whoever adopts this one next.
                let mut merged = Tables::default();
                for e in other.all() {
                    let serial: Serial = e.serial().into();
                    merged.by_serial.insert(serial.clone(), e.clone());
                    merged
                        .by_peer
                        .entry(e.peer().clone())
                        .or_default()
                        .push(serial);
                }
                Arc::new(merged)
            };
            self.own = Arc::default();
            return;
        }
        let entries: Vec<Arc<MemberCert>> = other
            .all()
            .filter(|e| e.valid.group() == group && self.get(e.serial()).is_none())
            .cloned()
            .collect();
        for entry in entries {
            self.insert_validated(entry);
        }
    }

    /// The chain whose leaf has `serial`.
    pub fn get(&self, serial: &[u8]) -> Option<&Arc<MemberCert>> {
        self.own
            .get(serial)
            .or_else(|| self.shared.by_serial.get(serial))
    }

    /// Every entry, once (an own entry replacing a shared one hides it).
    fn all(&self) -> impl Iterator<Item = &Arc<MemberCert>> {
        self.own.values().chain(
            self.shared
                .by_serial
                .iter()
                .filter(|(s, _)| !self.own.contains_key(&***s))
                .map(|(_, e)| e),
        )
    }

    /// Every chain of `peer`.
    pub fn of_peer<'a>(&'a self, peer: &'a PeerName) -> impl Iterator<Item = &'a Arc<MemberCert>> {
        let shared = self
            .shared
            .by_peer
            .get(peer)
            .into_iter()
            .flatten()
            .filter(|s| !self.own.contains_key(&***s))
            .filter_map(|s| self.shared.by_serial.get(s));
        shared.chain(self.own.values().filter(move |e| e.peer() == peer))
    }

    /// The peers with a chain only among the entries added here, each once.
    fn own_peers(&self) -> impl Iterator<Item = &PeerName> {
        let mut seen = std::collections::HashSet::new();
        self.own
            .values()
            .map(|e| e.peer())
            .filter(move |p| !self.shared.by_peer.contains_key(*p) && seen.insert(*p))
    }

    /// The known peers.
    pub fn peers(&self) -> impl Iterator<Item = &PeerName> {
        self.shared.by_peer.keys().chain(self.own_peers())
    }

    /// Number of peers with a known chain.
    pub fn peer_count(&self) -> usize {
        self.shared.by_peer.len() + self.own_peers().count()
    }

    /// Number of chains.
    pub fn len(&self) -> usize {
        self.shared.by_serial.len()
            + self
                .own
                .keys()
                .filter(|s| !self.shared.by_serial.contains_key(&***s))
                .count()
    }

    /// Whether no chain is known.
    pub fn is_empty(&self) -> bool {
        self.shared.by_serial.is_empty() && self.own.is_empty()
    }
}
