//! Accounting of the deferred table: records held back because the certificate serial that
//! signed them is not known yet. Their signatures cannot be checked (the key is unknown),
//! so anyone can make such records by claiming a serial: the table is bounded in count and
//! bytes, for the whole table and per claimed serial, and the earliest-expiring records go
//! first when a bound is reached.
//!
//! The index mirrors the table in memory (content key, claimed serial, expiry, encoded size; no
//! record bodies), so a record is admitted or evicted without reading the table. It is
//! rebuilt from the store's metadata on open ([`crate::store::Store::deferred_entries`]),
//! and every change a batch makes is journaled so that a batch that is not committed leaves
//! it as it was.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher as _, RandomState};

use peergroup_identity::Timestamp;

use crate::store::DeferredEntry;

/// Most records held in the deferred table; beyond it the earliest-expiring are dropped.
pub const MAX_DEFERRED: usize = 65_536;
/// Most bytes (canonical encodings) held in the deferred table; beyond it the
/// earliest-expiring records are dropped. The table is per group database.
pub const MAX_DEFERRED_BYTES: u64 = 64 * 1024 * 1024;
/// Most deferred records claiming one signer certificate serial; beyond it that serial's
/// earliest-expiring records are dropped.
pub const MAX_DEFERRED_PER_SIGNER: usize = 1024;
/// Most deferred bytes claiming one signer certificate serial; beyond it that serial's
/// earliest-expiring records are dropped. Holds one record of the largest size a group may
/// allow ([`crate::reserved::MAX_RECORD_SIZE_LIMIT`], encoded: within
/// [`crate::reserved::FRAME_LIMIT`]).
pub const MAX_DEFERRED_BYTES_PER_SIGNER: u64 = 16 * 1024 * 1024;

/// A claimed serial as the index knows it: a hash keyed at random per index, so the index
/// holds no serial bytes (a full table of records each claiming its own serial costs ~150
/// bytes a record). Two serials with one hash would share one share of the bounds and be
/// retried together when either is learned (a retried record whose serial is still unknown
/// is deferred again); without the key, nobody can make two such serials on purpose.
type SerialHash = u64;

/// What is known of one deferred record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    serial: SerialHash,
    expires: Timestamp,
    size: u64,
}

/// One claimed serial's share of the table.
#[derive(Clone, Copy, Debug, Default)]
struct Share {
    bytes: u64,
    records: usize,
}

/// A change to undo if the batch is not committed.
#[derive(Debug)]
enum Change {
    Inserted(u64),
    Removed(u64, Held),
}

/// The outcome of [`DeferredIndex::admit`].
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// Whether the new record is held (it may be the earliest-expiring one, and dropped).
    pub(crate) admitted: bool,
    /// Records held before that were dropped to make room (not the new one).
    pub(crate) evicted: Vec<u64>,
}

/// The deferred table's accounting, see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct DeferredIndex {
    hasher: RandomState,
    held: HashMap<u64, Held>,
    shares: HashMap<SerialHash, Share>,
    /// (serial, expiry, content key) of every record: each serial's, earliest first.
    by_serial: BTreeSet<(SerialHash, Timestamp, u64)>,
    /// (expiry, content key) of every record, earliest first.
    order: BTreeSet<(Timestamp, u64)>,
    bytes: u64,
    journal: Vec<Change>,
}

impl DeferredIndex {
    /// Number of records held.
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    /// Bytes held (canonical encodings).
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the record with content key `key` is held.
    pub(crate) fn contains(&self, key: u64) -> bool {
        self.held.contains_key(&key)
    }

    fn serial_hash(&self, serial: &[u8]) -> SerialHash {
        self.hasher.hash_one(serial)
    }

    /// The content keys of the records claiming `serial` (and, with odds of one in 2^64 per
    /// pair, another serial of the same hash: see [`SerialHash`]).
    pub(crate) fn keys_of(&self, serial: &[u8]) -> Vec<u64> {
        let hash = self.serial_hash(serial);
        self.serial_range(hash).map(|(_, _, k)| *k).collect()
    }

    fn serial_range(
        &self,
        hash: SerialHash,
    ) -> impl Iterator<Item = &(SerialHash, Timestamp, u64)> + '_ {
        self.by_serial.range(
            (hash, Timestamp::from_millis(0), 0)
                ..=(hash, Timestamp::from_millis(u64::MAX), u64::MAX),
        )
    }

    /// The content keys of the records expiring at or before `now`.
    pub(crate) fn expired(&self, now: Timestamp) -> Vec<u64> {
        self.order
            .range(..=(now, u64::MAX))
            .map(|(_, k)| *k)
            .collect()
    }

    fn held_of(&self, e: &DeferredEntry) -> Held {
        Held {
            serial: self.serial_hash(&e.serial),
            expires: e.expires,
            size: e.size,
        }
    }

    /// Takes in a record of the table as it is stored (on open). Returns false for a key
    /// already held.
    pub(crate) fn load(&mut self, e: DeferredEntry) -> bool {
        let held = self.held_of(&e);
        let fresh = self.insert(e.key, held);
        self.journal.clear();
        fresh
    }

    /// Holds a new record if the bounds allow, dropping earliest-expiring records (the new
    /// one included) until the claimed serial's share and the whole table are within
    /// [`MAX_DEFERRED_PER_SIGNER`], [`MAX_DEFERRED_BYTES_PER_SIGNER`], [`MAX_DEFERRED`] and
    /// [`MAX_DEFERRED_BYTES`]. A key already held is not admitted again.
    pub(crate) fn admit(&mut self, e: DeferredEntry) -> Admission {
        let key = e.key;
        let held = self.held_of(&e);
        if !self.insert(key, held) {
            return Admission::default();
        }
        let mut dropped = self.enforce_share(held.serial);
        dropped.extend(self.enforce_total());
        let admitted = !dropped.contains(&key);
        dropped.retain(|k| *k != key);
        Admission {
            admitted,
            evicted: dropped,
        }
    }

    /// Drops earliest-expiring records until the whole table is within bounds (for a table
    /// loaded from a store written under other bounds). Returns the keys dropped.
    pub(crate) fn enforce_total(&mut self) -> Vec<u64> {
        let mut dropped = Vec::new();
        while self.held.len() > MAX_DEFERRED || self.bytes > MAX_DEFERRED_BYTES {
            let Some(&(_, key)) = self.order.first() else {
                break;
            };
            self.remove(key);
            dropped.push(key);
        }
        dropped
    }

    /// Drops the serial's earliest-expiring records until its share is within bounds.
    fn enforce_share(&mut self, serial: SerialHash) -> Vec<u64> {
        let mut dropped = Vec::new();
        while let Some(share) = self.shares.get(&serial)
            && (share.records > MAX_DEFERRED_PER_SIGNER
                || share.bytes > MAX_DEFERRED_BYTES_PER_SIGNER)
        {
            let Some(&(_, _, key)) = self.serial_range(serial).next() else {
                break;
            };
            self.remove(key);
            dropped.push(key);
        }
        dropped
    }

    /// Drops every share over its bounds (see [`DeferredIndex::enforce_total`]).
    pub(crate) fn enforce_shares(&mut self) -> Vec<u64> {
        let over: Vec<SerialHash> = self
            .shares
            .iter()
            .filter(|(_, s)| {
                s.records > MAX_DEFERRED_PER_SIGNER || s.bytes > MAX_DEFERRED_BYTES_PER_SIGNER
            })
            .map(|(h, _)| *h)
            .collect();
        over.into_iter()
            .flat_map(|h| self.enforce_share(h))
            .collect()
    }

    fn insert(&mut self, key: u64, held: Held) -> bool {
        if self.held.contains_key(&key) {
            return false;
        }
        let share = self.shares.entry(held.serial).or_default();
        share.bytes += held.size;
        share.records += 1;
        self.by_serial.insert((held.serial, held.expires, key));
        self.order.insert((held.expires, key));
        self.bytes += held.size;
        self.held.insert(key, held);
        self.journal.push(Change::Inserted(key));
        true
    }

    /// Forgets a held record; returns whether it was held.
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        let Some(held) = self.held.remove(&key) else {
            return false;
        };
        self.order.remove(&(held.expires, key));
        self.by_serial.remove(&(held.serial, held.expires, key));
        self.bytes -= held.size;
        if let Some(share) = self.shares.get_mut(&held.serial) {
            share.bytes -= held.size;
            share.records -= 1;
            if share.records == 0 {
                self.shares.remove(&held.serial);
            }
        }
        self.journal.push(Change::Removed(key, held));
        true
    }

    /// The changes since the last call are committed: keep them.
    pub(crate) fn settle(&mut self) {
        self.journal.clear();
    }

    /// The changes since the last [`DeferredIndex::settle`] were not committed: undo them.
    pub(crate) fn rollback(&mut self) {
        let journal = std::mem::take(&mut self.journal);
        for change in journal.into_iter().rev() {
            match change {
                Change::Inserted(key) => {
                    self.remove(key);
                }
                Change::Removed(key, held) => {
                    self.insert(key, held);
                }
            }
        }
        self.journal.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: u64, serial: u8, expires: u64, size: u64) -> DeferredEntry {
        DeferredEntry {
            key,
            serial: vec![serial],
            expires: Timestamp::from_millis(expires),
            size,
        }
    }

    #[test]
    fn a_share_keeps_its_latest_expiring_records() {
        let mut ix = DeferredIndex::default();
        for i in 0..MAX_DEFERRED_PER_SIGNER as u64 {
            assert!(ix.admit(entry(i, 1, 1000 + i, 10)).admitted);
        }
        // One more, expiring later than all: the earliest (key 0) goes.
        let a = ix.admit(entry(9999, 1, 1_000_000, 10));
        assert!(a.admitted);
        assert_eq!(a.evicted, vec![0]);
        // One expiring before all: it is the one dropped.
        let a = ix.admit(entry(10_000, 1, 1, 10));
        assert!(!a.admitted && a.evicted.is_empty());
        assert_eq!(ix.len(), MAX_DEFERRED_PER_SIGNER);
        // Another serial is not affected.
        assert!(ix.admit(entry(20_000, 2, 1, 10)).admitted);
    }

    #[test]
    fn rollback_restores_the_accounting() {
        let mut ix = DeferredIndex::default();
        ix.admit(entry(1, 1, 10, 100));
        ix.admit(entry(2, 2, 20, 100));
        ix.settle();
        let before = (ix.len(), ix.bytes(), ix.keys_of(&[1]), ix.keys_of(&[2]));
        ix.admit(entry(3, 1, 30, 100));
        ix.remove(2);
        ix.admit(entry(4, 3, 5, MAX_DEFERRED_BYTES_PER_SIGNER + 1));
        ix.rollback();
        assert_eq!(
            (ix.len(), ix.bytes(), ix.keys_of(&[1]), ix.keys_of(&[2])),
            before
        );
        assert!(ix.keys_of(&[3]).is_empty());
        assert_eq!(ix.expired(Timestamp::from_millis(15)), vec![1]);
    }
}
