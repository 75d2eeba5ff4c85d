//! The item keys of the stored records, per synchronisation class, with their coded-symbol
//! encoders kept up to date so a reconciliation can start without re-encoding the set.

use std::collections::{HashMap, HashSet};

use crate::reconcile::{Encoder, SetSnapshot};
use crate::record::RecordId;

/// Item key → class and id prefix, plus one incremental encoder per class (security, data),
/// plus a filter of the record ids held.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    /// What is known of each stored record by item key: its class (security or not) and the
    /// first 8 bytes of its id, which find it in the store through the id index (a store
    /// index on item keys, random hashes, would cost a scattered page write per insert).
    class: HashMap<u64, Entry>,
    security: Encoder,
    data: Encoder,
    /// The first 8 bytes of every stored record's id (ids are hashes). An id whose prefix is
    /// absent is certainly not stored, so receiving a new record costs no store lookup; a
    /// present prefix only means "look it up". Entries are never removed (a stale one costs
    /// a lookup, nothing else).
    ids: HashSet<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    security: bool,
    id_prefix: [u8; 8],
}

fn id_prefix(id: &RecordId) -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.0[..8]);
    b
}

impl KeyIndex {
    fn encoder(&mut self, security: bool) -> &mut Encoder {
        if security {
            &mut self.security
        } else {
            &mut self.data
        }
    }

    /// Notes a stored record: its item key, class and id.
    pub(crate) fn insert(&mut self, key: u64, security: bool, id: &RecordId) {
        let entry = Entry {
            security,
            id_prefix: id_prefix(id),
        };
        if self.class.insert(key, entry).is_none() {
            self.encoder(security).insert(key);
        }
        self.ids.insert(u64::from_le_bytes(entry.id_prefix));
    }

    /// False when no record with `id` is stored; true when one may be.
    pub(crate) fn may_hold_id(&self, id: &RecordId) -> bool {
        self.ids.contains(&u64::from_le_bytes(id_prefix(id)))
    }

    /// The first 8 bytes of the id of the record stored under `key`.
    pub(crate) fn id_prefix_of(&self, key: u64) -> Option<[u8; 8]> {
        self.class.get(&key).map(|e| e.id_prefix)
    }

    pub(crate) fn remove(&mut self, key: &u64) {
        if let Some(e) = self.class.remove(key) {
            self.encoder(e.security).remove(*key);
        }
    }

    pub(crate) fn contains(&self, key: u64) -> bool {
        self.class.contains_key(&key)
    }

    pub(crate) fn len(&self) -> usize {
        self.class.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.class.is_empty()
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = u64> + '_ {
        self.class.keys().copied()
    }

    pub(crate) fn of_class(&self, security: bool) -> Vec<u64> {
        self.class
            .iter()
            .filter(|(_, e)| e.security == security)
            .map(|(k, _)| *k)
            .collect()
    }

    /// An immutable snapshot of one class for a reconciliation session.
    pub(crate) fn snapshot(&self, security: bool) -> SetSnapshot {
        let keys = self.of_class(security);
        let encoder = if security {
            self.security.clone()
        } else {
            self.data.clone()
        };
        // The encoder tracks exactly these keys; rebuild only if that ever failed to hold.
        SetSnapshot::from_parts(keys.clone(), encoder).unwrap_or_else(|_| SetSnapshot::new(keys))
    }
}
