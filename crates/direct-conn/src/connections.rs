//! [`DirectConnections`]: the direct connections of one open group.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use peergroup_identity::PeerName;
use peergroup_transport::{
    Connection, GroupCredentials, GroupTrust, TransportConfig, TransportError,
};
use tokio::sync::oneshot;

use crate::error::DirectError;
use crate::events::{self, EventReceiver};
use crate::limits::DirectLimits;
use crate::table::{Inner, SendTo};
use crate::types::{DataType, DirectConnId, DirectConnInfo};
use crate::{open, session, wire};

/// The direct connections of one open group: open them, accept them, send typed data,
/// enumerate and close them. Events ([`DirectEvent`](crate::DirectEvent)) report what happens.
///
/// **Events** go into one queue bounded in events and in bytes
/// ([`DirectLimits::event_queue_len`], [`DirectLimits::event_queue_bytes`]), read through the
/// [`EventReceiver`] that [`DirectConnections::take_events`] hands out once. It never drops
/// data: a full queue stops the connections from reading the network (the transport's
/// receive queues are bounded too), so the senders' [`DirectConnections::send`] waits. An
/// owner that fans events out to several subscribers reads this queue and decides there what
/// a slow subscriber costs.
///
/// **Bounds** ([`DirectLimits`]): at most `max_per_member` connections with one member and
/// `max_connections` in all, established or opening, both directions. Opening one more is
/// refused at once ([`DirectError::TooManyConnections`], the caller's fault); one a member
/// opens over them is refused with a goodbye saying why
/// ([`DirectConnections::accept`] returns the same error, the peer's fault).
///
/// **Rights end on time**: a connection ends when its member's certificate chain expires
/// (its earliest `not_after`, on the group trust's clock); nothing it sends is delivered after,
/// and [`DirectConnections::send`] refuses with [`DirectError::Expired`]. Its `Disconnected`
/// event says "the member's certificate expired".
///
/// Every method must be called inside a Tokio runtime (opening and accepting spawn tasks).
/// Dropping this closes every connection, cancels the openings in progress and refuses new
/// ones.
pub struct DirectConnections {
    inner: Arc<Inner>,
}

impl DirectConnections {
    /// Direct connections for the group of `creds`, authenticating peers with `trust`,
    /// connecting with `config`, and taking data of at most `max_data` bytes each way (less if
    /// the transport's frames are smaller), with the default bounds
    /// ([`DirectLimits::new`]). Take the events with [`DirectConnections::take_events`].
    pub fn new(
        creds: GroupCredentials,
        trust: GroupTrust,
        config: TransportConfig,
        max_data: usize,
    ) -> Self {
        Self::with_limits(creds, trust, config, &DirectLimits::new(max_data))
    }

    /// Like [`DirectConnections::new`], with these bounds.
    pub fn with_limits(
        creds: GroupCredentials,
        trust: GroupTrust,
        config: TransportConfig,
        limits: &DirectLimits,
    ) -> Self {
        let limits = limits.normalized();
        let (tx, rx) = events::channel(limits.event_queue_len, limits.event_queue_bytes);
        let inner = Arc::new(Inner::new(creds, trust, config, &limits, tx));
        *inner.untaken.lock().unwrap_or_else(PoisonError::into_inner) = Some(rx);
        DirectConnections { inner }
    }

    /// The receiver of the events, the first time it is asked for (`None` after that).
    pub fn take_events(&self) -> Option<EventReceiver> {
        self.inner
            .untaken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Our own peer name in the group.
    pub fn local_peer(&self) -> &PeerName {
        self.inner.local_peer()
    }

    /// The data limit given to [`DirectConnections::new`].
    pub fn max_data(&self) -> usize {
        self.inner.limits.max_data
    }

    /// The bounds in force (every one at least 1).
    pub fn limits(&self) -> &DirectLimits {
        &self.inner.limits
    }

    /// Connections counted against the bounds now: established, opening (ours and accepted
    /// ones being answered) and closing on a certificate's expiry.
    pub fn counted(&self) -> usize {
        self.inner.counted()
    }

    /// Starts opening a direct connection to `peer`, trying `addrs` in turn, the whole
    /// attempt bounded by `timeout`, and returns its id at once (Windows'
    /// `PeerGroupOpenDirectConnection` was asynchronous too). A `Connected` or a `Failed`
    /// event with this id follows. A member that authenticates as someone other than `peer`
    /// is hung up on and counts as a failure. Refused at once, without an event, over the
    /// bounds ([`DirectError::TooManyConnections`]) and after shutdown.
    pub fn open(
        &self,
        peer: &PeerName,
        addrs: Vec<SocketAddr>,
        timeout: Duration,
    ) -> Result<DirectConnId, DirectError> {
        self.start(peer, addrs, timeout, None)
    }

    /// Opens a direct connection and waits for the outcome (the events are sent as with
    /// [`DirectConnections::open`]). Dropping the future does not stop the attempt (its
    /// events still come); to give up early, use `open` and then `close` its id.
    pub async fn open_wait(
        &self,
        peer: &PeerName,
        addrs: Vec<SocketAddr>,
        timeout: Duration,
    ) -> Result<DirectConnId, DirectError> {
        let (tx, rx) = oneshot::channel();
        let id = self.start(peer, addrs, timeout, Some(tx))?;
        match rx.await {
            Ok(result) => result.map(|()| id),
            Err(_) => Err(DirectError::Cancelled { id }),
        }
    }

    fn start(
        &self,
        peer: &PeerName,
        addrs: Vec<SocketAddr>,
        timeout: Duration,
        done: Option<oneshot::Sender<Result<(), DirectError>>>,
    ) -> Result<DirectConnId, DirectError> {
        let (id, cancel) = self.inner.start_opening(peer)?;
        tokio::spawn(open::run(
            self.inner.clone(),
            id,
            peer.clone(),
            addrs,
            timeout,
            cancel,
            done,
        ));
        Ok(id)
    }

    /// Takes an accepted transport connection whose first data frame, `first_frame`, is a
    /// direct hello ([`is_direct_hello`](crate::is_direct_hello)): checks that it is of our
    /// group and meant for us and that the bounds leave room, answers it, and reports
    /// `Connected`. On an error the connection is closed with the reason as the goodbye.
    pub fn accept(
        &self,
        conn: Connection,
        first_frame: &[u8],
    ) -> Result<DirectConnId, DirectError> {
        open::accept(&self.inner, conn, first_frame)
    }

    /// Sends `data` of `data_type` on connection `id`, waiting while its outgoing queue is
    /// full (a peer that does not read slows its sender down; it never buffers for it).
    /// Data over the connection's limit ([`DirectError::TooLarge`]), an unknown id, one
    /// still opening, a closed one and one whose member's certificate expired
    /// ([`DirectError::Expired`]) are refused.
    pub async fn send(
        &self,
        id: DirectConnId,
        data_type: DataType,
        data: Bytes,
    ) -> Result<(), DirectError> {
        let SendTo {
            sender,
            max_send: max,
            expires,
        } = self.inner.sender(id)?;
        if session::has_expired(&self.inner.trust, expires) {
            return Err(DirectError::Expired { id });
        }
        if data.len() > max {
            return Err(DirectError::TooLarge {
                len: data.len(),
                max,
            });
        }
        let frame = wire::encode_data(data_type, &data);
        sender.send(frame).await.map_err(|e| match e {
            TransportError::Closed(reason) => DirectError::Closed {
                id,
                reason: reason.to_string(),
            },
            TransportError::TooLarge { .. } => DirectError::TooLarge {
                len: data.len(),
                max,
            },
            other => DirectError::Closed {
                id,
                reason: other.to_string(),
            },
        })
    }

    /// Closes connection `id` (what was sent goes out first; the peer gets `Disconnected`,
    /// and so do we), or cancels it while it is opening (a `Failed` event follows).
    pub fn close(&self, id: DirectConnId) -> Result<(), DirectError> {
        self.inner.close(id)
    }

    /// The established connections, both directions, by id.
    pub fn connections(&self) -> Vec<DirectConnInfo> {
        self.inner.connections()
    }

    /// Closes every connection and cancels every opening (new ones may follow).
    pub fn close_all(&self) {
        self.inner.close_all(false);
    }
}

impl Drop for DirectConnections {
    fn drop(&mut self) {
        self.inner.close_all(true);
        // Nobody will read an untaken receiver: let the tasks' sends fail instead of wait.
        drop(self.take_events());
    }
}

impl fmt::Debug for DirectConnections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectConnections")
            .field("group", &self.inner.creds.group)
            .field("peer", self.local_peer())
            .field("connections", &self.connections().len())
            .finish_non_exhaustive()
    }
}
