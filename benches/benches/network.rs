//! The network path, measured end to end, and what it costs against the work it cannot avoid.
//!
//! - `network/flood_1KiB_x10000`: two real nodes on 127.0.0.1 — each its own SQLite file
//!   (WAL, fsync per commit), its own TLS endpoint, its driver task on a two-worker tokio
//!   runtime — connected and synchronised. Per iteration the member publishes 10,000 1 KiB
//!   records it signed before the clock started (`SignedRecords::sign`, as the baseline's
//!   records are signed before its clock), in chunks of 512 with
//!   `GroupHandle::publish_signed`: its node validates each chunk (every rule but the
//!   signatures it made), commits it durably and floods it. The clock runs from the first
//!   chunk until the other node (the creator) has learned all 10,000 (its delivery counters,
//!   polled every millisecond). One iteration is therefore: validate + commit on the author,
//!   encode, TLS, decode and batch signature check on the receiver's connection reader,
//!   validate, merge and commit (one durable commit per receive burst) in the receiver's
//!   driver, all in parallel on two cores.
//! - `network/flood_signing_1KiB_x10000`: the same with the signing on the clock (in the
//!   bench's task, as `Group::add_records` signs on a blocking thread).
//! - `network/flood_relay_1KiB_x10000`: the member relays records signed elsewhere with
//!   `GroupHandle::apply`, which checks every signature, as a node does with what it
//!   receives.
//! - `network/baseline_1KiB_x10000`: 10,000 records, no networking and no merge logic:
//!   `signed_bytes`, `verify_batch` and one durable `SqliteStore::commit` per 512 records, on
//!   one thread, into one SQLite file that keeps what earlier iterations stored — as the
//!   receiver's file does (inserting into a 100k-record file costs more than into an empty
//!   one). This is the receiver's unavoidable work. The summary prints flood/baseline twice:
//!   from criterion's medians, and paired — every flood iteration is followed (off the clock)
//!   by the baseline's work on the same records into a file that holds what the receiver
//!   holds, and the median of the per-pair ratios is taken, so the machine's drift cancels
//!   out.
//! - `network/fresh_sync_100k_200B`: node A (the creator) holds 100,000 records with 200-byte
//!   payloads (built once: signed, applied in one batch, the file copied per iteration); the
//!   clock runs from starting node B (an empty SQLite file, the member) until B's digest
//!   equals A's.
//! - `network/flood_quic_1KiB_x10000` and `network/fresh_sync_quic_100k_200B`: the flood and
//!   the fresh sync with the nodes dialing QUIC instead of TCP (the same handshake and frames,
//!   one QUIC stream), in the same run.
//! - `reconcile/session_100k_d100`: one in-memory reconciliation session pair, N = 100,000
//!   keys, 100 scattered differences (snapshots cloned per session, as the database does).
//!   The byte and round-trip table for N ∈ {100k, 1M} is printed, not timed.
//!
//! The last step prints a summary from criterion's estimates (`target/criterion`) and the
//! reconciliation table, and writes both to `target/criterion/network-summary.txt`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use peergroup_benches::Fixture;
use peergroup_benches::net::{self, Who};
use peergroup_identity::{PeerName, PublicKey, Signature, Timestamp, verify_batch};
use peergroup_record_db::reconcile::measure::{self as rmeasure, DiffShape};
use peergroup_record_db::reconcile::{Config, Session, SetSnapshot};
use peergroup_record_db::store::{Batch, SqliteStore, Store};
use peergroup_record_db::{LocalSigner, NewRecord, Record, SignedRecords};
use peergroup_transport::Dial;

/// Records per flood iteration.
const FLOOD_N: usize = 10_000;
/// Flood record payload.
const FLOOD_PAYLOAD: usize = 1024;
/// Records per `GroupHandle::apply` on the author.
const INJECT_CHUNK: usize = 512;
/// Records per verify-and-commit batch in the baseline (the driver's receive burst).
const BASELINE_BATCH: usize = 512;
/// Records in the database a fresh member syncs.
const SYNC_N: usize = 100_000;
/// Their payload.
const SYNC_PAYLOAD: usize = 200;

const FLOOD_ID: &str = "flood_1KiB_x10000";
const SIGNING_ID: &str = "flood_signing_1KiB_x10000";
const RELAY_ID: &str = "flood_relay_1KiB_x10000";
const BASELINE_ID: &str = "baseline_1KiB_x10000";
const SYNC_ID: &str = "fresh_sync_100k_200B";
const FLOOD_QUIC_ID: &str = "flood_quic_1KiB_x10000";
const SYNC_QUIC_ID: &str = "fresh_sync_quic_100k_200B";

/// A group whose certificates are valid now (the transport checks them against the clock).
fn fixture() -> Fixture {
    Fixture::starting(Timestamp::now().saturating_sub(Duration::from_secs(3600)))
}

/// Two connected, synchronised nodes: the receiver (the creator) and the author (the member).
struct Pair {
    receiver: net::Node,
    author: net::Node,
    _dir: tempfile::TempDir,
}

async fn pair(f: &Fixture, dial: Dial) -> Pair {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = net::start_over(
        f,
        Who::Admin,
        net::open_database(f, &dir.path().join("receiver.sqlite")),
        &[],
        dial,
    )
    .await;
    let author = net::start_over(
        f,
        Who::Member,
        net::open_database(f, &dir.path().join("author.sqlite")),
        &[receiver.addr],
        dial,
    )
    .await;
    // Two memberships and two presences.
    net::converge(
        &[&receiver.handle, &author.handle],
        4,
        Duration::from_millis(20),
        Duration::from_secs(30),
    )
    .await;
    Pair {
        receiver,
        author,
        _dir: dir,
    }
}

/// How the records enter the author's node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inject {
    /// The member publishes records it signed before the clock started
    /// (`SignedRecords::sign`, as the baseline's records are signed before its clock):
    /// `GroupHandle::publish_signed` validates them (all but the signatures, which it knows
    /// it made), stores each chunk in one durable commit and floods it.
    Publish,
    /// The same, with the signing on the clock (in the bench's task, a thread of its own, as
    /// `Group::add_records` signs on a blocking thread).
    SignAndPublish,
    /// The member relays records signed elsewhere: `GroupHandle::apply` checks every
    /// signature, as a node does with what it receives, then commits and floods.
    Relay,
}

/// (case, flood, baseline) times of the same records, one triple per flood iteration.
static PAIRED: std::sync::Mutex<Vec<(&str, Duration, Duration)>> =
    std::sync::Mutex::new(Vec::new());

fn flood(c: &mut Criterion) {
    flood_case(c, FLOOD_ID, Inject::Publish, Dial::Tcp);
}

fn flood_quic(c: &mut Criterion) {
    flood_case(c, FLOOD_QUIC_ID, Inject::Publish, Dial::Quic);
}

fn flood_signing(c: &mut Criterion) {
    flood_case(c, SIGNING_ID, Inject::SignAndPublish, Dial::Tcp);
}

fn flood_relay(c: &mut Criterion) {
    flood_case(c, RELAY_ID, Inject::Relay, Dial::Tcp);
}

/// 1 KiB records of the member's, not yet signed (the payload carries `batch` and the index).
fn new_records(batch: u32) -> Vec<NewRecord> {
    let expires = Timestamp::now().saturating_add(Duration::from_secs(86_400));
    (0..FLOOD_N)
        .map(|i| {
            let mut payload = vec![0u8; FLOOD_PAYLOAD];
            let nonce = (u64::from(batch) << 32) | i as u64;
            payload[..8].copy_from_slice(&nonce.to_le_bytes());
            NewRecord {
                record_type: peergroup_benches::app_type(),
                attributes: String::new(),
                payload,
                expires,
                autorefresh: false,
            }
        })
        .collect()
}

fn flood_case(c: &mut Criterion, id: &'static str, inject: Inject, dial: Dial) {
    STARTED.get_or_init(SystemTime::now);
    let rt = net::runtime(2);
    let f = fixture();
    let group = f.root.chain().group().clone();
    let key: PublicKey = f.member.key.public();
    let dir = tempfile::tempdir().expect("tempdir");
    // The paired baseline's file: it receives what the receiver receives.
    let mut paired = SqliteStore::open(&dir.path().join("paired-baseline.sqlite")).expect("sqlite");
    let mut nodes: Option<Pair> = None;
    let mut batch = 0u32;
    let mut g = c.benchmark_group("network");
    g.throughput(Throughput::Elements(FLOOD_N as u64));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function(id, |b| {
        // Set up on first use only (criterion calls this once per sample, and never when a
        // filter excludes the benchmark).
        let Pair {
            receiver, author, ..
        } = nodes.get_or_insert_with(|| rt.block_on(pair(&f, dial)));
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                batch += 1;
                // Prepared off the clock: records to sign, signed ones to publish or relay.
                let signer = LocalSigner {
                    key: &f.member.key,
                    chain: &f.member.chain,
                };
                let mut news = Vec::new();
                let mut signed = Vec::new();
                let mut relayed = Vec::new();
                match inject {
                    Inject::SignAndPublish => news = new_records(batch),
                    Inject::Publish => {
                        for chunk in new_records(batch).chunks(INJECT_CHUNK) {
                            let now = Timestamp::now();
                            let s = SignedRecords::sign(&group, signer, chunk.to_vec(), now);
                            signed.push(s.expect("sign"));
                        }
                    }
                    Inject::Relay => {
                        relayed = f.sign_records(batch, FLOOD_N, FLOOD_PAYLOAD, Timestamp::now());
                    }
                }
                let (flood, records) = rt.block_on(async {
                    let before = net::delivered(&receiver.handle).await;
                    let start = Instant::now();
                    let mut records = Vec::with_capacity(FLOOD_N);
                    match inject {
                        Inject::Publish => {
                            for batch in signed {
                                let made = author.handle.publish_signed(batch).await;
                                records.extend(made.expect("the author could not publish"));
                            }
                        }
                        Inject::SignAndPublish => {
                            for chunk in news.chunks(INJECT_CHUNK) {
                                let now = Timestamp::now();
                                let s = SignedRecords::sign(&group, signer, chunk.to_vec(), now);
                                let made = author.handle.publish_signed(s.expect("sign")).await;
                                records.extend(made.expect("the author could not publish"));
                            }
                        }
                        Inject::Relay => {
                            for chunk in relayed.chunks(INJECT_CHUNK) {
                                let n = chunk.len();
                                let accepted =
                                    author.handle.apply(chunk.to_vec()).await.expect("apply");
                                assert_eq!(accepted, n, "the author refused records");
                            }
                            records = relayed;
                        }
                    }
                    let deadline = start + Duration::from_secs(120);
                    while net::delivered(&receiver.handle).await < before + FLOOD_N as u64 {
                        assert!(Instant::now() < deadline, "the flood did not arrive");
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    (start.elapsed(), records)
                });
                total += flood;
                // The baseline's work on the same records right after (untimed for
                // criterion): the pair's ratio does not depend on the machine's drift.
                let base = verify_and_store(records, &group, &key, &mut paired);
                PAIRED
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((id, flood, base));
            }
            total
        })
    });
    g.finish();
    if let Some(Pair {
        receiver, author, ..
    }) = nodes
    {
        rt.block_on(async {
            let n = net::converge(
                &[&receiver.handle, &author.handle],
                4,
                Duration::from_millis(20),
                Duration::from_secs(60),
            )
            .await;
            eprintln!("{id}: both nodes hold the same {n} records");
            receiver.close().await;
            author.close().await;
        });
    }
}

/// The baseline's work on `records`: signature check in batches and one durable commit per
/// batch into `store`. Returns the time taken.
fn verify_and_store(
    records: Vec<Record>,
    group: &PeerName,
    key: &PublicKey,
    store: &mut SqliteStore,
) -> Duration {
    let batches: Vec<Vec<Record>> = records
        .chunks(BASELINE_BATCH)
        .map(<[Record]>::to_vec)
        .collect();
    let start = Instant::now();
    for put in batches {
        let messages: Vec<Vec<u8>> = put.iter().map(|r| r.signed_bytes(group)).collect();
        let items: Vec<(&[u8], &Signature, &PublicKey)> = put
            .iter()
            .zip(&messages)
            .map(|(r, m)| (m.as_slice(), &r.security.signature, key))
            .collect();
        assert!(verify_batch(&items).iter().all(Result::is_ok));
        store
            .commit(&Batch {
                put,
                ..Batch::default()
            })
            .expect("commit");
    }
    start.elapsed()
}

fn baseline(c: &mut Criterion) {
    STARTED.get_or_init(SystemTime::now);
    let f = fixture();
    let group = f.root.chain().group().clone();
    let key: PublicKey = f.member.key.public();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(&dir.path().join("baseline.sqlite")).expect("sqlite");
    let mut batch = 0u32;
    let mut g = c.benchmark_group("network");
    g.throughput(Throughput::Elements(FLOOD_N as u64));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function(BASELINE_ID, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // New records each time (signed off the clock): the file grows as the
                // receiver's does.
                batch += 1;
                let records = f.sign_records(batch, FLOOD_N, FLOOD_PAYLOAD, Timestamp::now());
                total += verify_and_store(records, &group, &key, &mut store);
            }
            total
        })
    });
    g.finish();
}

fn fresh_sync(c: &mut Criterion) {
    fresh_sync_case(c, SYNC_ID, Dial::Tcp);
}

fn fresh_sync_quic(c: &mut Criterion) {
    fresh_sync_case(c, SYNC_QUIC_ID, Dial::Quic);
}

fn fresh_sync_case(c: &mut Criterion, id: &'static str, dial: Dial) {
    STARTED.get_or_init(SystemTime::now);
    let rt = net::runtime(2);
    let f = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("template.sqlite");
    let mut built = false;
    let mut run = 0;
    let mut g = c.benchmark_group("network");
    g.throughput(Throughput::Elements(SYNC_N as u64));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function(id, |b| {
        if !built {
            let start = Instant::now();
            let records = f.sign_records(1, SYNC_N, SYNC_PAYLOAD, Timestamp::now());
            let mut db = net::open_database(&f, &template);
            let report = db.apply(records, Timestamp::now()).expect("apply");
            assert_eq!(report.accepted.len(), SYNC_N);
            // Closing SQLite checkpoints the WAL into the file, which is copied per iteration.
            drop(db);
            built = true;
            eprintln!(
                "fresh_sync: built the {SYNC_N}-record database in {:.1?}",
                start.elapsed()
            );
        }
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                run += 1;
                let here = dir.path().join(format!("run{run}"));
                std::fs::create_dir_all(&here).expect("run dir");
                std::fs::copy(&template, here.join("a.sqlite")).expect("copy the database");
                total += rt.block_on(async {
                    let a = net::start_over(
                        &f,
                        Who::Admin,
                        net::open_database(&f, &here.join("a.sqlite")),
                        &[],
                        dial,
                    )
                    .await;
                    let start = Instant::now();
                    let b = net::start_over(
                        &f,
                        Who::Member,
                        net::open_database(&f, &here.join("b.sqlite")),
                        &[a.addr],
                        dial,
                    )
                    .await;
                    // Cheap polling until B finished its first sync, then compare digests.
                    while b.handle.stats().await.expect("stats").syncs == 0 {
                        assert!(start.elapsed() < Duration::from_secs(300), "no sync");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    net::converge(
                        &[&a.handle, &b.handle],
                        SYNC_N,
                        Duration::from_millis(5),
                        Duration::from_secs(300),
                    )
                    .await;
                    let took = start.elapsed();
                    a.close().await;
                    b.close().await;
                    took
                });
                let _ = std::fs::remove_dir_all(&here);
            }
            total
        })
    });
    g.finish();
}

/// The (N, difference) cases of the reconciliation table.
fn table_cases() -> Vec<(usize, DiffShape)> {
    let mut cases = Vec::new();
    for n in [100_000, 1_000_000] {
        for shape in [
            DiffShape::Scattered(0),
            DiffShape::Scattered(1),
            DiffShape::Scattered(100),
            DiffShape::Recent(1000),
        ] {
            cases.push((n, shape));
        }
    }
    cases
}

/// Bytes and round trips of one reconciliation per case (not a timing).
fn reconcile_table() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>9}  {:<15} {:>9} {:>9} {:>9} {:>9} {:>4} {:>5} {:>8}",
        "N", "difference", "bytes", "I→R", "R→I", "B/diff", "RT", "msgs", "correct"
    );
    for (n, shape) in table_cases() {
        let m = rmeasure::measure(n, shape, 42);
        let _ = writeln!(
            out,
            "{:>9}  {:<15} {:>9} {:>9} {:>9} {:>9.1} {:>4} {:>5} {:>8}{}",
            n,
            format!("{shape:?}"),
            m.total_bytes(),
            m.initiator_to_responder,
            m.responder_to_initiator,
            m.bytes_per_difference(),
            m.round_trips,
            m.messages,
            m.correct,
            m.error.map(|e| format!("  error: {e}")).unwrap_or_default(),
        );
    }
    out
}

/// The reconciliation table, once the reconcile benchmark ran.
static TABLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn reconcile(c: &mut Criterion) {
    STARTED.get_or_init(SystemTime::now);
    let mut sets: Option<(SetSnapshot, SetSnapshot)> = None;
    let mut g = c.benchmark_group("reconcile");
    g.throughput(Throughput::Elements(100));
    g.sample_size(20);
    g.bench_function("session_100k_d100", |bench| {
        TABLE.get_or_init(reconcile_table);
        let (a, b) = sets.get_or_insert_with(|| {
            let (a, b) = rmeasure::key_sets(100_000, DiffShape::Scattered(100), 7);
            (SetSnapshot::new(a), SetSnapshot::new(b))
        });
        bench.iter_batched(
            || (a.clone(), b.clone()),
            |(a, b)| {
                let mut initiator = Session::initiator(a, Config::default());
                let mut responder = Session::responder(b, Config::default());
                rmeasure::drive(&mut initiator, &mut responder).expect("reconcile");
                let outcome = initiator.outcome().expect("an outcome");
                assert_eq!(
                    outcome.local_only.len() + outcome.remote_only.len(),
                    100,
                    "wrong difference"
                );
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// criterion's output directory, found as criterion finds it: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else (under cargo) the workspace's `target/criterion`, else
/// `target/criterion` in the working directory.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    if std::env::var_os("CARGO").is_some() {
        return PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/criterion"));
    }
    PathBuf::from("target/criterion")
}

/// When this process started benchmarking (estimates older than that are not this run's).
static STARTED: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();

/// The median time of one iteration of `group/id` in seconds, from criterion's estimates
/// written by this run.
fn median_secs(group: &str, id: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if STARTED.get().is_some_and(|t| written < *t) {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64().map(|ns| ns / 1e9)
}

/// Prints the figures that matter (from criterion's estimates of this run) and the table.
fn summary(_: &mut Criterion) {
    let mut out = String::from("\n== network summary (medians) ==\n");
    let base = median_secs("network", BASELINE_ID).map(|s| FLOOD_N as f64 / s);
    if let Some(r) = base {
        let _ = writeln!(
            out,
            "baseline, verify_batch + SQLite:         {r:>9.0} records/s"
        );
    }
    let paired = PAIRED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for (id, what) in [
        (FLOOD_ID, "flood, 1 author → 1 member over TLS:"),
        (FLOOD_QUIC_ID, "flood, the same over QUIC:"),
        (SIGNING_ID, "flood, signing on the clock:"),
        (RELAY_ID, "flood, relayed (author re-verifies):"),
    ] {
        let Some(flood) = median_secs("network", id).map(|s| FLOOD_N as f64 / s) else {
            continue;
        };
        let _ = writeln!(out, "{what:<40} {flood:>9.0} records/s");
        if let Some(b) = base {
            let _ = writeln!(
                out,
                "  / baseline (medians):                  {:>9.2}{}",
                flood / b,
                if id == FLOOD_ID {
                    " (goal ≥ 0.75)"
                } else {
                    ""
                }
            );
        }
        let mut ratios: Vec<f64> = paired
            .iter()
            .filter(|(case, _, _)| *case == id)
            .map(|(_, flood, base)| base.as_secs_f64() / flood.as_secs_f64())
            .collect();
        if !ratios.is_empty() {
            ratios.sort_by(f64::total_cmp);
            let _ = writeln!(
                out,
                "  / baseline, paired runs:               {:>9.2} (median of {} iterations, each \
                 followed by the baseline's work on the same records)",
                ratios[ratios.len() / 2],
                ratios.len()
            );
        }
    }
    if let Some(s) = median_secs("network", SYNC_ID) {
        let _ = writeln!(
            out,
            "fresh member sync of {SYNC_N} records ({SYNC_PAYLOAD} B): {s:.2} s (goal ≤ 8 s)"
        );
    }
    if let Some(s) = median_secs("network", SYNC_QUIC_ID) {
        let _ = writeln!(
            out,
            "  the same over QUIC:                    {s:.2} s{}",
            median_secs("network", SYNC_ID)
                .map(|tcp| format!(" ({:.2} × TCP)", s / tcp))
                .unwrap_or_default()
        );
    }
    if let (Some(tcp), Some(quic)) = (
        median_secs("network", FLOOD_ID),
        median_secs("network", FLOOD_QUIC_ID),
    ) {
        let _ = writeln!(
            out,
            "flood over QUIC / over TCP (records/s):  {:>9.2}",
            tcp / quic
        );
    }
    if let Some(table) = TABLE.get() {
        let _ = writeln!(
            out,
            "\n== reconciliation cost (seed 42; bytes, not times) =="
        );
        out.push_str(table);
    }
    eprintln!("{out}");
    let dir = criterion_dir();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("network-summary.txt"), out);
}

criterion_group!(
    benches,
    baseline,
    flood,
    flood_signing,
    flood_relay,
    flood_quic,
    fresh_sync,
    fresh_sync_quic,
    reconcile,
    summary
);
criterion_main!(benches);
