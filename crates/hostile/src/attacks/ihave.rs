//! Attack 1: IHave flood: a member announces 4,096 random item keys per message, as fast as the
//! node reads (the transport's queue pushes back), on two links. Before the bounds, the
//! node's pending grafts grew without limit: 25 MB to 1.65 GB of RSS, and a full core for
//! minutes after the attack; so besides the common bounds the node must be back to idle
//! within 15 s of the attack's end (it may first work off what it had already read).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use peergroup_membership::MeshMessage;
use peergroup_membership::limits::MAX_KEYS;
use tokio::sync::watch;

use super::{Ctx, Verdict, join_all};
use crate::mesh::{Attacker, Rng, encode, spawn_drain};
use crate::node::cpu_time;

/// Links the flooding member holds (a member may hold up to 4).
const LINKS: usize = 2;
/// The node must be back to idle within this after the attack (it may first work off what
/// it had already read).
const CPU_RECOVERY: Duration = Duration::from_secs(15);
/// CPU is measured in slices of this.
const CPU_SLICE: Duration = Duration::from_secs(1);
/// Idle: at most this share of one core over a slice.
const IDLE_SHARE: f64 = 0.2;

#[derive(Default)]
struct Counts {
    messages: AtomicU64,
    links: AtomicU64,
    link_failures: AtomicU64,
    received: AtomicU64,
}

async fn flood(
    attacker: Arc<Attacker>,
    addr: std::net::SocketAddr,
    stop: watch::Receiver<bool>,
    counts: Arc<Counts>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
) {
    let mut rng = Rng::new();
    while !*stop.borrow() {
        let neighbor = match attacker.neighbor(addr).await {
            Ok(n) => n,
            Err(e) => {
                counts.link_failures.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut f) = first_error.lock() {
                    f.get_or_insert_with(|| format!("{e:#}"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        counts.links.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = neighbor.conn.split();
        let drain = spawn_drain(receiver, stop.clone(), Arc::new(AtomicU64::new(0)));
        while !*stop.borrow() {
            let keys: Vec<u64> = (0..MAX_KEYS).map(|_| rng.next_u64()).collect();
            let mut stop_wait = stop.clone();
            let sent = tokio::select! {
                r = sender.send(encode(&MeshMessage::IHave(keys))) => r.is_ok(),
                _ = stop_wait.wait_for(|s| *s) => false,
            };
            if !sent {
                break;
            }
            counts.messages.fetch_add(1, Ordering::Relaxed);
        }
        sender.close("done");
        if let Ok(d) = drain.await {
            counts.received.fetch_add(d.frames, Ordering::Relaxed);
        }
    }
}

pub(crate) async fn run(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    let attacker = Arc::new(ctx.attacker("ihave", "IHave flooder", None)?);
    let addr = ctx.start_node(&[], &[])?;
    ctx.begin()?;
    let pid = ctx.pid()?;
    let started = Instant::now();
    let (stop_tx, stop_rx) = super::Stop::new();
    let counts = Arc::new(Counts::default());
    let first_error = Arc::new(std::sync::Mutex::new(None));
    let tasks: Vec<_> = (0..LINKS)
        .map(|_| {
            tokio::spawn(flood(
                attacker.clone(),
                addr,
                stop_rx.clone(),
                counts.clone(),
                first_error.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    ctx.member_sync().await;
    let window = ctx.window();
    if let Some(left) = window.checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    stop_tx.stop();
    join_all(tasks).await?;
    let attack_time = started.elapsed();
    // Back to idle: the first slice in which the node uses little CPU.
    let stopped = Instant::now();
    let mut profile = Vec::new();
    let mut idle_after = None;
    let mut last = cpu_time(pid);
    while idle_after.is_none() && stopped.elapsed() < CPU_RECOVERY {
        tokio::time::sleep(CPU_SLICE).await;
        let now = cpu_time(pid);
        let (Some(a), Some(b)) = (last, now) else {
            break;
        };
        let share = b.saturating_sub(a).as_secs_f64() / CPU_SLICE.as_secs_f64();
        profile.push(format!("{:.0}%", share * 100.0));
        if share <= IDLE_SHARE {
            idle_after = Some(stopped.elapsed());
        }
        last = now;
    }
    let messages = counts.messages.load(Ordering::Relaxed);
    let links = counts.links.load(Ordering::Relaxed);
    ctx.note(format!(
        "{messages} IHave messages ({} keys, {:.0} messages/s) over {links} link(s) in {:.1} s; \
         {} frames came back; {} link attempts failed{}",
        messages * MAX_KEYS as u64,
        messages as f64 / attack_time.as_secs_f64(),
        attack_time.as_secs_f64(),
        counts.received.load(Ordering::Relaxed),
        counts.link_failures.load(Ordering::Relaxed),
        first_error
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    ));
    let mut problems = Vec::new();
    if messages == 0 {
        problems.push("no IHave message could be sent: the attack did not happen".to_owned());
    }
    ctx.note(format!(
        "the node's CPU per second after the attack: {} ({})",
        profile.join(" "),
        match idle_after {
            Some(t) => format!("idle after {:.0} s", t.as_secs_f64()),
            None => format!("not idle within {} s", CPU_RECOVERY.as_secs()),
        }
    ));
    if idle_after.is_none() {
        problems.push(format!(
            "the node was not back to idle (<= {:.0}% of a core) within {} s of the attack's end: \
             {}",
            IDLE_SHARE * 100.0,
            CPU_RECOVERY.as_secs(),
            profile.join(" ")
        ));
    }
    Ok(Verdict::new(
        problems,
        format!(
            "{messages} IHave x {MAX_KEYS} keys; idle {:.0} s after",
            idle_after.unwrap_or(CPU_RECOVERY).as_secs_f64()
        ),
    ))
}
