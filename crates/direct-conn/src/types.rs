//! The values the API hands out: data types, connection ids, connection info, events.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use bytes::Bytes;
use peergroup_identity::PeerName;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The application's type of a piece of direct-connection data: a GUID, as in Windows'
/// `PeerGroupSendData(…, const GUID* pType, …)`. Receivers filter incoming data by it.
///
/// Its text form is the braced GUID, `{f12dc4c7-0857-4ca0-93fc-b1bb19a3d8c2}`, like record
/// types; parsing also takes it without braces.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DataType(pub Uuid);

impl fmt::Debug for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataType({{{}}})", self.0)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.0)
    }
}

impl FromStr for DataType {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, uuid::Error> {
        let inner = s
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(s);
        Uuid::parse_str(inner).map(DataType)
    }
}

impl From<Uuid> for DataType {
    fn from(u: Uuid) -> Self {
        DataType(u)
    }
}

/// The number of a direct connection, unique within one
/// [`DirectConnections`](crate::DirectConnections) (the first is 1; numbers are never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DirectConnId(pub u64);

impl fmt::Display for DirectConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An established direct connection (Windows' `PEER_CONNECTION_INFO` with the `DIRECT` flag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectConnInfo {
    /// Its number.
    pub id: DirectConnId,
    /// The member at the other end, as authenticated by its certificate chain.
    pub peer: PeerName,
    /// The member's address.
    pub addr: SocketAddr,
    /// Whether we opened it (`false`: the member opened it to us).
    pub outbound: bool,
}

/// What happened on the direct connections of a group.
///
/// For each connection the order is fixed: an [`DirectConnections::open`] id gets exactly one
/// `Connected` or `Failed`; an established connection (opened or accepted) gets `Connected`,
/// then its `Data`, then exactly one `Disconnected`.
///
/// [`DirectConnections::open`]: crate::DirectConnections::open
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectEvent {
    /// A connection is established, on the side that opened it and on the side that accepted
    /// it (`PEER_GROUP_EVENT_DIRECT_CONNECTION`, `PEER_CONNECTED`).
    Connected {
        /// Its number.
        id: DirectConnId,
        /// The authenticated member at the other end.
        peer: PeerName,
        /// The member's address.
        addr: SocketAddr,
    },
    /// Opening failed (`PEER_CONNECTION_FAILED`).
    Failed {
        /// The number [`DirectConnections::open`](crate::DirectConnections::open) returned.
        id: DirectConnId,
        /// The member asked for.
        peer: Option<PeerName>,
        /// The addresses tried.
        addrs: Vec<SocketAddr>,
        /// Why, address by address.
        reason: String,
    },
    /// A connection went away: closed by either side, the peer gone or revoked, or a
    /// protocol violation (`PEER_DISCONNECTED`).
    Disconnected {
        /// Its number.
        id: DirectConnId,
        /// The member at the other end.
        peer: PeerName,
        /// Why.
        reason: String,
    },
    /// Data arrived (`PEER_GROUP_EVENT_INCOMING_DATA`).
    Data {
        /// The connection it came on.
        id: DirectConnId,
        /// The sender.
        peer: PeerName,
        /// The application's data type.
        data_type: DataType,
        /// The bytes.
        data: Bytes,
    },
}

impl DirectEvent {
    /// The connection the event is about.
    pub fn id(&self) -> DirectConnId {
        match self {
            DirectEvent::Connected { id, .. }
            | DirectEvent::Failed { id, .. }
            | DirectEvent::Disconnected { id, .. }
            | DirectEvent::Data { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_type_text_forms() {
        let text = "{f12dc4c7-0857-4ca0-93fc-b1bb19a3d8c2}";
        let t: DataType = text.parse().unwrap();
        assert_eq!(t.to_string(), text);
        assert_eq!(
            "f12dc4c7-0857-4ca0-93fc-b1bb19a3d8c2"
                .parse::<DataType>()
                .unwrap(),
            t
        );
        assert!(
            "{f12dc4c7-0857-4ca0-93fc-b1bb19a3d8c2"
                .parse::<DataType>()
                .is_err()
        );
        assert!("{nope}".parse::<DataType>().is_err());
        assert_eq!(format!("{t:?}"), format!("DataType({text})"));
    }
}
