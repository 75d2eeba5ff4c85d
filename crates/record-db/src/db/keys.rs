//! The item keys of the stored records, per synchronisation class, with their coded-symbol
//! encoders kept up to date so a reconciliation can start without re-encoding the set.

use foldhash::{HashMap, HashSet};

use crate::reconcile::{Encoder, PREFIX, SetSnapshot};
use crate::record::RecordId;

/// Fewest symbols a class's encoder keeps up to date (1.5 KiB).
const MIN_PREFIX: usize = 64;

/// Item key → class and id prefix, plus one incremental encoder per class (security, data),
/// plus a filter of the record ids held.
///
/// Each encoder keeps up to date four symbols per key of its class, between [`MIN_PREFIX`]
/// and [`PREFIX`]: a difference of up to about three times the set's size decodes from the
/// kept symbols, and a small set costs little memory (the full prefix is 96 KiB per class,
/// per replica and per session's snapshot). Symbols past the prefix are computed from the
/// keys, so the prefix's length changes no symbol, only the work of producing it.
#[derive(Debug)]
pub(crate) struct KeyIndex {
    /// What is known of each stored record by item key: its class (security or not) and the
    /// first 8 bytes of its id, which find it in the store through the id index (a store
    /// index on item keys, random hashes, would cost a scattered page write per insert).
    /// Keyed by foldhash with a random seed: the keys are hashes a member can grind, and
    /// SipHash's share of a receiving node's CPU time was ~1% (`network/flood_1KiB`).
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

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex {
            class: HashMap::default(),
            security: Encoder::with_prefix(MIN_PREFIX),
            data: Encoder::with_prefix(MIN_PREFIX),
            ids: HashSet::default(),
        }
    }
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
            self.grow_prefix(security);
        }
        self.ids.insert(u64::from_le_bytes(entry.id_prefix));
    }

    /// Doubles a class's kept symbols when its set outgrew a quarter of them (amortised
    /// O(log PREFIX) per insert).
    fn grow_prefix(&mut self, security: bool) {
        let encoder = if security { &self.security } else { &self.data };
        let (len, kept) = (encoder.len(), encoder.prefix_len());
        if kept >= PREFIX || len.saturating_mul(4) <= kept as u64 {
            return;
        }
        let target = kept.saturating_mul(2).clamp(MIN_PREFIX, PREFIX);
        let keys = self.of_class(security);
        self.encoder(security).extend_prefix(target, keys);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{SymbolSource, symbols_of};

    fn id(n: u64) -> RecordId {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&n.to_le_bytes());
        RecordId(b)
    }

    #[test]
    fn kept_symbols_grow_with_the_set_and_match_a_fresh_encoding() {
        let mut index = KeyIndex::default();
        assert_eq!(index.snapshot(false).encoder().prefix_len(), MIN_PREFIX);
        let mut keys = Vec::new();
        for n in 1..=3000u64 {
            let key = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            index.insert(key, n % 10 == 0, &id(n));
            if n % 10 != 0 {
                keys.push(key);
            }
            if n % 500 == 0 {
                let snap = index.snapshot(false);
                let kept = snap.encoder().prefix_len();
                assert!(
                    kept >= 4 * keys.len() || kept == PREFIX,
                    "{kept} for {}",
                    keys.len()
                );
                assert!(
                    kept <= (8 * keys.len()).max(MIN_PREFIX),
                    "{kept} for {}",
                    keys.len()
                );
                // Inside and past the prefix: the symbols of the set, whatever was kept.
                let fresh = symbols_of(keys.iter().copied(), 0..(PREFIX as u64 + 100));
                assert_eq!(snap.symbols(0, PREFIX + 100), fresh);
            }
        }
        // Removing keeps the kept symbols right.
        for key in keys.drain(..1000) {
            index.remove(&key);
        }
        let snap = index.snapshot(false);
        assert_eq!(
            snap.symbols(0, 5000),
            symbols_of(keys.iter().copied(), 0..5000)
        );
    }
}
