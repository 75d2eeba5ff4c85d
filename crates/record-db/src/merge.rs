//! The merge rule: one winner per record id, by a total order, so replicas converge whatever
//! order records arrive in.
//!
//! For two versions of the same record, the winner is the greater by, in turn (MS-PPGRH
//! §3.1.7.32, with our signature in place of Windows' security data):
//!
//! 1. the higher version;
//! 2. a modified record over an unmodified one;
//! 3. the higher modifier peer name (as text);
//! 4. the later last-modified time;
//! 5. the longer, then the greater, security data (serials, then signature bytes).
//!
//! Every field that can differ between two validly signed versions is covered by the
//! signature, so two versions equal under this order are the same record. The replica state
//! is a map id → winner; its merge takes the winner per id, which makes it a join
//! semi-lattice (a state-based CRDT): commutative, associative and idempotent.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::record::{NameText, Record, RecordId};

/// Compares two versions of the same record by the merge order.
pub fn compare(a: &Record, b: &Record) -> Ordering {
    a.version
        .cmp(&b.version)
        .then_with(|| a.modified_by.is_some().cmp(&b.modified_by.is_some()))
        .then_with(|| match (&a.modified_by, &b.modified_by) {
            // As text: byte order is the order of the strings.
            (Some(x), Some(y)) => NameText::of(x).as_bytes().cmp(NameText::of(y).as_bytes()),
            // Both unmodified (one modified and not the other was decided above).
            _ => Ordering::Equal,
        })
        .then_with(|| a.last_modified.cmp(&b.last_modified))
        .then_with(|| security_key(a).cmp(&security_key(b)))
}

fn security_key(r: &Record) -> (usize, &[u8], &[u8], &[u8; 64]) {
    let s = &r.security;
    (
        s.creator_serial.len() + s.modifier_serial.len() + 64,
        &s.creator_serial,
        &s.modifier_serial,
        s.signature.as_bytes(),
    )
}

/// What a received version is, relative to what is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Novelty {
    /// No version of this id is stored.
    New,
    /// It wins over the stored version.
    Newer,
    /// It is the stored version.
    Same,
    /// The stored version wins.
    Older,
}

/// Classifies `incoming` against `stored`.
pub fn novelty(stored: Option<&Record>, incoming: &Record) -> Novelty {
    match stored {
        None => Novelty::New,
        Some(s) => match compare(incoming, s) {
            Ordering::Greater => Novelty::Newer,
            Ordering::Equal => Novelty::Same,
            Ordering::Less => Novelty::Older,
        },
    }
}

/// A replica's records as a state-based CRDT: id → winning version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replica {
    records: BTreeMap<RecordId, Record>,
}

impl Replica {
    /// An empty replica.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one record by the merge rule; returns whether the replica changed.
    pub fn apply(&mut self, record: Record) -> bool {
        match self.records.get(&record.id) {
            Some(stored) if compare(&record, stored) != Ordering::Greater => false,
            _ => {
                self.records.insert(record.id, record);
                true
            }
        }
    }

    /// The winning version of `id`.
    pub fn get(&self, id: &RecordId) -> Option<&Record> {
        self.records.get(id)
    }

    /// All records, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Replica {
    /// Merges `other` into this replica (a state-based CRDT join: commutative, associative
    /// and idempotent, checked by `tests/db/merge_laws.rs`). Any two replicas merge; nothing
    /// can fail.
    pub fn merge(&mut self, other: Replica) {
        for record in other.records.into_values() {
            self.apply(record);
        }
    }
}
