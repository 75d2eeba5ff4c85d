//! Attack 9: Huge peer time: the node dials attackers (its `--connect` addresses), who accept it as
//! a mesh peer and welcome it with extreme peer times (`u64::MAX`, 0, `i64::MAX`, a day
//! ahead and behind, a day and 19 minutes ahead) and other extremes (32 listen addresses, 32
//! referrals to each other and to ports nobody listens on, node ids 0 and `u64::MAX`). The
//! node must not crash (its control channel answers) and its peer time must stay within a
//! day of its clock: observed in the welcome it gives a member who dials it afterwards.
//!
//! The creator's clock is the group's reference and never moves, so the node attacked here is
//! a second member (`peergroup run` on a member's data directory, joined with the CLI), which
//! also dials the creator to synchronise; the creator starts only once the liars have
//! welcomed the node, so a liar gives the node its first peer-time sample.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use peergroup_identity::Timestamp;
use peergroup_membership::limits::{MAX_ADDRESSES, MAX_FIRST_OFFSET};
use peergroup_membership::{MeshMessage, NodeId};
use peergroup_transport::{Endpoint, TransportConfig};
use tokio::sync::watch;

use super::{Ctx, Verdict, join_all};
use crate::mesh::{Attacker, encode};
use crate::waits::{HANDSHAKE_WAIT, STORE_WAIT};

/// Attackers the node dials.
const LIARS: usize = 4;
/// Slack on the one-day bound (the probe's own round trip, rounding).
const OBSERVE_SLACK: Duration = Duration::from_secs(60);

/// The peer time of the `n`-th welcome.
fn extreme(n: usize) -> Timestamp {
    let now = Timestamp::now();
    let day = Duration::from_secs(24 * 3600);
    match n % 7 {
        0 => Timestamp::from_millis(u64::MAX),
        1 => now.saturating_add(day - Duration::from_secs(60)),
        2 => Timestamp::from_millis(0),
        3 => now.saturating_add(day + Duration::from_secs(19 * 60)),
        4 => Timestamp::from_millis(i64::MAX as u64),
        5 => now.saturating_sub(day - Duration::from_secs(60)),
        _ => Timestamp::from_millis(u64::MAX - 1),
    }
}

/// Accepts the node's connections and welcomes each with the next extreme.
async fn liar(
    endpoint: Arc<Endpoint>,
    referrals: Vec<SocketAddr>,
    counter: Arc<AtomicUsize>,
    sent: Arc<Mutex<Vec<u64>>>,
    hellos: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let conn = tokio::select! {
            c = endpoint.accept() => c,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Some(mut conn) = conn else { return };
        let mut stop = stop.clone();
        let (referrals, counter, sent, hellos) = (
            referrals.clone(),
            counter.clone(),
            sent.clone(),
            hellos.clone(),
        );
        tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    f = conn.recv() => f,
                    _ = stop.wait_for(|s| *s) => return,
                };
                let Some(frame) = frame else { return };
                if let Ok(MeshMessage::Hello { .. }) = MeshMessage::decode(&frame) {
                    hellos.fetch_add(1, Ordering::Relaxed);
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let peer_time = extreme(n);
                    if let Ok(mut s) = sent.lock() {
                        s.push(peer_time.as_millis());
                    }
                    let welcome = MeshMessage::Welcome {
                        node: NodeId(if n % 2 == 0 { u64::MAX } else { 0 }),
                        listen: referrals.clone(),
                        peer_time,
                        referrals: referrals.clone(),
                    };
                    if conn.send(encode(&welcome)).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

pub(crate) async fn run(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    let liars: Vec<Attacker> = (0..LIARS)
        .map(|i| ctx.attacker(&format!("liar{i}"), "Time liar", None))
        .collect::<Result<_>>()?;
    let member_node = ctx.cli_member("membernode", "Member node")?;
    let mut endpoints = Vec::new();
    for l in &liars {
        let ep = Endpoint::bind(
            &[SocketAddr::from(([127, 0, 0, 1], 0))],
            TransportConfig::default(),
        )
        .await?;
        ep.add_group(l.creds.clone(), l.trust.clone())
            .map_err(|e| anyhow::anyhow!("{}: serving the group: {e}", l.label))?;
        endpoints.push(Arc::new(ep));
    }
    let liar_addrs: Vec<SocketAddr> = endpoints
        .iter()
        .map(|e| {
            e.local_addrs()
                .first()
                .copied()
                .ok_or_else(|| anyhow::anyhow!("a liar's endpoint listens nowhere"))
        })
        .collect::<Result<_>>()?;
    // Referrals: the liars themselves, then ports where nobody listens.
    let mut referrals = liar_addrs.clone();
    referrals.extend(
        (1..)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .take(MAX_ADDRESSES - LIARS),
    );
    let (stop_tx, stop_rx) = super::Stop::new();
    let counter = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let hellos = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = endpoints
        .iter()
        .map(|ep| {
            tokio::spawn(liar(
                ep.clone(),
                referrals.clone(),
                counter.clone(),
                sent.clone(),
                hellos.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();

    // The member node dials the liars and the creator; the creator starts only once the
    // liars have welcomed it, so a liar's peer time is the node's first sample.
    let creator_port = crate::lab::free_port()?;
    let creator = SocketAddr::from(([127, 0, 0, 1], creator_port));
    let mut args = vec!["--connect".to_owned(), creator.to_string()];
    for a in &liar_addrs {
        args.extend(["--connect".to_owned(), a.to_string()]);
    }
    let addr = ctx.start_node_on("the member node", &member_node.home, &args, &[])?;
    let dialed = Instant::now();
    while hellos.load(Ordering::Relaxed) < LIARS as u64 {
        if dialed.elapsed() > HANDSHAKE_WAIT {
            bail!(
                "the member node said hello to {} of the {LIARS} liars within {HANDSHAKE_WAIT:?}",
                hellos.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let home = ctx.home.clone();
    ctx.start_aux_at("the creator", &home, creator_port, &[])?;
    // The member node holds the seeded records (from the creator) before the attack counts.
    let started = Instant::now();
    let seeded = ctx.lab.seeded.clone();
    let mut missing = seeded.clone();
    while !missing.is_empty() {
        if started.elapsed() > STORE_WAIT {
            bail!(
                "the member node did not get the seeded records from the creator within \
                 {STORE_WAIT:?} ({} missing)",
                missing.len()
            );
        }
        let node = ctx.node()?;
        let mut still = Vec::new();
        for id in missing {
            if !node.has(&id)? {
                still.push(id);
            }
        }
        missing = still;
        std::thread::sleep(Duration::from_millis(200));
    }
    ctx.begin()?;
    let started = Instant::now();
    ctx.member_sync().await;
    let window = ctx.window();
    if let Some(left) = window.checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    // What peer time does the node give a member who dials it now?
    let observed = liars[0].neighbor(addr).await;
    stop_tx.stop();
    join_all(tasks).await?;
    for ep in &endpoints {
        ep.close();
    }

    let now = Timestamp::now();
    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
    ctx.note(format!(
        "the node said hello to the liars {} time(s); welcomes with peer times {:?} (ms; now \
         {}) and {MAX_ADDRESSES} listen addresses and referrals each",
        hellos.load(Ordering::Relaxed),
        sent,
        now.as_millis()
    ));
    let mut problems = Vec::new();
    if sent.is_empty() {
        problems.push("the node never dialed the liars: the attack did not happen".to_owned());
    }
    let bound = MAX_FIRST_OFFSET + OBSERVE_SLACK;
    let summary = match observed {
        Ok(n) => {
            let off_ms = i128::from(n.peer_time.as_millis()) - i128::from(now.as_millis());
            ctx.note(format!(
                "the node's peer time after the attack: {:+.1} s from the local clock (bound \
                 {} h)",
                off_ms as f64 / 1000.0,
                MAX_FIRST_OFFSET.as_secs() / 3600
            ));
            if off_ms.unsigned_abs() > bound.as_millis() {
                problems.push(format!(
                    "the node's peer time is {:+.1} h from its clock (bound {} h)",
                    off_ms as f64 / 3_600_000.0,
                    MAX_FIRST_OFFSET.as_secs() / 3600
                ));
            }
            format!("peer time {:+.1} s off", off_ms as f64 / 1000.0)
        }
        Err(e) => {
            ctx.note(format!("the node's peer time was not observable: {e:#}"));
            "peer time not observable".into()
        }
    };
    Ok(Verdict::new(
        problems,
        format!("{} welcomes; {summary}", sent.len()),
    ))
}
