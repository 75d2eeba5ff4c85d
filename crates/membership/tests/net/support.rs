//! A group fixture and real nodes: SQLite databases, TLS endpoints on loopback, drivers.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
use peergroup_membership::driver::{self, DriverConfig, GroupHandle};
use peergroup_membership::{Core, LocalMember, MeshConfig, NodeId};
use peergroup_record_db::store::{MemoryStore, SqliteStore};
use peergroup_record_db::{Database, LocalSigner, NewRecord, Record, RecordType};
use peergroup_transport::{Endpoint, GroupCredentials, GroupTrust, TransportConfig};

/// How long a step over the network may take: generous, for a loaded machine (each takes
/// well under a second on a quiet one); a step that does not happen at all fails after it.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

pub(crate) fn app_type() -> RecordType {
    "7e57da7a-0000-4000-8000-000000000001".parse().unwrap()
}

/// A group whose members are derived from `seed`: member 0 is the creator (admin).
pub(crate) struct Fixture {
    pub(crate) root: CertChain,
    pub(crate) chains: Vec<CertChain>,
    seed: u64,
}

impl Fixture {
    pub(crate) fn new(seed: u64, members: usize) -> Self {
        let now = Timestamp::now().saturating_sub(Duration::from_secs(3600));
        let key = |i: usize| KeyPair::from_test_seed(seed * 1000 + i as u64);
        let peer = |i: usize| {
            PeerName::new(
                &key(i).public(),
                Classifier::new(&format!("node{i}")).unwrap(),
            )
        };
        let group_key = KeyPair::from_test_seed(seed * 1000 + 999);
        let root = GroupRoot::with_key(
            group_key,
            "Net test",
            Classifier::new("nettest").unwrap(),
            &peer(0),
            now,
        )
        .unwrap();
        let request = |i: usize, role| MemberRequest {
            subject_key: key(i).public(),
            subject_peer: peer(i),
            subject_friendly_name: format!("node{i}"),
            roles: Roles::one(role),
            classifiers: vec![],
            not_before: now,
            not_after: now.saturating_add(Duration::from_secs(30 * 86_400)),
        };
        let admin = root.issue(&request(0, Role::Admin)).unwrap();
        let mut chains = vec![admin.clone()];
        for i in 1..members {
            chains.push(admin.issue(&key(0), &request(i, Role::Member)).unwrap());
        }
        Fixture {
            root: root.chain().clone(),
            chains,
            seed,
        }
    }

    pub(crate) fn key(&self, i: usize) -> KeyPair {
        KeyPair::from_test_seed(self.seed * 1000 + i as u64)
    }

    pub(crate) fn group(&self) -> &PeerName {
        self.root.group()
    }

    /// `n` records signed by member `i`, made on a scratch replica.
    pub(crate) fn records(&self, i: usize, n: usize, payload: usize) -> Vec<Record> {
        let mut db = Database::open(MemoryStore::new(), &self.root).unwrap();
        let key = self.key(i);
        let signer = LocalSigner {
            key: &key,
            chain: &self.chains[i],
        };
        let now = Timestamp::now();
        (0..n)
            .map(|k| {
                let mut data = vec![0u8; payload];
                data[..8].copy_from_slice(&(k as u64).to_le_bytes());
                let new = NewRecord {
                    record_type: app_type(),
                    attributes: String::new(),
                    payload: data,
                    expires: now.saturating_add(Duration::from_secs(86_400)),
                    autorefresh: false,
                };
                db.create(signer, new, now).unwrap().record
            })
            .collect()
    }
}

/// A running node.
pub(crate) struct Node {
    pub(crate) handle: GroupHandle,
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) addr: SocketAddr,
}

/// Opens member `i`'s database at `path` (optionally preloaded) and runs it on loopback.
pub(crate) async fn start(
    f: &Fixture,
    i: usize,
    path: &Path,
    preload: Vec<Record>,
    connect: &[SocketAddr],
) -> Node {
    start_on(f, i, path, preload, connect, "127.0.0.1:0".parse().unwrap()).await
}

/// Like [`start`], listening on `bind`.
pub(crate) async fn start_on(
    f: &Fixture,
    i: usize,
    path: &Path,
    preload: Vec<Record>,
    connect: &[SocketAddr],
    bind: SocketAddr,
) -> Node {
    let mesh = MeshConfig {
        maintenance_interval: Duration::from_secs(5),
        ..MeshConfig::default()
    };
    start_with(f, i, path, preload, connect, bind, mesh).await
}

/// Like [`start_on`], with this mesh configuration.
pub(crate) async fn start_with(
    f: &Fixture,
    i: usize,
    path: &Path,
    preload: Vec<Record>,
    connect: &[SocketAddr],
    bind: SocketAddr,
    mesh: MeshConfig,
) -> Node {
    let transport = TransportConfig::default();
    start_full(f, i, path, preload, connect, bind, mesh, transport).await
}

/// Like [`start_with`], with this transport configuration too.
#[allow(clippy::too_many_arguments, reason = "a test helper; each is one knob")]
pub(crate) async fn start_full(
    f: &Fixture,
    i: usize,
    path: &Path,
    preload: Vec<Record>,
    connect: &[SocketAddr],
    bind: SocketAddr,
    mesh: MeshConfig,
    transport: TransportConfig,
) -> Node {
    let mut db = Database::open(SqliteStore::open(path).unwrap(), &f.root).unwrap();
    if !preload.is_empty() {
        db.learn_member(&f.chains[i]).unwrap();
        let report = db.apply(preload, Timestamp::now()).unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    }
    let now = Timestamp::now();
    let me = LocalMember {
        key: f.key(i),
        chain: f.chains[i].clone(),
    };
    let node_id = NodeId(rand_u64());
    let mut core = Core::new(db, me, node_id, mesh, os_seed(), now.into()).unwrap();
    core.add_candidates(connect);
    let endpoint = Arc::new(Endpoint::bind(&[bind], transport.clone()).await.unwrap());
    let creds =
        GroupCredentials::new(f.group().clone(), Arc::new(f.key(i)), f.chains[i].clone()).unwrap();
    let trust = GroupTrust::new(f.group().clone());
    endpoint.add_group(creds.clone(), trust.clone()).unwrap();
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
        handle.connect(connect.to_vec()).await.unwrap();
    }
    let addr = endpoint.local_addrs()[0];
    Node {
        handle,
        endpoint,
        addr,
    }
}

/// A core's seed from the operating system, as a node's is.
pub(crate) fn os_seed() -> peergroup_membership::rng::Seed {
    let mut seed = [0u8; 32];
    peergroup_identity::random_bytes(&mut seed).unwrap();
    peergroup_membership::rng::Seed(seed)
}

pub(crate) fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    peergroup_identity::random_bytes(&mut b).unwrap();
    u64::from_le_bytes(b)
}

/// Waits until every handle reports the same digest with at least `min` records.
pub(crate) async fn converge(handles: &[&GroupHandle], min: usize, within: Duration) -> Duration {
    let start = std::time::Instant::now();
    loop {
        let mut digests = Vec::new();
        for h in handles {
            digests.push(h.digest().await.unwrap());
        }
        if digests.iter().all(|d| d == &digests[0]) && digests[0].1 >= min {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "no convergence within {within:?}: {:?}",
            digests.iter().map(|d| d.1).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
