//! The group mesh protocol, sans-IO: how members of a group stay connected and keep their
//! replicas equal.
//!
//! [`Core`] is the protocol of one member in one group: it keeps 2–7 neighbors (Windows'
//! defaults) with referrals, maintenance and partition healing, floods new records
//! Plumtree-style (few redundant copies), syncs with every new neighbor (security records
//! first), publishes presence, maintains the member list and status, and estimates peer time.
//! It takes inputs with a time and emits outputs. Nothing here opens a socket or a file, reads
//! a clock, draws from a global random generator or spawns a task: time comes with every input,
//! randomness from a seed, records through the [`Store`](peergroup_record_db::store::Store)
//! trait the caller's database uses. `peergroup-membership` runs it over the TLS transport with
//! tokio; [`sim`] runs many of them on a virtual clock with loss, partitions and churn, one
//! seed giving one run exactly. `docs/protocol.md` describes the messages.
//!
//! ```
//! use peergroup_mesh::sim::{Scenario, Simulation};
//!
//! // Twenty members, fifty records from random members, 5% of all messages lost. (Redundancy
//! // is highest in a small lossy group: a duplicate after a repair prunes nothing.)
//! let scenario = Scenario::parse(
//!     "name = \"doc\"\nnodes = 20\nrecords = 50\nwarmup_secs = 30\nsettle_secs = 60\nloss = 0.05\n\
//!      [goals]\nmax_rmr = 0.6\nmax_convergence_p99_ms = 30000",
//! )?;
//! let goals = scenario.goals.clone();
//! let report = Simulation::new(scenario)?.run()?;
//! assert_eq!(report.missed_deliveries, 0);
//! assert!(report.check(&goals).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod core;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod message;
pub mod peer_time;
pub mod presence;
pub mod rng;
pub mod sim;
pub mod stats;
pub mod time;

/// Every bound on what neighbors can make the protocol hold or do (the driver adds its own:
/// `peergroup_mesh::limits`; docs/security.md has the table and what each protects).
pub mod limits {
    pub use crate::core::{
        ANNOUNCE_AGAIN_AFTER, LOST_REFRESH_INTERVAL, MAX_ANNOUNCED_AGAIN, MAX_GRAFT_CEILING_FACTOR,
        MIN_GRAFT_TIMEOUT,
    };
    pub use crate::core::{
        MAX_ANNOUNCERS, MAX_ARRIVED, MAX_AWAITING_HELLO, MAX_CANDIDATES,
        MAX_CANDIDATES_PER_REFERRER, MAX_LINKS_PER_MEMBER, MAX_PENDING_KEYS, MAX_PENDING_PER_LINK,
        MAX_PULLED_MAKERS, SYNC_SESSION_BURST, SYNC_SESSION_INTERVAL,
    };
    pub use crate::core::{
        MAX_AUTO_PUNCH_MEMORY, MAX_OBSERVED, MAX_OBSERVED_PENDING, MAX_PUNCH_CANDIDATES,
        MAX_PUNCH_OFFERS, MAX_PUNCH_RELAYS_PER_MINUTE, MAX_PUNCHES,
    };
    pub use crate::core::{
        MAX_COUNTED_PRESENCES_PER_MEMBER, PRESENCE_MAINTENANCE_MAX, PRESENCE_MAINTENANCE_MIN,
        PRESENCE_SLACK,
    };
    pub use crate::core::{MAX_RELAY_CHUNK, MAX_RELAYED_ENDS, RELAY_WINDOW};
    pub use crate::message::{MAX_ADDRESSES, MAX_KEYS};
    pub use crate::peer_time::{MAX_FIRST_OFFSET, MAX_SKEW};
}

pub use crate::config::MeshConfig;
pub use crate::core::{
    CircuitId, ConnId, Core, Event, LinkEnd, LocalMember, Member, MemberChange, NeighborChange,
    Output, PeerFault, PeerInfo, RelayLimits, Status,
};
pub use crate::message::{MeshMessage, NodeId, Push, Reason};
pub use crate::peer_time::PeerTime;
pub use crate::presence::Presence;
pub use crate::stats::{Stats, SyncProgress};
pub use crate::time::{Mono, Now};

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
