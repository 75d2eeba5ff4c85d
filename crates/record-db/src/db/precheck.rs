//! Signature checks off the database's task: a receiving node checks the signatures of a
//! burst of records where they arrive (the connection's reader), in parallel with the
//! database validating and storing the previous burst. The database then checks everything
//! else and skips a signature only when it was checked with the very key the record's
//! signer resolves to.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use peergroup_identity::{PeerName, PublicKey, Signature, verify_batch};

use crate::record::Record;

/// A record as received, perhaps with its signature already checked by
/// [`SignerKeys::check`]. Only that check sets the key, and the record cannot be changed
/// after.
#[derive(Clone, Debug)]
pub struct Received {
    record: Record,
    checked_with: Option<PublicKey>,
    /// The record's [`Record::item_key`], computed once where it arrived: the node's task
    /// needs it three times per record (to find duplicates, to index it, to forward it),
    /// and each is a SHA-256.
    key: u64,
}

impl Received {
    /// A record whose signature nobody checked yet.
    pub fn unchecked(record: Record) -> Self {
        Self {
            key: record.item_key(),
            record,
            checked_with: None,
        }
    }

    /// The record.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The record's [`Record::item_key`].
    pub fn item_key(&self) -> u64 {
        self.key
    }

    /// The record, without what was checked.
    pub fn into_record(self) -> Record {
        self.record
    }

    /// Whether its signature was found good under `key`.
    pub fn checked_with(&self, key: &PublicKey) -> bool {
        self.checked_with.as_ref() == Some(key)
    }

    pub(crate) fn into_parts(self) -> (Record, Option<PublicKey>, u64) {
        (self.record, self.checked_with, self.key)
    }
}

/// The signing keys of the group's known members by certificate serial, shared with the
/// tasks that receive records ([`crate::Database::signer_keys`]; cheap to clone). The
/// database adds every member it learns. A key here only says which key to try: whether
/// the member may sign that record, then and there, is decided by the database.
#[derive(Clone, Debug)]
pub struct SignerKeys {
    group: PeerName,
    /// The table is shared copy-on-write with other databases' when one adopted another's
    /// members ([`SignerKeys::share_from`]).
    keys: Arc<RwLock<Arc<KeyTable>>>,
}

/// Signing keys by certificate serial, in two layers as the member index
/// ([`crate::members::MemberIndex`]): the keys shared with other tables (never changed
/// here) and the keys added here since, so a table sharing 10,000 members' keys copies only
/// what it adds.
#[derive(Clone, Debug, Default)]
struct KeyTable {
    shared: Arc<HashMap<Vec<u8>, PublicKey>>,
    own: HashMap<Vec<u8>, PublicKey>,
}

impl KeyTable {
    fn get(&self, serial: &[u8]) -> Option<&PublicKey> {
        self.own.get(serial).or_else(|| self.shared.get(serial))
    }

    fn len(&self) -> usize {
        self.shared.len()
            + self
                .own
                .keys()
                .filter(|s| !self.shared.contains_key(*s))
                .count()
    }

    fn is_empty(&self) -> bool {
        self.shared.is_empty() && self.own.is_empty()
    }

    /// The table to share: one layer (both merged, when this one added to what it shared).
    fn to_share(&self) -> Arc<HashMap<Vec<u8>, PublicKey>> {
        if self.own.is_empty() {
            return self.shared.clone();
        }
        let mut all = (*self.shared).clone();
        all.extend(self.own.iter().map(|(s, k)| (s.clone(), *k)));
        Arc::new(all)
    }
}

impl SignerKeys {
    pub(crate) fn new(group: PeerName) -> Self {
        Self {
            group,
            keys: Arc::default(),
        }
    }

    pub(crate) fn add(&self, serial: &[u8], key: PublicKey) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.get(serial) != Some(&key) {
            Arc::make_mut(&mut keys).own.insert(serial.to_vec(), key);
        }
    }

    /// Moves the keys added here into the shared layer, for the tables that will share this
    /// one ([`SignerKeys::share_from`]) to take whole.
    pub(crate) fn freeze(&self) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if !keys.own.is_empty() {
            *keys = Arc::new(KeyTable {
                shared: keys.to_share(),
                own: HashMap::new(),
            });
        }
    }

    /// Shares the table of `other` (for the same group) when this one knows no key yet.
    pub(crate) fn share_from(&self, other: &SignerKeys) {
        if self.group != other.group || Arc::ptr_eq(&self.keys, &other.keys) {
            return;
        }
        let theirs = other
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .to_share();
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.is_empty() {
            *keys = Arc::new(KeyTable {
                shared: theirs,
                own: HashMap::new(),
            });
        }
    }

    /// The key of the member whose certificate has `serial`, if known.
    pub fn key(&self, serial: &[u8]) -> Option<PublicKey> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(serial)
            .copied()
    }

    /// Number of member keys known.
    pub fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no member key is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the signatures of `records` in one batch, each against the key of the member
    /// whose certificate serial it names. Records by an unknown member, or whose signature
    /// fails, come back unchecked: the database checks them again and says why it refuses
    /// them.
    pub fn check(&self, records: Vec<Record>) -> Vec<Received> {
        let keys: Vec<Option<PublicKey>> = {
            let known = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            records
                .iter()
                .map(|r| known.get(&r.security.modifier_serial).copied())
                .collect()
        };
        let messages: Vec<Option<Vec<u8>>> = records
            .iter()
            .zip(&keys)
            .map(|(r, k)| k.map(|_| r.signed_bytes(&self.group)))
            .collect();
        let items: Vec<(&[u8], &Signature, &PublicKey)> = records
            .iter()
            .zip(&messages)
            .zip(&keys)
            .filter_map(|((r, m), k)| Some((m.as_deref()?, &r.security.signature, k.as_ref()?)))
            .collect();
        let mut verdicts = verify_batch(&items).into_iter();
        records
            .into_iter()
            .zip(keys)
            .map(|(record, key)| {
                let good = key.is_some() && verdicts.next().is_some_and(|v| v.is_ok());
                Received {
                    key: record.item_key(),
                    record,
                    checked_with: key.filter(|_| good),
                }
            })
            .collect()
    }
}
