//! Real nodes for the network benchmarks: a SQLite database in a file, a TLS endpoint on
//! 127.0.0.1, the tokio driver, and incoming connections routed to it — as
//! `crates/membership/tests/net/support.rs` starts them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peergroup_identity::{KeyPair, Timestamp};
use peergroup_membership::driver::{self, DriverConfig, GroupHandle};
use peergroup_membership::{Core, LocalMember, MeshConfig, NodeId};
use peergroup_record_db::Database;
use peergroup_record_db::store::SqliteStore;
use peergroup_transport::{Dial, Endpoint, GroupCredentials, GroupTrust, TransportConfig};

use crate::{Fixture, Member};

/// Which of the fixture's members a node runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// The group creator: listens at once.
    Admin,
    /// The member: listens after its first sync.
    Member,
}

impl Fixture {
    /// The member a node runs as.
    pub fn who(&self, who: Who) -> &Member {
        match who {
            Who::Admin => &self.admin,
            Who::Member => &self.member,
        }
    }
}

/// A running node.
pub struct Node {
    /// The driver.
    pub handle: GroupHandle,
    /// Its endpoint (dropping it stops listening).
    pub endpoint: Arc<Endpoint>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Node {
    /// Closes the group and the endpoint.
    pub async fn close(self) {
        let _ = self.handle.close().await;
        self.endpoint.close();
    }
}

/// A copy of a key pair (the driver and the transport each want one).
fn copy_key(key: &KeyPair) -> KeyPair {
    KeyPair::from_secret(&key.secret())
}

/// The group's database in a SQLite file at `path` (created if needed).
pub fn open_database(f: &Fixture, path: &Path) -> Database<SqliteStore> {
    f.database(SqliteStore::open(path).expect("sqlite"))
}

/// Runs `db` as member `who` on 127.0.0.1 with default mesh and transport settings, dialing
/// `connect` over TCP. Must be called inside a tokio runtime.
pub async fn start(
    f: &Fixture,
    who: Who,
    db: Database<SqliteStore>,
    connect: &[SocketAddr],
) -> Node {
    start_over(f, who, db, connect, Dial::Tcp).await
}

/// [`start`], dialing over `dial` (the node listens on TCP and QUIC either way).
pub async fn start_over(
    f: &Fixture,
    who: Who,
    db: Database<SqliteStore>,
    connect: &[SocketAddr],
    dial: Dial,
) -> Node {
    start_member(f, f.who(who), db, connect, dial).await
}

/// [`start_over`] as any member of the group (one of [`Fixture::more_members`], say).
pub async fn start_member(
    f: &Fixture,
    member: &Member,
    db: Database<SqliteStore>,
    connect: &[SocketAddr],
    dial: Dial,
) -> Node {
    let mut transport = TransportConfig::default();
    transport.dial = dial;
    let now = Timestamp::now();
    let me = LocalMember {
        key: copy_key(&member.key),
        chain: member.chain.clone(),
    };
    let mut core = Core::new(
        db,
        me,
        NodeId(random_u64()),
        MeshConfig::default(),
        peergroup_membership::rng::Seed::from_u64(random_u64()),
        now.into(),
    )
    .expect("core");
    core.add_candidates(connect);
    let endpoint = Arc::new(
        Endpoint::bind(
            &["127.0.0.1:0".parse().expect("address")],
            transport.clone(),
        )
        .await
        .expect("bind"),
    );
    let group = f.root.chain().group().clone();
    let creds = GroupCredentials::new(
        group.clone(),
        Arc::new(copy_key(&member.key)),
        member.chain.clone(),
    )
    .expect("credentials");
    let trust = GroupTrust::new(group.clone());
    endpoint
        .add_group(creds.clone(), trust.clone())
        .expect("serve the group");
    let handle = driver::spawn(
        core,
        DriverConfig {
            transport,
            endpoint: Some(endpoint.clone()),
            credentials: creds,
            trust,
            clock: Arc::new(Timestamp::now),
            min_group_frame: 0,
        },
    );
    tokio::spawn(driver::serve_one_group(endpoint.clone(), handle.clone()));
    if !connect.is_empty() {
        handle.connect(connect.to_vec()).await.expect("connect");
    }
    let addr = endpoint.local_addrs()[0];
    Node {
        handle,
        endpoint,
        addr,
    }
}

/// Waits until every handle reports the same digest with at least `min` records, polling
/// every `every`; panics after `within`. Returns the record count.
pub async fn converge(
    handles: &[&GroupHandle],
    min: usize,
    every: Duration,
    within: Duration,
) -> usize {
    let start = Instant::now();
    loop {
        let mut digests = Vec::with_capacity(handles.len());
        for h in handles {
            digests.push(h.digest().await.expect("digest"));
        }
        if digests.iter().all(|d| d == &digests[0]) && digests[0].1 >= min {
            return digests[0].1;
        }
        assert!(
            start.elapsed() < within,
            "no convergence within {within:?}: {:?}",
            digests.iter().map(|d| d.1).collect::<Vec<_>>()
        );
        tokio::time::sleep(every).await;
    }
}

/// Records a node has learned from its neighbors (by flooding or sync): a cheap counter.
pub async fn delivered(h: &GroupHandle) -> u64 {
    let s = h.stats().await.expect("stats");
    s.delivered_by_flood + s.delivered_by_sync
}

/// A random `u64` (node ids, mesh seeds).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    peergroup_identity::random_bytes(&mut b).expect("random");
    u64::from_le_bytes(b)
}

/// A multi-thread tokio runtime with `threads` workers.
pub fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
