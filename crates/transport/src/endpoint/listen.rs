//! The listener: accepts every TCP connection at once, admits it to the pending-handshake
//! table (or closes it at once), and runs its handshake in a task of its own until it is
//! delivered to `accept`, refused, timed out, or evicted for a newcomer.

use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use socket2::SockRef;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::pending::{Admission, HandshakeStats, PendingTable, Stage};
use crate::config::{EVICTED_UNCLOSED_SLACK, TransportConfig};
use crate::connection::{self, Connection, PeerInfo};
use crate::error::{AuthFailure, Refusal, RefusalKind};
use crate::handshake::{self, AcceptError, Incoming};
use crate::join;

/// At most one summary of refusals and evictions is logged per this interval (each one is
/// logged at debug level), so a flood cannot flood the log.
pub(crate) const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Longest the listener waits for evicted sockets to close before it accepts again (and then
/// refuses what it accepts while they are still open).
const OPEN_ROOM_WAIT: Duration = Duration::from_secs(1);

/// An endpoint's pending handshakes: the table, and a wake-up for the listener when a socket
/// closes.
pub(crate) struct Handshakes {
    table: Mutex<PendingTable<CancellationToken>>,
    closed: Notify,
    log: Mutex<LimitLog>,
}

impl Handshakes {
    pub(crate) fn new(config: &TransportConfig) -> Self {
        Handshakes {
            table: Mutex::new(PendingTable::new(
                config.max_handshakes,
                config.max_handshakes_per_address,
                EVICTED_UNCLOSED_SLACK,
            )),
            closed: Notify::new(),
            log: Mutex::new(LimitLog::default()),
        }
    }

    pub(super) fn table(&self) -> MutexGuard<'_, PendingTable<CancellationToken>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> HandshakeStats {
        self.table().stats()
    }

    /// Waits (at most [`OPEN_ROOM_WAIT`]) until a newcomer would not be refused for the
    /// sockets still open. Those are evicted ones about to close, so this is short.
    pub(super) async fn wait_for_open_room(&self) {
        let wait = async {
            loop {
                let closed = self.closed.notified();
                tokio::pin!(closed);
                closed.as_mut().enable();
                if self.table().has_open_room() {
                    return;
                }
                closed.await;
            }
        };
        let _ = tokio::time::timeout(OPEN_ROOM_WAIT, wait).await;
    }

    pub(super) fn note(&self, refused: u64, evicted: u64) {
        let summary = self
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .note(refused, evicted, Instant::now());
        if let Some((refused, evicted, over)) = summary {
            let stats = self.stats();
            tracing::warn!(
                refused,
                evicted,
                over_secs = over.as_secs(),
                pending = stats.pending,
                "handshake limits reached: connections refused on arrival or evicted for newcomers"
            );
        }
    }
}

/// Counts refusals and evictions between summaries.
#[derive(Default)]
struct LimitLog {
    last: Option<Instant>,
    refused: u64,
    evicted: u64,
}

impl LimitLog {
    /// Counts; returns the counts to log (and since when) once per [`LIMIT_LOG_INTERVAL`].
    fn note(&mut self, refused: u64, evicted: u64, now: Instant) -> Option<(u64, u64, Duration)> {
        self.refused += refused;
        self.evicted += evicted;
        let since = self.last.map_or(LIMIT_LOG_INTERVAL, |t| now - t);
        if since < LIMIT_LOG_INTERVAL || self.refused + self.evicted == 0 {
            return None;
        }
        self.last = Some(now);
        let out = (self.refused, self.evicted, since);
        self.refused = 0;
        self.evicted = 0;
        Some(out)
    }
}

/// Removes a handshake from the table when its task ends, and counts its socket closed.
pub(super) struct PendingGuard<'a> {
    pub(super) handshakes: &'a Handshakes,
    pub(super) id: u64,
}

impl PendingGuard<'_> {
    pub(super) fn advance(&self, stage: Stage) {
        self.handshakes.table().advance(self.id, stage);
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut table = self.handshakes.table();
        table.finish(self.id);
        table.closed();
        drop(table);
        self.handshakes.closed.notify_waiters();
    }
}

pub(super) async fn listen(
    listener: TcpListener,
    shared: Arc<Shared>,
    incoming: mpsc::Sender<Connection>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = shared.handshakes.wait_for_open_room() => {}
        }
        // Never waits on handshakes: over a bound, someone gives way or the newcomer is
        // closed at once.
        let (tcp, addr) = tokio::select! {
            () = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep listening.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Until it sends a byte, closing it is abortive (a reset: no state left behind).
        let _ = SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
        let accepted_at = Instant::now();
        // A client's first bytes are usually in by the time we accept (more so when the
        // listener is behind, as in a flood): such a socket is admitted as talking, so
        // silent newcomers never displace it.
        let talking = has_bytes(&tcp);
        let token = shutdown.child_token();
        let admission = shared
            .handshakes
            .table()
            .admit(addr.ip(), talking, token.clone());
        let id = match admission {
            Admission::Refused(why) => {
                drop(tcp);
                tracing::debug!(peer = %addr, ?why, "connection refused: over the handshake limits");
                shared.handshakes.note(1, 0);
                continue;
            }
            Admission::Admitted { id, evicted } => {
                if !evicted.is_empty() {
                    tracing::debug!(peer = %addr, evicted = evicted.len(), "pending handshakes evicted for a newcomer");
                    for victim in &evicted {
                        victim.cancel();
                    }
                    shared.handshakes.note(0, evicted.len() as u64);
                }
                id
            }
        };
        let shared = shared.clone();
        let incoming = incoming.clone();
        tokio::spawn(async move {
            let guard = PendingGuard {
                handshakes: &shared.handshakes,
                id,
            };
            tokio::select! {
                () = token.cancelled() => {}
                () = serve(tcp, addr, accepted_at, &shared, &incoming, &guard) => {}
            }
            // The socket is closed (dropped with `serve`) before the guard says so.
        });
    }
}

/// Whether bytes from the peer are waiting on `tcp` (without waiting, without taking them).
fn has_bytes(tcp: &TcpStream) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit()];
    // The socket is non-blocking: nothing there is `WouldBlock`.
    matches!(SockRef::from(tcp).peek(&mut byte), Ok(n) if n > 0)
}

/// One incoming connection: first byte, handshake, then delivery to `accept` or a refusal
/// event.
async fn serve(
    tcp: TcpStream,
    addr: SocketAddr,
    accepted_at: Instant,
    shared: &Shared,
    incoming: &mpsc::Sender<Connection>,
    guard: &PendingGuard<'_>,
) {
    let config = &shared.config;
    let _ = tcp.set_nodelay(true);
    let deadline = accepted_at + config.handshake_timeout;
    let first_byte = accepted_at + config.first_byte_timeout;
    let mut byte = [0u8; 1];
    match tokio::time::timeout_at(first_byte.min(deadline), tcp.peek(&mut byte)).await {
        Err(_) => {
            shared.handshakes.table().note_silent_timeout();
            report(
                shared,
                addr,
                Refusal::new(
                    RefusalKind::HandshakeTimeout,
                    format!("sent nothing within {:?}", config.first_byte_timeout),
                ),
                None,
                true,
            );
            return;
        }
        Ok(Ok(n)) if n > 0 => {
            guard.advance(Stage::Talking);
            // It talks: from now on a close is an orderly one.
            let _ = SockRef::from(&tcp).set_linger(None);
        }
        // The end of the stream or an error: the handshake reports it.
        Ok(_) => {}
    }
    let lookup = |sni: &str| {
        let found = shared.lookup(sni);
        if found.is_some() {
            guard.advance(Stage::Hello);
        }
        found
    };
    // A member authenticated is not evicted (its acceptance may already be on its way).
    let authenticated = || guard.advance(Stage::Done);
    match handshake::accept(tcp, deadline, lookup, authenticated, config).await {
        Ok(Incoming::Join(joining)) => {
            // Handled here, never delivered through `accept`; pending until it ends.
            join::server::run(joining, addr, config, &shared.auth_failures).await;
        }
        Ok(Incoming::Member(accepted)) => {
            let info = PeerInfo {
                peer: accepted.chain.peer().clone(),
                group: accepted.group.group.clone(),
                addr,
                local_addr: accepted.local_addr,
                chain: accepted.chain,
                transport: crate::connection::Transport::Tcp,
                observed_addr: None,
            };
            tracing::debug!(peer = %info.peer, %addr, group = %info.group, "accepted");
            let conn = connection::spawn(
                accepted.tls,
                info,
                accepted.group.trust.clone(),
                config,
                Some(shared.recv_budget.clone()),
            );
            // If the endpoint is gone the connection is dropped, which closes it.
            let _ = incoming.send(conn).await;
        }
        Err(AcceptError::Refused { reason, group }) => {
            report(shared, addr, reason, group, false);
        }
        Err(AcceptError::PeerRefused { group, alert }) => {
            tracing::info!(peer = %addr, %group, %alert, "the client refused our credentials");
        }
    }
}

/// Logs a refusal and sends it to the endpoint's subscribers (a silent connection is logged
/// at debug level: a slow-loris flood must not flood the log).
pub(super) fn report(
    shared: &Shared,
    addr: SocketAddr,
    reason: Refusal,
    group: Option<peergroup_identity::PeerName>,
    quiet: bool,
) {
    match (&group, quiet) {
        (_, true) => tracing::debug!(peer = %addr, %reason, "refused connection"),
        (Some(g), false) => tracing::warn!(peer = %addr, group = %g, %reason, "refused connection"),
        (None, false) => tracing::warn!(peer = %addr, %reason, "refused connection"),
    }
    let _ = shared.auth_failures.send(AuthFailure {
        addr,
        group,
        peer: None,
        reason,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_log_summarises_once_per_interval() {
        let mut log = LimitLog::default();
        let t0 = Instant::now();
        assert_eq!(log.note(1, 0, t0), Some((1, 0, LIMIT_LOG_INTERVAL)));
        assert_eq!(log.note(5, 2, t0 + Duration::from_secs(1)), None);
        assert_eq!(log.note(1, 1, t0 + Duration::from_secs(3)), None);
        assert_eq!(
            log.note(0, 0, t0 + LIMIT_LOG_INTERVAL),
            Some((6, 3, LIMIT_LOG_INTERVAL))
        );
        assert_eq!(log.note(0, 0, t0 + 3 * LIMIT_LOG_INTERVAL), None);
    }
}
