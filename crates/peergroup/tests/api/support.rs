//! Shared helpers: peers (each its own infrastructure, data directory and TLS endpoint on
//! loopback), ready-made groups, bounded waits for conditions and events, record forging.
//!
//! No global state: every test builds what it needs through these functions.

#![allow(dead_code, reason = "each test uses a different part of it")]

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use peergroup::{
    EventStream, Group, GroupEvent, GroupSpec, IdentityInfo, Infrastructure, InfrastructureConfig,
    KdfParams, PeerName, Record, RecordType, Role,
};
use peergroup_credential_roles::CertChain;
use peergroup_record_db::store::{Batch, SqliteStore, Store};
use tempfile::TempDir;

/// The bound on one whole test: well above the sum of its waits on a busy machine (quiet, the
/// slowest test takes about 15 s). A test that reaches it hangs somewhere a [`WAIT`] does not
/// cover.
pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(180);
/// The deadline of one wait for something that must happen (an event, a condition reached over
/// the network). Quiet, such waits take milliseconds to a few seconds; the deadline is
/// generous because a busy machine is slow, not broken.
pub(crate) const WAIT: Duration = Duration::from_secs(30);
/// How long to watch for something that must NOT happen (an event, a refused member becoming
/// ready). Short on purpose: load only makes such a check pass more easily, never fail.
pub(crate) const QUIET: Duration = Duration::from_secs(2);
/// How often [`until`] checks its condition.
const POLL: Duration = Duration::from_millis(50);
/// A long record lifetime.
pub(crate) const HOUR: Duration = Duration::from_secs(3600);
/// A long invitation lifetime.
pub(crate) const DAY: Duration = Duration::from_secs(86_400);

/// Runs a test body with the whole-test bound.
pub(crate) async fn bounded<F: Future<Output = ()>>(body: F) {
    if tokio::time::timeout(TEST_TIMEOUT, body).await.is_err() {
        panic!(
            "the test did not finish within {TEST_TIMEOUT:?}: something hangs that no \
             {WAIT:?} wait covers"
        );
    }
}

/// A record type for application notes.
pub(crate) fn note_type() -> RecordType {
    "5f0c3e9a-6b1d-4c2e-9a7f-1e2d3c4b5a60".parse().unwrap()
}

/// A second application record type.
pub(crate) fn chat_type() -> RecordType {
    "0d6a1f4e-8c1b-4a57-9e0a-3f3c2b1a0c00".parse().unwrap()
}

/// The configuration every test peer uses: loopback, any port, no mDNS, the cheap KDF.
pub(crate) fn config(dir: PathBuf) -> InfrastructureConfig {
    InfrastructureConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        discovery: false,
        kdf: KdfParams::INSECURE_FAST,
        ..InfrastructureConfig::new(dir)
    }
}

/// One participant: an infrastructure with its own data directory and one identity.
pub(crate) struct Peer {
    pub(crate) name: String,
    pub(crate) infra: Infrastructure,
    pub(crate) id: PeerName,
    pub(crate) dir: TempDir,
}

impl Peer {
    /// Starts an infrastructure in a fresh directory and creates the identity `name`.
    pub(crate) async fn start(name: &str) -> Peer {
        Peer::start_with(name, |_| {}).await
    }

    /// [`Peer::start`], with the test configuration changed by `tweak`.
    pub(crate) async fn start_with(
        name: &str,
        tweak: impl FnOnce(&mut InfrastructureConfig),
    ) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path().join("data"));
        tweak(&mut cfg);
        let infra = Infrastructure::start(cfg).await.unwrap();
        let id = infra
            .identities()
            .create(name, Some(&name.to_lowercase()))
            .await
            .unwrap()
            .peer_name()
            .clone();
        Peer {
            name: name.to_owned(),
            infra,
            id,
            dir,
        }
    }

    /// The PEERIDENTITYINFO an inviter needs.
    pub(crate) async fn info_xml(&self) -> String {
        let identity = self.infra.identities().get(&self.id).await.unwrap();
        IdentityInfo::new(identity.certificate().clone()).to_xml()
    }

    /// The listening address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.infra.local_addrs()[0]
    }

    /// Opens the group `group` for this peer.
    pub(crate) async fn open(&self, group: &PeerName) -> Group {
        self.infra.open_group(&self.id, group).await.unwrap()
    }

    /// Where this peer keeps its copy of `group`'s record database.
    pub(crate) fn database_path(&self, group: &PeerName) -> PathBuf {
        peergroup_identity::IdentityStore::open(self.infra.identities().root())
            .unwrap()
            .groups_dir(&self.id)
            .join(group.to_string())
            .join("records.sqlite")
    }
}

/// The creator of a new group, opened and connected (ready alone).
pub(crate) async fn creator(name: &str, spec: &GroupSpec) -> (Peer, Group) {
    let peer = Peer::start(name).await;
    let group_name = peer.infra.create_group(&peer.id, spec).await.unwrap();
    let group = peer.open(&group_name).await;
    group.connect().await.unwrap();
    group.wait_ready(WAIT).await.unwrap();
    (peer, group)
}

/// `inviter` invites `peer` with `role`; `peer` joins, opens, connects to the inviter's
/// infrastructure at `dial` and waits until synchronised.
pub(crate) async fn invite_and_connect(
    inviter: &Group,
    dial: SocketAddr,
    peer: &Peer,
    role: Role,
) -> Group {
    let invitation = inviter
        .create_invitation(&peer.info_xml().await, role, DAY)
        .await
        .unwrap();
    let group_name = peer.infra.join(&peer.id, &invitation).await.unwrap();
    assert_eq!(&group_name, inviter.peer_name());
    let group = peer.open(&group_name).await;
    group.connect_to(vec![dial]).await.unwrap();
    group.wait_ready(WAIT).await.unwrap();
    group
}

/// A formed group: the first peer created it, the others joined with the given roles, and
/// every member sees every other one present.
pub(crate) struct Net {
    pub(crate) peers: Vec<Peer>,
    pub(crate) groups: Vec<Group>,
}

impl Net {
    /// `names[0]` creates; `names[i]` joins with `roles[i - 1]`.
    pub(crate) async fn form(names: &[&str], roles: &[Role]) -> Net {
        assert_eq!(names.len(), roles.len() + 1);
        let (first, group) = creator(names[0], &GroupSpec::new("Test group")).await;
        let dial = first.addr();
        let mut peers = vec![first];
        let mut groups = vec![group];
        for (name, role) in names[1..].iter().zip(roles) {
            let peer = Peer::start(name).await;
            let g = invite_and_connect(&groups[0], dial, &peer, *role).await;
            peers.push(peer);
            groups.push(g);
        }
        let net = Net { peers, groups };
        net.wait_all_present().await;
        net
    }

    /// Members with the default role.
    pub(crate) async fn members(names: &[&str]) -> Net {
        let roles = vec![Role::Member; names.len() - 1];
        Net::form(names, &roles).await
    }

    /// Waits until every member lists every member present.
    pub(crate) async fn wait_all_present(&self) {
        let n = self.groups.len();
        until("every member sees all members present", async || {
            let mut present = Vec::new();
            for g in &self.groups {
                present.push(g.members(true).await.unwrap().len());
            }
            if present.iter().all(|&p| p >= n) {
                Ok(())
            } else {
                Err(format!("members present at each of the {n}: {present:?}"))
            }
        })
        .await;
    }

    /// The group's peer name.
    pub(crate) fn name(&self) -> PeerName {
        self.groups[0].peer_name().clone()
    }
}

/// What a condition polled by [`until`] returns: `true` or `Ok(())` when it holds; otherwise
/// `false`, or `Err(what it saw)` for the failure message.
pub(crate) trait Check {
    /// `None` when the condition holds; what was seen instead otherwise.
    fn failure(self) -> Option<String>;
}

impl Check for bool {
    fn failure(self) -> Option<String> {
        (!self).then(|| "the condition was still false".to_owned())
    }
}

impl Check for Result<(), String> {
    fn failure(self) -> Option<String> {
        self.err()
    }
}

/// Polls `cond` every [`POLL`] until it holds; after [`WAIT`], panics saying what it waited
/// for, how long, and what the last check saw.
pub(crate) async fn until<C: Check, F: AsyncFnMut() -> C>(what: &str, mut cond: F) {
    let start = Instant::now();
    let mut checks = 0u32;
    let mut last = None;
    let held = tokio::time::timeout(WAIT, async {
        loop {
            checks += 1;
            match cond().await.failure() {
                None => return,
                Some(seen) => last = Some(seen),
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    if held.is_err() {
        match last {
            Some(seen) => panic!(
                "waited {:?} until {what}; after {checks} checks, the last saw: {seen}",
                start.elapsed()
            ),
            None => panic!(
                "waited {:?} until {what}; the first check never answered",
                start.elapsed()
            ),
        }
    }
}

/// The events a wait went past, for its failure message: how many, and the last few.
#[derive(Default)]
struct Skipped {
    count: usize,
    last: VecDeque<GroupEvent>,
}

impl Skipped {
    const KEEP: usize = 8;

    fn push(&mut self, e: &GroupEvent) {
        self.count += 1;
        if self.last.len() == Self::KEEP {
            self.last.pop_front();
        }
        self.last.push_back(e.clone());
    }
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.count == 0 {
            return write!(f, "no other event");
        }
        write!(f, "{} other event(s)", self.count)?;
        if self.count > self.last.len() {
            write!(f, ", the last {}", self.last.len())?;
        }
        write!(f, ":")?;
        for e in &self.last {
            write!(f, "\n  {}", summary(e))?;
        }
        Ok(())
    }
}

/// One event in a line, without payloads.
pub(crate) fn summary(e: &GroupEvent) -> String {
    match e {
        GroupEvent::RecordChanged { change, record } => format!(
            "RecordChanged {change:?} {} v{} type {} by {} ({} bytes)",
            record.id,
            record.version,
            record.record_type,
            record.signer(),
            record.payload.len()
        ),
        GroupEvent::IncomingData {
            id,
            peer,
            data_type,
            data,
        } => format!(
            "IncomingData {id:?} from {peer}: {} bytes of {data_type}",
            data.len()
        ),
        other => {
            let text = format!("{other:?}");
            if text.chars().count() > 300 {
                format!("{}…", text.chars().take(300).collect::<String>())
            } else {
                text
            }
        }
    }
}

/// The next event of `stream` for which `pick` returns something; panics after [`WAIT`], or
/// when the stream ends, saying what it waited for, how long, and which events it saw instead.
pub(crate) async fn expect<T>(
    stream: &mut EventStream,
    what: &str,
    mut pick: impl FnMut(&GroupEvent) -> Option<T>,
) -> T {
    let start = Instant::now();
    let mut skipped = Skipped::default();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(e) = stream.next().await {
            if let Some(t) = pick(&e) {
                return Some(t);
            }
            skipped.push(&e);
        }
        None
    })
    .await;
    match found {
        Ok(Some(t)) => t,
        Ok(None) => panic!(
            "the event stream ended after {:?}, before {what}; saw {skipped}",
            start.elapsed()
        ),
        Err(_) => panic!("waited {:?} for {what}; saw {skipped}", start.elapsed()),
    }
}

/// Asserts that no event of `stream` matching `bad` arrives within [`QUIET`].
pub(crate) async fn expect_none(
    stream: &mut EventStream,
    what: &str,
    mut bad: impl FnMut(&GroupEvent) -> bool,
) {
    let start = Instant::now();
    let seen = tokio::time::timeout(QUIET, async {
        while let Some(e) = stream.next().await {
            if bad(&e) {
                return Some(e);
            }
        }
        None
    })
    .await;
    if let Ok(Some(e)) = seen {
        panic!(
            "watched {QUIET:?} for no {what}; saw one after {:?}: {e:?}",
            start.elapsed()
        );
    }
}

/// The error kind of a result that must be an error.
pub(crate) fn kind_of<T: std::fmt::Debug>(r: peergroup::Result<T>) -> peergroup::ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.kind(),
    }
}

/// An address on loopback where nothing listens.
pub(crate) fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `peer`'s own certificate chain in `group`, as stored.
pub(crate) async fn chain_of(peer: &Peer, group: &PeerName) -> CertChain {
    let xml = peer
        .infra
        .export_config(&peer.id, group, b"pw")
        .await
        .unwrap();
    peergroup_invitation_xml::GroupConfig::parse(&xml)
        .unwrap()
        .chain
}

/// The next version of `record`, changed by `change` and signed by `peer` (whatever it may
/// do): what a misbehaving member could put on the wire.
pub(crate) async fn forge_version(
    record: &Record,
    peer: &Peer,
    group: &PeerName,
    change: impl FnOnce(&mut Record),
) -> Record {
    let identity = peer.infra.identities().get(&peer.id).await.unwrap();
    let chain = chain_of(peer, group).await;
    let mut r = record.clone();
    r.version += 1;
    r.modified_by = Some(peer.id.clone());
    r.last_modified = peergroup::Timestamp::now().max(
        record
            .last_modified
            .saturating_add(Duration::from_millis(1)),
    );
    r.security.modifier_serial = chain.leaf().serial().to_vec();
    change(&mut r);
    r.security.signature = identity.key().sign(&r.signed_bytes(group));
    r
}

/// The digest and record count of `peer`'s stored copy of `group` (closed), read straight
/// from its database file.
pub(crate) async fn stored_digest(peer: &Peer, group: &PeerName) -> ([u8; 32], usize) {
    let store = SqliteStore::open(&peer.database_path(group)).unwrap();
    let db = peergroup_record_db::Database::open(store, &chain_of(peer, group).await).unwrap();
    (db.digest(), db.len())
}

/// Writes `records` straight into `peer`'s (closed) copy of `group`, past all validation:
/// the next time it connects, it offers them to the others.
pub(crate) fn inject(peer: &Peer, group: &PeerName, records: Vec<Record>) {
    let mut store = SqliteStore::open(&peer.database_path(group)).unwrap();
    store
        .commit(&Batch {
            put: records,
            ..Batch::default()
        })
        .unwrap();
}

/// A member living in its own runtime on its own thread, so that it can die abruptly: no
/// goodbye, no presence withdrawn, sockets just gone (as kill -9 would leave it).
pub(crate) struct Crashable {
    pub(crate) id: PeerName,
    pub(crate) addr: SocketAddr,
    die: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Crashable {
    /// Invited by `inviter` (reachable at `dial`), joined, connected and synchronised.
    pub(crate) async fn join(inviter: &Group, dial: SocketAddr) -> Crashable {
        use tokio::sync::oneshot;
        let (info_tx, info_rx) = oneshot::channel::<String>();
        let (inv_tx, inv_rx) = oneshot::channel::<String>();
        let (ready_tx, ready_rx) = oneshot::channel::<(PeerName, SocketAddr)>();
        let (die_tx, die_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let dir = rt.block_on(async move {
                let peer = Peer::start("Crash").await;
                info_tx.send(peer.info_xml().await).unwrap();
                let invitation = inv_rx.await.unwrap();
                let name = peer.infra.join(&peer.id, &invitation).await.unwrap();
                let g = peer.open(&name).await;
                g.connect_to(vec![dial]).await.unwrap();
                g.wait_ready(WAIT).await.unwrap();
                ready_tx.send((peer.id.clone(), peer.addr())).unwrap();
                let _ = die_rx.await;
                // No close, no shutdown: dropping the runtime below is the crash.
                std::mem::forget(g);
                std::mem::forget(peer.infra);
                peer.dir
            });
            rt.shutdown_background();
            drop(dir);
        });
        let info = info_rx
            .await
            .expect("the crashable member's thread died before it had an identity (see its panic)");
        let invitation = inviter
            .create_invitation(&info, Role::Member, DAY)
            .await
            .unwrap();
        inv_tx.send(invitation).unwrap();
        // Bounded: the thread waits at most WAIT for readiness, and panics (dropping the
        // sender) if it is not ready by then.
        let (id, addr) = ready_rx
            .await
            .expect("the crashable member never got ready (see its thread's panic)");
        Crashable {
            id,
            addr,
            die: Some(die_tx),
            thread: Some(thread),
        }
    }

    /// Dies now.
    pub(crate) fn crash(&mut self) {
        if let Some(die) = self.die.take() {
            let _ = die.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Crashable {
    fn drop(&mut self) {
        if let Some(die) = self.die.take() {
            let _ = die.send(());
        }
    }
}
