//! Attack 2: Oversized frames. A member's first frame announces 16 MiB + 1 (and 4 GiB − 1) bytes; a
//! neighbor's frame after the hello announces one byte over the group's mesh limit: the node
//! must close each connection as soon as the length prefix arrives, before buffering the
//! frame. Then four links push frames of exactly the group's limit (signed floods of a record
//! too large for the group) as fast as the node reads: before the bounds, +511 MB of RSS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use peergroup_membership::MeshMessage;
use peergroup_membership::driver::mesh_frame_limit;
use peergroup_record_db::RecordType;
use peergroup_record_db::reserved::GroupProperties;
use peergroup_transport::frame::{Frame, data_frame_len};
use peergroup_transport::{DEFAULT_MAX_FRAME, TransportConfig};
use tokio::io::{AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::sync::watch;

use super::{Ctx, Verdict, join_all};
use crate::lab::SEED_TYPE;
use crate::mesh::{Attacker, Rng, data_frame, encode, random_u64, read_frame, spawn_drain};
use crate::waits::HANDSHAKE_WAIT;

/// Links pushing maximal frames.
const PUSHERS: usize = 4;
/// How long the node has to close a connection that announced an oversized frame.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// Bytes written per step after an oversized prefix.
const CHUNK: usize = 64 * 1024;

/// How a connection that announced an oversized frame ended.
struct Probe {
    /// Bytes of the frame written into the connection before the node closed it (what the
    /// sockets' buffers absorbed; the node reads none of it).
    written: u64,
    /// From the prefix to the node's goodbye (or end of stream); `None`: still open after
    /// [`CLOSE_WAIT`].
    closed_after: Option<Duration>,
    /// The goodbye's reason, if the node sent one.
    reason: Option<String>,
}

/// Writes up to `announced` bytes after an oversized prefix, in chunks, until the node
/// closes the stream.
async fn push_until_closed<S>(
    reader: ReadHalf<S>,
    mut writer: WriteHalf<S>,
    announced: u64,
) -> Probe
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let started = Instant::now();
    let (closed_tx, closed_rx) = watch::channel(None::<(Duration, Option<String>)>);
    let watcher = tokio::spawn(async move {
        let mut reader = reader;
        // Anything the node still sends (pings, its goodbye) is read until the end.
        let mut reason = None;
        loop {
            match read_frame(&mut reader, DEFAULT_MAX_FRAME).await {
                Ok(Frame::Close { reason: r }) => {
                    reason = Some(r);
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        closed_tx.send_replace(Some((started.elapsed(), reason)));
    });
    let mut written = 0u64;
    let chunk = vec![0u8; CHUNK];
    while closed_rx.borrow().is_none() && started.elapsed() < CLOSE_WAIT && written < announced {
        let n = (announced - written).min(CHUNK as u64) as usize;
        let write = tokio::time::timeout(Duration::from_millis(100), writer.write_all(&chunk[..n]));
        match write.await {
            Ok(Ok(())) => written += n as u64,
            Ok(Err(_)) => break,
            Err(_) => {} // the node is not reading: see whether it closed
        }
    }
    let mut rx = closed_rx.clone();
    let closed = tokio::time::timeout(CLOSE_WAIT, rx.wait_for(Option::is_some))
        .await
        .ok()
        .and_then(|c| c.ok().and_then(|r| r.clone()));
    watcher.abort();
    Probe {
        written,
        closed_after: closed.as_ref().map(|c| c.0),
        reason: closed.and_then(|c| c.1),
    }
}

/// Whether the node's goodbye says it refused a frame of `announced` bytes from its length
/// prefix (the transport's `FrameError::TooLarge`).
fn refused_at_prefix(reason: &str, announced: u32) -> bool {
    reason.contains(&format!("frame of {announced} bytes is over the"))
}

/// A raw TLS stream to the node, after the transport's acceptance.
async fn raw(
    attacker: &Attacker,
    addr: SocketAddr,
) -> Result<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> {
    let config = TransportConfig::default();
    match tokio::time::timeout(
        HANDSHAKE_WAIT,
        peergroup_transport::testing::connect_raw(addr, &attacker.creds, &attacker.trust, &config),
    )
    .await
    {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => bail!("{}: raw connection refused: {e}", attacker.label),
        Err(_) => bail!(
            "{}: raw connection not made within {HANDSHAKE_WAIT:?}",
            attacker.label
        ),
    }
}

/// Announces `announced` bytes as the connection's first frame.
async fn first_frame(attacker: &Attacker, addr: SocketAddr, announced: u32) -> Result<Probe> {
    let mut stream = raw(attacker, addr).await?;
    stream.write_all(&announced.to_be_bytes()).await?;
    let (r, w) = tokio::io::split(stream);
    Ok(push_until_closed(r, w, u64::from(announced)).await)
}

/// Becomes a neighbor over a raw stream, then announces `announced` bytes.
async fn after_hello(attacker: &Attacker, addr: SocketAddr, announced: u32) -> Result<Probe> {
    let mut stream = raw(attacker, addr).await?;
    let hello = MeshMessage::Hello {
        node: peergroup_membership::NodeId(random_u64()),
        listen: Vec::new(),
    };
    stream.write_all(&data_frame(&encode(&hello))?).await?;
    let welcomed = tokio::time::timeout(HANDSHAKE_WAIT, async {
        loop {
            match read_frame(&mut stream, DEFAULT_MAX_FRAME).await? {
                Frame::Data(d) => {
                    return match MeshMessage::decode(&d) {
                        Ok(MeshMessage::Welcome { .. }) => Ok(()),
                        Ok(other) => bail!("expected a welcome, the node sent {}", other.kind()),
                        Err(e) => bail!("the node's answer does not decode: {e}"),
                    };
                }
                Frame::Close { reason } => bail!("the node closed instead of welcoming: {reason}"),
                _ => {}
            }
        }
    })
    .await;
    match welcomed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => bail!("no welcome within {HANDSHAKE_WAIT:?}"),
    }
    stream.write_all(&announced.to_be_bytes()).await?;
    let (r, w) = tokio::io::split(stream);
    Ok(push_until_closed(r, w, u64::from(announced)).await)
}

/// A flood message whose transport frame body is exactly `limit` bytes: a record signed by
/// `attacker` with as much payload as that takes (far over the group's record size).
fn maximal_flood(attacker: &Attacker, limit: usize) -> Result<Bytes> {
    let record_type: RecordType = SEED_TYPE
        .parse()
        .map_err(|e| anyhow::anyhow!("record type: {e}"))?;
    let mut payload_len = limit.saturating_sub(1024);
    let mut rng = Rng::new();
    for _ in 0..8 {
        let record = attacker
            .records(
                record_type,
                Duration::from_secs(3600),
                "",
                [rng.bytes(payload_len)],
            )?
            .pop()
            .context("no record signed")?;
        let message = encode(&MeshMessage::Flood(record));
        let body = data_frame_len(message.len());
        if body == limit {
            return Ok(message);
        }
        payload_len = if body > limit {
            payload_len - (body - limit)
        } else {
            payload_len + (limit - body)
        };
    }
    bail!("could not size a flood to a frame of exactly {limit} bytes")
}

pub(crate) async fn run(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    let prober = ctx.attacker("frames", "Frame prober", None)?;
    let pushers: Vec<Arc<Attacker>> = (0..PUSHERS)
        .map(|i| {
            ctx.attacker(&format!("pusher{i}"), "Frame pusher", None)
                .map(Arc::new)
        })
        .collect::<Result<_>>()?;
    let limit = mesh_frame_limit(GroupProperties::DEFAULT_MAX_RECORD_SIZE);
    let addr = ctx.start_node(&[], &[])?;
    ctx.begin()?;
    let started = Instant::now();
    let mut problems = Vec::new();

    let probes: [(&str, u32, bool); 3] = [
        (
            "first frame of 16 MiB + 1",
            (DEFAULT_MAX_FRAME + 1) as u32,
            false,
        ),
        ("first frame of 4 GiB - 1", u32::MAX, false),
        (
            "frame of the group's limit + 1 after the hello",
            (limit + 1) as u32,
            true,
        ),
    ];
    for (what, announced, hello) in probes {
        let outcome = if hello {
            after_hello(&prober, addr, announced).await
        } else {
            first_frame(&prober, addr, announced).await
        };
        match outcome {
            // Refused at its prefix: the node says so, or closed before the sockets took the
            // whole frame (a frame near 1 MiB fits in loopback's socket buffers).
            Ok(Probe {
                written,
                closed_after: Some(t),
                reason,
            }) if written < u64::from(announced)
                || reason
                    .as_deref()
                    .is_some_and(|r| refused_at_prefix(r, announced)) =>
            {
                ctx.note(format!(
                    "{what} ({announced} bytes announced): closed {:.0} ms after the prefix ({}); \
                 {} KiB of the frame were written meanwhile (what the sockets absorbed)",
                    t.as_secs_f64() * 1000.0,
                    reason.unwrap_or_else(|| "no goodbye".into()),
                    written / 1024
                ))
            }
            Ok(Probe {
                written,
                closed_after: Some(_),
                ..
            }) => problems.push(format!(
                "{what}: the node took all {written} bytes before closing"
            )),
            Ok(Probe { written, .. }) => problems.push(format!(
                "{what}: the connection was still open {CLOSE_WAIT:?} later ({written} bytes \
                 written)"
            )),
            Err(e) => problems.push(format!("{what}: {e:#}")),
        }
    }

    // Four links pushing maximal frames.
    let flood = maximal_flood(&pushers[0], limit)?;
    let floods: Vec<Bytes> = std::iter::once(Ok(flood))
        .chain(pushers[1..].iter().map(|p| maximal_flood(p, limit)))
        .collect::<Result<_>>()?;
    let (stop_tx, stop_rx) = super::Stop::new();
    let sent = Arc::new(AtomicU64::new(0));
    let links = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let push_started = Instant::now();
    let tasks: Vec<_> = pushers
        .iter()
        .cloned()
        .zip(floods)
        .map(|(pusher, flood)| {
            let (stop, sent, links, received) = (
                stop_rx.clone(),
                sent.clone(),
                links.clone(),
                received.clone(),
            );
            tokio::spawn(async move {
                while !*stop.borrow() {
                    let Ok(n) = pusher.neighbor(addr).await else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    };
                    links.fetch_add(1, Ordering::Relaxed);
                    let (sender, receiver) = n.conn.split();
                    let drain = spawn_drain(receiver, stop.clone(), received.clone());
                    while !*stop.borrow() {
                        let mut s = stop.clone();
                        let ok = tokio::select! {
                            r = sender.send(flood.clone()) => r.is_ok(),
                            _ = s.wait_for(|s| *s) => false,
                        };
                        if !ok {
                            break;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    sender.close("done");
                    let _ = drain.await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    ctx.member_sync().await;
    let window = ctx.window();
    if let Some(left) = window.checked_sub(started.elapsed()) {
        tokio::time::sleep(left.max(Duration::from_secs(2))).await;
    }
    stop_tx.stop();
    join_all(tasks).await?;
    let sent = sent.load(Ordering::Relaxed);
    ctx.note(format!(
        "{PUSHERS} links pushed {sent} frames of {limit} bytes ({:.0} MiB, {:.1} MiB/s) over {} \
         connections in {:.1} s",
        sent as f64 * limit as f64 / 1048576.0,
        sent as f64 * limit as f64 / 1048576.0 / push_started.elapsed().as_secs_f64(),
        links.load(Ordering::Relaxed),
        push_started.elapsed().as_secs_f64()
    ));
    if sent == 0 {
        problems.push("no maximal frame could be pushed: the attack did not happen".into());
    }
    Ok(Verdict::new(
        problems,
        format!("3 oversized frames refused at their prefix; {sent} maximal frames pushed"),
    ))
}
