//! The node: what one infrastructure holds for all its groups — its configuration and
//! identities, the listening endpoint, the route table, mDNS discovery, the open groups. The
//! groups register with it (a `Registration` each, see `registration.rs`) and it
//! refers to them only weakly, as [`Served`]: nothing here keeps a group alive, and nothing
//! here knows the group type (the accept loop that routes connections is in `router.rs`).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use peergroup_identity::{IdentityStore, PeerName};
use peergroup_transport::{Connection, Discovery, Endpoint};

use crate::config::InfrastructureConfig;

/// What the node needs of a group it serves.
pub(crate) trait Served: Send + Sync {
    /// An authenticated connection of the group, with its first frame (a direct-connection
    /// hello or the mesh's first message).
    fn dispatch(&self, conn: Connection, first: Bytes);
    /// A TLS handshake for the group (or for none the endpoint could tell) failed.
    fn auth_failed(&self, addr: SocketAddr, reason: String);
    /// Stops the group's driver (the infrastructure shuts down).
    fn stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The node (see the module docs).
pub(crate) struct Node {
    pub(crate) config: InfrastructureConfig,
    pub(crate) identities: IdentityStore,
    /// The same store, as the API hands it out.
    pub(crate) api_identities: crate::identities::Identities,
    pub(crate) endpoint: Option<Arc<Endpoint>>,
    /// Where the endpoint's connections go, by group.
    pub(crate) routes: RwLock<BTreeMap<PeerName, Weak<dyn Served>>>,
    /// Groups open now, by (identity, group).
    pub(crate) open: Mutex<BTreeMap<(PeerName, PeerName), Weak<dyn Served>>>,
    pub(crate) discovery: Mutex<Option<Discovery>>,
    /// The data directory's lock: one node per directory, for the node's life.
    pub(crate) _lock: crate::lock::DirLock,
}

impl Node {
    /// The groups served now (those still alive).
    pub(crate) fn route(&self, group: &PeerName) -> Option<Arc<dyn Served>> {
        self.routes.read().ok()?.get(group)?.upgrade()
    }

    /// Every group served now.
    pub(crate) fn served(&self) -> Vec<Arc<dyn Served>> {
        self.routes
            .read()
            .map(|r| r.values().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    }

    /// How long a join (password or connect) may take: connecting and the TLS handshake.
    pub(crate) fn join_timeout(&self) -> Duration {
        self.config.transport.connect_timeout + self.config.transport.handshake_timeout
    }
}

/// The text form of a node id in mDNS advertisements.
pub(crate) fn node_tag(node: u64) -> String {
    format!("{node:016x}")
}
