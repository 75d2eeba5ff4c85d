//! The group mesh for [peergroup](https://github.com/peergroup/peergroup) (work in progress).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod core;
pub mod driver;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod message;
pub mod peer_time;
pub mod presence;
pub mod rng;
pub mod sim;
pub mod stats;

pub use crate::config::MeshConfig;
pub use crate::core::{
    ConnId, Core, Event, LocalMember, Member, MemberChange, NeighborChange, Output, PeerInfo,
    Status,
};
pub use crate::message::{MeshMessage, NodeId, Reason};
pub use crate::peer_time::PeerTime;
pub use crate::presence::Presence;
pub use crate::stats::Stats;

/// What can go wrong in the mesh.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is inconsistent.
    #[error("invalid mesh configuration: {0}")]
    Config(String),
    /// An invalid argument.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The record database failed or refused.
    #[error(transparent)]
    Database(#[from] peergroup_record_db::Error),
    /// The group's driver has stopped (the group was closed).
    #[error("the group is closed")]
    Closed,
}
