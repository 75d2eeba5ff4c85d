//! Secure peer-to-peer groups: the API.
//!
//! A person makes an identity, creates a group, and invites others by their identity (or
//! with a password); every member then shares a signed, replicated record database, sees who
//! is present, gets events, and opens direct connections to other members. This crate is the
//! facade over the layers below (identity, credentials, XML blobs, the record database, the
//! transport, the mesh, direct connections); `docs/api-mapping.md` maps every Windows
//! Peer-to-Peer Grouping function to its method here.
//!
//! ```no_run
//! use std::time::Duration;
//! use peergroup::{EventFilter, GroupSpec, Infrastructure, InfrastructureConfig};
//!
//! # async fn demo() -> peergroup::Result<()> {
//! let infra = Infrastructure::start(InfrastructureConfig::new("/tmp/alice")).await?;
//! let alice = infra.identities().create("Alice", None).await?;
//! let group = infra.create_group(alice.peer_name(), &GroupSpec::new("Friends")).await?;
//! let group = infra.open_group(alice.peer_name(), &group).await?;
//! group.connect().await?;
//! let mut events = group.events(EventFilter::all());
//! let chat: peergroup::RecordType = "0d6a1f4e-8c1b-4a57-9e0a-3f3c2b1a0c00".parse().unwrap();
//! group.add_record(chat, "", b"hello".to_vec(), Duration::from_secs(3600)).await?;
//! while let Some(event) = events.next().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```
//!
//! # One async style, one error type
//!
//! Every operation is `async` and returns this crate's [`Result`]: whatever reads or writes
//! the disk, talks to the network, or waits on a group's task (identities, groups, records,
//! invitations, joins, configuration, direct connections). Disk work and password stretching
//! run on tokio's blocking threads, so a call never stalls the threads that run the groups.
//! The few sync methods are infallible accessors of what a handle holds in memory: names and
//! ids fixed when it was made ([`Group::peer_name`], [`Group::identity`],
//! [`Group::node_id`], [`Infrastructure::local_addrs`]), snapshots it keeps current
//! ([`Group::status`], [`Group::roles`], [`Group::is_connected`],
//! [`Group::direct_connections`], [`Group::buffered_event_bytes`]), and [`Group::events`],
//! which only subscribes. So [`Group::status`] is sync and [`Group::properties`] (a read of
//! the group's database) async; [`Group::create_invitation`] and
//! [`Group::create_password_invitation`], [`Infrastructure::join`] and
//! [`Infrastructure::password_join`] are all async.
//!
//! Runnable examples, each a small session of in-process peers on loopback TLS that exits
//! by itself:
//!
//! - `cargo run -p peergroup --example two_peers`: the smallest group: create, invite, join,
//!   connect, publish a record, see it arrive, close.
//! - `cargo run -p peergroup --example events`: subscribing with an [`EventFilter`] and the
//!   events a scripted session produces, until the streams end at close.
//!
//! The integration tests (`tests/api/`) exercise every method and every event kind the same
//! way, with several peers.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod blocking;
mod config;
mod direct;
mod error;
mod events;
mod group;
mod identities;
mod infra;
mod limits;
mod lock;
mod node;
mod password;
mod registration;
mod router;
mod storage;

pub use config::{DEFAULT_PORT, InfrastructureConfig};
pub use direct::ConnectionInfo;
pub use error::{Error, ErrorKind, Result};
pub use events::{
    ConnectionChange, ConnectionId, DataType, EventFilter, EventKind, EventStream, GroupEvent,
};
pub use group::Group;
pub use identities::Identities;
pub use infra::{GroupSpec, GroupSummary, Infrastructure, TransportStats};
pub use limits::{MAX_DATA, OPEN_TIMEOUT};
pub use lock::LOCK_FILE;
pub use router::{
    FIRST_FRAME_TIMEOUT, MAX_AWAITING_FIRST_FRAME, MAX_AWAITING_FIRST_FRAME_PER_MEMBER,
};

pub use peergroup_credential_roles::{RevocationTarget, Role, Roles};
pub use peergroup_identity::{Identity, IdentitySummary, KdfParams, PeerName, Timestamp};
pub use peergroup_invitation_xml::{IdentityInfo, Invitation, InvitationInfo};
pub use peergroup_membership::stats::Stats as GroupStats;
pub use peergroup_membership::{Member, MemberChange, MeshConfig, Status, SyncProgress};
pub use peergroup_record_db::export::{ImportMode, ImportReport, Refusal, RefusalReason};
pub use peergroup_record_db::reserved::GroupProperties;
pub use peergroup_record_db::{
    ChangeKind, NewRecord, Record, RecordId, RecordIdError, RecordType, RecordTypeError,
    RecordUpdate,
};
pub use peergroup_transport::{Dial, HandshakeStats, TransportConfig};
