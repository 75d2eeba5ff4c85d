//! The group mesh of peergroup, running: [`driver`] runs the sans-IO mesh protocol of
//! `peergroup-mesh` ([`Core`]) over the TLS transport with tokio — one task per group
//! owning the core and its SQLite database, a reader per connection that decodes and
//! batch-checks signatures, bounded queues, the timers — and hands the application a
//! [`GroupHandle`](driver::GroupHandle).
//!
//! The protocol's modules are re-exported here under their own names, so
//! `peergroup_membership::core`, `::message`, `::sim` … are the mesh crate's. The simulator
//! runs the same [`Core`] on a virtual clock (`peergroup_mesh::sim`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod driver;

pub use peergroup_mesh::{config, core, message, peer_time, presence, rng, sim, stats, time};

/// Every bound on what neighbors can make a node hold or do, in one place: the protocol's
/// ([`peergroup_mesh::limits`]) and the driver's (see docs/security.md for the table and what
/// each protects).
pub mod limits {
    pub use crate::driver::{READ_BYTES_PER_CONN, READ_BYTES_PER_NODE, READ_INPUTS_PER_CONN};
    pub use peergroup_mesh::limits::*;
}

pub use peergroup_mesh::{
    ConnId, Core, Error, Event, LinkEnd, LocalMember, Member, MemberChange, MeshConfig,
    MeshMessage, Mono, NeighborChange, NodeId, Now, Output, PeerFault, PeerInfo, PeerTime,
    Presence, Reason, Stats, Status, SyncProgress,
};
