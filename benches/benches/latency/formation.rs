//! Formation (issue 15, item 2): how long an invited member takes to join and be synchronised,
//! how long a group of four takes until every member sees every other one present, and how
//! long the others take to see a member leave: one that crashes (its runtime is dropped, so
//! its sockets close and it says nothing, as under kill -9) and one that closes its group.
//! Real infrastructures with default settings (but loopback only and no mDNS), each in its
//! own data directory.

use std::time::{Duration, Instant};

use peergroup::{
    Group, GroupSpec, IdentityInfo, Infrastructure, InfrastructureConfig, PeerName, Role,
};

/// Members in one formation run (the creator and three joiners).
pub(crate) const PEERS: usize = 4;
/// Goal: an invitation is turned into a joined, synchronised member within this.
pub(crate) const JOIN_GOAL: Duration = Duration::from_millis(300);
/// Goal: once the last member is ready, every member sees all present within this.
pub(crate) const PRESENT_GOAL: Duration = Duration::from_secs(1);
/// Goal: a member's departure (crash or close) is in every other member's list within this.
pub(crate) const DEPARTURE_GOAL: Duration = Duration::from_secs(2);
/// How long any one step may take before the run fails.
const WAIT: Duration = Duration::from_secs(60);
/// How often the member lists are read.
const POLL: Duration = Duration::from_millis(2);
/// The invitations' lifetime.
const DAY: Duration = Duration::from_secs(86_400);

/// One run's figures.
pub(crate) struct Formation {
    /// Per joiner: from asking for its invitation to `wait_ready` returning.
    pub(crate) joins: Vec<Duration>,
    /// From the last joiner's readiness to every member seeing every other one present.
    pub(crate) present: Duration,
    /// From a member's crash (connections lost, nothing said) to every other list without it.
    pub(crate) crash: Duration,
    /// From a member's `close` to every other member's list without it.
    pub(crate) departure: Duration,
}

struct Peer {
    infra: Infrastructure,
    id: PeerName,
    _dir: tempfile::TempDir,
}

async fn peer(name: &str) -> Peer {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = InfrastructureConfig {
        listen: vec!["127.0.0.1:0".parse().expect("address")],
        discovery: false,
        ..InfrastructureConfig::new(dir.path().join("data"))
    };
    let infra = Infrastructure::start(config).await.expect("infrastructure");
    let id = infra
        .identities()
        .create(name, None)
        .await
        .expect("identity")
        .peer_name()
        .clone();
    Peer {
        infra,
        id,
        _dir: dir,
    }
}

/// Waits until every group in `groups` lists `want` present members.
async fn all_see(groups: &[&Group], want: usize) {
    let wait = async {
        loop {
            let mut all = true;
            for g in groups {
                if g.members(true).await.expect("members").len() != want {
                    all = false;
                    break;
                }
            }
            if all {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    };
    if tokio::time::timeout(WAIT, wait).await.is_err() {
        let mut seen = Vec::new();
        for g in groups {
            seen.push(g.members(true).await.map(|m| m.len()).unwrap_or(0));
        }
        panic!("the member lists did not agree on {want} present in {WAIT:?}: they list {seen:?}");
    }
}

/// Which joiner crashes: it runs on a runtime of its own, dropped to crash it.
const CRASHING: usize = 2;

/// Forms a group of [`PEERS`], then crashes one joiner and closes the last.
pub(crate) async fn form() -> Formation {
    let own = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let creator = peer("Creator").await;
    let name = creator
        .infra
        .create_group(&creator.id, &GroupSpec::new("Formation"))
        .await
        .expect("group");
    let first = creator
        .infra
        .open_group(&creator.id, &name)
        .await
        .expect("open");
    first.connect().await.expect("connect");
    first.wait_ready(WAIT).await.expect("ready");
    let dial = creator.infra.local_addrs()[0];
    let mut peers = vec![creator];
    let mut groups = vec![first];
    let mut joins = Vec::new();
    for i in 1..PEERS {
        let name = format!("Joiner {i}");
        let p = if i == CRASHING {
            own.spawn(async move { peer(&name).await })
                .await
                .expect("peer")
        } else {
            peer(&name).await
        };
        let identity = p.infra.identities().get(&p.id).await.expect("identity");
        let info = IdentityInfo::new(identity.certificate().clone()).to_xml();
        let t = Instant::now();
        let invitation = groups[0]
            .create_invitation(&info, Role::Member, DAY)
            .await
            .expect("invitation");
        let (infra, id) = (p.infra.clone(), p.id.clone());
        let joining = async move {
            let joined = infra.join(&id, &invitation).await.expect("join");
            let g = infra.open_group(&id, &joined).await.expect("open");
            g.connect_to(vec![dial]).await.expect("connect");
            g.wait_ready(WAIT).await.expect("ready");
            g
        };
        let g = if i == CRASHING {
            own.spawn(joining).await.expect("join")
        } else {
            joining.await
        };
        joins.push(t.elapsed());
        peers.push(p);
        groups.push(g);
    }
    let t = Instant::now();
    all_see(&groups.iter().collect::<Vec<_>>(), PEERS).await;
    let present = t.elapsed();

    let t = Instant::now();
    own.shutdown_background();
    let crashed = (groups.remove(CRASHING), peers.remove(CRASHING));
    all_see(&groups.iter().collect::<Vec<_>>(), PEERS - 1).await;
    let crash = t.elapsed();
    drop(crashed);

    let leaving = groups.pop().expect("a joiner");
    let t = Instant::now();
    leaving.close().await.expect("close");
    all_see(&groups.iter().collect::<Vec<_>>(), PEERS - 2).await;
    let departure = t.elapsed();

    for g in groups {
        let _ = g.close().await;
    }
    for p in peers {
        p.infra.shutdown().await;
    }
    Formation {
        joins,
        present,
        crash,
        departure,
    }
}
