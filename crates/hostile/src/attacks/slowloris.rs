//! Attacks 4 and 5: Slow loris: idle TCP sockets held open against the node — 10,000 from
//! 127.0.0.2 (2,000 with `--short`), then 2,000 from the 200 addresses 127.0.0.2 to
//! 127.0.0.201 (bound before connecting; on Linux all of 127.0.0.0/8 is the loopback) — each
//! reopened by the attacker as soon as the node closes it.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::net::TcpSocket;
use tokio::task::JoinSet;

use super::direct::FD_GROWTH_BOUND;
use super::{Ctx, Verdict};

/// Attack connects in flight at once: below the listen backlog, so the kernel never drops
/// the honest member's SYN because of the attacker's.
const CONNECTS_IN_FLIGHT: usize = 256;
/// How often the attacker reopens what the node closed.
const REOPEN_EVERY: Duration = Duration::from_millis(500);
/// A connect taking longer counts as failed.
const CONNECT_BOUND: Duration = Duration::from_secs(5);
/// Files the suite needs besides the attack's sockets.
const FD_HEADROOM: u64 = 1024;

/// The attacker's sockets.
struct Loris {
    target: SocketAddr,
    sources: Vec<IpAddr>,
    per_source: usize,
    sockets: Vec<Option<std::net::TcpStream>>,
    connects: u64,
    reset: u64,
    failures: BTreeMap<String, u64>,
    peak_held: usize,
}

impl Loris {
    fn held(&self) -> usize {
        self.sockets.iter().filter(|s| s.is_some()).count()
    }

    /// Forgets the sockets the node closed.
    fn reap(&mut self) {
        for slot in &mut self.sockets {
            let Some(sock) = slot else { continue };
            let mut byte = [0u8; 1];
            let gone = match sock.read(&mut byte) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            };
            if gone {
                *slot = None;
            }
        }
    }

    /// Opens every empty slot.
    async fn fill(&mut self) -> Result<()> {
        let empty: Vec<usize> = (0..self.sockets.len())
            .filter(|i| self.sockets.get(*i).is_some_and(Option::is_none))
            .collect();
        for batch in empty.chunks(CONNECTS_IN_FLIGHT) {
            let mut set = JoinSet::new();
            for &i in batch {
                let (from, to) = (self.sources[i / self.per_source], self.target);
                set.spawn(async move { (i, open_idle(from, to).await) });
            }
            while let Some(done) = set.join_next().await {
                let Ok((i, result)) = done else { continue };
                self.connects += 1;
                match result {
                    Ok(sock) => self.sockets[i] = Some(sock),
                    Err(e) if e.raw_os_error() == Some(24) => bail!(
                        "the attacker ran out of file descriptors with {} sockets open",
                        self.held()
                    ),
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => self.reset += 1,
                    Err(e) => *self.failures.entry(e.to_string()).or_default() += 1,
                }
            }
        }
        self.peak_held = self.peak_held.max(self.held());
        Ok(())
    }
}

/// One idle connection from `from` to `to`, held as a plain non-blocking socket.
async fn open_idle(from: IpAddr, to: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let stream = tokio::time::timeout(CONNECT_BOUND, socket.connect(to))
        .await
        .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "connect timed out"))??;
    let std = stream.into_std()?;
    std.set_nonblocking(true)?;
    Ok(std)
}

async fn attack(ctx: &mut Ctx<'_>, sources: Vec<IpAddr>, per_source: usize) -> Result<Verdict> {
    let sockets = sources.len() * per_source;
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    if limit < sockets as u64 + FD_HEADROOM {
        bail!(
            "holding {sockets} sockets needs {} open files; RLIMIT_NOFILE allows {limit} (raise \
             the hard limit: ulimit -Hn)",
            sockets as u64 + FD_HEADROOM
        );
    }
    let addr = ctx.start_node(&[], &[])?;
    ctx.begin()?;
    let fds_before = ctx.fds_before();
    let window = ctx.window();
    let started = Instant::now();
    let mut loris = Loris {
        target: addr,
        sources: sources.clone(),
        per_source,
        sockets: (0..sockets).map(|_| None).collect(),
        connects: 0,
        reset: 0,
        failures: BTreeMap::new(),
        peak_held: 0,
    };
    loris.fill().await?;
    let opened_in = started.elapsed();
    // The member syncs while the attacker keeps reopening its sockets.
    let (stop_tx, mut stop_rx) = super::Stop::new();
    let keeper = tokio::spawn(async move {
        loop {
            loris.reap();
            if let Err(e) = loris.fill().await {
                return (loris, Some(e));
            }
            tokio::select! {
                _ = stop_rx.wait_for(|s| *s) => return (loris, None),
                () = tokio::time::sleep(REOPEN_EVERY) => {}
            }
        }
    });
    ctx.member_sync().await;
    if let Some(left) = window.checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    stop_tx.stop();
    let (mut loris, error) = match tokio::time::timeout(crate::waits::STOP_WAIT, keeper).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => bail!("the attacker's task failed: {e}"),
        Err(_) => bail!(
            "the attacker did not stop within {:?}",
            crate::waits::STOP_WAIT
        ),
    };
    loris.reap();
    let held_end = loris.held();
    drop(std::mem::take(&mut loris.sockets));
    // The node's files once the attacker's sockets are gone too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak_fds = ctx.peak_fds();
    ctx.note(format!(
        "{sockets} sockets from {} address(es): first pass in {:.1} s, {} connects ({} reset \
         by the node at once), at most {} held, {held_end} held at the end; node files \
         {fds_before} before, {peak_fds} at most (bound +{FD_GROWTH_BOUND}); failures: {:?}",
        sources.len(),
        opened_in.as_secs_f64(),
        loris.connects,
        loris.reset,
        loris.peak_held,
        loris.failures
    ));
    let mut problems = Vec::new();
    if let Some(e) = error {
        problems.push(format!("{e:#}"));
    }
    if loris.peak_held == 0 {
        problems.push("no socket could be opened: the attack did not happen".into());
    }
    if peak_fds > fds_before + FD_GROWTH_BOUND {
        problems.push(format!(
            "the node held {peak_fds} open files ({fds_before} before; bound +{FD_GROWTH_BOUND})"
        ));
    }
    Ok(Verdict::new(
        problems,
        format!("{} connects, node files <= {peak_fds}", loris.connects),
    ))
}

/// 4: idle sockets from one address.
pub(crate) async fn run_one(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    let n = if ctx.lab.short { 2_000 } else { 10_000 };
    attack(ctx, vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))], n).await
}

/// 5: 2,000 idle sockets from 200 addresses.
pub(crate) async fn run_many(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    let sources = (2..=201u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect();
    attack(ctx, sources, 10).await
}
