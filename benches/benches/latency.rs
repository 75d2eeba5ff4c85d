//! What a person feels: how long a chat message takes to reach everyone, and how many
//! single-record publishes a node takes when many callers publish at once.
//!
//! - `latency/group_commit_32_in_flight`: one real node (a SQLite file, WAL, fsync per
//!   commit; its driver on a two-worker tokio runtime). 32 tasks each publish records one
//!   `GroupHandle::create_record` call at a time (200 B payloads, signed in the node) until
//!   3,200 are acknowledged. Every acknowledgement comes after the durable commit that holds
//!   the record; the driver stores the calls waiting together (group commit). Throughput is
//!   records per second; goal ≥ 10,000.
//! - Delivery latency at 4 and at 50 peers (not timed by criterion: percentiles of every
//!   (record, receiver) pair): one node per member on 127.0.0.1, each with its own SQLite
//!   file and TLS endpoint, all on one two-worker runtime, meshed and synchronised first.
//!   Round-robin senders publish chat-size records (120 B) with `create_record`, one every
//!   few milliseconds; the latency of a (record, receiver) pair runs from just before the
//!   publishing call to the receiver's `RecordChanged` event (`Event::Record`, as the
//!   facade's `RecordChanged`). Goals: p99 ≤ 10 ms at 4 peers, ≤ 50 ms at 50. A second line
//!   gives the publishing calls' own durations (signing and the durable commit at the author,
//!   inside every latency of their record), to tell a tail at the author from one on the way.
//! - Formation (`latency/formation.rs`; five runs, each a fresh group of four real
//!   infrastructures through the `peergroup` facade, default settings on loopback): invitation
//!   to joined and synchronised (goal ≤ 300 ms), all four seeing all present once the last is
//!   ready (≤ 1 s), a member's crash (its runtime dropped: sockets closed, nothing said) and
//!   another's close in the others' lists (≤ 2 s each). Goals hold for the slowest run.
//!
//! The last step prints a summary and writes it to `target/criterion/latency-summary.txt`,
//! which `cargo xtask bench` shows. To look into one case: `LATENCY_PEERS=N` runs only the
//! delivery case of N peers (one of 200 records, 25 ms apart, if there is none), and
//! `LATENCY_DEBUG=1` prints what the delivery phase did across all nodes (deliveries by flood
//! and by sync, duplicates, pulls) and every node's flooding counters after a run;
//! `LATENCY_FORMATION=1 cargo bench --bench latency -- formation` runs only the formation runs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use peergroup_benches::Fixture;
use peergroup_benches::net::{self, Who};
use peergroup_identity::Timestamp;
use peergroup_membership::core::Event;
use peergroup_record_db::{ChangeKind, NewRecord};
use peergroup_transport::Dial;

/// Callers publishing at once in the group-commit benchmark.
const IN_FLIGHT: usize = 32;
/// Records each of them publishes per iteration.
const PER_CALLER: usize = 100;
/// Group commit goal, records per second.
const GROUP_COMMIT_GOAL: f64 = 10_000.0;
/// A chat message's payload.
const CHAT_PAYLOAD: usize = 120;
/// (peers, messages, spacing between publishes, p99 goal).
const DELIVERY_CASES: [(usize, usize, Duration, Duration); 2] = [
    (4, 400, Duration::from_millis(5), Duration::from_millis(10)),
    (
        50,
        200,
        Duration::from_millis(25),
        Duration::from_millis(50),
    ),
];

const GROUP_COMMIT_ID: &str = "group_commit_32_in_flight";

/// A group whose certificates are valid now (the transport checks them against the clock).
fn fixture() -> Fixture {
    Fixture::starting(Timestamp::now().saturating_sub(Duration::from_secs(3600)))
}

fn new_record(payload: Vec<u8>) -> NewRecord {
    NewRecord {
        record_type: peergroup_benches::app_type(),
        attributes: String::new(),
        payload,
        expires: Timestamp::now().saturating_add(Duration::from_secs(86_400)),
        autorefresh: false,
    }
}

fn group_commit(c: &mut Criterion) {
    let rt = net::runtime(2);
    let f = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let node = rt.block_on(net::start(
        &f,
        Who::Admin,
        net::open_database(&f, &dir.path().join("node.sqlite")),
        &[],
    ));
    let handle = node.handle.clone();
    let mut g = c.benchmark_group("latency");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.throughput(Throughput::Elements((IN_FLIGHT * PER_CALLER) as u64));
    g.bench_function(GROUP_COMMIT_ID, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let callers: Vec<_> = (0..IN_FLIGHT)
                        .map(|_| {
                            let h = handle.clone();
                            tokio::spawn(async move {
                                for _ in 0..PER_CALLER {
                                    h.create_record(new_record(vec![7; 200]))
                                        .await
                                        .expect("publish");
                                }
                            })
                        })
                        .collect();
                    for c in callers {
                        c.await.expect("caller");
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    });
    g.finish();
    rt.block_on(node.close());
}

/// Per-pair latencies of one delivery run, and how long each publishing call took (the
/// author's signing and durable commit, inside every latency of its record), in seconds,
/// both sorted.
fn deliver(peers: usize, messages: usize, spacing: Duration) -> (Vec<f64>, Vec<f64>) {
    let rt = net::runtime(2);
    let f = fixture();
    let members = f.more_members(peers);
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        // Each node dials the one before it and one halfway back: connected from the start,
        // with no node every other one dials.
        let mut nodes: Vec<net::Node> = Vec::with_capacity(peers);
        for (i, m) in members.iter().enumerate() {
            let db = net::open_database(&f, &dir.path().join(format!("peer{i}.sqlite")));
            let mut connect = Vec::new();
            if i > 0 {
                connect.push(nodes[i - 1].addr);
                if i / 2 != i - 1 {
                    connect.push(nodes[i / 2].addr);
                }
            }
            nodes.push(net::start_member(&f, m, db, &connect, Dial::Tcp).await);
        }
        let handles: Vec<_> = nodes.iter().map(|n| &n.handle).collect();
        // A membership and a presence record per member (and the admin's, which the
        // fixture's databases know already).
        net::converge(
            &handles,
            2 * peers,
            Duration::from_millis(50),
            Duration::from_secs(120),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let published: Arc<Mutex<Vec<f64>>> = Arc::default();
        let seen: Arc<Mutex<Vec<(u64, usize, Instant)>>> = Arc::default();
        let mut listeners = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let mut events = n.handle.events();
            let seen = seen.clone();
            let app = peergroup_benches::app_type();
            listeners.push(tokio::spawn(async move {
                let mut got = 0usize;
                while got < messages {
                    match events.recv().await {
                        Ok(Event::Record(change))
                            if change.kind == ChangeKind::Added
                                && change.record.record_type == app =>
                        {
                            let at = Instant::now();
                            got += 1;
                            let mut seq = [0u8; 8];
                            seq.copy_from_slice(&change.record.payload[..8]);
                            let seq = u64::from_le_bytes(seq);
                            let sender = usize::try_from(seq).unwrap_or(0) % peers;
                            if sender != i {
                                seen.lock().expect("lock").push((seq, i, at));
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            panic!("node {i} lagged by {n} events")
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
            }));
        }
        let debug = std::env::var_os("LATENCY_DEBUG").is_some();
        let mut before = Vec::new();
        if debug {
            for n in &nodes {
                before.push(n.handle.stats().await.expect("stats"));
            }
        }
        // The author's own event can come before its call returns: the calls are awaited.
        let mut publishing = Vec::with_capacity(messages);
        let mut tick = tokio::time::interval(spacing);
        for seq in 0..messages as u64 {
            tick.tick().await;
            let sender = usize::try_from(seq).unwrap_or(0) % peers;
            let mut payload = vec![0u8; CHAT_PAYLOAD];
            payload[..8].copy_from_slice(&seq.to_le_bytes());
            let h = nodes[sender].handle.clone();
            let sent = sent.clone();
            let published = published.clone();
            publishing.push(tokio::spawn(async move {
                let start = Instant::now();
                sent.lock().expect("lock").insert(seq, start);
                h.create_record(new_record(payload)).await.expect("publish");
                published
                    .lock()
                    .expect("lock")
                    .push(start.elapsed().as_secs_f64());
            }));
        }
        for l in listeners {
            tokio::time::timeout(Duration::from_secs(60), l)
                .await
                .expect("every member received every message within 60 s")
                .expect("listener");
        }
        for p in publishing {
            p.await.expect("publishing task");
        }
        if debug {
            // What the delivery phase alone did: how many deliveries waited for a pull.
            let mut phase = [0u64; 6];
            for (n, b) in nodes.iter().zip(&before) {
                let s = n.handle.stats().await.expect("stats");
                for (sum, (now, then)) in phase.iter_mut().zip([
                    (s.delivered_by_flood, b.delivered_by_flood),
                    (s.delivered_by_sync, b.delivered_by_sync),
                    (s.duplicate_floods, b.duplicate_floods),
                    (s.grafts_sent, b.grafts_sent),
                    (s.pushes_after_pull, b.pushes_after_pull),
                    (s.pulls_without_push, b.pulls_without_push),
                ]) {
                    *sum += now - then;
                }
            }
            let [flood, sync, dup, grafts, late, needed] = phase;
            eprintln!(
                "delivery phase, all nodes: by flood {flood}, by sync {sync}, duplicates {dup}, \
                 pulls {grafts} (push came after: {late}, none came: {needed})"
            );
            for (i, n) in nodes.iter().enumerate() {
                let s = n.handle.stats().await.expect("stats");
                let nb = n.handle.neighbors().await.expect("neighbors").len();
                eprintln!(
                    "node {i}: neighbors {nb} by_flood {} by_sync {} dup {} ihave {} grafts {} prunes {} floods_sent {}",
                    s.delivered_by_flood, s.delivered_by_sync, s.duplicate_floods, s.ihave_sent, s.grafts_sent, s.prunes_sent, s.floods_sent
                );
            }
        }
        for n in nodes {
            n.close().await;
        }
        let sent = sent.lock().expect("lock");
        let mut lat: Vec<f64> = seen
            .lock()
            .expect("lock")
            .iter()
            .map(|(seq, _, at)| at.duration_since(sent[seq]).as_secs_f64())
            .collect();
        assert_eq!(lat.len(), messages * (peers - 1), "one sample per pair");
        lat.sort_by(f64::total_cmp);
        let mut publish = std::mem::take(&mut *published.lock().expect("lock"));
        assert_eq!(publish.len(), messages, "every publishing call returned");
        publish.sort_by(f64::total_cmp);
        (lat, publish)
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[path = "latency/formation.rs"]
mod formation;

/// Formation runs (each forms a fresh group of four).
const FORMATION_RUNS: usize = 5;

/// What the formation runs measured, for the summary.
static FORMATION: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn formation(_: &mut Criterion) {
    if std::env::var_os("LATENCY_PEERS").is_some() {
        return;
    }
    let rt = net::runtime(2);
    let (mut joins, mut present) = (Vec::new(), Vec::new());
    let (mut crash, mut departure) = (Vec::new(), Vec::new());
    for _ in 0..FORMATION_RUNS {
        let f = rt.block_on(formation::form());
        joins.extend(f.joins.iter().map(Duration::as_secs_f64));
        present.push(f.present.as_secs_f64());
        crash.push(f.crash.as_secs_f64());
        departure.push(f.departure.as_secs_f64());
    }
    let mut lines = FORMATION.lock().expect("lock");
    for (what, mut v, goal) in [
        (
            "join (invitation to joined and synchronised)",
            joins,
            formation::JOIN_GOAL,
        ),
        (
            "4 peers each seeing all present (from the last ready)",
            present,
            formation::PRESENT_GOAL,
        ),
        (
            "departure by crash (connections lost) in every other member's list",
            crash,
            formation::DEPARTURE_GOAL,
        ),
        (
            "departure by close in every other member's list",
            departure,
            formation::DEPARTURE_GOAL,
        ),
    ] {
        v.sort_by(f64::total_cmp);
        let (p50, max) = (percentile(&v, 0.5), v[v.len() - 1]);
        let verdict = if max <= goal.as_secs_f64() {
            "met"
        } else {
            "NOT met"
        };
        let line = format!(
            "formation, {what}: median {:.0} ms, max {:.0} ms of {} (goal ≤ {} ms: {verdict})",
            p50 * 1e3,
            max * 1e3,
            v.len(),
            goal.as_millis()
        );
        eprintln!("{line}");
        lines.push(line);
    }
}

/// What the delivery runs measured, for the summary.
static DELIVERY: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn delivery(_: &mut Criterion) {
    if std::env::var_os("LATENCY_FORMATION").is_some() {
        return;
    }
    // `LATENCY_PEERS=N` runs one case alone, or a case of N peers (when looking into one).
    let only: Option<usize> = std::env::var("LATENCY_PEERS")
        .ok()
        .and_then(|v| v.parse().ok());
    let cases: Vec<_> = match only {
        Some(n) => DELIVERY_CASES
            .into_iter()
            .filter(|c| c.0 == n)
            .chain((!DELIVERY_CASES.iter().any(|c| c.0 == n)).then_some((
                n,
                200,
                Duration::from_millis(25),
                Duration::from_millis(50),
            )))
            .collect(),
        None => DELIVERY_CASES.to_vec(),
    };
    for (peers, messages, spacing, goal) in cases {
        let (lat, publish) = deliver(peers, messages, spacing);
        let (p50, p99, max) = (
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat[lat.len() - 1],
        );
        let verdict = if p99 <= goal.as_secs_f64() {
            "met"
        } else {
            "NOT met"
        };
        let line = format!(
            "delivery, {peers} peers, {messages} chat records ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 ≤ {} ms: {verdict})",
            lat.len(),
            p50 * 1e3,
            p99 * 1e3,
            max * 1e3,
            goal.as_millis()
        );
        eprintln!("{line}");
        DELIVERY.lock().expect("lock").push(line);
        // Where a tail starts: a slow publishing call delays its record at every receiver.
        let line = format!(
            "  of which the publishing call (signing, durable commit): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&publish, 0.5) * 1e3,
            percentile(&publish, 0.99) * 1e3,
            publish[publish.len() - 1] * 1e3
        );
        eprintln!("{line}");
        DELIVERY.lock().expect("lock").push(line);
    }
}

/// `$CARGO_TARGET_DIR/criterion`, else the workspace's `target/criterion` (as the network
/// benchmark finds it).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/criterion"))
}

static STARTED: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();

fn summary(_: &mut Criterion) {
    let mut out = String::from("\n== latency summary ==\n");
    let path = criterion_dir()
        .join("latency")
        .join(GROUP_COMMIT_ID)
        .join("new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| STARTED.get().is_none_or(|s| t >= *s));
    let median = fresh
        .then(|| std::fs::read_to_string(&path).ok())
        .flatten()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["median"]["point_estimate"].as_f64());
    if let Some(ns) = median {
        let rate = (IN_FLIGHT * PER_CALLER) as f64 / (ns / 1e9);
        let verdict = if rate >= GROUP_COMMIT_GOAL {
            "met"
        } else {
            "NOT met"
        };
        let _ = writeln!(
            out,
            "group commit, {IN_FLIGHT} create_record calls in flight, durable: {rate:.0} records/s (goal ≥ {GROUP_COMMIT_GOAL:.0}: {verdict})"
        );
    }
    for line in DELIVERY.lock().expect("lock").iter() {
        let _ = writeln!(out, "{line}");
    }
    for line in FORMATION.lock().expect("lock").iter() {
        let _ = writeln!(out, "{line}");
    }
    eprintln!("{out}");
    let dir = criterion_dir();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("latency-summary.txt"), out);
}

fn start(_: &mut Criterion) {
    let _ = STARTED.set(SystemTime::now());
}

criterion_group!(benches, start, group_commit, delivery, formation, summary);
criterion_main!(benches);
