//! Joining from behind a NAT (issue 14, part 5), through the `peergroup` facade as an
//! application would: the public member P created the group; member I, behind one NAT and
//! linked to P, invites newcomer N, behind another NAT. N is given nothing but the
//! invitation. I's own addresses are behind its NAT; the invitation also carries the members
//! I reached at their listen addresses (P), so N joins through P, syncs, and meets I: by a
//! hole punch where the NATs allow one, else through a link P relays.
//!
//! Homes are prepared offline in the parent (identities, the group, I's membership); each
//! member then runs as a child process in its namespace.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peergroup::{
    Dial, GroupSpec, IdentityInfo, Infrastructure, InfrastructureConfig, Invitation, KdfParams,
    PeerName, RecordType, Role,
};

use super::{Kind, PUBLIC, World};

/// The record type the members publish.
fn note_type() -> RecordType {
    "7e57da7a-0000-4000-8000-00000000000a".parse().unwrap()
}

/// How long a newcomer is given to join and meet the inviter.
const JOIN_WAIT: Duration = Duration::from_secs(15);
/// The goal: the inviter's record at the newcomer within this of its start.
pub(super) const JOIN_GOAL: Duration = Duration::from_secs(3);
/// How long the inviter is given to link to the public member and write the invitation.
const INVITE_WAIT: Duration = Duration::from_secs(20);
/// A record's lifetime (inside the members' day).
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn config(home: &Path, listen: SocketAddr) -> InfrastructureConfig {
    let mut c = InfrastructureConfig::new(home);
    c.listen = vec![listen];
    c.discovery = false;
    c.port_fallback = false;
    c.kdf = KdfParams::INSECURE_FAST;
    c.transport.dial = Dial::QuicThenTcp;
    c
}

/// What the parent prepared: the group, and each member's identity.
struct Prepared {
    group: PeerName,
    p: PeerName,
    i: PeerName,
    n: PeerName,
}

/// Offline: P creates the group and invites I as an inviting member; I joins; N makes its
/// identity and writes its PEERIDENTITYINFO for I.
async fn prepare(dir: &Path) -> Prepared {
    let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let start = |who: &str| Infrastructure::start(config(&dir.join(who), lo));
    let (ip, ii, inn) = (
        start("p").await.unwrap(),
        start("i").await.unwrap(),
        start("n").await.unwrap(),
    );
    let id = |infra: &Infrastructure, name: &str| {
        let infra = infra.clone();
        let name = name.to_owned();
        async move {
            infra
                .identities()
                .create(&name, None)
                .await
                .unwrap()
                .peer_name()
                .clone()
        }
    };
    let (p, i, n) = (id(&ip, "P").await, id(&ii, "I").await, id(&inn, "N").await);
    let group = ip
        .create_group(&p, &GroupSpec::new("Behind NATs"))
        .await
        .unwrap();
    let info = |infra: &Infrastructure, who: PeerName| {
        let infra = infra.clone();
        async move {
            let identity = infra.identities().get(&who).await.unwrap();
            IdentityInfo::new(identity.certificate().clone()).to_xml()
        }
    };
    let opened = ip.open_group(&p, &group).await.unwrap();
    let invitation = opened
        .create_invitation(&info(&ii, i.clone()).await, Role::InvitingMember, DAY)
        .await
        .unwrap();
    opened.close().await.unwrap();
    ii.join(&i, &invitation).await.unwrap();
    std::fs::write(dir.join("n.info"), info(&inn, n.clone()).await).unwrap();
    for infra in [ip, ii, inn] {
        infra.shutdown().await;
    }
    Prepared { group, p, i, n }
}

/// The child side: member `role` (p, i or n) of the prepared group.
#[test]
#[ignore = "run by nat_matrix as a child process"]
fn nat_join_process() {
    let Ok(spec) = std::env::var("PEERGROUP_NAT_JOIN") else {
        return;
    };
    let f: Vec<&str> = spec.split(',').collect();
    let (role, dir, bind) = (f[0], PathBuf::from(f[1]), f[2].parse().unwrap());
    let (group, me): (PeerName, PeerName) = (f[3].parse().unwrap(), f[4].parse().unwrap());
    let public: Option<SocketAddr> = f.get(5).map(|a| a.parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let infra = Infrastructure::start(config(&dir.join(role), bind))
            .await
            .unwrap();
        if role == "n" {
            // Nothing but the invitation I wrote.
            let path = dir.join("n.invitation");
            while !path.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let xml = std::fs::read_to_string(&path).unwrap();
            infra.join(&me, &xml).await.unwrap();
            println!("JOINED");
        }
        let group = infra.open_group(&me, &group).await.unwrap();
        match public {
            Some(p) => group.connect_to(vec![p]).await.unwrap(),
            None => group.connect().await.unwrap(),
        }
        let mut stop = super::stdin_closed();
        let (mut published, mut invited) = (false, role != "i");
        loop {
            let links = group.neighbor_connections().await.unwrap_or_default();
            let ready = group.status().synchronized;
            if ready && !published {
                group
                    .add_record(note_type(), "", format!("from {role}").into_bytes(), HOUR)
                    .await
                    .unwrap();
                published = true;
            }
            // I invites once it is linked to P (so the invitation can name P).
            if !invited && published && !links.is_empty() {
                let info = std::fs::read_to_string(dir.join("n.info")).unwrap();
                let xml = group
                    .create_invitation(&info, Role::Member, DAY)
                    .await
                    .unwrap();
                let tmp = dir.join("n.invitation.tmp");
                std::fs::write(&tmp, &xml).unwrap();
                std::fs::rename(&tmp, dir.join("n.invitation")).unwrap();
                invited = true;
            }
            let notes: Vec<String> = group
                .records(note_type())
                .await
                .unwrap_or_default()
                .iter()
                .map(|r| String::from_utf8_lossy(&r.payload).replace(' ', "_"))
                .collect();
            let links: Vec<String> = links
                .iter()
                .map(|c| format!("{}@{}", c.peer, c.addr))
                .collect();
            println!("STATE {} {}", notes.join("+"), links.join(" "));
            tokio::select! {
                _ = &mut stop => break,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let _ = group.close().await;
        let _ = infra.shutdown().await;
    });
}

/// What a child last said.
#[derive(Clone, Debug, Default)]
struct State {
    joined: bool,
    notes: Vec<String>,
    /// Peer names it has a link to, and at which address.
    links: Vec<(String, SocketAddr)>,
}

struct Proc {
    child: Child,
    state: Arc<Mutex<State>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        super::stop_child(&mut self.child);
    }
}

fn spawn(ns: &str, spec: String) -> Proc {
    let (child, stdout) = super::child_process(
        ns,
        "nat::join::nat_join_process",
        "PEERGROUP_NAT_JOIN",
        spec,
    );
    let state = Arc::new(Mutex::new(State::default()));
    let shared = state.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if line.contains("JOINED") {
                shared.lock().unwrap().joined = true;
            }
            let Some((_, s)) = line.split_once("STATE ") else {
                continue;
            };
            let mut f = s.split(' ');
            let notes = f
                .next()
                .map(|n| {
                    n.split('+')
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let links = f
                .filter_map(|l| {
                    let (m, a) = l.split_once('@')?;
                    Some((m.to_owned(), a.parse().ok()?))
                })
                .collect();
            let mut st = shared.lock().unwrap();
            st.notes = notes;
            st.links = links;
        }
    });
    Proc { child, state }
}

/// One scenario's outcome.
pub(super) struct Joined {
    /// The invitation's addresses, and whether P's is among them.
    pub(super) addresses: Vec<SocketAddr>,
    pub(super) names_public: bool,
    /// From N's start: joined, I's record held, and the N–I link (direct or through P).
    pub(super) joined: Option<Duration>,
    pub(super) record: Option<Duration>,
    pub(super) direct: Option<Duration>,
    pub(super) relayed: Option<Duration>,
    pub(super) seen: String,
}

/// I behind a NAT of kind `inviter` invites N behind one of kind `newcomer`.
pub(super) fn run(world: &World, inviter: Kind, newcomer: Kind, port: u16) -> Joined {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let prepared = rt.block_on(prepare(dir.path()));
    drop(rt);
    let public: SocketAddr = format!("{PUBLIC}:{port}").parse().unwrap();
    let spec = |role: &str, bind: String, me: &PeerName, dial: Option<SocketAddr>| {
        let mut s = format!(
            "{role},{},{bind},{},{me}",
            dir.path().display(),
            prepared.group
        );
        if let Some(d) = dial {
            s.push_str(&format!(",{d}"));
        }
        s
    };
    let p = spawn(
        &world.ns("p"),
        spec("p", public.to_string(), &prepared.p, None),
    );
    let (ri, rn) = (World::router(inviter, 0), World::router(newcomer, 1));
    let bind = |r: usize| format!("10.{r}.0.2:{port}");
    let i = spawn(
        &world.host_ns(ri),
        spec("i", bind(ri), &prepared.i, Some(public)),
    );
    // I writes the invitation once it is linked to P.
    let invitation = dir.path().join("n.invitation");
    let deadline = Instant::now() + INVITE_WAIT;
    while !invitation.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let addresses = std::fs::read_to_string(&invitation)
        .ok()
        .and_then(|xml| Invitation::parse(&xml).ok())
        .map(|inv| inv.addresses().as_slice().to_vec())
        .unwrap_or_default();
    let start = Instant::now();
    let n = spawn(&world.host_ns(rn), spec("n", bind(rn), &prepared.n, None));
    let (mut joined, mut record, mut direct, mut relayed) = (None, None, None, None);
    let i_name = prepared.i.to_string();
    while start.elapsed() < JOIN_WAIT && (record.is_none() || (direct.or(relayed)).is_none()) {
        let st = n.state.lock().unwrap().clone();
        if joined.is_none() && st.joined {
            joined = Some(start.elapsed());
        }
        if record.is_none() && st.notes.iter().any(|x| x == "from_i") {
            record = Some(start.elapsed());
        }
        for (peer, at) in &st.links {
            if *peer == i_name {
                let slot = if *at == public {
                    &mut relayed
                } else {
                    &mut direct
                };
                slot.get_or_insert(start.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = [("P", &p), ("I", &i), ("N", &n)]
        .iter()
        .map(|(w, m)| format!("{w}: {:?}", m.state.lock().unwrap()))
        .collect::<Vec<_>>()
        .join("; ");
    drop((n, i, p));
    Joined {
        names_public: addresses.contains(&public),
        addresses,
        joined,
        record,
        direct,
        relayed,
        seen,
    }
}
