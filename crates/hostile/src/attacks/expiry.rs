//! Attack 6: Expired member: a member invited for a few seconds connects as a neighbor (subscribed:
//! the node floods it its records) and opens a direct connection. When its certificate
//! expires the node must close both within 2 s and send it nothing more: no record frame
//! after the expiry (a goodbye is allowed), no frame at all after expiry + 2 s, and a record
//! the node adds after the expiry never reaches it. A new connection after the expiry must be
//! refused.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use peergroup_direct_conn::wire::{self, DirectFrame, DirectHello};
use peergroup_identity::Timestamp;
use peergroup_membership::MeshMessage;
use peergroup_transport::Connection;

use super::{Ctx, Verdict};
use crate::lab::SEED_TYPE;
use crate::waits::HANDSHAKE_WAIT;

/// Frames already on their way when the membership ends are not counted against the node.
const IN_FLIGHT_GRACE: Duration = Duration::from_millis(100);
/// The node has this long after the expiry to close the member's connections.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long frames are still watched for after the close deadline.
const WATCH_AFTER: Duration = Duration::from_secs(2);
/// Enough membership left at connect time to see the node flood the member first.
const MIN_LEFT: Duration = Duration::from_secs(3);

/// What one connection saw.
#[derive(Default)]
struct Seen {
    /// (when, kind, record id of a flood).
    frames: Vec<(Instant, &'static str, Option<String>)>,
    /// When it closed, and why.
    closed: Option<(Instant, String)>,
}

fn watch(
    mut conn: Connection,
    seen: Arc<Mutex<Seen>>,
    direct: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(frame) = conn.recv().await {
            let (kind, id) = if direct {
                match wire::decode(&frame) {
                    Ok(DirectFrame::Welcome(_)) => ("direct welcome", None),
                    Ok(DirectFrame::Data { .. }) => ("direct data", None),
                    _ => ("direct other", None),
                }
            } else {
                match MeshMessage::decode(&frame) {
                    Ok(MeshMessage::Flood(r) | MeshMessage::Repush(r)) => {
                        ("flood", Some(r.id.to_string()))
                    }
                    Ok(m) => (m.kind(), None),
                    Err(_) => ("undecodable", None),
                }
            };
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .frames
                .push((Instant::now(), kind, id));
        }
        let reason = conn
            .close_reason()
            .map(|r| r.to_string())
            .unwrap_or_default();
        seen.lock().unwrap_or_else(PoisonError::into_inner).closed = Some((Instant::now(), reason));
    })
}

pub(crate) async fn run(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    let lifetime = if ctx.lab.short { "8s" } else { "10s" };
    let attacker = ctx.attacker("expiring", "Expiring member", Some(lifetime))?;
    let addr = ctx.start_node(&[], &[])?;
    ctx.begin()?;
    let not_after = attacker.expires();
    let left = Duration::from_millis(
        not_after
            .as_millis()
            .saturating_sub(Timestamp::now().as_millis()),
    );
    if left < MIN_LEFT {
        bail!(
            "the set-up took too long: the membership ({lifetime}) has only {left:?} left when \
             the attack starts (at least {MIN_LEFT:?} needed)"
        );
    }
    let expiry = Instant::now() + left;
    ctx.note(format!(
        "membership of {lifetime} ends {:.1} s into the attack",
        left.as_secs_f64()
    ));

    // A subscribed neighbor and a direct connection.
    let neighbor = attacker.neighbor(addr).await?;
    let mesh_seen = Arc::new(Mutex::new(Seen::default()));
    let mesh_task = watch(neighbor.conn, mesh_seen.clone(), false);
    let mut direct = attacker.connect(addr).await?;
    direct
        .send(wire::encode_hello(&DirectHello {
            target: ctx.lab.node_peer.clone(),
            max_data: 1 << 20,
        }))
        .await?;
    let welcome = tokio::time::timeout(HANDSHAKE_WAIT, direct.recv()).await;
    let direct_ok = matches!(
        welcome,
        Ok(Some(ref f)) if matches!(wire::decode(f), Ok(DirectFrame::Welcome(_)))
    );
    let direct_seen = Arc::new(Mutex::new(Seen::default()));
    let direct_task = watch(direct, direct_seen.clone(), true);

    // Before the expiry: the node floods the member a record (the positive control).
    let before_id =
        tokio::task::block_in_place(|| ctx.node()?.add(SEED_TYPE, "before the expiry"))?;
    ctx.member_sync().await;
    tokio::time::sleep_until((expiry + Duration::from_millis(200)).into()).await;
    // After the expiry: a record that must never reach the member.
    let after_id = tokio::task::block_in_place(|| ctx.node()?.add(SEED_TYPE, "after the expiry"))?;
    tokio::time::sleep_until((expiry + CLOSE_GRACE + WATCH_AFTER).into()).await;
    let reconnect = attacker.connect(addr).await;
    mesh_task.abort();
    direct_task.abort();

    let mut problems = Vec::new();
    if !direct_ok {
        problems.push(format!(
            "the direct connection was not welcomed before the expiry: {welcome:?}"
        ));
    }
    for (what, seen) in [
        ("neighbor link", &mesh_seen),
        ("direct connection", &direct_seen),
    ] {
        let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
        match &seen.closed {
            Some((at, reason)) if *at <= expiry + CLOSE_GRACE => ctx.note(format!(
                "{what}: closed {:+.2} s from the expiry ({reason})",
                signed_secs(*at, expiry)
            )),
            Some((at, reason)) => problems.push(format!(
                "{what}: closed only {:.2} s after the expiry ({reason})",
                signed_secs(*at, expiry)
            )),
            None => problems.push(format!(
                "{what}: still open {:.0} s after the expiry",
                (CLOSE_GRACE + WATCH_AFTER).as_secs_f64()
            )),
        }
        let late: Vec<String> = seen
            .frames
            .iter()
            .filter(|(at, kind, _)| {
                (*at > expiry + IN_FLIGHT_GRACE && *kind != "disconnect")
                    || *at > expiry + CLOSE_GRACE
            })
            .map(|(at, kind, _)| format!("{kind} at {:+.2} s", signed_secs(*at, expiry)))
            .collect();
        if !late.is_empty() {
            problems.push(format!(
                "{what}: {} frame(s) after the expiry: {}",
                late.len(),
                late.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let mesh = mesh_seen.lock().unwrap_or_else(PoisonError::into_inner);
    let got = |id: &str| mesh.frames.iter().any(|(_, _, r)| r.as_deref() == Some(id));
    let announced_before = mesh
        .frames
        .iter()
        .any(|(at, kind, _)| *at <= expiry && matches!(*kind, "flood" | "ihave"));
    if !got(&before_id) && !announced_before {
        problems.push(
            "the node sent the member nothing of the record added before the expiry: the \
             link was not subscribed, the check proves nothing"
                .into(),
        );
    }
    if got(&after_id) {
        problems.push("the record added after the expiry reached the expired member".into());
    }
    ctx.note(format!(
        "neighbor link: {} frames before the expiry ({}), record before the expiry {}",
        mesh.frames
            .iter()
            .filter(|(at, _, _)| *at <= expiry)
            .count(),
        mesh.frames
            .iter()
            .map(|(_, k, _)| *k)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(" "),
        if got(&before_id) {
            "flooded"
        } else {
            "announced"
        }
    ));
    match reconnect {
        Ok(_) => problems.push("the node accepted a new connection after the expiry".into()),
        Err(e) => ctx.note(format!("a new connection after the expiry: {e:#}")),
    }
    Ok(Verdict::new(
        problems,
        "closed on time, nothing sent after the expiry".into(),
    ))
}

/// `at − reference` in seconds, signed.
fn signed_secs(at: Instant, reference: Instant) -> f64 {
    if at >= reference {
        (at - reference).as_secs_f64()
    } else {
        -(reference - at).as_secs_f64()
    }
}
