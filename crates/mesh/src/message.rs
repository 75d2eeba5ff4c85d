//! What neighbors say to each other: one version byte, then a postcard [`MeshMessage`].

use std::net::SocketAddr;

use peergroup_identity::{PeerName, Timestamp};
use peergroup_record_db::Record;
use peergroup_record_db::sync::SyncMessage;
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
pub const MESH_PROTOCOL_VERSION: u8 = 1;
/// Most addresses in one message (referrals, listen addresses).
pub const MAX_ADDRESSES: usize = 32;
/// Most keys in one `IHave` or `Graft`.
pub const MAX_KEYS: usize = 4096;

/// A node's id for one participation in a group (new on every start, as Windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why a connection is refused or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// The node has its maximum of neighbors; try the referrals.
    Busy,
    /// The two nodes are already neighbors.
    AlreadyConnected,
    /// The node is leaving the group.
    Leaving,
    /// Mesh maintenance dropped the least useful neighbor.
    LeastUseful,
    /// The application closed the group.
    Closed,
    /// The other side broke the protocol.
    ProtocolError,
    /// A node connected to itself.
    SelfConnection,
}

/// A message between two neighbors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "records travel by value; boxing them buys nothing measurable"
)]
pub enum MeshMessage {
    /// Dialer → acceptor, first message.
    Hello {
        /// The dialer's node id.
        node: NodeId,
        /// Where the dialer accepts connections (empty if it does not listen yet).
        listen: Vec<SocketAddr>,
    },
    /// Acceptor → dialer: accepted as a neighbor.
    Welcome {
        /// The acceptor's node id.
        node: NodeId,
        /// Where the acceptor listens.
        listen: Vec<SocketAddr>,
        /// The acceptor's peer time when it sent this (for the dialer's peer-time estimate).
        peer_time: Timestamp,
        /// Other nodes the dialer may try.
        referrals: Vec<SocketAddr>,
    },
    /// Acceptor → dialer: not accepted; the connection closes.
    Refuse {
        /// Why.
        reason: Reason,
        /// Other nodes to try.
        referrals: Vec<SocketAddr>,
    },
    /// Either side, before closing.
    Disconnect {
        /// Why.
        reason: Reason,
        /// Other nodes to try.
        referrals: Vec<SocketAddr>,
    },
    /// Database synchronisation (the dialer of a link is always the sync initiator). Each
    /// sync on a link has a number, so messages of an abandoned sync are recognised and
    /// ignored.
    Sync {
        /// The sync's number on this link.
        session: u32,
        /// The message.
        message: SyncMessage,
    },
    /// Acceptor → dialer: please start a sync when none is running.
    SyncRequest,
    /// A new or changed record (eager push).
    Flood(Record),
    /// Item keys of records the sender has (lazy push).
    IHave(Vec<u64>),
    /// Please send these records; with `eager`, also push records to me from now on (I lost
    /// my place in the tree).
    Graft {
        /// Item keys of the records wanted.
        keys: Vec<u64>,
        /// Whether the link should become eager.
        eager: bool,
    },
    /// Stop pushing records eagerly to me (you sent a duplicate); announce them instead.
    Prune,
    /// To a relay: forward this hole-punch step to member `to` (see `core/punch.rs`).
    PunchVia {
        /// The member to forward to.
        to: PeerName,
        /// The attempt.
        id: u64,
        /// The step.
        step: crate::core::PunchStep,
        /// The sender's candidate addresses (request and answer).
        candidates: Vec<SocketAddr>,
    },
    /// From a relay: a hole-punch step from member `from`.
    PunchFrom {
        /// The member it comes from.
        from: PeerName,
        /// The attempt.
        id: u64,
        /// The step.
        step: crate::core::PunchStep,
        /// `from`'s candidate addresses (request and answer).
        candidates: Vec<SocketAddr>,
    },
    /// To a relay: open a relayed stream to member `to` (see `core/relay.rs`).
    RelayOpen {
        /// The circuit's number on this link (chosen by the sender).
        circuit: u64,
        /// The member to reach.
        to: PeerName,
    },
    /// From a relay: member `from` opened a relayed stream to us.
    RelayIncoming {
        /// The circuit's number on this link (chosen by the relay).
        circuit: u64,
        /// The member that opened it.
        from: PeerName,
    },
    /// Bytes of a relayed stream (TLS records of the two ends), at most
    /// [`MAX_RELAY_CHUNK`](crate::core::MAX_RELAY_CHUNK).
    RelayData {
        /// The circuit's number on this link.
        circuit: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The receiving end took this many more bytes of a relayed stream: its sender may
    /// send that many more.
    RelayAck {
        /// The circuit's number on this link.
        circuit: u64,
        /// How many.
        bytes: u32,
    },
    /// The relayed stream ends (or was refused).
    RelayClose {
        /// The circuit's number on this link.
        circuit: u64,
    },
    /// Node `node` of member `peer` was lost: a link to it broke without a goodbye. Passed on
    /// once by every node that did not count it lost yet and has no link to it; a node that
    /// hears itself reported lost publishes its presence again (see `core/members.rs`).
    Lost {
        /// The member.
        peer: PeerName,
        /// Its node.
        node: NodeId,
    },
    /// A record pushed on by a node that got it by a repair (it pulled the record, or a
    /// sync brought it) or from such a push: a copy that crosses the tree's own push of the
    /// record is no sign of a cycle of eager links, so it prunes nothing (see
    /// `core/flood.rs`).
    Repush(Record),
}

/// How a flooded record came: pushed along the eager tree ([`MeshMessage::Flood`]), or
/// pushed on from a repair ([`MeshMessage::Repush`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// Along the tree, from the record's maker.
    Tree,
    /// On from a pull or a sync somewhere upstream.
    Repair,
}

impl Push {
    /// The message that pushes `record` this way.
    pub fn message(self, record: Record) -> MeshMessage {
        match self {
            Push::Tree => MeshMessage::Flood(record),
            Push::Repair => MeshMessage::Repush(record),
        }
    }
}

/// The frame limit of the group's mesh connections for a largest record of
/// `max_record_size` bytes: a flooded record with its other fields and envelope, and never
/// below [`MIN_MESH_FRAME`], which the sync's own messages need (each is at most
/// [`MAX_SYNC_MESSAGE_BYTES`](peergroup_record_db::sync::MAX_SYNC_MESSAGE_BYTES), but a
/// records message carrying one larger record).
pub fn mesh_frame_limit(max_record_size: u32) -> usize {
    (max_record_size as usize)
        .saturating_add(peergroup_record_db::reserved::RECORD_OVERHEAD_ALLOWANCE as usize)
        .max(MIN_MESH_FRAME)
}

/// The smallest frame limit of a mesh connection (see [`mesh_frame_limit`]): 1 MiB + 64 KiB,
/// the largest sync message with room for its envelope. Every other mesh message is smaller
/// (an `IHave` of [`MAX_KEYS`] keys is a few hundred KiB).
pub const MIN_MESH_FRAME: usize = 1024 * 1024 + 64 * 1024;

const _: () = assert!(
    peergroup_record_db::sync::MAX_SYNC_MESSAGE_BYTES + 16 * 1024 <= MIN_MESH_FRAME,
    "a sync message and its envelope must fit a mesh frame"
);

/// A message that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Empty input.
    #[error("empty message")]
    Empty,
    /// A protocol version this build does not speak.
    #[error("unsupported mesh protocol version {0}")]
    Version(u8),
    /// Not a message.
    #[error("malformed mesh message: {0}")]
    Malformed(postcard::Error),
    /// A message and then more bytes.
    #[error("malformed mesh message: {0} trailing bytes")]
    TrailingBytes(usize),
    /// A list over its limit.
    #[error("{what} lists {count} entries; at most {max} are allowed")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Postcard's variant index of [`MeshMessage::Flood`] (the seventh variant).
const FLOOD_TAG: u8 = 6;
/// Postcard's variant index of [`MeshMessage::Repush`] (the nineteenth variant, the last).
const REPUSH_TAG: u8 = 18;

impl MeshMessage {
    /// Encodes with the version byte in front.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_extend(self, vec![MESH_PROTOCOL_VERSION])
            .unwrap_or_else(|_| vec![MESH_PROTOCOL_VERSION])
    }

    /// Whether encoded `bytes` are a flood or a repush (from the first two bytes: the version
    /// and postcard's variant index), so a frame can be judged before it is decoded.
    pub fn is_flood(bytes: &[u8]) -> bool {
        bytes.first() == Some(&MESH_PROTOCOL_VERSION)
            && matches!(bytes.get(1), Some(&FLOOD_TAG | &REPUSH_TAG))
    }

    /// The first two bytes of every encoded flood (the version and the variant index).
    pub const FLOOD_PREFIX: [u8; 2] = [MESH_PROTOCOL_VERSION, FLOOD_TAG];

    /// Decodes and checks the limits.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let (&v, body) = bytes.split_first().ok_or(MessageError::Empty)?;
        if v != MESH_PROTOCOL_VERSION {
            return Err(MessageError::Version(v));
        }
        let (msg, rest): (MeshMessage, &[u8]) =
            postcard::take_from_bytes(body).map_err(MessageError::Malformed)?;
        if !rest.is_empty() {
            return Err(MessageError::TrailingBytes(rest.len()));
        }
        msg.check()?;
        Ok(msg)
    }

    fn check(&self) -> Result<(), MessageError> {
        let too_many = |what, count: usize, max| {
            if count > max {
                Err(MessageError::TooMany { what, count, max })
            } else {
                Ok(())
            }
        };
        match self {
            MeshMessage::Hello { listen, .. } => {
                too_many("listen addresses", listen.len(), MAX_ADDRESSES)
            }
            MeshMessage::Welcome {
                listen, referrals, ..
            } => {
                too_many("listen addresses", listen.len(), MAX_ADDRESSES)?;
                too_many("referrals", referrals.len(), MAX_ADDRESSES)
            }
            MeshMessage::Refuse { referrals, .. } | MeshMessage::Disconnect { referrals, .. } => {
                too_many("referrals", referrals.len(), MAX_ADDRESSES)
            }
            MeshMessage::IHave(keys) | MeshMessage::Graft { keys, .. } => {
                too_many("keys", keys.len(), MAX_KEYS)
            }
            MeshMessage::PunchVia { candidates, .. }
            | MeshMessage::PunchFrom { candidates, .. } => {
                too_many("punch candidates", candidates.len(), MAX_ADDRESSES)
            }
            MeshMessage::RelayData { data, .. } => {
                too_many("relayed bytes", data.len(), crate::core::MAX_RELAY_CHUNK)
            }
            MeshMessage::RelayOpen { .. }
            | MeshMessage::RelayIncoming { .. }
            | MeshMessage::RelayAck { .. }
            | MeshMessage::RelayClose { .. }
            | MeshMessage::Sync { .. }
            | MeshMessage::SyncRequest
            | MeshMessage::Flood(_)
            | MeshMessage::Repush(_)
            | MeshMessage::Prune
            | MeshMessage::Lost { .. } => Ok(()),
        }
    }

    /// A short name for logs and statistics.
    pub fn kind(&self) -> &'static str {
        match self {
            MeshMessage::Hello { .. } => "hello",
            MeshMessage::Welcome { .. } => "welcome",
            MeshMessage::Refuse { .. } => "refuse",
            MeshMessage::Disconnect { .. } => "disconnect",
            MeshMessage::Sync { .. } => "sync",
            MeshMessage::SyncRequest => "sync-request",
            MeshMessage::Flood(_) => "flood",
            MeshMessage::IHave(_) => "ihave",
            MeshMessage::Graft { .. } => "graft",
            MeshMessage::Prune => "prune",
            MeshMessage::PunchVia { .. } => "punch-via",
            MeshMessage::PunchFrom { .. } => "punch-from",
            MeshMessage::RelayOpen { .. } => "relay-open",
            MeshMessage::RelayIncoming { .. } => "relay-incoming",
            MeshMessage::RelayData { .. } => "relay-data",
            MeshMessage::RelayAck { .. } => "relay-ack",
            MeshMessage::RelayClose { .. } => "relay-close",
            MeshMessage::Lost { .. } => "lost",
            MeshMessage::Repush(_) => "repush",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let m = MeshMessage::Hello {
            node: NodeId(7),
            listen: vec!["127.0.0.1:3587".parse().unwrap()],
        };
        assert_eq!(MeshMessage::decode(&m.encode()).unwrap(), m);
        let big = MeshMessage::IHave(vec![1; MAX_KEYS + 1]);
        assert!(matches!(
            MeshMessage::decode(&big.encode()),
            Err(MessageError::TooMany { .. })
        ));
        let mut bytes = m.encode();
        bytes[0] = 9;
        assert_eq!(MeshMessage::decode(&bytes), Err(MessageError::Version(9)));
        assert!(MeshMessage::decode(&[]).is_err());
        let mut trailing = m.encode();
        trailing.push(0);
        assert!(MeshMessage::decode(&trailing).is_err());
    }
}
