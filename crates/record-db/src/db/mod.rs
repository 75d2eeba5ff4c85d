//! The database: a store, the merge rule, validation and what the replica knows about the
//! group (members, revocations, properties), kept consistent together.

mod apply;
mod deferred;
mod keys;
mod local;
mod precheck;

use peergroup_credential_roles::{CertChain, RevocationSet};
use peergroup_identity::{PeerName, PublicKey, Timestamp};

pub use apply::ApplyReport;
pub use deferred::{
    MAX_DEFERRED, MAX_DEFERRED_BYTES, MAX_DEFERRED_BYTES_PER_SIGNER, MAX_DEFERRED_PER_SIGNER,
};
pub use local::{LocalSigner, NewRecord, RecordUpdate, SignedRecords};
pub use precheck::{Received, SignerKeys};

use crate::error::Error;
use crate::members::MemberIndex;
use crate::record::{Record, RecordId, RecordType};
use crate::reserved::{GroupProperties, MembershipPayload, RevocationPayload};
use crate::store::{Batch, Store};
use crate::validate::Context;

/// What happened to a record, as reported to the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A record was published.
    Added,
    /// A record was updated.
    Updated,
    /// A record was deleted (the record is the tombstone).
    Deleted,
    /// A record's lifetime ended and it was removed.
    Expired,
}

/// A change to the database, carrying the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The record (the new version, the tombstone, or the expired record).
    pub record: Record,
}

/// A group's replicated record database.
///
/// All changes go through [`Database::apply`] (records from other members) or the local
/// operations ([`Database::create`], [`Database::update`], [`Database::delete`]); both
/// validate exactly the same way, so nothing a replica stores would be refused by another.
pub struct Database<S: Store> {
    store: S,
    root: CertChain,
    group: PeerName,
    creator: PeerName,
    /// Every member chain known: those learned out of band and those of the membership
    /// records stored.
    members: MemberIndex,
    /// The member chains learned out of band ([`Database::learn_member`],
    /// [`Database::adopt_members`]), which no record holds.
    outside: MemberIndex,
    revocations: RevocationSet,
    properties: Option<GroupProperties>,
    /// Item keys of the stored records, by class, with their symbol encoders.
    keys: keys::KeyIndex,
    /// The members' signing keys, shared with the tasks that check signatures as records
    /// arrive.
    signer_keys: SignerKeys,
    /// What the batch being applied changed in memory and has not committed yet.
    uncommitted: Uncommitted,
    /// The deferred table's accounting.
    deferred: deferred::DeferredIndex,
}

/// What a batch being applied has changed in memory before its commit: undone when the
/// batch fails (a refused local change, a store failure), made final when it commits. So
/// the in-memory state always equals what was committed.
#[derive(Debug, Default)]
struct Uncommitted {
    /// The security state as it was before the batch took in its first security record.
    before: Option<SecurityState>,
    /// Member keys the batch learned, shared with the signature checkers once committed.
    keys: Vec<(Vec<u8>, PublicKey)>,
}

/// What security records teach the replica.
#[derive(Clone, Debug)]
struct SecurityState {
    members: MemberIndex,
    revocations: RevocationSet,
    properties: Option<GroupProperties>,
}

impl<S: Store> std::fmt::Debug for Database<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("group", &self.group)
            .field("records", &self.keys.len())
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

/// The metadata key naming the group a store belongs to.
pub const GROUP_META: &str = "group";

impl<S: Store> Database<S> {
    /// Opens the database of the group whose root certificate heads `chain` (any chain of the
    /// group will do; only its root is used) and loads what the store knows. A store is
    /// bound to its group on first open ([`GROUP_META`]); opening it for another group fails
    /// with [`Error::WrongGroup`] and changes nothing.
    pub fn open(store: S, chain: &CertChain) -> Result<Self, Error> {
        let root_der = chain.root().der();
        let root = CertChain::from_ders(&[root_der])
            .map_err(|e| Error::InvalidArgument(format!("group root certificate: {e}")))?;
        let group = root.group().clone();
        let creator = root
            .root()
            .creator()
            .cloned()
            .ok_or_else(|| Error::InvalidArgument("the group root names no creator".into()))?;
        root.validate(
            &group,
            root.root().not_before(),
            &RevocationSet::new(),
            None,
        )
        .map_err(|e| Error::InvalidArgument(format!("group root certificate: {e}")))?;
        let mut db = Database {
            store,
            root,
            group: group.clone(),
            creator,
            members: MemberIndex::default(),
            outside: MemberIndex::default(),
            revocations: RevocationSet::new(),
            properties: None,
            keys: keys::KeyIndex::default(),
            signer_keys: SignerKeys::new(group.clone()),
            uncommitted: Uncommitted::default(),
            deferred: deferred::DeferredIndex::default(),
        };
        match db.store.meta(GROUP_META)? {
            Some(holds) if holds != group.to_string().as_bytes() => {
                return Err(Error::WrongGroup {
                    holds: String::from_utf8_lossy(&holds).chars().take(128).collect(),
                    wanted: group.to_string(),
                });
            }
            Some(_) => {}
            // A new store, or one from before stores were bound: bound now.
            None => db.set_meta(GROUP_META, group.to_string().into_bytes())?,
        }
        db.load()?;
        Ok(db)
    }

    /// Notes the security state before a batch changes it (once per batch).
    pub(crate) fn before_security_change(&mut self) {
        if self.uncommitted.before.is_none() {
            self.uncommitted.before = Some(SecurityState {
                members: self.members.clone(),
                revocations: self.revocations.clone(),
                properties: self.properties.clone(),
            });
        }
    }

    /// The batch being applied was committed: what it taught the in-memory state stays, and
    /// the member keys it learned are shared with the signature checkers.
    pub(crate) fn settle(&mut self) {
        self.uncommitted.before = None;
        self.deferred.settle();
        for (serial, key) in std::mem::take(&mut self.uncommitted.keys) {
            self.signer_keys.add(&serial, key);
        }
    }

    /// The batch being applied was not committed: the in-memory state goes back to what
    /// was committed before it.
    pub(crate) fn abandon(&mut self) {
        if let Some(before) = self.uncommitted.before.take() {
            self.members = before.members;
            self.revocations = before.revocations;
            self.properties = before.properties;
        }
        self.uncommitted.keys.clear();
        self.deferred.rollback();
    }

    fn load(&mut self) -> Result<(), Error> {
        for (key, t, id) in self.store.keys()? {
            self.keys.insert(key, t.is_security(), &id);
        }
        for r in self.store.by_type(&RecordType::MEMBERSHIP)? {
            if !r.is_deleted()
                && let Ok(chain) = MembershipPayload::chain_from_payload(&r.payload)
            {
                let _ = self.add_member(&chain);
            }
        }
        self.revocations_and_properties_from_store()?;
        for e in self.store.deferred_entries()? {
            self.deferred.load(e);
        }
        // A table written under other bounds is brought within these.
        let mut over = self.deferred.enforce_shares();
        over.extend(self.deferred.enforce_total());
        if !over.is_empty() {
            let batch = Batch {
                undefer: over,
                ..Batch::default()
            };
            self.store.commit(&batch)?;
        }
        self.deferred.settle();
        Ok(())
    }

    /// Takes the revocations and the group properties from the records stored: what memory
    /// holds is what is stored (on open, and when such records expire).
    fn revocations_and_properties_from_store(&mut self) -> Result<(), Error> {
        self.revocations = RevocationSet::new();
        for r in self.store.by_type(&RecordType::REVOCATION)? {
            if let Ok(p) = RevocationPayload::from_payload(&r.payload) {
                self.revocations.insert(p.target, r.created);
            }
        }
        let id = GroupProperties::record_id(&self.creator);
        self.properties = self
            .store
            .get(&id)?
            .and_then(|r| GroupProperties::from_payload(&r.payload).ok());
        Ok(())
    }

    /// Takes the member chains from the membership records stored, with those learned out
    /// of band (when membership records expire: memory holds what is stored, as after a
    /// restart).
    fn members_from_store(&mut self) -> Result<(), Error> {
        let mut members = self.outside.clone();
        for r in self.store.by_type(&RecordType::MEMBERSHIP)? {
            if !r.is_deleted()
                && let Ok(chain) = MembershipPayload::chain_from_payload(&r.payload)
                && let Ok(entry) = self.members.validated(&self.group, &chain)
            {
                members.insert_validated(entry);
            }
        }
        self.members = members;
        Ok(())
    }

    /// The group peer name.
    pub fn group(&self) -> &PeerName {
        &self.group
    }

    /// The group creator's identity.
    pub fn creator(&self) -> &PeerName {
        &self.creator
    }

    /// The group root certificate, as a one-certificate chain.
    pub fn root(&self) -> &CertChain {
        &self.root
    }

    /// The group properties, or the defaults while the properties record has not arrived.
    pub fn properties(&self) -> GroupProperties {
        self.properties.clone().unwrap_or_else(|| {
            GroupProperties::new(
                self.root.root().subject_friendly_name(),
                self.creator.clone(),
            )
        })
    }

    /// Whether the properties record has been received.
    pub fn has_properties(&self) -> bool {
        self.properties.is_some()
    }

    /// Known member certificate chains.
    pub fn members(&self) -> &MemberIndex {
        &self.members
    }

    /// Known revocations.
    pub fn revocations(&self) -> &RevocationSet {
        &self.revocations
    }

    /// Adds a member chain learned out of band (the local member's own, or a peer's from its
    /// TLS handshake), so records it signs validate before its membership record arrives.
    pub fn learn_member(&mut self, chain: &CertChain) -> Result<(), Error> {
        let entry = self
            .add_member(chain)
            .map_err(|e| Error::InvalidArgument(format!("member chain: {e}")))?;
        self.outside.insert_validated(entry);
        Ok(())
    }

    /// Validates and indexes a member chain, and shares its key with the signature checkers.
    fn add_member(
        &mut self,
        chain: &CertChain,
    ) -> Result<std::sync::Arc<crate::members::MemberCert>, peergroup_credential_roles::ChainError>
    {
        let entry = self.members.insert(&self.group, chain)?;
        self.signer_keys
            .add(entry.serial(), *entry.valid.chain().leaf().public_key());
        Ok(entry)
    }

    /// The members' signing keys, for checking the signatures of received records off this
    /// database's task ([`SignerKeys::check`], then [`Database::apply_received`]).
    pub fn signer_keys(&self) -> SignerKeys {
        self.signer_keys.clone()
    }

    /// Adds every chain of an index that was already validated for this group (shares the
    /// validation work when many replicas start from the same member list, as in the
    /// simulator). Chains of other groups are ignored.
    pub fn adopt_members(&mut self, index: &MemberIndex) {
        self.members.adopt(&self.group, index);
        self.outside.adopt(&self.group, index);
        for peer in self.members.peers() {
            for m in self.members.of_peer(peer) {
                self.signer_keys
                    .add(m.serial(), *m.valid.chain().leaf().public_key());
            }
        }
        // Adopted whole, as a template for other replicas: shared whole by them.
        self.signer_keys.freeze();
    }

    /// Adopts the members another database of the same group knows ([`Database::adopt_members`]
    /// with its member index), sharing its tables copy-on-write when this database knows no
    /// member yet: thousands of replicas of one group in one process (the simulator) hold the
    /// member list once. Another group's database is ignored.
    pub fn adopt_members_of<T: Store>(&mut self, other: &Database<T>) {
        if other.group != self.group {
            return;
        }
        self.signer_keys.share_from(&other.signer_keys);
        self.adopt_members(&other.members);
    }

    pub(crate) fn context(&self, now: Timestamp) -> Context<'_> {
        Context {
            group: &self.group,
            creator: &self.creator,
            members: &self.members,
            revocations: &self.revocations,
            now,
        }
    }

    /// The group's maximum record size (payload plus attributes), which binds the records
    /// made here: received records are held to [`crate::reserved::MAX_RECORD_SIZE_LIMIT`]
    /// only, so that every replica keeps a record whenever the properties changed.
    pub fn max_record_size(&self) -> usize {
        // Not `properties()`: that clones (or builds) the whole record per call.
        self.properties
            .as_ref()
            .map_or(GroupProperties::DEFAULT_MAX_RECORD_SIZE, |p| {
                p.max_record_size
            }) as usize
    }

    /// The live (not deleted) record with `id`.
    pub fn get(&self, id: RecordId) -> Result<Option<Record>, Error> {
        Ok(self.store.get(&id)?.filter(|r| !r.is_deleted()))
    }

    /// The stored version of `id`, tombstones included.
    pub fn get_any(&self, id: RecordId) -> Result<Option<Record>, Error> {
        Ok(self.store.get(&id)?)
    }

    /// Live records of one type.
    pub fn records_of_type(&self, record_type: RecordType) -> Result<Vec<Record>, Error> {
        Ok(self
            .store
            .by_type(&record_type)?
            .into_iter()
            .filter(|r| !r.is_deleted())
            .collect())
    }

    /// Live records matching a Windows search query (see [`crate::search`]).
    pub fn search(&self, query_xml: &str) -> Result<Vec<Record>, Error> {
        let query = crate::search::Query::parse(query_xml)?;
        let mut out = Vec::new();
        self.store.for_each(&mut |r| {
            if !r.is_deleted() && crate::record_search::matches(&query, &r) {
                out.push(r);
            }
        })?;
        Ok(out)
    }

    /// Calls `f` with every stored record (tombstones included).
    pub fn for_each(&self, f: &mut dyn FnMut(Record)) -> Result<(), Error> {
        Ok(self.store.for_each(f)?)
    }

    /// Number of stored records (tombstones included).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The item keys of stored records, security records or the others.
    pub fn item_keys(&self, security: bool) -> Vec<u64> {
        self.keys.of_class(security)
    }

    /// A snapshot of one class's item keys for a reconciliation session.
    pub fn key_snapshot(&self, security: bool) -> crate::reconcile::SetSnapshot {
        self.keys.snapshot(security)
    }

    /// Whether the exact record version with item key `key` is stored (a memory lookup).
    pub fn contains_key(&self, key: u64) -> bool {
        self.keys.contains(key)
    }

    /// The stored record with item key `key`.
    pub fn record_by_key(&self, key: u64) -> Result<Option<Record>, Error> {
        let Some(prefix) = self.keys.id_prefix_of(key) else {
            return Ok(None);
        };
        Ok(self
            .store
            .by_id_prefix(prefix)?
            .into_iter()
            .find(|r| r.item_key() == key))
    }

    /// An order-independent digest of the stored records (equal on converged replicas).
    pub fn digest(&self) -> [u8; 32] {
        let mut keys: Vec<u64> = self.keys.all().collect();
        keys.sort_unstable();
        let bytes: Vec<u8> = keys.iter().flat_map(|k| k.to_be_bytes()).collect();
        peergroup_identity::sha256(&bytes)
    }

    /// A metadata value (peer-time offset and the like).
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.store.meta(key)?)
    }

    /// Sets a metadata value durably.
    pub fn set_meta(&mut self, key: &str, value: Vec<u8>) -> Result<(), Error> {
        let batch = Batch {
            meta: vec![(key.to_owned(), value)],
            ..Batch::default()
        };
        Ok(self.store.commit(&batch)?)
    }

    /// Removes records and tombstones whose lifetime has ended, and deferred records that
    /// expired while waiting; reports the removed records. What memory took from expired
    /// revocation, properties and membership records goes with them, as it would on a
    /// restart (member chains learned out of band stay).
    pub fn sweep(&mut self, now: Timestamp) -> Result<Vec<Change>, Error> {
        let expired = self.store.expiring(now)?;
        let stale_deferred = self.deferred.expired(now);
        if expired.is_empty() && stale_deferred.is_empty() {
            return Ok(Vec::new());
        }
        let batch = Batch {
            remove: expired.iter().map(|r| r.id).collect(),
            undefer: stale_deferred,
            ..Batch::default()
        };
        self.store.commit(&batch)?;
        for r in &expired {
            self.keys.remove(&r.item_key());
        }
        // A revocation ends with its record (which cannot outlive its signer's membership),
        // the properties with theirs, and a member chain with the last membership record
        // holding it (unless learned out of band): here as after a restart.
        if expired.iter().any(|r| {
            r.record_type == RecordType::REVOCATION || r.record_type == RecordType::GROUP_PROPERTIES
        }) {
            self.revocations_and_properties_from_store()?;
        }
        if expired
            .iter()
            .any(|r| r.record_type == RecordType::MEMBERSHIP)
        {
            self.members_from_store()?;
        }
        for k in &batch.undefer {
            self.deferred.remove(*k);
        }
        self.deferred.settle();
        Ok(expired
            .into_iter()
            .filter(|r| !r.is_deleted())
            .map(|record| Change {
                kind: ChangeKind::Expired,
                record,
            })
            .collect())
    }

    /// Number of records held back until their signer's membership arrives (at most
    /// [`MAX_DEFERRED`]).
    pub fn deferred_len(&self) -> usize {
        self.deferred.len()
    }

    /// Bytes (canonical encodings) of the records held back until their signer's
    /// membership arrives (at most [`MAX_DEFERRED_BYTES`]).
    pub fn deferred_bytes(&self) -> u64 {
        self.deferred.bytes()
    }

    /// Closes the database, returning its store.
    pub fn into_store(self) -> S {
        self.store
    }

    /// The store (read-only).
    pub fn store(&self) -> &S {
        &self.store
    }
}
