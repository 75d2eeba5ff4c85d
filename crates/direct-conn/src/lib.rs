//! Direct connections of [peergroup](https://github.com/peergroup/peergroup): one-to-one
//! connections between two members of a group, carrying typed data (a data-type GUID and
//! bytes). The facade's `Group::open_direct`, `send_data`, `close_direct` and `connections`
//! are built on it, and the chat application whispers over it — Windows'
//! `PeerGroupOpenDirectConnection`, `PeerGroupSendData`, `PeerGroupCloseDirectConnection`,
//! `PeerGroupEnumConnections` and the `DIRECT_CONNECTION` and `INCOMING_DATA` events.
//!
//! A direct connection is an ordinary connection of the group's transport
//! (`peergroup-transport`): TCP + TLS 1.3 with both members authenticated by their member
//! certificate chains, exactly like a neighbor connection of the mesh, watched by the
//! group's [`GroupTrust`](peergroup_transport::GroupTrust) so that revoking the peer closes
//! it. Both kinds share the listening endpoint: the opener's first data frame is a hello
//! starting with the magic byte `0xD1` (mesh messages start with their version, `0x01`), so
//! the facade's router reads the first frame of each accepted connection and hands the
//! direct ones, [`is_direct_hello`], to [`DirectConnections::accept`]. The wire format is
//! in [`wire`]; the rules of one connection's protocol (hello, welcome, data within the
//! announced limit) are the sans-IO machine [`DirectProtocol`], which the async code feeds.
//!
//! [`DirectConnections::open`] returns an id at once and reports `Connected` or `Failed` as
//! an event; [`DirectConnections::send`] waits while the connection's outgoing queue is
//! full; received data arrives as [`DirectEvent::Data`] through an [`EventReceiver`] bounded
//! in events and in bytes, and an owner that does not read it holds the connection back (the
//! socket is not read) instead of making anyone buffer without bound.
//!
//! Every peer may be hostile, so everything a peer can grow is bounded ([`DirectLimits`]):
//! connections per member ([`DEFAULT_MAX_PER_MEMBER`]) and in all
//! ([`DEFAULT_MAX_CONNECTIONS`]), opening ones included; data per frame; events queued for
//! the owner ([`DEFAULT_EVENT_QUEUE_LEN`], [`DEFAULT_EVENT_QUEUE_BYTES`]). And rights end on
//! time: a connection closes when its member's certificate chain expires.
//!
//! ```no_run
//! use std::time::Duration;
//! use bytes::Bytes;
//! use peergroup_direct_conn::{DataType, DirectConnections, DirectEvent};
//! use peergroup_identity::PeerName;
//! use peergroup_transport::{GroupCredentials, GroupTrust, TransportConfig};
//! # async fn demo(creds: GroupCredentials, bob: PeerName, bob_addr: std::net::SocketAddr)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! let trust = GroupTrust::new(creds.group.clone());
//! let direct = DirectConnections::new(creds, trust, TransportConfig::default(), 1 << 20);
//! let mut events = direct.take_events().ok_or("events already taken")?;
//!
//! // Whisper to Bob.
//! let whisper: DataType = "{6f1d2c3b-0a4e-4b5c-9d8e-7f6a5b4c3d2e}".parse()?;
//! let id = direct.open_wait(&bob, vec![bob_addr], Duration::from_secs(10)).await?;
//! direct.send(id, whisper, Bytes::from_static(b"psst")).await?;
//!
//! while let Some(event) = events.recv().await {
//!     if let DirectEvent::Data { peer, data_type, data, .. } = event {
//!         println!("{peer} sent {} bytes of {data_type}", data.len());
//!     }
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod connections;
mod error;
mod events;
#[doc(hidden)]
pub mod fuzz_targets;
mod limits;
mod open;
pub mod protocol;
mod session;
mod table;
mod types;
pub mod wire;

pub use connections::DirectConnections;
pub use error::{ConnectionCap, DirectError, Fault};
pub use events::EventReceiver;
pub use limits::{
    DEFAULT_EVENT_QUEUE_BYTES, DEFAULT_EVENT_QUEUE_LEN, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PER_MEMBER, DirectLimits, EVENT_OVERHEAD, EXPIRY_CLOSE_GRACE, EXPIRY_RECHECK,
};
pub use protocol::{DirectProtocol, Received};
pub use types::{DataType, DirectConnId, DirectConnInfo, DirectEvent};
pub use wire::{ProtocolError, is_direct_hello};
