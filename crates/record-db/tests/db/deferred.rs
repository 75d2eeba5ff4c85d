//! The deferred table (records whose signer's certificate is not known yet): bounded in
//! count and bytes per claimed signer and overall, earliest-expiring records dropped first,
//! accounted without reading the table, restored when a database opens.

use std::collections::BTreeSet;
use std::time::Duration;

use peergroup_identity::Timestamp;
use peergroup_record_db::store::{Batch, DeferredEntry, MemoryStore, SqliteStore, Store};
use peergroup_record_db::{
    Database, MAX_DEFERRED, MAX_DEFERRED_BYTES, MAX_DEFERRED_BYTES_PER_SIGNER,
    MAX_DEFERRED_PER_SIGNER, Record, RecordId, RecordType, StoreError, codec,
};

use crate::support::*;

/// Payload of the large records: the default maximum record size, less some room.
const LARGE: usize = 1024 * 1024 - 1024;

fn now() -> Timestamp {
    t0().saturating_add(HOUR)
}

/// A serial no member has (members' serials are 16 bytes).
fn serial(n: u32) -> Vec<u8> {
    let mut s = vec![0xee];
    s.extend_from_slice(&n.to_be_bytes());
    s
}

/// A record claiming to be signed by certificate `serial(signer)`, expiring `secs` after
/// a day.
fn claimed(g: &Group, signer: u32, nonce: u64, payload: usize, secs: u64) -> Record {
    forge(g.group(), &g.bob, |r| {
        r.id = RecordId::derive(&r.creator, nonce.to_be_bytes());
        r.security.creator_serial = serial(signer);
        r.security.modifier_serial = serial(signer);
        r.payload = vec![0x5a; payload];
        r.expires = t0().saturating_add(DAY + Duration::from_secs(secs));
    })
}

fn held_keys<S: Store>(db: &Database<S>) -> BTreeSet<u64> {
    db.store()
        .deferred()
        .unwrap()
        .iter()
        .map(Record::item_key)
        .collect()
}

fn stored_bytes<S: Store>(db: &Database<S>) -> u64 {
    db.store()
        .deferred()
        .unwrap()
        .iter()
        .map(|r| codec::encode(r).len() as u64)
        .sum()
}

#[test]
fn one_claimed_signer_holds_at_most_its_count() {
    let g = Group::new();
    let mut db = g.replica();
    let records: Vec<Record> = (0..=MAX_DEFERRED_PER_SIGNER as u64)
        .map(|i| claimed(&g, 1, i, 10, 100 + i))
        .collect();
    let report = db.apply(records.clone(), now()).unwrap();
    assert_eq!(report.deferred, MAX_DEFERRED_PER_SIGNER);
    assert_eq!(
        report.deferred_dropped,
        vec![records[0].id],
        "earliest first"
    );
    assert_eq!(db.deferred_len(), MAX_DEFERRED_PER_SIGNER);
    let expected: BTreeSet<u64> = records[1..].iter().map(Record::item_key).collect();
    assert_eq!(held_keys(&db), expected);

    // One more expiring before all of them: it is the one left out.
    let early = claimed(&g, 1, 5000, 10, 0);
    let report = db.apply(vec![early.clone()], now()).unwrap();
    assert_eq!(report.deferred_dropped, vec![early.id]);
    assert_eq!(report.deferred_evicted, 0);
    // One expiring after all of them: the earliest held one makes room.
    let late = claimed(&g, 1, 5001, 10, 1_000_000);
    let report = db.apply(vec![late.clone()], now()).unwrap();
    assert_eq!((report.deferred, report.deferred_evicted), (1, 1));
    let held = held_keys(&db);
    assert!(held.contains(&late.item_key()) && !held.contains(&records[1].item_key()));
    assert_eq!(db.deferred_len(), MAX_DEFERRED_PER_SIGNER);
    // Another claimed signer has its own share.
    let report = db.apply(vec![claimed(&g, 2, 1, 10, 0)], now()).unwrap();
    assert_eq!(report.deferred, 1);
    assert_eq!(db.deferred_len(), MAX_DEFERRED_PER_SIGNER + 1);
}

#[test]
fn one_claimed_signer_holds_at_most_its_bytes() {
    let g = Group::new();
    let mut db = g.replica();
    let size = codec::encoded_len(&claimed(&g, 1, 0, LARGE, 0)) as u64;
    let fit = (MAX_DEFERRED_BYTES_PER_SIGNER / size) as usize;
    let records: Vec<Record> = (0..=fit as u64)
        .map(|i| claimed(&g, 1, i, LARGE, 100 + i))
        .collect();
    for r in &records {
        db.apply(vec![r.clone()], now()).unwrap();
    }
    assert_eq!(db.deferred_len(), fit);
    assert!(db.deferred_bytes() <= MAX_DEFERRED_BYTES_PER_SIGNER);
    assert_eq!(
        db.deferred_bytes(),
        stored_bytes(&db),
        "accounted as stored"
    );
    let expected: BTreeSet<u64> = records[1..].iter().map(Record::item_key).collect();
    assert_eq!(held_keys(&db), expected, "the earliest-expiring one went");
}

#[test]
fn the_table_holds_at_most_its_bytes() {
    let g = Group::new();
    let mut db = g.replica();
    let size = codec::encoded_len(&claimed(&g, 1, 0, LARGE, 0)) as u64;
    let per_signer = (MAX_DEFERRED_BYTES_PER_SIGNER / size) as u64;
    let fit = (MAX_DEFERRED_BYTES / size) as usize;
    let signers = (fit as u64).div_ceil(per_signer) as u32 + 1;
    // Each claimed signer's records in a batch of their own; expiries interleaved across
    // signers, so every batch evicts records held from earlier ones.
    let mut all = Vec::new();
    for s in 0..signers {
        let batch: Vec<Record> = (0..per_signer)
            .map(|j| {
                let order = j * u64::from(signers) + u64::from(s);
                claimed(&g, s, order, LARGE, order)
            })
            .collect();
        all.extend(batch.iter().map(|r| (r.expires, r.item_key())));
        db.apply(batch, now()).unwrap();
    }
    assert!(
        all.len() > fit,
        "pushed past the bound: {} > {fit}",
        all.len()
    );
    assert_eq!(db.deferred_len(), fit);
    assert!(db.deferred_bytes() <= MAX_DEFERRED_BYTES);
    assert_eq!(db.deferred_bytes(), stored_bytes(&db));
    all.sort();
    let latest: BTreeSet<u64> = all[all.len() - fit..].iter().map(|(_, k)| *k).collect();
    assert_eq!(
        held_keys(&db),
        latest,
        "the latest-expiring records are kept"
    );
}

#[test]
fn the_table_holds_at_most_its_count() {
    let g = Group::new();
    let mut db = g.replica();
    let per_signer = MAX_DEFERRED_PER_SIGNER as u64;
    let signers = (MAX_DEFERRED as u64).div_ceil(per_signer) as u32;
    for s in 0..signers {
        let batch: Vec<Record> = (0..per_signer)
            .map(|j| claimed(&g, s, j, 0, 10 + u64::from(s) * per_signer + j))
            .collect();
        db.apply(batch, now()).unwrap();
    }
    assert_eq!(db.deferred_len(), MAX_DEFERRED);
    let first = claimed(&g, 0, 0, 0, 10);
    assert!(held_keys(&db).contains(&first.item_key()));
    // One more, from a new claimed signer, expiring last: the earliest overall goes.
    let report = db
        .apply(vec![claimed(&g, signers, 0, 0, 10_000_000)], now())
        .unwrap();
    assert_eq!((report.deferred, report.deferred_evicted), (1, 1));
    assert_eq!(db.deferred_len(), MAX_DEFERRED);
    assert!(!held_keys(&db).contains(&first.item_key()));
}

/// A store that refuses to list the deferred table: what applying and sweeping must never
/// need (they use the database's accounting, and fetch held records by key).
#[derive(Default)]
struct NoScan(MemoryStore);

impl Store for NoScan {
    fn get(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        self.0.get(id)
    }
    fn by_id_prefix(&self, prefix: [u8; 8]) -> Result<Vec<Record>, StoreError> {
        self.0.by_id_prefix(prefix)
    }
    fn by_type(&self, t: &RecordType) -> Result<Vec<Record>, StoreError> {
        self.0.by_type(t)
    }
    fn for_each(&self, f: &mut dyn FnMut(Record)) -> Result<(), StoreError> {
        self.0.for_each(f)
    }
    fn keys(&self) -> Result<Vec<(u64, RecordType, RecordId)>, StoreError> {
        self.0.keys()
    }
    fn expiring(&self, t: Timestamp) -> Result<Vec<Record>, StoreError> {
        self.0.expiring(t)
    }
    fn deferred(&self) -> Result<Vec<Record>, StoreError> {
        Err(StoreError::Io("the deferred table was read whole".into()))
    }
    fn deferred_entries(&self) -> Result<Vec<DeferredEntry>, StoreError> {
        self.0.deferred_entries()
    }
    fn deferred_by_keys(&self, keys: &[u64]) -> Result<Vec<Record>, StoreError> {
        self.0.deferred_by_keys(keys)
    }
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.meta(key)
    }
    fn len(&self) -> Result<usize, StoreError> {
        self.0.len()
    }
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.0.commit(batch)
    }
}

#[test]
fn applying_and_sweeping_never_read_the_whole_table() {
    let g = Group::new();
    let now = now();
    let mut author = g.replica();
    let membership = author
        .publish_membership(g.bob.signer(), &g.bob.chain, now)
        .unwrap()
        .unwrap()
        .record;
    let early = author
        .create(
            g.bob.signer(),
            new_record(b"early", now.saturating_add(DAY)),
            now,
        )
        .unwrap()
        .record;
    let mut db = Database::open(NoScan::default(), g.root.chain()).unwrap();
    let stale = claimed(&g, 7, 1, 10, 0);
    let report = db.apply(vec![early.clone(), stale.clone()], now).unwrap();
    assert_eq!(report.deferred, 2);
    // Bob's membership arrives: his held record is fetched by key and stored.
    let report = db.apply(vec![membership], now).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(db.get(early.id).unwrap(), Some(early));
    assert_eq!(db.deferred_len(), 1);
    // The other one expires while waiting.
    db.sweep(stale.expires).unwrap();
    assert_eq!((db.deferred_len(), db.deferred_bytes()), (0, 0));
}

#[test]
fn the_accounting_is_restored_on_open_and_old_files_are_migrated() {
    let g = Group::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.sqlite");
    let records: Vec<Record> = (0..(MAX_DEFERRED_PER_SIGNER as u64 + 6))
        .map(|i| claimed(&g, 3, i, 100, i))
        .collect();
    let (len, bytes) = {
        let mut db = g.replica_on(SqliteStore::open(&path).unwrap());
        db.apply(records[..10].to_vec(), now()).unwrap();
        (db.deferred_len(), db.deferred_bytes())
    };
    assert_eq!(len, 10);
    let db = g.replica_on(SqliteStore::open(&path).unwrap());
    assert_eq!((db.deferred_len(), db.deferred_bytes()), (len, bytes));
    assert_eq!(bytes, stored_bytes(&db));
    drop(db);

    // A file of schema version 1, whose deferred table holds more than one claimed signer
    // may now: opening it migrates the table and brings it within the bounds.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE deferred;
             CREATE TABLE deferred (item_key INTEGER PRIMARY KEY, encoded BLOB NOT NULL);
             UPDATE meta SET value = X'0000000000000001' WHERE key = 'schema_version';",
        )
        .unwrap();
        let mut insert = conn
            .prepare("INSERT INTO deferred(item_key, encoded) VALUES (?1, ?2)")
            .unwrap();
        for r in &records {
            insert
                .execute(rusqlite::params![r.item_key() as i64, codec::encode(r)])
                .unwrap();
        }
    }
    let db = g.replica_on(SqliteStore::open(&path).unwrap());
    assert_eq!(db.deferred_len(), MAX_DEFERRED_PER_SIGNER);
    assert_eq!(db.deferred_bytes(), stored_bytes(&db));
    let expected: BTreeSet<u64> = records[6..].iter().map(Record::item_key).collect();
    assert_eq!(held_keys(&db), expected, "the earliest-expiring ones went");
    let version: Vec<u8> = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, 3i64.to_be_bytes());
}

/// A held record is not hidden by a forgery of it that shares its item key (the id,
/// version and signature are copied, the content is not): the table holds records by
/// their content, so both wait, and when the signer is known the forgery is refused and
/// the record stored (the forgery, held first, used to take the record's place).
#[test]
fn a_forged_copy_does_not_take_a_held_records_place() {
    let g = Group::new();
    let now = now();
    let mut author = g.replica();
    let membership = author
        .publish_membership(g.bob.signer(), &g.bob.chain, now)
        .unwrap()
        .unwrap()
        .record;
    let record = author
        .create(
            g.bob.signer(),
            new_record(b"genuine", now.saturating_add(DAY)),
            now,
        )
        .unwrap()
        .record;
    let mut forged = record.clone();
    forged.payload = b"forged".to_vec();
    assert_eq!(forged.item_key(), record.item_key());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.sqlite");
    let mut in_memory = Database::open(MemoryStore::new(), g.root.chain()).unwrap();
    let mut on_disk = Database::open(SqliteStore::open(&path).unwrap(), g.root.chain()).unwrap();
    // The forgery first, in its own batch and in the same one.
    let r = in_memory.apply(vec![forged.clone()], now).unwrap();
    assert_eq!(r.deferred, 1);
    let r = in_memory.apply(vec![record.clone()], now).unwrap();
    assert_eq!((r.deferred, r.duplicates), (1, 0));
    let r = on_disk.apply(vec![forged, record.clone()], now).unwrap();
    assert_eq!((r.deferred, r.duplicates), (2, 0));
    assert_eq!(in_memory.deferred_len(), 2);
    drop(on_disk);
    // The held records are still told apart once the file is opened again.
    let mut on_disk = Database::open(SqliteStore::open(&path).unwrap(), g.root.chain()).unwrap();
    assert_eq!(on_disk.deferred_len(), 2);
    // Whichever of the two is tried first, the genuine one is stored.
    in_memory.apply(vec![membership.clone()], now).unwrap();
    assert_eq!(in_memory.get(record.id).unwrap(), Some(record.clone()));
    on_disk.apply(vec![membership], now).unwrap();
    assert_eq!(on_disk.get(record.id).unwrap(), Some(record));
    assert_eq!((in_memory.deferred_len(), on_disk.deferred_len()), (0, 0));
}

/// A file of schema version 2 (deferred records held by item key) is migrated: its held
/// records are found by content key, retried and stored when their signer is known.
#[test]
fn a_version_2_file_is_migrated_to_content_keys() {
    let g = Group::new();
    let now = now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.sqlite");
    let mut author = g.replica();
    let membership = author
        .publish_membership(g.bob.signer(), &g.bob.chain, now)
        .unwrap()
        .unwrap()
        .record;
    let record = author
        .create(
            g.bob.signer(),
            new_record(b"held", now.saturating_add(DAY)),
            now,
        )
        .unwrap()
        .record;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        drop(SqliteStore::open(&path).unwrap());
        conn.execute_batch(
            "DROP TABLE deferred;
             CREATE TABLE deferred (item_key INTEGER PRIMARY KEY, serial BLOB NOT NULL,
                 expires INTEGER NOT NULL, size INTEGER NOT NULL, encoded BLOB NOT NULL);
             UPDATE meta SET value = X'0000000000000002' WHERE key = 'schema_version';",
        )
        .unwrap();
        let encoded = codec::encode(&record);
        conn.execute(
            "INSERT INTO deferred(item_key, serial, expires, size, encoded)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                record.item_key() as i64,
                record.security.modifier_serial,
                record.expires.as_millis() as i64,
                encoded.len() as i64,
                encoded
            ],
        )
        .unwrap();
    }
    let mut db = Database::open(SqliteStore::open(&path).unwrap(), g.root.chain()).unwrap();
    assert_eq!(db.deferred_len(), 1);
    let report = db.apply(vec![membership], now).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(db.get(record.id).unwrap(), Some(record));
    assert_eq!(db.deferred_len(), 0);
}
