//! Test members and nodes: group A with admin Alice and members Bob and Carol; every trust
//! reads a fixed clock two days after the certificates were issued. A node is a member with a
//! listening endpoint on 127.0.0.1, its direct connections, their events, and a tiny router
//! that hands accepted connections whose first frame is a direct hello to `accept`.
//!
//! Timing: a test waits for the thing itself (an event, a frame, a close), each wait bounded
//! by [`WAIT`] and naming what it waited for when it gives up; no test sleeps in the hope that
//! something has happened. Openings and connections expected to succeed get [`WAIT`] as their
//! timeouts. Only the timeouts a test is about are short, and the upper bound on how long they
//! take to fire is [`NO_HANG`]: a loaded machine is slow, not broken.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_direct_conn::{
    DataType, DirectConnId, DirectConnections, DirectEvent, DirectLimits, EventReceiver,
    is_direct_hello,
};
use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
use peergroup_transport::{Endpoint, GroupCredentials, GroupTrust, TransportConfig};
use tokio::task::JoinHandle;

pub(crate) const DAY: Duration = Duration::from_secs(86_400);

/// How long a test waits for one thing to happen over the network (an event, a frame, a
/// close), and the timeouts (connect, handshake, open) of connections expected to succeed.
/// Generous on purpose: on a CI machine at load 4 on 2 cores things are slow, not broken; on a
/// quiet one nothing comes near it.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Bound on a whole test body: well above [`WAIT`], so that a wait that gives up names itself
/// first, and this only catches a hang between waits.
pub(crate) const TEST_BOUND: Duration = Duration::from_secs(120);

/// Upper bound on how long a deliberately short timeout (hundreds of milliseconds) takes to
/// fire: it checks that nothing hangs, not how fast a loaded machine is. Below [`WAIT`], so
/// that giving up through a test configuration's generous timeout instead counts as a hang.
pub(crate) const NO_HANG: Duration = Duration::from_secs(20);

/// No progress for this long, and through 20 looks 50 ms apart, means a pipeline is blocked
/// end to end (the backpressure test's criterion, see [`unless_stalled`]).
pub(crate) const STALL: Duration = Duration::from_secs(2);

pub(crate) fn t0() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

fn now() -> Timestamp {
    t0().saturating_add(2 * DAY)
}

/// Runs a test body with an overall bound ([`TEST_BOUND`]), so nothing can hang.
pub(crate) async fn bounded<F: Future>(f: F) -> F::Output {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    // The test harness names the thread after the test; the body is first polled on it.
    let test = std::thread::current()
        .name()
        .unwrap_or("the test")
        .to_owned();
    match tokio::time::timeout(TEST_BOUND, f).await {
        Ok(out) => out,
        Err(_) => panic!(
            "{test}: the whole test body did not finish within {TEST_BOUND:?} (no single wait \
             gave up first, so it hung outside the bounded waits)"
        ),
    }
}

/// Waits for `fut` to complete (`Some`) unless it stalls (`None`): pending for [`STALL`] and
/// through at least 20 looks 50 ms apart. A future merely slowed down by load completes well
/// within that; the count of looks keeps a process paused as a whole (by the scheduler or the
/// hypervisor) from passing for a stall, since the other tasks get to run between the looks
/// after it resumes.
pub(crate) async fn unless_stalled<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    let started = tokio::time::Instant::now();
    let mut looks = 0;
    loop {
        if let Ok(out) = tokio::time::timeout(Duration::from_millis(50), &mut *fut).await {
            return Some(out);
        }
        looks += 1;
        if looks >= 20 && started.elapsed() >= STALL {
            return None;
        }
    }
}

/// Waits at most [`WAIT`] for `what` (`fut`); if it does not happen, fails saying what it
/// waited for and how long.
pub(crate) async fn within<F: Future>(what: impl Display, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("waited {WAIT:?} for {what}; it did not happen"),
    }
}

pub(crate) struct Fixture {
    pub(crate) root: GroupRoot,
    pub(crate) alice: GroupCredentials,
    pub(crate) bob: GroupCredentials,
    pub(crate) carol: GroupCredentials,
}

fn identity(seed: u64, name: &str) -> (KeyPair, PeerName) {
    let key = KeyPair::from_test_seed(seed);
    let peer = PeerName::new(&key.public(), Classifier::new(name).unwrap());
    (key, peer)
}

fn request(key: &KeyPair, peer: &PeerName, role: Role, window: Window) -> MemberRequest {
    MemberRequest {
        subject_key: key.public(),
        subject_peer: peer.clone(),
        subject_friendly_name: peer.classifier().to_string(),
        roles: Roles::one(role),
        classifiers: vec![],
        not_before: window.0,
        not_after: window.1,
    }
}

/// When a certificate is valid: from, until.
type Window = (Timestamp, Timestamp);

fn creds(group: &PeerName, key: KeyPair, chain: CertChain) -> GroupCredentials {
    GroupCredentials::new(group.clone(), Arc::new(key), chain).unwrap()
}

impl Fixture {
    /// Group A: Alice (admin), Bob and Carol.
    pub(crate) fn new() -> Self {
        let year = (t0(), t0().saturating_add(365 * DAY));
        Self::make(100, "groupa", [1, 2, 3], t0(), [year; 3])
    }

    /// Group B, with other members (seeds and names unrelated to group A's).
    pub(crate) fn group_b() -> Self {
        let year = (t0(), t0().saturating_add(365 * DAY));
        Self::make(200, "groupb", [4, 7, 8], t0(), [year; 3])
    }

    /// Group C, on the wall clock (use [`Fixture::wall_trust`]): Alice (admin) and Carol are
    /// members for a day, Bob's membership ends `bob_lifetime` from now (certificates count
    /// whole seconds: it ends up to a second earlier). Returns Bob's end too.
    pub(crate) fn expiring(bob_lifetime: Duration) -> (Self, Timestamp) {
        let now = Timestamp::now();
        let hour_ago = now.saturating_sub(Duration::from_secs(3600));
        let day = (hour_ago, now.saturating_add(DAY));
        let bob = (hour_ago, now.saturating_add(bob_lifetime));
        let f = Self::make(300, "groupc", [9, 10, 11], hour_ago, [day, bob, day]);
        let ends = f.bob.chain.leaf().not_after();
        (f, ends)
    }

    /// Alice, Bob and Carol with `seeds`, valid in `windows`, in a group whose root was made
    /// at `root_time`.
    fn make(
        root_seed: u64,
        group: &str,
        seeds: [u64; 3],
        root_time: Timestamp,
        windows: [Window; 3],
    ) -> Self {
        let (ak, ap) = identity(seeds[0], "alice");
        let root = GroupRoot::with_key(
            KeyPair::from_test_seed(root_seed),
            group,
            Classifier::new(group).unwrap(),
            &ap,
            root_time,
        )
        .unwrap();
        let alice_chain = root
            .issue(&request(&ak, &ap, Role::Admin, windows[0]))
            .unwrap();
        let member = |seed, name, window| {
            let (k, p) = identity(seed, name);
            let chain = alice_chain
                .issue(&ak, &request(&k, &p, Role::Member, window))
                .unwrap();
            creds(root.group(), k, chain)
        };
        let bob = member(seeds[1], "bob", windows[1]);
        let carol = member(seeds[2], "carol", windows[2]);
        let alice = creds(root.group(), ak, alice_chain);
        Fixture {
            root,
            alice,
            bob,
            carol,
        }
    }

    /// A trust for the group on the fixed clock.
    pub(crate) fn trust(&self) -> GroupTrust {
        GroupTrust::with_clock(self.root.group().clone(), Arc::new(now))
    }

    /// A trust for the group on the wall clock.
    pub(crate) fn wall_trust(&self) -> GroupTrust {
        GroupTrust::new(self.root.group().clone())
    }
}

/// The tests' configuration: connections that should succeed get [`WAIT`] to connect, to
/// shake hands and to say goodbye (a goodbye ends as soon as the peer hangs up too, so the
/// bound only matters on a loaded machine).
pub(crate) fn config() -> TransportConfig {
    let mut c = TransportConfig::default();
    c.connect_timeout = WAIT;
    c.handshake_timeout = WAIT;
    c.close_timeout = WAIT;
    c
}

pub(crate) struct Node {
    pub(crate) peer: PeerName,
    pub(crate) trust: GroupTrust,
    _endpoint: Arc<Endpoint>,
    pub(crate) addr: SocketAddr,
    pub(crate) direct: Arc<DirectConnections>,
    pub(crate) events: EventReceiver,
    router: JoinHandle<()>,
}

impl Node {
    pub(crate) async fn start(creds: &GroupCredentials, trust: &GroupTrust) -> Node {
        Self::with(creds, trust, config(), 1 << 20).await
    }

    pub(crate) async fn with(
        creds: &GroupCredentials,
        trust: &GroupTrust,
        config: TransportConfig,
        max_data: usize,
    ) -> Node {
        Self::with_limits(creds, trust, config, &DirectLimits::new(max_data)).await
    }

    pub(crate) async fn with_limits(
        creds: &GroupCredentials,
        trust: &GroupTrust,
        config: TransportConfig,
        limits: &DirectLimits,
    ) -> Node {
        let endpoint = Endpoint::bind(&["127.0.0.1:0".parse().unwrap()], config.clone())
            .await
            .unwrap();
        endpoint.add_group(creds.clone(), trust.clone()).unwrap();
        let endpoint = Arc::new(endpoint);
        let direct = Arc::new(DirectConnections::with_limits(
            creds.clone(),
            trust.clone(),
            config,
            limits,
        ));
        let events = direct.take_events().unwrap();
        assert!(direct.take_events().is_none());
        let router = tokio::spawn(route(endpoint.clone(), direct.clone()));
        Node {
            peer: creds.peer().clone(),
            trust: trust.clone(),
            addr: endpoint.local_addrs()[0],
            _endpoint: endpoint,
            direct,
            events,
            router,
        }
    }

    /// The next event, within [`WAIT`].
    pub(crate) async fn next(&mut self) -> DirectEvent {
        self.next_for("any event").await
    }

    /// The next event, within [`WAIT`]; `what` (the event the caller expects) names the wait
    /// if nothing comes.
    async fn next_for(&mut self, what: &str) -> DirectEvent {
        match tokio::time::timeout(WAIT, self.events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!(
                "{}: waited for {what}; the event channel closed instead",
                self.peer
            ),
            Err(_) => panic!(
                "{}: waited {WAIT:?} for {what}; no event came (connections: {:?})",
                self.peer,
                self.direct.connections()
            ),
        }
    }

    /// The next event, which must be `Connected` with `peer`; returns its id.
    pub(crate) async fn connected(&mut self, peer: &PeerName) -> DirectConnId {
        let what = format!("Connected with {peer}");
        match self.next_for(&what).await {
            DirectEvent::Connected { id, peer: p, .. } if &p == peer => id,
            other => panic!("{}: expected {what}, got {other:?}", self.peer),
        }
    }

    /// The next event, which must be `Disconnected` of `id`; returns the reason.
    pub(crate) async fn disconnected(&mut self, id: DirectConnId) -> String {
        let what = format!("Disconnected of {id}");
        match self.next_for(&what).await {
            DirectEvent::Disconnected { id: i, reason, .. } if i == id => reason,
            other => panic!("{}: expected {what}, got {other:?}", self.peer),
        }
    }

    /// The next event, which must be `Data` on `id`.
    pub(crate) async fn data(&mut self, id: DirectConnId) -> (DataType, Bytes) {
        let what = format!("Data on {id}");
        match self.next_for(&what).await {
            DirectEvent::Data {
                id: i,
                data_type,
                data,
                ..
            } if i == id => (data_type, data),
            other => panic!("{}: expected {what}, got {other:?}", self.peer),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.router.abort();
    }
}

/// The facade's router in miniature.
async fn route(endpoint: Arc<Endpoint>, direct: Arc<DirectConnections>) {
    while let Some(mut conn) = endpoint.accept().await {
        let direct = direct.clone();
        tokio::spawn(async move {
            let Ok(Some(first)) = tokio::time::timeout(WAIT, conn.recv()).await else {
                return;
            };
            if is_direct_hello(&first) {
                let _ = direct.accept(conn, &first);
            } else {
                conn.close("not a direct connection");
            }
        });
    }
}

/// Two nodes (Alice and Bob) with a direct connection Alice opened; returns the ids on
/// Alice's side and Bob's.
pub(crate) async fn pair(f: &Fixture) -> (Node, Node, DirectConnId, DirectConnId) {
    let trust = f.trust();
    let mut alice = Node::start(&f.alice, &trust).await;
    let mut bob = Node::start(&f.bob, &trust).await;
    let (a_id, b_id) = link(&mut alice, &mut bob).await;
    (alice, bob, a_id, b_id)
}

/// Opens a direct connection from `a` to `b` (within [`WAIT`]); both see `Connected`.
pub(crate) async fn link(a: &mut Node, b: &mut Node) -> (DirectConnId, DirectConnId) {
    let a_id = a
        .direct
        .open_wait(&b.peer, vec![b.addr], WAIT)
        .await
        .unwrap_or_else(|e| panic!("{} opening to {} at {}: {e:?}", a.peer, b.peer, b.addr));
    assert_eq!(a.connected(&b.peer).await, a_id);
    let b_id = b.connected(&a.peer).await;
    (a_id, b_id)
}

pub(crate) fn chat() -> DataType {
    "{6f1d2c3b-0a4e-4b5c-9d8e-7f6a5b4c3d2e}".parse().unwrap()
}

pub(crate) fn file() -> DataType {
    "{0c9a8b7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d}".parse().unwrap()
}

/// An address nothing listens on: a port bound, then released.
pub(crate) fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}
