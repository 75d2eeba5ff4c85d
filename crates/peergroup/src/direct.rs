//! A group's direct connections, below the API (which is in `group/direct.rs`): the
//! connection manager, its events turned into group events, ids and errors mapped.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::{Error, ErrorKind};
use crate::events::hub::Hub;
use crate::events::{ConnectionChange, ConnectionId, GroupEvent};
use crate::limits::MAX_DATA;
use bytes::Bytes;
use peergroup_direct_conn::{DirectConnId, DirectConnections, DirectError, DirectEvent};
use peergroup_identity::PeerName;
use peergroup_transport::{Connection, GroupCredentials, GroupTrust, TransportConfig};

/// A connection as listed by [`Group::connections`](crate::Group::connections) (PEER_CONNECTION_INFO).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The connection.
    pub id: ConnectionId,
    /// The member at the other end.
    pub peer: PeerName,
    /// Its address.
    pub addr: SocketAddr,
    /// A direct connection (true) or a neighbor of the mesh (false).
    pub direct: bool,
}

/// The group's direct connections and the task that turns their events into group events
/// (see [`Hub::deliver_direct`] for how their backpressure reaches the members sending).
pub(crate) struct Direct {
    pub(crate) manager: Arc<DirectConnections>,
}

impl Direct {
    pub(crate) fn new(
        creds: GroupCredentials,
        trust: GroupTrust,
        config: TransportConfig,
        events: Arc<Hub>,
    ) -> Self {
        let manager = Arc::new(DirectConnections::new(creds, trust, config, MAX_DATA));
        if let Some(mut rx) = manager.take_events() {
            // One event at a time, to every stream that wants it, waiting for room: while a
            // stream's queue is full, the direct connections' own queue fills, they stop
            // reading, and the members sending to us wait.
            tokio::spawn(async move {
                while let Some(e) = rx.recv().await {
                    events.deliver_direct(map(e)).await;
                }
            });
        }
        Direct { manager }
    }

    pub(crate) fn accept(&self, conn: Connection, first: Bytes) {
        if let Err(e) = self.manager.accept(conn, &first) {
            tracing::warn!(error = %e, "refused a direct connection");
        }
    }

    pub(crate) fn close_all(&self) {
        self.manager.close_all();
    }
}

/// A group dropped without `close` ends its direct connections too.
impl Drop for Direct {
    fn drop(&mut self) {
        self.manager.close_all();
    }
}

/// Direct connection ids carry this bit, so they never equal a neighbor connection's.
const DIRECT_BIT: u64 = 1 << 62;

pub(crate) fn id(d: DirectConnId) -> ConnectionId {
    ConnectionId(d.0 | DIRECT_BIT)
}

pub(crate) fn direct_id(c: ConnectionId) -> DirectConnId {
    DirectConnId(c.0 & !DIRECT_BIT)
}

fn map(e: DirectEvent) -> GroupEvent {
    match e {
        DirectEvent::Connected { id: i, peer, addr } => GroupEvent::DirectConnection {
            id: id(i),
            peer: Some(peer),
            addr: Some(addr),
            change: ConnectionChange::Connected,
        },
        DirectEvent::Failed {
            id: i,
            peer,
            addrs,
            reason,
        } => GroupEvent::DirectConnection {
            id: id(i),
            peer,
            addr: addrs.first().copied(),
            change: ConnectionChange::Failed(reason),
        },
        DirectEvent::Disconnected {
            id: i,
            peer,
            reason,
        } => GroupEvent::DirectConnection {
            id: id(i),
            peer: Some(peer),
            addr: None,
            change: ConnectionChange::Disconnected(reason),
        },
        DirectEvent::Data {
            id: i,
            peer,
            data_type,
            data,
        } => GroupEvent::IncomingData {
            id: id(i),
            peer,
            data_type,
            data,
        },
    }
}

pub(crate) fn direct_error(e: DirectError) -> Error {
    let kind = match &e {
        DirectError::Closed { .. }
        | DirectError::Cancelled { .. }
        | DirectError::Expired { .. } => ErrorKind::Closed,
        DirectError::TooLarge { .. }
        | DirectError::UnknownConnection { .. }
        | DirectError::StillOpening(_)
        | DirectError::TooManyConnections { inbound: false, .. } => ErrorKind::InvalidArgument,
        _ => ErrorKind::ConnectionFailed,
    };
    Error::with_source(kind, e.to_string(), e)
}
