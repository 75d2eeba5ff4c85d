//! Presence records: "this member is online as node N at these addresses".

use std::net::SocketAddr;

use peergroup_identity::PeerName;
use peergroup_record_db::{Record, RecordId};
use serde::{Deserialize, Serialize};

use crate::message::{MAX_ADDRESSES, NodeId};

const VERSION: u8 = 1;

/// The payload of a presence record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The node (one per participation).
    pub node: NodeId,
    /// Where it accepts connections.
    pub addresses: Vec<SocketAddr>,
    /// Application attributes (free text, e.g. a status line).
    pub attributes: String,
}

impl Presence {
    /// The payload bytes.
    pub fn to_payload(&self) -> Vec<u8> {
        postcard::to_extend(self, vec![VERSION]).unwrap_or_else(|_| vec![VERSION])
    }

    /// Reads a presence payload; `None` if it is not one (a bad record is simply ignored for
    /// the member list; it was validated as a record already).
    pub fn from_payload(bytes: &[u8]) -> Option<Self> {
        let (&v, body) = bytes.split_first()?;
        if v != VERSION {
            return None;
        }
        let p: Presence = postcard::from_bytes(body).ok()?;
        (p.addresses.len() <= MAX_ADDRESSES && p.attributes.len() <= 4096).then_some(p)
    }

    /// Reads the presence of a record, if it is a live presence record.
    pub fn of(record: &Record) -> Option<Self> {
        if record.record_type != peergroup_record_db::RecordType::PRESENCE || record.is_deleted() {
            return None;
        }
        Self::from_payload(&record.payload)
    }

    /// The record id of `peer`'s presence as node `node`.
    pub fn record_id(peer: &PeerName, node: NodeId) -> RecordId {
        RecordId::derive(peer, node.0.to_be_bytes())
    }
}
