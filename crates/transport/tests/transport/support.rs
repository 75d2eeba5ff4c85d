//! Test groups and helpers: group A (admin Alice; members Bob, Carol; Dave, whose membership
//! has expired), group B (admin Mallory, member Trent), and Eve, who has only her own
//! identity certificate. Every trust reads a fixed clock, two days after the certificates
//! were issued.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, IdentityCertificate, KeyPair, PeerName, Timestamp};
use peergroup_transport::testing::ClientTweaks;
use peergroup_transport::{
    AuthFailure, Connection, Endpoint, GroupCredentials, GroupTrust, RefusalKind, TransportConfig,
};
use tokio::sync::broadcast;

pub(crate) const DAY: Duration = Duration::from_secs(86_400);

/// When certificates start.
pub(crate) fn t0() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

/// What every trust's clock says.
pub(crate) fn now() -> Timestamp {
    t0().saturating_add(2 * DAY)
}

/// Runs a test body with an overall bound, so nothing can hang.
pub(crate) async fn bounded<F: Future>(f: F) -> F::Output {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test took longer than 30 s")
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

/// A short, test-friendly configuration (timeouts of seconds, not tens of seconds).
pub(crate) fn config() -> TransportConfig {
    let mut c = TransportConfig::default();
    c.connect_timeout = Duration::from_secs(5);
    c.handshake_timeout = Duration::from_secs(5);
    c.close_timeout = Duration::from_secs(1);
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
        .unwrap()
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

/// The next refusal the endpoint reports.
pub(crate) async fn next_failure(rx: &mut broadcast::Receiver<AuthFailure>) -> AuthFailure {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no auth failure reported")
        .expect("auth failure channel closed")
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

/// Accepts one connection from the endpoint.
pub(crate) async fn accept(ep: &Endpoint) -> Connection {
    tokio::time::timeout(Duration::from_secs(10), ep.accept())
        .await
        .expect("no connection accepted")
        .expect("endpoint closed")
}
