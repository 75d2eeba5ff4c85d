//! Test groups and helpers: group A (admin Alice; members Bob, Carol; Dave, whose membership
//! has expired), group B (admin Mallory, member Trent), and Eve, who has only her own
//! identity certificate. Every trust reads a fixed clock, two days after the certificates
//! were issued.
//!
//! Timing: a test waits for the thing itself (a frame, a connection, a close, an event), each
//! wait bounded by [`WAIT`] and naming what it waited for when it gives up; no test sleeps in
//! the hope that something has happened. Connections expected to succeed get [`WAIT`] as their
//! connect and handshake timeouts. Only the timeouts a test is about are short, and the upper
//! bound on how long they take to fire is [`NO_HANG`]: a loaded machine is slow, not broken.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, IdentityCertificate, KeyPair, PeerName, Timestamp};
use peergroup_transport::testing::ClientTweaks;
use peergroup_transport::{
    AuthFailure, Connection, Dial, Endpoint, GroupCredentials, GroupTrust, RefusalKind,
    TransportConfig,
};
use tokio::sync::broadcast;

pub(crate) const DAY: Duration = Duration::from_secs(86_400);

/// How long a test waits for one thing to happen over the network (a connection, a frame, a
/// close, a refusal event), and the connect and handshake timeouts of connections expected to
/// succeed. Generous on purpose: on a CI machine at load 4 on 2 cores things are slow, not
/// broken; on a quiet one nothing comes near it.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Bound on a whole test body: well above [`WAIT`], so that a wait that gives up names itself
/// first, and this only catches a hang between waits.
pub(crate) const TEST_BOUND: Duration = Duration::from_secs(120);

/// Upper bound on how long a deliberately short timeout (hundreds of milliseconds) takes to
/// fire: it checks that nothing hangs, not how fast a loaded machine is. Below [`WAIT`], so
/// that giving up through a test configuration's generous timeout instead counts as a hang.
pub(crate) const NO_HANG: Duration = Duration::from_secs(20);

/// No progress for this long, and through [`STALL_LOOKS`] looks at least 50 ms apart, means a
/// pipeline is blocked end to end (the backpressure tests' criterion). A writer merely slowed
/// down by load makes progress well within it; the count of looks keeps a process paused as a
/// whole (by the scheduler or the hypervisor) from passing for a blocked pipeline, since the
/// other tasks get to run between the looks after it resumes.
pub(crate) const STALL: Duration = Duration::from_secs(2);

/// See [`STALL`].
pub(crate) const STALL_LOOKS: u32 = 20;

/// When certificates start.
pub(crate) fn t0() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

/// What every trust's clock says.
pub(crate) fn now() -> Timestamp {
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

/// Waits at most [`WAIT`] for `what` (`fut`); if it does not happen, fails saying what it
/// waited for and how long.
pub(crate) async fn within<F: Future>(what: impl Display, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("waited {WAIT:?} for {what}; it did not happen"),
    }
}

/// The next frame of data on `conn` (`what`, for the message), within [`WAIT`]; fails saying
/// what it waited for and what it saw instead (the connection closing, or nothing).
pub(crate) async fn recv(conn: &mut Connection, what: &str) -> Bytes {
    match tokio::time::timeout(WAIT, conn.recv()).await {
        Ok(Some(frame)) => frame,
        Ok(None) => panic!(
            "waited for {what} from {}; the connection closed instead: {:?}",
            conn.peer().peer,
            conn.close_reason()
        ),
        Err(_) => panic!(
            "waited {WAIT:?} for {what} from {}; nothing arrived (connection closed: {:?})",
            conn.peer().peer,
            conn.close_reason()
        ),
    }
}

pub(crate) struct Member {
    pub(crate) creds: GroupCredentials,
}

impl Member {
    pub(crate) fn peer(&self) -> &PeerName {
        self.creds.peer()
    }

    pub(crate) fn key(&self) -> &KeyPair {
        &self.creds.key
    }
}

pub(crate) struct Fixture {
    pub(crate) a: GroupRoot,
    pub(crate) b: GroupRoot,
    pub(crate) alice: Member,
    pub(crate) bob: Member,
    pub(crate) carol: Member,
    pub(crate) dave: Member,
    pub(crate) mallory: Member,
    pub(crate) trent: Member,
    /// Eve's key and self-signed identity certificate.
    pub(crate) eve_key: Arc<KeyPair>,
    pub(crate) eve_idc: Vec<u8>,
}

fn identity(seed: u64, name: &str) -> (KeyPair, PeerName) {
    let key = KeyPair::from_test_seed(seed);
    let peer = PeerName::new(&key.public(), Classifier::new(name).unwrap());
    (key, peer)
}

fn request(key: &KeyPair, peer: &PeerName, role: Role, validity: Duration) -> MemberRequest {
    MemberRequest {
        subject_key: key.public(),
        subject_peer: peer.clone(),
        subject_friendly_name: peer.classifier().to_string(),
        roles: Roles::one(role),
        classifiers: vec![],
        not_before: t0(),
        not_after: t0().saturating_add(validity),
    }
}

fn member(group: &PeerName, key: KeyPair, chain: CertChain) -> Member {
    Member {
        creds: GroupCredentials::new(group.clone(), Arc::new(key), chain).unwrap(),
    }
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let (ak, ap) = identity(1, "alice");
        let a = GroupRoot::with_key(
            KeyPair::from_test_seed(100),
            "Group A",
            Classifier::new("groupa").unwrap(),
            &ap,
            t0(),
        )
        .unwrap();
        let alice_chain = a
            .issue(&request(&ak, &ap, Role::Admin, 3650 * DAY))
            .unwrap();
        let issue = |seed, name, validity| {
            let (k, p) = identity(seed, name);
            let chain = alice_chain
                .issue(&ak, &request(&k, &p, Role::Member, validity))
                .unwrap();
            member(a.group(), k, chain)
        };
        let bob = issue(2, "bob", 365 * DAY);
        let carol = issue(3, "carol", 365 * DAY);
        let dave = issue(5, "dave", DAY);
        let (mk, mp) = identity(4, "mallory");
        let b = GroupRoot::with_key(
            KeyPair::from_test_seed(200),
            "Group B",
            Classifier::new("groupb").unwrap(),
            &mp,
            t0(),
        )
        .unwrap();
        let mallory_chain = b.issue(&request(&mk, &mp, Role::Admin, 365 * DAY)).unwrap();
        let (tk, tp) = identity(7, "trent");
        let trent_chain = mallory_chain
            .issue(&mk, &request(&tk, &tp, Role::Member, 365 * DAY))
            .unwrap();
        let (ek, ep) = identity(6, "eve");
        let eve_idc = IdentityCertificate::create(&ek, &ep, "eve", t0())
            .unwrap()
            .der()
            .to_vec();
        Fixture {
            alice: member(a.group(), ak, alice_chain),
            bob,
            carol,
            dave,
            mallory: member(b.group(), mk, mallory_chain),
            trent: member(b.group(), tk, trent_chain),
            a,
            b,
            eve_key: Arc::new(ek),
            eve_idc,
        }
    }

    /// A trust for group A on the fixed clock.
    pub(crate) fn trust_a(&self) -> GroupTrust {
        trust(self.a.group())
    }

    /// A trust for group B on the fixed clock.
    pub(crate) fn trust_b(&self) -> GroupTrust {
        trust(self.b.group())
    }
}

pub(crate) fn trust(group: &PeerName) -> GroupTrust {
    GroupTrust::with_clock(group.clone(), Arc::new(now))
}

/// The tests' configuration: connections that should succeed get [`WAIT`] to connect,
/// to shake hands and to say goodbye (a goodbye ends as soon as the peer hangs up too, so the
/// bound only matters on a loaded machine). A test about a timeout shortens that one.
pub(crate) fn config() -> TransportConfig {
    let mut c = TransportConfig::default();
    c.connect_timeout = WAIT;
    c.handshake_timeout = WAIT;
    c.close_timeout = WAIT;
    c
}

/// Both transports, for the tests that run on each.
pub(crate) const DIALS: [Dial; 2] = [Dial::Tcp, Dial::Quic];

/// [`config`], dialing over `dial`.
pub(crate) fn config_over(dial: Dial) -> TransportConfig {
    let mut c = config();
    c.dial = dial;
    c
}

/// An endpoint on 127.0.0.1 serving `creds` with `trust`.
pub(crate) async fn server(
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: TransportConfig,
) -> (Endpoint, SocketAddr) {
    let ep = Endpoint::bind(&["127.0.0.1:0".parse().unwrap()], config)
        .await
        .unwrap();
    ep.add_group(creds.clone(), trust.clone()).unwrap();
    let addr = ep.local_addrs()[0];
    (ep, addr)
}

/// Connects `who` to `addr` as a member of its own group, trusting that group.
pub(crate) async fn connect(addr: SocketAddr, who: &Member, trust: &GroupTrust) -> Connection {
    Endpoint::connect(addr, &who.creds, trust, &config())
        .await
        .unwrap_or_else(|e| panic!("{} connecting to {addr}: {e:?}", who.peer()))
}

/// [`connect`] over `dial`.
pub(crate) async fn connect_over(
    dial: Dial,
    addr: SocketAddr,
    who: &Member,
    trust: &GroupTrust,
) -> Connection {
    Endpoint::connect(addr, &who.creds, trust, &config_over(dial))
        .await
        .unwrap_or_else(|e| panic!("{} connecting to {addr} over {dial:?}: {e:?}", who.peer()))
}

/// [`connect_tweaked`] over `dial`.
pub(crate) async fn connect_tweaked_over(
    dial: Dial,
    addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    tweaks: ClientTweaks,
) -> Result<Connection, peergroup_transport::ConnectError> {
    peergroup_transport::testing::connect_tweaked(addr, creds, trust, &config_over(dial), &tweaks)
        .await
}

/// Connects with test knobs (and no check that credentials and trust agree).
pub(crate) async fn connect_tweaked(
    addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    tweaks: ClientTweaks,
) -> Result<Connection, peergroup_transport::ConnectError> {
    peergroup_transport::testing::connect_tweaked(addr, creds, trust, &config(), &tweaks).await
}

/// The next refusal the endpoint reports, within [`WAIT`].
pub(crate) async fn next_failure(rx: &mut broadcast::Receiver<AuthFailure>) -> AuthFailure {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Ok(failure)) => failure,
        Ok(Err(e)) => panic!("waited for the endpoint to report a refusal; the channel said {e:?}"),
        Err(_) => panic!("waited {WAIT:?} for the endpoint to report a refusal; none came"),
    }
}

/// Asserts the endpoint reported a refusal of `kind` from a client on `client_ip`.
pub(crate) async fn expect_failure(
    rx: &mut broadcast::Receiver<AuthFailure>,
    kind: RefusalKind,
) -> AuthFailure {
    let failure = next_failure(rx).await;
    assert_eq!(failure.reason.kind, kind, "server-side reason: {failure:?}");
    assert!(failure.addr.ip().is_loopback());
    failure
}

/// Accepts one connection from the endpoint, within [`WAIT`].
pub(crate) async fn accept(ep: &Endpoint) -> Connection {
    match tokio::time::timeout(WAIT, ep.accept()).await {
        Ok(Some(conn)) => conn,
        Ok(None) => panic!("waited for a connection on {ep:?}; the endpoint closed instead"),
        Err(_) => panic!("waited {WAIT:?} for a connection on {ep:?}; none was accepted"),
    }
}
