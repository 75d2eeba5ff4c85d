//! Why a neighbor link ended, and how a neighbor broke the protocol: typed, so the driver,
//! the simulator and applications can tell the cases apart without reading text, and each
//! maps to the [`Reason`] the neighbor is told.

use crate::message::{MessageError, Reason};

/// How a neighbor broke the mesh protocol. The link closes; no other is affected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerFault {
    /// A message that does not decode or is over a bound.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// A valid message out of place during the handshake.
    #[error("unexpected {0} during the handshake")]
    UnexpectedInHandshake(&'static str),
    /// A valid message a neighbor may not send (a hello after the handshake…).
    #[error("unexpected {0} from a neighbor")]
    Unexpected(&'static str),
    /// A flood frame larger than any record of the group can be (found by the reader before
    /// decoding).
    #[error("a flood of {len} bytes, over the {max} a record of this group takes")]
    FloodTooLarge {
        /// The frame's length.
        len: usize,
        /// The largest a flood of this group can be.
        max: usize,
    },
}

/// Why a neighbor link ended (the [`NeighborChange::Disconnected`](super::NeighborChange)
/// of an established link).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkEnd {
    /// The neighbor broke the protocol; it was told [`Reason::ProtocolError`].
    #[error("protocol error: {0}")]
    Protocol(PeerFault),
    /// The neighbor said goodbye, with its reason.
    #[error("the neighbor disconnected: {0:?}")]
    NeighborLeft(Reason),
    /// The neighbor refused the link, with its reason.
    #[error("refused: {0:?}")]
    RefusedBy(Reason),
    /// We refused the link, telling the neighbor why.
    #[error("refused: {0:?}")]
    Refused(Reason),
    /// The node is already linked to that node, or reached itself.
    #[error("duplicate connection")]
    Duplicate(Reason),
    /// The member was revoked.
    #[error("the member was revoked")]
    Revoked,
    /// Mesh maintenance dropped the least useful neighbor.
    #[error("least useful neighbor")]
    LeastUseful,
    /// The member's certificate chain expired.
    #[error("the member's certificate expired")]
    CertificateExpired,
    /// The handshake took longer than the mesh allows.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The transport connection closed (either side, or broken).
    #[error("connection closed")]
    ConnectionClosed,
    /// This node is leaving the group.
    #[error("leaving the group")]
    Leaving,
}

impl LinkEnd {
    /// What the neighbor is told as the link closes (nothing when it left, refused, or the
    /// connection is already gone).
    pub fn told(&self) -> Option<Reason> {
        match self {
            LinkEnd::Protocol(_) => Some(Reason::ProtocolError),
            LinkEnd::Refused(r) | LinkEnd::Duplicate(r) => Some(*r),
            LinkEnd::Revoked => Some(Reason::Closed),
            LinkEnd::LeastUseful => Some(Reason::LeastUseful),
            LinkEnd::Leaving => Some(Reason::Leaving),
            LinkEnd::NeighborLeft(_)
            | LinkEnd::RefusedBy(_)
            | LinkEnd::CertificateExpired
            | LinkEnd::HandshakeTimeout
            | LinkEnd::ConnectionClosed => None,
        }
    }

    /// A short name of the case, without its details (the simulator counts by it).
    pub fn label(&self) -> &'static str {
        match self {
            LinkEnd::Protocol(_) => "protocol error",
            LinkEnd::NeighborLeft(_) => "the neighbor disconnected",
            LinkEnd::RefusedBy(_) | LinkEnd::Refused(_) => "refused",
            LinkEnd::Duplicate(_) => "duplicate connection",
            LinkEnd::Revoked => "the member was revoked",
            LinkEnd::LeastUseful => "least useful neighbor",
            LinkEnd::CertificateExpired => "the member's certificate expired",
            LinkEnd::HandshakeTimeout => "handshake timed out",
            LinkEnd::ConnectionClosed => "connection closed",
            LinkEnd::Leaving => "leaving the group",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_tells_the_neighbor_it_broke_the_protocol() {
        let faults = [
            PeerFault::Message(MessageError::Empty),
            PeerFault::UnexpectedInHandshake("flood"),
            PeerFault::Unexpected("hello"),
            PeerFault::FloodTooLarge { len: 10, max: 5 },
        ];
        for f in faults {
            let end = LinkEnd::Protocol(f.clone());
            assert_eq!(end.told(), Some(Reason::ProtocolError));
            assert!(end.to_string().starts_with("protocol error: "), "{end}");
            assert!(end.to_string().ends_with(&f.to_string()));
        }
        assert_eq!(
            LinkEnd::Protocol(PeerFault::FloodTooLarge { len: 10, max: 5 }).to_string(),
            "protocol error: a flood of 10 bytes, over the 5 a record of this group takes"
        );
        assert_eq!(LinkEnd::LeastUseful.told(), Some(Reason::LeastUseful));
        assert_eq!(LinkEnd::NeighborLeft(Reason::Busy).told(), None);
        assert_eq!(
            LinkEnd::NeighborLeft(Reason::Busy).to_string(),
            "the neighbor disconnected: Busy"
        );
    }
}
