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
use tokio::sync::{mpsc, oneshot};

use crate::error::DirectError;
use crate::open;
use crate::table::Inner;
use crate::types::{DataType, DirectConnId, DirectConnInfo, DirectEvent};
use crate::wire;

/// The direct connections of one open group: open them, accept them, send typed data,
/// enumerate and close them. Events ([`DirectEvent`]) report what happens.
///
/// **Events** go into one bounded `mpsc` channel: [`DirectConnections::new`] makes it
/// (capacity `config.recv_queue`) and [`DirectConnections::take_events`] hands out its
/// receiver once; [`DirectConnections::with_events`] takes the owner's sender instead. An
/// `mpsc` and not a `broadcast`, because it must not drop data: a full channel stops the
/// connections from reading the network (the transport's receive queues are bounded too), so
/// the senders' [`DirectConnections::send`] waits. An owner that fans events out to several
/// subscribers reads this channel and decides there what a slow subscriber loses.
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
    /// the transport's frames are smaller). Take the events with
    /// [`DirectConnections::take_events`].
    pub fn new(
        creds: GroupCredentials,
        trust: GroupTrust,
        config: TransportConfig,
        max_data: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(config.recv_queue.max(1));
        let this = Self::with_events(creds, trust, config, max_data, tx);
        *this
            .inner
            .untaken
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(rx);
        this
    }

    /// Like [`DirectConnections::new`], with events sent to `events` (the owner chooses the
    /// capacity; a full channel holds the connections back as described above).
    pub fn with_events(
        creds: GroupCredentials,
        trust: GroupTrust,
        config: TransportConfig,
        max_data: usize,
        events: mpsc::Sender<DirectEvent>,
    ) -> Self {
        DirectConnections {
            inner: Arc::new(Inner::new(creds, trust, config, max_data, events)),
        }
    }

    /// The receiver of the events, the first time it is asked for (`None` after that, and
    /// with [`DirectConnections::with_events`]).
    pub fn take_events(&self) -> Option<mpsc::Receiver<DirectEvent>> {
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
        self.inner.max_data
    }

    /// Starts opening a direct connection to `peer`, trying `addrs` in turn, the whole
    /// attempt bounded by `timeout`, and returns its id at once (Windows'
    /// `PeerGroupOpenDirectConnection` was asynchronous too). A `Connected` or a `Failed`
    /// event with this id follows. A member that authenticates as someone other than `peer`
    /// is hung up on and counts as a failure.
    pub fn open(&self, peer: &PeerName, addrs: Vec<SocketAddr>, timeout: Duration) -> DirectConnId {
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
        let id = self.start(peer, addrs, timeout, Some(tx));
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
    ) -> DirectConnId {
        let (id, cancel) = self.inner.start_opening();
        tokio::spawn(open::run(
            self.inner.clone(),
            id,
            peer.clone(),
            addrs,
            timeout,
            cancel,
            done,
        ));
        id
    }

    /// Takes an accepted transport connection whose first data frame, `first_frame`, is a
    /// direct hello ([`is_direct_hello`](crate::is_direct_hello)): checks that it is of our
    /// group and meant for us, answers it, and reports `Connected`. On an error the
    /// connection is closed with the reason.
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
    /// still opening and a closed one are refused.
    pub async fn send(
        &self,
        id: DirectConnId,
        data_type: DataType,
        data: Bytes,
    ) -> Result<(), DirectError> {
        let (sender, max) = self.inner.sender(id)?;
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
