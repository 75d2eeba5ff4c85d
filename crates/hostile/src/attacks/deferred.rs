//! Attack 8: Deferred-record flood: records claiming signer serials nobody has (so the node holds
//! them back before any signature check, the key being unknown), large ones — half claiming
//! one serial, half a fresh serial each — then small ones by the tens of thousands. The
//! node's memory and disk must stay bounded: its deferred table holds at most
//! `MAX_DEFERRED_BYTES` (64 MiB) and `MAX_DEFERRED` (65,536) records, `MAX_DEFERRED_BYTES_PER_SIGNER`
//! (16 MiB) and `MAX_DEFERRED_PER_SIGNER` (1,024) per claimed serial.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use peergroup_identity::{Classifier, KeyPair, PeerName, Signature, Timestamp};
use peergroup_membership::MeshMessage;
use peergroup_record_db::{
    MAX_DEFERRED, MAX_DEFERRED_BYTES, MAX_DEFERRED_BYTES_PER_SIGNER, MAX_DEFERRED_PER_SIGNER,
    Record, RecordFlags, RecordId, RecordType, SecurityData,
};
use tokio::sync::watch;

use super::{Ctx, Verdict, join_all};
use crate::mesh::{Attacker, Rng, encode, spawn_drain};

/// The records' type.
const DEFERRED_TYPE: &str = "5ca1ab1e-0000-4000-8000-00000000def0";
/// Payload of a large record.
const LARGE: usize = 256 * 1024;
/// Payload of a small record.
const SMALL: usize = 64;
/// Links pushing.
const LINKS: usize = 2;
/// How much the node's data directory may grow: twice the deferred table's bound in bytes
/// (SQLite keeps the pages of evicted records, and its write-ahead log).
const DISK_GROWTH_BOUND: u64 = 2 * MAX_DEFERRED_BYTES;

/// Builds records that claim serials no member has.
struct Forger {
    rng: Rng,
    creators: Vec<PeerName>,
    hot_serial: Vec<u8>,
    record_type: RecordType,
}

impl Forger {
    fn new() -> Result<Self> {
        let creators = (0..4)
            .map(|i| {
                let key = KeyPair::generate().map_err(|e| anyhow::anyhow!("a key: {e}"))?;
                let classifier = Classifier::new(&format!("stranger{i}"))
                    .map_err(|e| anyhow::anyhow!("a classifier: {e}"))?;
                Ok(PeerName::new(&key.public(), classifier))
            })
            .collect::<Result<_>>()?;
        let mut rng = Rng::new();
        let hot_serial = rng.bytes(16);
        Ok(Forger {
            rng,
            creators,
            hot_serial,
            record_type: DEFERRED_TYPE
                .parse()
                .map_err(|e| anyhow::anyhow!("record type: {e}"))?,
        })
    }

    fn record(&mut self, payload: usize, hot: bool) -> Record {
        let now = Timestamp::now();
        let creator = self.creators[(self.rng.next_u64() % 4) as usize].clone();
        let serial = if hot {
            self.hot_serial.clone()
        } else {
            self.rng.bytes(16)
        };
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.rng.bytes(8));
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&self.rng.bytes(64));
        let lifetime = Duration::from_secs(3600 + self.rng.next_u64() % 80_000);
        Record {
            record_type: self.record_type,
            id: RecordId::derive(&creator, id),
            version: 1,
            flags: RecordFlags::default(),
            creator,
            modified_by: None,
            attributes: String::new(),
            created: now,
            expires: now.saturating_add(lifetime),
            last_modified: now,
            payload: self.rng.bytes(payload),
            security: SecurityData {
                creator_serial: serial.clone(),
                modifier_serial: serial,
                signature: Signature::from_bytes(signature),
            },
        }
    }
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[derive(Default)]
struct Counts {
    large: AtomicU64,
    small: AtomicU64,
    bytes: AtomicU64,
    links: AtomicU64,
}

async fn push(
    attacker: Arc<Attacker>,
    addr: SocketAddr,
    small_phase: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    counts: Arc<Counts>,
) -> Result<()> {
    let mut forger = Forger::new()?;
    let mut hot = false;
    while !*stop.borrow() {
        let Ok(n) = attacker.neighbor(addr).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        counts.links.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = n.conn.split();
        let drain = spawn_drain(receiver, stop.clone(), Arc::new(AtomicU64::new(0)));
        while !*stop.borrow() {
            let small = *small_phase.borrow();
            hot = !hot;
            let record = forger.record(if small { SMALL } else { LARGE }, hot && !small);
            let message = encode(&MeshMessage::Flood(record));
            let len = message.len() as u64;
            let mut s = stop.clone();
            let ok = tokio::select! {
                r = sender.send(message) => r.is_ok(),
                _ = s.wait_for(|s| *s) => false,
            };
            if !ok {
                break;
            }
            counts.bytes.fetch_add(len, Ordering::Relaxed);
            if small {
                counts.small.fetch_add(1, Ordering::Relaxed);
            } else {
                counts.large.fetch_add(1, Ordering::Relaxed);
            }
        }
        sender.close("done");
        let _ = drain.await;
    }
    Ok(())
}

pub(crate) async fn run(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    let attacker = Arc::new(ctx.attacker("deferrer", "Deferred flooder", None)?);
    let addr = ctx.start_node(&[], &[])?;
    ctx.begin()?;
    let home = ctx.home.clone();
    let disk_before = dir_bytes(&home);
    let started = Instant::now();
    let (stop_tx, stop_rx) = super::Stop::new();
    let (small_tx, small_rx) = watch::channel(false);
    let counts = Arc::new(Counts::default());
    let tasks: Vec<_> = (0..LINKS)
        .map(|_| {
            tokio::spawn(push(
                attacker.clone(),
                addr,
                small_rx.clone(),
                stop_rx.clone(),
                counts.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    ctx.member_sync().await;
    let window = ctx.window();
    let mut disk_peak = dir_bytes(&home);
    while started.elapsed() < window / 2 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        disk_peak = disk_peak.max(dir_bytes(&home));
    }
    let large_phase = started.elapsed();
    small_tx.send_replace(true);
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(250)).await;
        disk_peak = disk_peak.max(dir_bytes(&home));
    }
    stop_tx.stop();
    for r in join_all(tasks).await? {
        r?;
    }
    disk_peak = disk_peak.max(dir_bytes(&home));
    let growth = disk_peak.saturating_sub(disk_before);
    let (large, small, bytes) = (
        counts.large.load(Ordering::Relaxed),
        counts.small.load(Ordering::Relaxed),
        counts.bytes.load(Ordering::Relaxed),
    );
    let mib = |b: u64| b as f64 / 1048576.0;
    ctx.note(format!(
        "{large} records of {} KiB in {:.1} s (half claiming one serial: per-serial bounds {} \
         records / {:.0} MiB), then {small} of {SMALL} bytes, each claiming a new serial \
         (table bounds {MAX_DEFERRED} records / {:.0} MiB); {:.0} MiB pushed over {} links",
        LARGE / 1024,
        large_phase.as_secs_f64(),
        MAX_DEFERRED_PER_SIGNER,
        mib(MAX_DEFERRED_BYTES_PER_SIGNER),
        mib(MAX_DEFERRED_BYTES),
        mib(bytes),
        counts.links.load(Ordering::Relaxed),
    ));
    ctx.note(format!(
        "node data directory: {:.1} MiB before, {:.1} MiB at most (growth +{:.1} MiB, bound \
         +{:.0} MiB)",
        mib(disk_before),
        mib(disk_peak),
        mib(growth),
        mib(DISK_GROWTH_BOUND)
    ));
    let mut problems = Vec::new();
    if large == 0 && small == 0 {
        problems.push("no record could be pushed: the attack did not happen".to_owned());
    }
    if growth > DISK_GROWTH_BOUND {
        problems.push(format!(
            "the node's data directory grew by {:.1} MiB (bound {:.0} MiB)",
            mib(growth),
            mib(DISK_GROWTH_BOUND)
        ));
    }
    if bytes < MAX_DEFERRED_BYTES {
        ctx.note(format!(
            "only {:.0} MiB pushed: the table's byte bound was not reached in this run",
            mib(bytes)
        ));
    }
    Ok(Verdict::new(
        problems,
        format!(
            "{:.0} MiB of deferred records pushed, disk +{:.1} MiB",
            mib(bytes),
            mib(growth)
        ),
    ))
}
