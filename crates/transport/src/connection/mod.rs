//! An authenticated connection: handles for the application, and the task that owns the
//! socket.
//!
//! The task reads and writes concurrently (a peer that writes while we write never
//! deadlocks us). Outgoing data waits in a queue bounded in frames and in bytes; incoming
//! data is delivered through a queue bounded in frames and in bytes (per connection, and
//! across an endpoint's connections), and while that queue is full the socket is not read at
//! all, so a slow consumer slows its peer through TCP flow control instead of making us
//! buffer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use peergroup_credential_roles::{Roles, ValidatedChain};
use peergroup_identity::PeerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use crate::config::{TransportConfig, clamp_frame};
use crate::error::{CloseReason, TransportError};
use crate::frame::{data_frame_len, truncate_reason};
use crate::trust::GroupTrust;

mod gauge;
mod task;

pub(crate) use gauge::ByteGauge;
use gauge::Queued;
use task::Task;

/// The authenticated member at the other end of a connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The member's identity peer name (its chain's leaf subject).
    pub peer: PeerName,
    /// The group both ends are members of.
    pub group: PeerName,
    /// The remote address.
    pub addr: SocketAddr,
    /// Our address on this connection.
    pub local_addr: SocketAddr,
    /// The member's chain, as validated during the handshake.
    pub chain: ValidatedChain,
    /// What carries the connection.
    pub transport: Transport,
    /// Our address as the other end saw it (our reflexive address: behind a NAT, the NAT's
    /// mapping), on connections we opened to a server that says it (it does in its
    /// acceptance); `None` on connections we accepted.
    pub observed_addr: Option<SocketAddr>,
}

/// What carries a connection: the same handshake, the same frames, either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TLS 1.3 over TCP.
    Tcp,
    /// QUIC (its TLS 1.3 handshake), one bidirectional stream opened by the server.
    Quic,
    /// TLS 1.3 inside a stream another member relays ([`crate::relayed`]): the address is
    /// the relay's.
    Relayed,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Quic => "quic",
            Transport::Relayed => "relayed",
        })
    }
}

impl PeerInfo {
    /// The member's roles.
    pub fn roles(&self) -> Roles {
        self.chain.roles()
    }
}

/// State shared by the handles and the task.
struct Shared {
    info: PeerInfo,
    /// Handles → task: close, with this reason.
    close_request: watch::Sender<Option<CloseReason>>,
    /// Task → handles: closed, with this reason.
    state: watch::Sender<Option<CloseReason>>,
    /// Task → handles: the task has ended (after the goodbye, or the close timeout).
    finished: watch::Sender<bool>,
    /// The group's trust, read for its frame limit ([`GroupTrust::max_frame`]).
    trust: GroupTrust,
    /// The configuration's frame limit.
    config_max_frame: usize,
    /// This connection's own frame limit ([`ConnectionSender::set_max_frame`]); 0 for none.
    own_max_frame: AtomicUsize,
    /// Bytes queued for sending.
    send_bytes: Arc<ByteGauge>,
    /// Bytes received and not read yet.
    recv_bytes: Arc<ByteGauge>,
}

impl Shared {
    fn request_close(&self, reason: CloseReason) {
        self.close_request.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(reason);
                true
            } else {
                false
            }
        });
    }

    fn close_reason(&self) -> Option<CloseReason> {
        self.state.borrow().clone()
    }

    fn closed_error(&self) -> TransportError {
        TransportError::Closed(
            self.close_reason()
                .unwrap_or_else(|| CloseReason::Io("the connection task ended".into())),
        )
    }

    async fn closed(&self) -> CloseReason {
        let mut rx = self.state.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason
                .clone()
                .unwrap_or_else(|| CloseReason::Io("closed".into())),
            Err(_) => CloseReason::Io("the connection task ended".into()),
        }
    }

    async fn finished(&self) {
        let mut rx = self.finished.subscribe();
        // An error means the sender is gone, which happens only after the task ended.
        let _ = rx.wait_for(|done| *done).await;
    }

    /// The frame limit in force: the configuration's, lowered by the group's and by the
    /// connection's own.
    fn max_frame(&self) -> usize {
        let limit = frame_limit(self.config_max_frame, &self.trust);
        match self.own_max_frame.load(Ordering::Relaxed) {
            0 => limit,
            own => clamp_frame(own.min(limit)),
        }
    }

    fn check_len(&self, data: &Bytes) -> Result<(), TransportError> {
        let max = self.max_frame();
        if data_frame_len(data.len()) > max {
            return Err(TransportError::TooLarge {
                len: data.len(),
                max: max_data_len(max),
            });
        }
        Ok(())
    }
}

/// The frame limit of a connection: the configuration's, lowered by the group's.
fn frame_limit(config_max: usize, trust: &GroupTrust) -> usize {
    clamp_frame(trust.max_frame().map_or(config_max, |m| m.min(config_max)))
}

/// The largest data that fits in one frame of at most `max_frame` bytes.
pub fn max_data_len(max_frame: usize) -> usize {
    let mut n = max_frame.saturating_sub(2);
    while n > 0 && data_frame_len(n) > max_frame {
        n -= 1;
    }
    n
}

/// Closes the connection when the last handle goes.
struct HandleGuard(Arc<Shared>);

impl Drop for HandleGuard {
    fn drop(&mut self) {
        self.0.request_close(CloseReason::Dropped);
    }
}

/// An authenticated connection to a member. Dropping it (and every half made by
/// [`Connection::split`]) closes it.
pub struct Connection {
    sender: ConnectionSender,
    receiver: ConnectionReceiver,
}

/// The sending half of a [`Connection`]; clone it to send from several tasks.
#[derive(Clone)]
pub struct ConnectionSender {
    out: mpsc::Sender<Queued>,
    shared: Arc<Shared>,
    _guard: Arc<HandleGuard>,
}

/// The receiving half of a [`Connection`].
pub struct ConnectionReceiver {
    incoming: mpsc::Receiver<Queued>,
    shared: Arc<Shared>,
    _guard: Arc<HandleGuard>,
}

impl Connection {
    /// The authenticated peer.
    pub fn peer(&self) -> &PeerInfo {
        &self.sender.shared.info
    }

    /// Queues `data` as one frame, waiting while the outgoing queue is full.
    pub async fn send(&self, data: Bytes) -> Result<(), TransportError> {
        self.sender.send(data).await
    }

    /// Queues `data` as one frame, or fails at once with [`TransportError::QueueFull`].
    pub fn try_send(&self, data: Bytes) -> Result<(), TransportError> {
        self.sender.try_send(data)
    }

    /// The next frame of data, or `None` once the connection is closed and drained.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.receiver.recv().await
    }

    /// Closes the connection: what is already queued is sent, then a goodbye with `reason`.
    pub fn close(&self, reason: &str) {
        self.sender.close(reason);
    }

    /// Waits until the connection is closed and says why. This resolves as soon as the
    /// connection stops taking data; what was queued may still be on its way out (see
    /// [`Connection::finished`]).
    pub async fn closed(&self) -> CloseReason {
        self.sender.closed().await
    }

    /// Waits until the connection is entirely done: after a [`Connection::close`], what was
    /// queued has been written and the goodbye sent (or the configured close timeout
    /// passed). A process about to exit waits for this, or its last frames may never leave.
    pub async fn finished(&self) {
        self.sender.finished().await;
    }

    /// Why the connection closed, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.sender.close_reason()
    }

    /// The largest data [`Connection::send`] accepts.
    pub fn max_data_len(&self) -> usize {
        self.sender.max_data_len()
    }

    /// The frame limit in force on this connection, both ways: the configuration's
    /// `max_frame`, lowered by the group's
    /// ([`GroupTrust::set_max_frame`](crate::GroupTrust::set_max_frame)) and by the
    /// connection's own ([`Connection::set_max_frame`]).
    pub fn max_frame(&self) -> usize {
        self.sender.max_frame()
    }

    /// Lowers this connection's frame limit further (`None` lifts its own limit; it can
    /// never go above the group's or the configuration's). It applies to every frame whose
    /// length prefix arrives after the call, and to every `send` from now on: a frame over it closes the connection with
    /// [`FrameError::TooLarge`](crate::FrameError::TooLarge) from its length prefix. Frames
    /// read before the call were held to the group's limit: when a connection must never
    /// take more from its first byte, set the group's limit instead.
    pub fn set_max_frame(&self, max: Option<usize>) {
        self.sender.set_max_frame(max);
    }

    /// Bytes of data queued for sending, not yet taken by the connection's writer.
    pub fn send_queued_bytes(&self) -> usize {
        self.sender.queued_bytes()
    }

    /// Bytes of data received and not yet read with [`Connection::recv`].
    pub fn recv_queued_bytes(&self) -> usize {
        self.receiver.queued_bytes()
    }

    /// A clonable sender and a receiver, usable from different tasks.
    pub fn split(self) -> (ConnectionSender, ConnectionReceiver) {
        (self.sender, self.receiver)
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer().peer)
            .field("addr", &self.peer().addr)
            .finish_non_exhaustive()
    }
}

impl ConnectionSender {
    /// The authenticated peer.
    pub fn peer(&self) -> &PeerInfo {
        &self.shared.info
    }

    /// Queues `data` as one frame, waiting while the outgoing queue is full (it holds
    /// `send_queue` frames, or `send_queue_bytes` bytes or more).
    pub async fn send(&self, data: Bytes) -> Result<(), TransportError> {
        self.shared.check_len(&data)?;
        if self.out.is_closed() {
            return Err(self.shared.closed_error());
        }
        let charge = tokio::select! {
            c = self.shared.send_bytes.charge_when_room(data.len()) => c,
            _ = self.shared.closed() => return Err(self.shared.closed_error()),
        };
        self.out
            .send(Queued::new(data, charge, None))
            .await
            .map_err(|_| self.shared.closed_error())
    }

    /// Queues `data` as one frame, or fails at once with [`TransportError::QueueFull`].
    pub fn try_send(&self, data: Bytes) -> Result<(), TransportError> {
        self.shared.check_len(&data)?;
        if self.out.is_closed() {
            return Err(self.shared.closed_error());
        }
        let Some(charge) = self.shared.send_bytes.try_charge(data.len()) else {
            return Err(TransportError::QueueFull);
        };
        self.out
            .try_send(Queued::new(data, charge, None))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => TransportError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => self.shared.closed_error(),
            })
    }

    /// Closes the connection (see [`Connection::close`]).
    pub fn close(&self, reason: &str) {
        self.shared
            .request_close(CloseReason::Local(truncate_reason(reason)));
    }

    /// Waits until the connection is closed and says why (see [`Connection::closed`]).
    pub async fn closed(&self) -> CloseReason {
        self.shared.closed().await
    }

    /// Waits until the connection is entirely done (see [`Connection::finished`]).
    pub async fn finished(&self) {
        self.shared.finished().await;
    }

    /// Why the connection closed, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason()
    }

    /// The largest data [`ConnectionSender::send`] accepts.
    pub fn max_data_len(&self) -> usize {
        max_data_len(self.shared.max_frame())
    }

    /// The frame limit in force (see [`Connection::max_frame`]).
    pub fn max_frame(&self) -> usize {
        self.shared.max_frame()
    }

    /// Lowers this connection's frame limit further (see [`Connection::set_max_frame`]).
    pub fn set_max_frame(&self, max: Option<usize>) {
        self.shared
            .own_max_frame
            .store(max.map_or(0, |m| m.max(1)), Ordering::Relaxed);
    }

    /// Bytes of data queued for sending, not yet taken by the connection's writer.
    pub fn queued_bytes(&self) -> usize {
        self.shared.send_bytes.queued()
    }
}

impl ConnectionReceiver {
    /// The authenticated peer.
    pub fn peer(&self) -> &PeerInfo {
        &self.shared.info
    }

    /// The next frame of data, or `None` once the connection is closed and drained.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.incoming.recv().await.map(Queued::into_data)
    }

    /// The next frame of data if one is already here (to take a burst at once).
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.incoming.try_recv().ok().map(Queued::into_data)
    }

    /// Bytes of data received and not yet read.
    pub fn queued_bytes(&self) -> usize {
        self.shared.recv_bytes.queued()
    }

    /// Waits until the connection is closed and says why.
    pub async fn closed(&self) -> CloseReason {
        self.shared.closed().await
    }
}

/// Starts the task that owns `io` (an established, authenticated TLS stream) and returns the
/// application's handle. Unread incoming data also counts towards `recv_budget` (an
/// endpoint's), when given.
pub(crate) fn spawn<S>(
    io: S,
    info: PeerInfo,
    trust: GroupTrust,
    config: &TransportConfig,
    recv_budget: Option<Arc<ByteGauge>>,
) -> Connection
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (out_tx, out_rx) = mpsc::channel(config.send_queue);
    let (in_tx, in_rx) = mpsc::channel(config.recv_queue);
    let shared = Arc::new(Shared {
        info,
        close_request: watch::Sender::new(None),
        state: watch::Sender::new(None),
        finished: watch::Sender::new(false),
        trust: trust.clone(),
        config_max_frame: config.max_frame,
        own_max_frame: AtomicUsize::new(0),
        send_bytes: ByteGauge::new(config.send_queue_bytes),
        recv_bytes: ByteGauge::new(config.recv_queue_bytes),
    });
    let guard = Arc::new(HandleGuard(shared.clone()));
    // Subscribe now, not when the task first runs: a revocation in between must not be lost.
    let trust_rx = trust.subscribe();
    let task = Task {
        shared: shared.clone(),
        trust,
        trust_rx,
        config: config.clone(),
        recv_budget,
    };
    tokio::spawn(task.run(io, out_rx, in_tx));
    Connection {
        sender: ConnectionSender {
            out: out_tx,
            shared: shared.clone(),
            _guard: guard.clone(),
        },
        receiver: ConnectionReceiver {
            incoming: in_rx,
            shared,
            _guard: guard,
        },
    }
}
