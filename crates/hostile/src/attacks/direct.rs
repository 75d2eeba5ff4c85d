//! Attack 3: Many direct connections by one member: it opens authenticated connections as fast as
//! it can and holds every one the node lets it keep — first each sending a direct hello (the
//! node must welcome at most its per-member cap and refuse the rest), then sending nothing at
//! all after the TLS handshake (the node must not hold them without bound either). Before
//! the bounds: 5,000 connections, +216 MB, 5,016 open files.
//!
//! The attacker connects from an address of its own ([`ATTACKER_ADDR`]), as it would from the
//! internet. From the honest member's 127.0.0.1 its 32 connects in flight would fill that
//! address's pending-handshake bound (16) and evict the member's own handshake, which is what
//! the per-address bound is for: the member would then wait for its next dial (~5 s). A
//! clean-clone CI run and 1 local run in 4 met exactly that.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use peergroup_direct_conn::DEFAULT_MAX_PER_MEMBER;
use peergroup_direct_conn::wire::{self, DirectFrame, DirectHello};
use peergroup_transport::{DEFAULT_ACCEPT_QUEUE, DEFAULT_MAX_HANDSHAKES, EVICTED_UNCLOSED_SLACK};
use tokio::sync::watch;

use super::{Ctx, Verdict, join_all};
use crate::mesh::Attacker;
use crate::node::open_fds;

/// Where the attacker connects from.
const ATTACKER_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// Connects in flight at once.
const IN_FLIGHT: usize = 32;
/// Most connections the attacker holds at once (its own memory and files).
const HOLD_MAX: i64 = 4_000;
/// How many more files than before the attack the node may hold: its pending handshakes and
/// the sockets it closed but has not released yet (the transport's bounds), its accept
/// queue, one member's direct connections, and 128 of slack.
pub(crate) const FD_GROWTH_BOUND: usize = DEFAULT_MAX_HANDSHAKES
    + EVICTED_UNCLOSED_SLACK
    + DEFAULT_ACCEPT_QUEUE
    + DEFAULT_MAX_PER_MEMBER
    + 128;

#[derive(Default)]
struct Counts {
    opened: AtomicU64,
    connect_failed: AtomicU64,
    welcomed: AtomicU64,
    closed_by_node: AtomicU64,
    open_now: AtomicI64,
    welcomed_now: AtomicI64,
    welcomed_max: AtomicI64,
    /// Why connects failed, and how often (the first few kinds).
    failures: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

/// What one phase does with each connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Hello,
    Silent,
}

async fn hold(
    mut conn: peergroup_transport::Connection,
    mode: Mode,
    target: peergroup_identity::PeerName,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) {
    if mode == Mode::Hello {
        let hello = wire::encode_hello(&DirectHello {
            target,
            max_data: 1 << 20,
        });
        if conn.send(hello).await.is_err() {
            counts.closed_by_node.fetch_add(1, Ordering::Relaxed);
            counts.open_now.fetch_sub(1, Ordering::Relaxed);
            return;
        }
    }
    let mut welcomed = false;
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            frame = conn.recv() => match frame {
                Some(f) => {
                    if !welcomed && matches!(wire::decode(&f), Ok(DirectFrame::Welcome(_))) {
                        welcomed = true;
                        counts.welcomed.fetch_add(1, Ordering::Relaxed);
                        let now = counts.welcomed_now.fetch_add(1, Ordering::Relaxed) + 1;
                        counts.welcomed_max.fetch_max(now, Ordering::Relaxed);
                    }
                }
                None => {
                    counts.closed_by_node.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
    if welcomed {
        counts.welcomed_now.fetch_sub(1, Ordering::Relaxed);
    }
    counts.open_now.fetch_sub(1, Ordering::Relaxed);
}

async fn opener(
    attacker: Arc<Attacker>,
    addr: SocketAddr,
    target: peergroup_identity::PeerName,
    phase: Arc<AtomicUsize>,
    counts: Arc<Counts>,
    stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        if counts.open_now.load(Ordering::Relaxed) >= HOLD_MAX {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let mode = if phase.load(Ordering::Relaxed) == 0 {
            Mode::Hello
        } else {
            Mode::Silent
        };
        match attacker.connect_from(ATTACKER_ADDR, addr).await {
            Ok(conn) => {
                counts.opened.fetch_add(1, Ordering::Relaxed);
                counts.open_now.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(hold(
                    conn,
                    mode,
                    target.clone(),
                    counts.clone(),
                    stop.clone(),
                ));
            }
            Err(e) => {
                counts.connect_failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut f) = counts.failures.lock() {
                    let key = format!("{e:#}");
                    if f.len() < 8 || f.contains_key(&key) {
                        *f.entry(key).or_default() += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

pub(crate) async fn run(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    let attacker = Arc::new(ctx.attacker("direct", "Direct flooder", None)?);
    let target = ctx.lab.node_peer.clone();
    let addr = ctx.start_node(&[], &[])?;
    ctx.begin()?;
    let pid = ctx.pid()?;
    let fds_before = ctx.fds_before();
    let window = ctx.window();
    let (stop_tx, stop_rx) = super::Stop::new();
    let phase = Arc::new(AtomicUsize::new(0));
    let counts = Arc::new(Counts::default());
    // The node's open files, per phase.
    let peaks = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let monitor = {
        let (phase, peaks, stop) = (phase.clone(), peaks.clone(), stop_rx.clone());
        tokio::spawn(async move {
            while !*stop.borrow() {
                if let Some(n) = open_fds(pid) {
                    let p = phase.load(Ordering::Relaxed).min(1);
                    peaks[p].fetch_max(n, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let mut tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            tokio::spawn(opener(
                attacker.clone(),
                addr,
                target.clone(),
                phase.clone(),
                counts.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(window / 2).await;
    let hello_phase = (
        counts.opened.load(Ordering::Relaxed),
        counts.welcomed.load(Ordering::Relaxed),
        counts.closed_by_node.load(Ordering::Relaxed),
        started.elapsed(),
    );
    phase.store(1, Ordering::Relaxed);
    let silent_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    ctx.member_sync().await;
    if let Some(left) = (window / 2).checked_sub(silent_started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let held_at_end = counts.open_now.load(Ordering::Relaxed);
    stop_tx.stop();
    tasks.push(monitor);
    join_all(tasks).await?;

    let opened = counts.opened.load(Ordering::Relaxed);
    let welcomed_max = counts.welcomed_max.load(Ordering::Relaxed);
    let peak_hello = peaks[0].load(Ordering::Relaxed);
    let peak_silent = peaks[1].load(Ordering::Relaxed);
    ctx.note(format!(
        "hello phase ({:.1} s): {} connections opened, {} welcomed ({welcomed_max} at most at \
         once, cap {DEFAULT_MAX_PER_MEMBER}), {} closed by the node; node files {fds_before} \
         before, {peak_hello} at most",
        hello_phase.3.as_secs_f64(),
        hello_phase.0,
        hello_phase.1,
        hello_phase.2,
    ));
    ctx.note(format!(
        "silent phase ({:.1} s): {} more connections opened, {held_at_end} held at the end; \
         node files {peak_silent} at most (bound: {fds_before} + {FD_GROWTH_BOUND}); {} connects \
         refused or failed in all: {:?}",
        silent_started.elapsed().as_secs_f64(),
        opened - hello_phase.0,
        counts.connect_failed.load(Ordering::Relaxed),
        counts
            .failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default(),
    ));
    let mut problems = Vec::new();
    if opened == 0 {
        problems.push("no connection could be opened: the attack did not happen".to_owned());
    }
    if welcomed_max > DEFAULT_MAX_PER_MEMBER as i64 {
        problems.push(format!(
            "the node welcomed {welcomed_max} direct connections of one member at once (cap \
             {DEFAULT_MAX_PER_MEMBER})"
        ));
    }
    for (what, peak) in [
        ("direct hellos", peak_hello),
        ("silent connections", peak_silent),
    ] {
        if peak > fds_before + FD_GROWTH_BOUND {
            problems.push(format!(
                "with {what} the node held {peak} open files ({fds_before} before; bound +{FD_GROWTH_BOUND})"
            ));
        }
    }
    Ok(Verdict::new(
        problems,
        format!(
            "{opened} connections, {welcomed_max} welcomed at once, node files <= {}",
            peak_hello.max(peak_silent)
        ),
    ))
}
