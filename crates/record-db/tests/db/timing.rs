//! What applying a flood of received records costs the receiver besides the signature checks
//! (done as they arrive, off the database's task: [`SignerKeys::check`]): a timing print,
//! not a test of speed. Run it optimised:
//!
//! `cargo test -j1 --profile bench -p peergroup-record-db --test db -- --ignored timing --nocapture`

use std::time::{Duration, Instant};

use peergroup_record_db::store::{MemoryStore, SqliteStore};
use peergroup_record_db::{Received, Record};

use crate::support::{Group, HOUR, new_record, t0};

/// Batches of this many records (a connection reader's burst, as the benches take).
const BATCH: usize = 1000;
/// Timed batches per store.
const ROUNDS: usize = 15;

fn records(g: &Group, n: usize) -> Vec<Record> {
    let mut db = g.replica();
    let now = t0().saturating_add(HOUR);
    (0..n)
        .map(|i| {
            let mut payload = vec![0u8; 1024];
            payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
            db.create(
                g.bob.signer(),
                new_record(&payload, t0().saturating_add(2 * HOUR)),
                now,
            )
            .unwrap()
            .record
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
#[ignore = "a timing print: run it optimised, with --ignored"]
fn timing_apply_received_prechecked() {
    let g = Group::new();
    let records = records(&g, BATCH);
    let now = t0().saturating_add(HOUR);
    let checked: Vec<Received> = g.replica().signer_keys().check(records.clone());
    let per_record = |d: Duration| d.as_secs_f64() * 1e6 / BATCH as f64;

    let mut memory = Vec::new();
    for _ in 0..ROUNDS {
        let mut db = g.replica_on(MemoryStore::new());
        let batch = checked.clone();
        let start = Instant::now();
        let report = db.apply_received(batch, now).unwrap();
        memory.push(start.elapsed());
        assert_eq!(report.accepted().len(), BATCH);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = Vec::new();
    for n in 0..ROUNDS {
        let store = SqliteStore::open(&dir.path().join(format!("t{n}.sqlite"))).unwrap();
        let mut db = g.replica_on(store);
        let batch = checked.clone();
        let start = Instant::now();
        let report = db.apply_received(batch, now).unwrap();
        sqlite.push(start.elapsed());
        assert_eq!(report.accepted().len(), BATCH);
    }
    println!(
        "apply_received, signatures checked on arrival, {BATCH} records of 1 KiB, median of \
         {ROUNDS}: memory store {:.2} µs/record, SQLite (durable commit) {:.2} µs/record",
        per_record(median(memory)),
        per_record(median(sqlite)),
    );
}
