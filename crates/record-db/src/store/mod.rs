//! Where a replica's records live: the [`Store`] trait, with SQLite ([`SqliteStore`]) for real
//! use and a map ([`MemoryStore`]) for unit tests and the simulator.
//!
//! A store only keeps what it is given; the merge rule and validation are the database's
//! job. [`Store::commit`] applies a whole [`Batch`] atomically and returns only once it is
//! durable, so one commit can carry many received records (group commit) and a local change
//! is acknowledged only when it would survive a crash.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use peergroup_identity::Timestamp;

use crate::error::StoreError;
use crate::record::{Record, RecordId, RecordType};

/// Changes to apply together.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Records to insert or replace (by id).
    pub put: Vec<Record>,
    /// Record ids to remove.
    pub remove: Vec<RecordId>,
    /// Records to hold as deferred (by [`Record::content_key`]).
    pub defer: Vec<Record>,
    /// Deferred records to drop (by content key).
    pub undefer: Vec<u64>,
    /// Metadata to set.
    pub meta: Vec<(String, Vec<u8>)>,
}

impl Batch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.put.is_empty()
            && self.remove.is_empty()
            && self.defer.is_empty()
            && self.undefer.is_empty()
            && self.meta.is_empty()
    }
}

/// What the database accounts a deferred record by (see [`Store::deferred_entries`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeferredEntry {
    /// The key the record is held by: its [`Record::content_key`] (not its item key, which
    /// a forgery of it shares).
    pub key: u64,
    /// The certificate serial that claims to have signed it (its modifier serial).
    pub serial: Vec<u8>,
    /// When it expires.
    pub expires: Timestamp,
    /// The length of its canonical encoding.
    pub size: u64,
}

impl DeferredEntry {
    /// The entry of `record`.
    pub fn of(record: &Record) -> Self {
        DeferredEntry {
            key: record.content_key(),
            serial: record.security.modifier_serial.clone(),
            expires: record.expires,
            size: crate::codec::encoded_len(record) as u64,
        }
    }
}

/// A replica's storage.
pub trait Store: Send {
    /// The record with `id`.
    fn get(&self, id: &RecordId) -> Result<Option<Record>, StoreError>;
    /// The records whose ids start with `prefix` (their first 8 bytes): usually one.
    fn by_id_prefix(&self, prefix: [u8; 8]) -> Result<Vec<Record>, StoreError>;
    /// Every record of a type (tombstones included).
    fn by_type(&self, record_type: &RecordType) -> Result<Vec<Record>, StoreError>;
    /// Calls `f` with every record.
    fn for_each(&self, f: &mut dyn FnMut(Record)) -> Result<(), StoreError>;
    /// The item key, type and id of every record.
    fn keys(&self) -> Result<Vec<(u64, RecordType, RecordId)>, StoreError>;
    /// Records expiring at or before `t`.
    fn expiring(&self, t: Timestamp) -> Result<Vec<Record>, StoreError>;
    /// Every deferred record.
    fn deferred(&self) -> Result<Vec<Record>, StoreError>;
    /// The accounting data of every deferred record, without the records (read once, when
    /// the database opens). The default reads the records.
    fn deferred_entries(&self) -> Result<Vec<DeferredEntry>, StoreError> {
        Ok(self.deferred()?.iter().map(DeferredEntry::of).collect())
    }
    /// The deferred records with these content keys (the ones held). The default reads
    /// every deferred record.
    fn deferred_by_keys(&self, keys: &[u64]) -> Result<Vec<Record>, StoreError> {
        let wanted: std::collections::HashSet<u64> = keys.iter().copied().collect();
        Ok(self
            .deferred()?
            .into_iter()
            .filter(|r| wanted.contains(&r.content_key()))
            .collect())
    }
    /// A metadata value.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Number of records.
    fn len(&self) -> Result<usize, StoreError>;
    /// Whether there are no records.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
    /// Applies `batch` atomically; returns once it is durable.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;
}
