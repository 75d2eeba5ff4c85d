//! A group's direct connections (PeerGroupOpenDirectConnection, SendData,
//! CloseDirectConnection, EnumConnections).

use std::net::SocketAddr;

use bytes::Bytes;
use peergroup_identity::PeerName;

use super::Group;
use crate::direct::{ConnectionInfo, direct_error, direct_id, id};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{ConnectionId, DataType};
use crate::limits::OPEN_TIMEOUT;

impl Group {
    /// The present member's addresses, from its presence records.
    async fn addresses_of(&self, peer: &PeerName) -> Result<Vec<SocketAddr>> {
        self.check_open()?;
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
    /// and returns its id at once; a [`GroupEvent::DirectConnection`](crate::GroupEvent::DirectConnection) says when it is up or
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
    /// data over [`MAX_DATA`](crate::MAX_DATA), and sends nothing once the member's certificate expired
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
    pub async fn close_direct(&self, conn: ConnectionId) -> Result<()> {
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
