//! The SQLite store: one database file per group, WAL journal, fsync on every commit.
//!
//! Schema (version 3):
//!
//! ```sql
//! records(id BLOB PRIMARY KEY, item_key INTEGER, record_type BLOB, expires INTEGER, encoded BLOB)
//! deferred(content_key INTEGER PRIMARY KEY, serial BLOB, expires INTEGER, size INTEGER, encoded BLOB)
//! meta(key TEXT PRIMARY KEY, value BLOB)
//! ```
//!
//! `encoded` is the canonical record encoding ([`crate::codec`]); the other columns are
//! indexes over it (SQL indexes on `id`, `record_type` and `expires`). A deferred record is
//! held by its [`Record::content_key`] (a forgery may share its item key); its `serial`
//! (the claimed signer's certificate serial), `expires` and `size` (of `encoded`) are what
//! the database accounts the deferred table by; it reads them once when it opens. Files of
//! versions 1 (a deferred table of `item_key` and `encoded` only) and 2 (deferred records
//! held by item key) are migrated when opened. `item_key` has no SQL
//! index: item keys are hashes, so every insert would write a page at a random place of it;
//! the database keeps item keys in memory with each record's id prefix instead
//! ([`Store::by_id_prefix`]). Anyone can inspect a group's data with the `sqlite3` tool.

use std::path::Path;

use peergroup_identity::Timestamp;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::{Batch, Store};
use crate::codec;
use crate::error::StoreError;
use crate::record::{Record, RecordId, RecordType};

const SCHEMA_VERSION: i64 = 3;

/// The deferred table of schema version 3.
const DEFERRED_TABLE: &str = "CREATE TABLE IF NOT EXISTS deferred (
    content_key INTEGER PRIMARY KEY,
    serial BLOB NOT NULL,
    expires INTEGER NOT NULL,
    size INTEGER NOT NULL,
    encoded BLOB NOT NULL);";

/// The page cache per open database, in KiB (an upper bound: pages are allocated as used).
const CACHE_KIB: i64 = 16 * 1024;

/// WAL pages (4 KiB each) written before an automatic checkpoint.
const WAL_CHECKPOINT_PAGES: i64 = 8192;

/// Records in a SQLite file.
pub struct SqliteStore {
    conn: Connection,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.conn.path())
            .finish()
    }
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e.to_string())
}

fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
    codec::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            peergroup_identity::fs::create_private_dir(dir)
                .map_err(|e| StoreError::Io(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(sql)?;
        Self::init(conn)
    }

    /// A store in memory (tests of the SQLite code paths).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(sql)?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        // FULL: a commit is on disk (the WAL fsynced) before it returns.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        // Ids are random, so index inserts of records from many authors land at random
        // pages: keep the indexes of a large group in memory (SQLite's default is 2 MiB).
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(sql)?;
        // Checkpoint the WAL into the database file every 32 MiB rather than every 4 MiB:
        // fewer scattered writes and fsyncs of the main file under a steady stream of
        // commits. The WAL file is cut back to 64 MiB after a checkpoint.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
            .map_err(sql)?;
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(sql)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (
                 id BLOB PRIMARY KEY,
                 item_key INTEGER NOT NULL,
                 record_type BLOB NOT NULL,
                 expires INTEGER NOT NULL,
                 encoded BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS records_by_type ON records(record_type);
             DROP INDEX IF EXISTS records_by_key;
             CREATE INDEX IF NOT EXISTS records_by_expiry ON records(expires);
             CREATE TABLE IF NOT EXISTS meta (
                 key TEXT PRIMARY KEY,
                 value BLOB NOT NULL);",
        )
        .map_err(sql)?;
        let version: Option<i64> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()
            .map_err(sql)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(i64::from_be_bytes);
        match version {
            None => {
                conn.execute_batch(DEFERRED_TABLE).map_err(sql)?;
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_be_bytes().to_vec()],
                )
                .map_err(sql)?;
            }
            Some(1 | 2) => migrate_deferred(&mut conn)?,
            Some(SCHEMA_VERSION) => conn.execute_batch(DEFERRED_TABLE).map_err(sql)?,
            Some(v) => return Err(StoreError::Corrupt(format!("unknown schema version {v}"))),
        }
        Ok(SqliteStore { conn })
    }

    fn query_records(
        &self,
        sql_text: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<Record>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql_text).map_err(sql)?;
        let rows = stmt
            .query_map(p, |row| row.get::<_, Vec<u8>>(0))
            .map_err(sql)?;
        let mut out = Vec::new();
        for bytes in rows {
            out.push(decode(&bytes.map_err(sql)?)?);
        }
        Ok(out)
    }
}

/// Versions 1 and 2 → 3: the deferred table is rebuilt, its records held by content key
/// and accounted by claimed serial, expiry and size (version 1 had neither; version 2 held
/// them by item key). Rows that no longer decode are dropped (a deferred record is only
/// held until its signer is known; a peer sends it again).
fn migrate_deferred(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(sql)?;
    tx.execute_batch("ALTER TABLE deferred RENAME TO deferred_old;")
        .map_err(sql)?;
    tx.execute_batch(DEFERRED_TABLE).map_err(sql)?;
    {
        let mut read = tx
            .prepare("SELECT encoded FROM deferred_old")
            .map_err(sql)?;
        let mut rows = read.query([]).map_err(sql)?;
        let mut write = tx
            .prepare(
                "INSERT OR REPLACE INTO deferred(content_key, serial, expires, size, encoded)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let bytes: Vec<u8> = row.get(0).map_err(sql)?;
            if let Ok(r) = codec::decode(&bytes) {
                write
                    .execute(params![
                        r.content_key() as i64,
                        &r.security.modifier_serial[..],
                        millis(r.expires),
                        bytes.len() as i64,
                        &bytes[..]
                    ])
                    .map_err(sql)?;
            }
        }
    }
    tx.execute_batch("DROP TABLE deferred_old;").map_err(sql)?;
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
        params![SCHEMA_VERSION.to_be_bytes().to_vec()],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)
}

/// A time as SQLite stores it (milliseconds, saturating).
fn millis(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

impl Store for SqliteStore {
    fn get(&self, id: &RecordId) -> Result<Option<Record>, StoreError> {
        Ok(self
            .query_records(
                "SELECT encoded FROM records WHERE id = ?1",
                params![&id.0[..]],
            )?
            .pop())
    }

    fn by_id_prefix(&self, prefix: [u8; 8]) -> Result<Vec<Record>, StoreError> {
        // Ids compare as bytes: the prefix's ids are those from prefix‖0… up to the next
        // prefix (none after ff…ff).
        let mut from = [0u8; 16];
        from[..8].copy_from_slice(&prefix);
        match u64::from_be_bytes(prefix).checked_add(1) {
            Some(next) => {
                let mut to = [0u8; 16];
                to[..8].copy_from_slice(&next.to_be_bytes());
                self.query_records(
                    "SELECT encoded FROM records WHERE id >= ?1 AND id < ?2",
                    params![&from[..], &to[..]],
                )
            }
            None => self.query_records(
                "SELECT encoded FROM records WHERE id >= ?1",
                params![&from[..]],
            ),
        }
    }

    fn by_type(&self, record_type: &RecordType) -> Result<Vec<Record>, StoreError> {
        self.query_records(
            "SELECT encoded FROM records WHERE record_type = ?1 ORDER BY id",
            params![&record_type.0.as_bytes()[..]],
        )
    }

    fn for_each(&self, f: &mut dyn FnMut(Record)) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT encoded FROM records ORDER BY id")
            .map_err(sql)?;
        let mut rows = stmt.query([]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let bytes: Vec<u8> = row.get(0).map_err(sql)?;
            f(decode(&bytes)?);
        }
        Ok(())
    }

    fn keys(&self) -> Result<Vec<(u64, RecordType, RecordId)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT item_key, record_type, id FROM records")
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (k, t, id) = row.map_err(sql)?;
            let t = uuid::Uuid::from_slice(&t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let id = <[u8; 16]>::try_from(id.as_slice())
                .map_err(|_| StoreError::Corrupt(format!("a record id of {} bytes", id.len())))?;
            out.push((k as u64, RecordType(t), RecordId(id)));
        }
        Ok(out)
    }

    fn expiring(&self, t: Timestamp) -> Result<Vec<Record>, StoreError> {
        let t = i64::try_from(t.as_millis()).unwrap_or(i64::MAX);
        self.query_records(
            "SELECT encoded FROM records WHERE expires <= ?1",
            params![t],
        )
    }

    fn deferred(&self) -> Result<Vec<Record>, StoreError> {
        self.query_records("SELECT encoded FROM deferred ORDER BY content_key", [])
    }

    fn deferred_entries(&self) -> Result<Vec<super::DeferredEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT content_key, serial, expires, size FROM deferred")
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |row| {
                Ok(super::DeferredEntry {
                    key: row.get::<_, i64>(0)? as u64,
                    serial: row.get(1)?,
                    expires: Timestamp::from_millis(
                        u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                    ),
                    size: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                })
            })
            .map_err(sql)?;
        rows.map(|r| r.map_err(sql)).collect()
    }

    fn deferred_by_keys(&self, keys: &[u64]) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.extend(self.query_records(
                "SELECT encoded FROM deferred WHERE content_key = ?1",
                params![*k as i64],
            )?);
        }
        Ok(out)
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)
    }

    fn len(&self) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
            .map_err(sql)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM records WHERE id = ?1")
                .map_err(sql)?;
            for id in &batch.remove {
                del.execute(params![&id.0[..]]).map_err(sql)?;
            }
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO records(id, item_key, record_type, expires, encoded)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql)?;
            for r in &batch.put {
                let expires = millis(r.expires);
                put.execute(params![
                    &r.id.0[..],
                    r.item_key() as i64,
                    &r.record_type.0.as_bytes()[..],
                    expires,
                    codec::encode(r)
                ])
                .map_err(sql)?;
            }
            let mut undefer = tx
                .prepare_cached("DELETE FROM deferred WHERE content_key = ?1")
                .map_err(sql)?;
            for k in &batch.undefer {
                undefer.execute(params![*k as i64]).map_err(sql)?;
            }
            let mut defer = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO deferred(content_key, serial, expires, size, encoded)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql)?;
            for r in &batch.defer {
                let encoded = codec::encode(r);
                defer
                    .execute(params![
                        crate::record::content_key_of(&encoded) as i64,
                        &r.security.modifier_serial[..],
                        millis(r.expires),
                        encoded.len() as i64,
                        encoded
                    ])
                    .map_err(sql)?;
            }
            let mut meta = tx
                .prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)")
                .map_err(sql)?;
            for (k, v) in &batch.meta {
                meta.execute(params![k, v]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }
}
