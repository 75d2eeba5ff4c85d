//! Direct connections of a group (PeerGroupOpenDirectConnection, SendData,
//! CloseDirectConnection, EnumConnections).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::events::hub::Hub;
use crate::events::{ConnectionChange, ConnectionId, DataType, GroupEvent};
use crate::group::Group;
use bytes::Bytes;
use peergroup_direct_conn::{DirectConnId, DirectConnections, DirectError, DirectEvent};
use peergroup_identity::PeerName;
use peergroup_transport::{Connection, GroupCredentials, GroupTrust, TransportConfig};

/// Largest data one `send_data` carries (the transport frames it whole).
pub const MAX_DATA: usize = 4 * 1024 * 1024;
/// The transport frame that carries [`MAX_DATA`] on a direct connection: the group's
/// connections take frames this large before they are told apart (a mesh connection is then
/// held to the mesh's own, smaller limit).
pub(crate) const FRAME_LIMIT: usize = peergroup_transport::frame::data_frame_len(
    MAX_DATA + peergroup_direct_conn::wire::DATA_OVERHEAD,
);
/// Time allowed to open a direct connection.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection as listed by [`Group::connections`] (PEER_CONNECTION_INFO).
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
    manager: Arc<DirectConnections>,
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

fn id(d: DirectConnId) -> ConnectionId {
    ConnectionId(d.0 | DIRECT_BIT)
}

fn direct_id(c: ConnectionId) -> DirectConnId {
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

fn direct_error(e: DirectError) -> Error {
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

impl Group {
    /// The present member's addresses, from its presence records.
    async fn addresses_of(&self, peer: &PeerName) -> Result<Vec<SocketAddr>> {
        if !self.is_connected() {
            return Err(Error::new(
                ErrorKind::GroupNotReady,
                "connect the group before opening direct connections",
            ));
        }
        let members = self.members(true).await?;
        let addrs: Vec<SocketAddr> = members
            .iter()
            .filter(|m| &m.peer == peer && !m.local)
            .flat_map(|m| m.nodes.iter().flat_map(|(_, a)| a.iter().copied()))
            .collect();
        if addrs.is_empty() {
            return Err(Error::new(
                ErrorKind::ConnectionFailed,
                format!("{peer} is not present (no address known)"),
            ));
        }
        Ok(addrs)
    }

    /// Starts opening a direct connection to a present member (PeerGroupOpenDirectConnection)
    /// and returns its id at once; a [`GroupEvent::DirectConnection`] says when it is up or
    /// why it failed (bounded by a timeout). Refused at once ([`ErrorKind::InvalidArgument`])
    /// with [`peergroup_direct_conn::DEFAULT_MAX_PER_MEMBER`] (8) direct connections to or
    /// from that member already open or opening, or
    /// [`peergroup_direct_conn::DEFAULT_MAX_CONNECTIONS`] (256) in all; a member that opens
    /// more to us is refused with the reason. A connection closes when the member's
    /// certificate expires (its `Disconnected` says so).
    pub async fn open_direct(&self, peer: &PeerName) -> Result<ConnectionId> {
        let addrs = self.addresses_of(peer).await?;
        self.inner
            .direct
            .manager
            .open(peer, addrs, OPEN_TIMEOUT)
            .map(id)
            .map_err(direct_error)
    }

    /// Opens a direct connection and waits until it is up (or failed).
    pub async fn open_direct_wait(&self, peer: &PeerName) -> Result<ConnectionId> {
        let addrs = self.addresses_of(peer).await?;
        self.inner
            .direct
            .manager
            .open_wait(peer, addrs, OPEN_TIMEOUT)
            .await
            .map(id)
            .map_err(direct_error)
    }

    /// Sends typed data on a direct connection (PeerGroupSendData). Waits while the peer reads
    /// slower than we send (down to the peer's event streams: see [`Group::events`]); refuses
    /// data over [`MAX_DATA`], and sends nothing once the member's certificate expired
    /// ([`ErrorKind::Closed`]).
    pub async fn send_data(
        &self,
        conn: ConnectionId,
        data_type: DataType,
        data: Bytes,
    ) -> Result<()> {
        self.inner
            .direct
            .manager
            .send(direct_id(conn), data_type, data)
            .await
            .map_err(direct_error)
    }

    /// Closes a direct connection (PeerGroupCloseDirectConnection).
    pub fn close_direct(&self, conn: ConnectionId) -> Result<()> {
        self.inner
            .direct
            .manager
            .close(direct_id(conn))
            .map_err(direct_error)
    }

    /// The direct connections, both directions.
    pub fn direct_connections(&self) -> Vec<ConnectionInfo> {
        self.inner
            .direct
            .manager
            .connections()
            .into_iter()
            .map(|c| ConnectionInfo {
                id: id(c.id),
                peer: c.peer,
                addr: c.addr,
                direct: true,
            })
            .collect()
    }

    /// Every connection: the mesh's neighbors, then the direct ones (PeerGroupEnumConnections).
    pub async fn connections(&self) -> Result<Vec<ConnectionInfo>> {
        let mut all = self.neighbor_connections().await?;
        all.extend(self.direct_connections());
        Ok(all)
    }
}
