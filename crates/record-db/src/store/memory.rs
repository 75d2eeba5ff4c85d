//! An in-memory store for unit tests and the simulator.

use std::collections::{BTreeMap, HashMap};

use peergroup_identity::Timestamp;

use super::{Batch, Store};
use crate::error::StoreError;
use crate::record::{Record, RecordId, RecordType};

/// Records in maps; nothing survives the process.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    records: BTreeMap<RecordId, Record>,
    deferred: BTreeMap<u64, Record>,
    meta: HashMap<String, Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn get(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        Ok(self.records.get(id).cloned())
    }

    fn by_id_prefix(&self, prefix: [u8; 8]) -> Result<Vec<Record>, StoreError> {
        let mut from = [0u8; 16];
        from[..8].copy_from_slice(&prefix);
        Ok(self
            .records
            .range(RecordId(from)..)
            .take_while(|(id, _)| id.0[..8] == prefix)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn by_type(&self, record_type: &RecordType) -> Result<Vec<Record>, StoreError> {
        Ok(self
            .records
            .values()
            .filter(|r| &r.record_type == record_type)
            .cloned()
            .collect())
    }

    fn for_each(&self, f: &mut dyn FnMut(Record)) -> Result<(), StoreError> {
        self.records.values().cloned().for_each(f);
        Ok(())
    }

    fn keys(&self) -> Result<Vec<(u64, RecordType, RecordId)>, StoreError> {
        Ok(self
            .records
            .values()
            .map(|r| (r.item_key(), r.record_type, r.id))
            .collect())
    }

    fn expiring(&self, t: Timestamp) -> Result<Vec<Record>, StoreError> {
        Ok(self
            .records
            .values()
            .filter(|r| r.expires <= t)
            .cloned()
            .collect())
    }

    fn deferred(&self) -> Result<Vec<Record>, StoreError> {
        Ok(self.deferred.values().cloned().collect())
    }

    fn deferred_entries(&self) -> Result<Vec<super::DeferredEntry>, StoreError> {
        Ok(self
            .deferred
            .values()
            .map(super::DeferredEntry::of)
            .collect())
    }

    fn deferred_by_keys(&self, keys: &[u64]) -> Result<Vec<Record>, StoreError> {
        Ok(keys
            .iter()
            .filter_map(|k| self.deferred.get(k).cloned())
            .collect())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key).cloned())
    }

    fn len(&self) -> Result<usize, StoreError> {
        Ok(self.records.len())
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        for id in &batch.remove {
            self.records.remove(id);
        }
        for r in &batch.put {
            self.records.insert(r.id, r.clone());
        }
        for k in &batch.undefer {
            self.deferred.remove(k);
        }
        for r in &batch.defer {
            self.deferred.insert(r.content_key(), r.clone());
        }
        for (k, v) in &batch.meta {
            self.meta.insert(k.clone(), v.clone());
        }
        Ok(())
    }
}
