//! Record database throughput.
//!
//! - `validate_apply`: received 1 KiB records validated (structure, signer, batch signature
//!   check, authorization) and merged into a memory store, single core;
//! - `sqlite_commit`: the same records committed to SQLite in batches of 1,000 (WAL, fsync per
//!   commit);
//! - `local_create`: one record created, signed and durably committed (fsync per record).
//! - `verify_batch_1KiB/N`: batch signature checks of 1 KiB records by one signer, 4,096 in
//!   batches of N: what a connection reader's burst size costs per signature.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use peergroup_benches::{Fixture, t0};
use peergroup_identity::{PublicKey, Signature, Timestamp, verify_batch};
use peergroup_record_db::NewRecord;
use peergroup_record_db::store::{MemoryStore, SqliteStore};

fn validate_apply(c: &mut Criterion) {
    let f = Fixture::new();
    let records = f.records(1000, 1024);
    let now = t0().saturating_add(Duration::from_secs(120));
    let mut g = c.benchmark_group("record_db");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.sample_size(20);
    g.bench_function("validate_apply_1KiB_x1000_memory", |b| {
        b.iter_batched(
            || (f.database(MemoryStore::new()), records.clone()),
            |(mut db, recs)| {
                let report = db.apply(recs, now).expect("apply");
                assert_eq!(report.accepted().len(), 1000);
            },
            BatchSize::LargeInput,
        )
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    g.bench_function("validate_apply_commit_1KiB_x1000_sqlite", |b| {
        b.iter_batched(
            || {
                n += 1;
                let store =
                    SqliteStore::open(&dir.path().join(format!("b{n}.sqlite"))).expect("sqlite");
                (f.database(store), records.clone())
            },
            |(mut db, recs)| {
                let report = db.apply(recs, now).expect("apply");
                assert_eq!(report.accepted().len(), 1000);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn local_create(c: &mut Criterion) {
    let f = Fixture::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut db = f.database(SqliteStore::open(&dir.path().join("local.sqlite")).expect("sqlite"));
    let now = t0().saturating_add(Duration::from_secs(60));
    let mut g = c.benchmark_group("record_db");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.bench_function("local_create_durable_1KiB", |b| {
        b.iter(|| {
            let new = NewRecord {
                record_type: peergroup_benches::app_type(),
                attributes: String::new(),
                payload: vec![7; 1024],
                expires: t0().saturating_add(Duration::from_secs(86_400)),
                autorefresh: false,
            };
            db.create(f.member.signer(), new, now).expect("create")
        })
    });
    g.finish();
}

fn batch_sizes(c: &mut Criterion) {
    const N: usize = 4096;
    let f = Fixture::new();
    let group = f.root.chain().group().clone();
    let key: PublicKey = f.member.key.public();
    let records = f.sign_records(1, N, 1024, Timestamp::now());
    let messages: Vec<Vec<u8>> = records.iter().map(|r| r.signed_bytes(&group)).collect();
    let mut g = c.benchmark_group("record_db");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for size in [16usize, 64, 256, 512] {
        g.bench_function(format!("verify_batch_1KiB/{size}"), |b| {
            b.iter(|| {
                for (rs, ms) in records.chunks(size).zip(messages.chunks(size)) {
                    let items: Vec<(&[u8], &Signature, &PublicKey)> = rs
                        .iter()
                        .zip(ms)
                        .map(|(r, m)| (m.as_slice(), &r.security.signature, &key))
                        .collect();
                    assert!(verify_batch(&items).iter().all(Result::is_ok));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, validate_apply, local_create, batch_sizes);
criterion_main!(benches);
