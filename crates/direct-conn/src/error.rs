//! Errors, split by who is at fault.

use std::net::SocketAddr;
use std::time::Duration;

use peergroup_identity::PeerName;
use peergroup_transport::ConnectError;

use crate::types::DirectConnId;
use crate::wire::ProtocolError;

/// Who is at fault for a [`DirectError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The caller: an unknown id, data too large, no address, the wrong group.
    Caller,
    /// The peer: it broke the protocol, refused, or is not who was asked for.
    Peer,
    /// The network or the transport: connecting failed or timed out.
    Transport,
    /// The connection is closed (or its opening was cancelled).
    Closed,
}

/// Which bound on direct connections was reached (see [`DirectLimits`](crate::DirectLimits)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionCap {
    /// Connections with one member (`DirectLimits::max_per_member`).
    PerMember,
    /// Connections in all (`DirectLimits::max_connections`).
    Total,
}

fn too_many_text(cap: &ConnectionCap, peer: &PeerName, limit: &usize, inbound: &bool) -> String {
    let bound = match cap {
        ConnectionCap::PerMember => {
            format!("too many direct connections with {peer}: at most {limit} per member")
        }
        ConnectionCap::Total => format!("too many direct connections: at most {limit} in all"),
    };
    if *inbound {
        format!("{bound}, opening ones included; refused the one {peer} opened")
    } else {
        format!("{bound}, opening ones included")
    }
}

/// Why a direct-connection operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectError {
    /// No such connection was ever opened here (a caller's mistake).
    #[error("no direct connection {0}")]
    UnknownConnection(DirectConnId),
    /// The connection is still being opened; wait for its `Connected` event (a caller's
    /// mistake).
    #[error("direct connection {0} is still opening")]
    StillOpening(DirectConnId),
    /// The data is larger than the connection accepts (a caller's mistake).
    #[error("{len} bytes of data exceed the direct-connection limit of {max}")]
    TooLarge {
        /// The data's length.
        len: usize,
        /// The largest data the connection takes.
        max: usize,
    },
    /// No address to try (the member is not present, or published no address).
    #[error("no address to reach {peer}")]
    NoAddress {
        /// The member asked for.
        peer: PeerName,
    },
    /// A connection of another group was handed to [`accept`](crate::DirectConnections::accept)
    /// (the router's mistake).
    #[error("the connection belongs to group {found}, not {expected}")]
    WrongGroup {
        /// Our group.
        expected: PeerName,
        /// The connection's group.
        found: PeerName,
    },
    /// The member at the address is another member than the one asked for (a stale
    /// address, or an opener that reached the wrong member). The connection was closed.
    #[error("the member that answered is {found}, not {expected}")]
    WrongPeer {
        /// The member asked for.
        expected: PeerName,
        /// The member that authenticated.
        found: PeerName,
    },
    /// The peer broke the direct-connection protocol. The connection was closed.
    #[error("{peer} broke the direct-connection protocol: {error}")]
    Protocol {
        /// The peer.
        peer: PeerName,
        /// What it did.
        error: ProtocolError,
    },
    /// The peer authenticated, then closed instead of accepting the direct connection.
    #[error("{peer} at {addr} refused the direct connection: {reason}")]
    Refused {
        /// The peer.
        peer: PeerName,
        /// Its address.
        addr: SocketAddr,
        /// Why (its goodbye, or how the connection ended).
        reason: String,
    },
    /// The transport could not connect (refused, unreachable, timed out, not authenticated).
    #[error("connecting to {addr} failed: {source}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// The transport's reason.
        #[source]
        source: Box<ConnectError>,
    },
    /// The whole attempt to open took longer than allowed.
    #[error("no direct connection to {peer} within {after:?}")]
    Timeout {
        /// The member asked for.
        peer: PeerName,
        /// The bound.
        after: Duration,
    },
    /// The connection is closed.
    #[error("direct connection {id} is closed: {reason}")]
    Closed {
        /// The connection.
        id: DirectConnId,
        /// Why, when known.
        reason: String,
    },
    /// A bound on direct connections (established and opening, both directions) was
    /// reached. Opening one more ourselves is the caller's mistake (close one first); one the
    /// member opened is refused with this reason as the goodbye, the member's fault.
    #[error("{}", too_many_text(.cap, .peer, .limit, .inbound))]
    TooManyConnections {
        /// The member at the other end.
        peer: PeerName,
        /// Which bound.
        cap: ConnectionCap,
        /// Its value.
        limit: usize,
        /// The member opened it (`false`: we tried to).
        inbound: bool,
    },
    /// The member's certificate chain expired: its connection was closed at the expiry, and
    /// nothing is sent or delivered on it after.
    #[error("direct connection {id} is closed: {}", crate::session::EXPIRED)]
    Expired {
        /// The connection.
        id: DirectConnId,
    },
    /// Opening was cancelled by [`close`](crate::DirectConnections::close),
    /// [`close_all`](crate::DirectConnections::close_all) or dropping the
    /// [`DirectConnections`](crate::DirectConnections).
    #[error("opening direct connection {id} was cancelled")]
    Cancelled {
        /// The connection.
        id: DirectConnId,
    },
}

impl DirectError {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            DirectError::UnknownConnection(_)
            | DirectError::StillOpening(_)
            | DirectError::TooLarge { .. }
            | DirectError::NoAddress { .. }
            | DirectError::WrongGroup { .. } => Fault::Caller,
            DirectError::WrongPeer { .. }
            | DirectError::Protocol { .. }
            | DirectError::Refused { .. } => Fault::Peer,
            DirectError::TooManyConnections { inbound, .. } => {
                if *inbound {
                    Fault::Peer
                } else {
                    Fault::Caller
                }
            }
            DirectError::Connect { .. } | DirectError::Timeout { .. } => Fault::Transport,
            DirectError::Closed { .. }
            | DirectError::Cancelled { .. }
            | DirectError::Expired { .. } => Fault::Closed,
        }
    }
}
