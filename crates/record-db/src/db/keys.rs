//! The item keys of the stored records, per synchronisation class, with their coded-symbol
//! encoders kept up to date so a reconciliation can start without re-encoding the set.

use std::collections::{HashMap, HashSet};

use crate::reconcile::{Encoder, SetSnapshot};
use crate::record::RecordId;

/// Item key → class, plus one incremental encoder per class (security, data), plus a filter
/// of the record ids held.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    class: HashMap<u64, bool>,
    security: Encoder,
    data: Encoder,
    /// The first 8 bytes of every stored record's id (ids are hashes). An id whose prefix is
    /// absent is certainly not stored, so receiving a new record costs no store lookup; a
    /// present prefix only means "look it up". Entries are never removed (a stale one costs
    /// a lookup, nothing else).
    ids: HashSet<u64>,
}

fn id_prefix(id: &RecordId) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.0[..8]);
    u64::from_le_bytes(b)
}

impl KeyIndex {
    fn encoder(&mut self, security: bool) -> &mut Encoder {
        if security {
            &mut self.security
        } else {
            &mut self.data
        }
    }

    pub(crate) fn insert(&mut self, key: u64, security: bool) {
        if self.class.insert(key, security).is_none() {
            self.encoder(security).insert(key);
        }
    }

    /// Notes that a record with `id` is stored.
    pub(crate) fn note_id(&mut self, id: &RecordId) {
        self.ids.insert(id_prefix(id));
    }

    /// False when no record with `id` is stored; true when one may be.
    pub(crate) fn may_hold_id(&self, id: &RecordId) -> bool {
        self.ids.contains(&id_prefix(id))
    }

    pub(crate) fn remove(&mut self, key: &u64) {
        if let Some(security) = self.class.remove(key) {
            self.encoder(security).remove(*key);
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = KeyIndex::default();
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
            .filter(|(_, s)| **s == security)
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
