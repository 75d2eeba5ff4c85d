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
    by_key: HashMap<u64, RecordId>,
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

    fn get_by_key(&self, key: u64) -> Result<Option<Record>, StoreError> {
        Ok(self
            .by_key
            .get(&key)
            .and_then(|id| self.records.get(id))
            .cloned())
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

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key).cloned())
    }

    fn len(&self) -> Result<usize, StoreError> {
        Ok(self.records.len())
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        for id in &batch.remove {
            if let Some(old) = self.records.remove(id) {
                self.by_key.remove(&old.item_key());
            }
        }
        for r in &batch.put {
            if let Some(old) = self.records.insert(r.id, r.clone()) {
                self.by_key.remove(&old.item_key());
            }
            self.by_key.insert(r.item_key(), r.id);
        }
        for k in &batch.undefer {
            self.deferred.remove(k);
        }
        for r in &batch.defer {
            self.deferred.insert(r.item_key(), r.clone());
        }
        for (k, v) in &batch.meta {
            self.meta.insert(k.clone(), v.clone());
        }
        Ok(())
    }
}
