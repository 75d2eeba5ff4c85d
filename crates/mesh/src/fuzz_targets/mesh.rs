//! `mesh_signed`: one or two mesh cores of a fixed group driven by neighbors the input
//! plays, whose messages carry validly signed records (and broken ones).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use peergroup_credential_roles::RevocationTarget;
use peergroup_identity::Timestamp;
use peergroup_record_db::reserved::GroupProperties;
use peergroup_record_db::store::MemoryStore;
use peergroup_record_db::sync::{SyncClass, SyncMessage};
use peergroup_record_db::{Database, LocalSigner, NewRecord, Record, RecordUpdate};

use super::fixture::{
    Attrs, Corruption, Fixture, Kind, Life, Payload, T0, Who, new_record, next_version, sign,
};
use crate::MeshConfig;
use crate::core::{ConnId, Core, Event, LocalMember, Output, PeerInfo};
use crate::message::{MeshMessage, NodeId, Reason};

/// Most operations read from one input.
const MAX_OPS: usize = 24;
/// Most messages carried between the two cores after one operation.
const MAX_CARRIED: usize = 512;

/// What the input does.
#[derive(Arbitrary, Debug)]
enum Op {
    /// A neighbor (played by the input, as `who`) connects to a core, or is dialed by it.
    Open {
        core: bool,
        who: Who,
        outbound: bool,
    },
    /// A played neighbor's connection ends.
    Close { link: u8 },
    /// A played neighbor sends a message.
    Send { link: u8, msg: Msg },
    /// The core takes in what arrived (validates and stores the records).
    Flush { core: bool },
    /// Time passes: due timers run, the cores' messages to each other are carried.
    Tick { millis: u16 },
    /// The two cores' messages in flight are lost.
    Lose { count: u8 },
    /// The two cores connect (when both run and are not connected).
    Link,
    /// The application acts on a core.
    Local { core: bool, act: Local },
}

/// A message from a played neighbor.
#[derive(Arbitrary, Debug)]
enum Msg {
    Hello {
        node: u8,
        listen: u8,
    },
    Welcome {
        node: u8,
        referrals: u8,
        skew_secs: i16,
    },
    Refuse {
        reason: u8,
        referrals: u8,
    },
    Disconnect {
        reason: u8,
        referrals: u8,
    },
    SyncRequest,
    /// A record the neighbor signs (new, or a new version of one made before).
    Flood(Spec),
    /// A record made before, again (a duplicate, or a stale version).
    Again(u8),
    /// A broken copy of a record made before.
    Broken {
        base: u8,
        how: Corruption,
    },
    /// Keys: of records made before, stored by the core, or any.
    IHave(Vec<Key>),
    Graft {
        keys: Vec<Key>,
        eager: bool,
    },
    Prune,
    /// Sync records (or the end of a class) for a session number.
    SyncRecords {
        session: u8,
        security: bool,
        records: Vec<u8>,
    },
    SyncDone {
        session: u8,
        security: bool,
    },
    /// Raw bytes as a message.
    Raw(Vec<u8>),
    /// A record made before, pushed on as from a repair (a repush).
    Repush(u8),
}

#[derive(Arbitrary, Debug)]
enum Key {
    Made(u8),
    Stored(u8),
    Any(u64),
}

/// A record a neighbor signs.
#[derive(Arbitrary, Debug)]
struct Spec {
    by: Who,
    kind: Kind,
    attrs: Attrs,
    payload: Payload,
    life: Life,
    /// A new version of the record made before at this index, instead of a new record.
    base: Option<u8>,
    deleted: bool,
}

/// What the application does.
#[derive(Arbitrary, Debug)]
enum Local {
    Create { kind: Kind, payload: Payload },
    Update { pick: u8, payload: Payload },
    Delete { pick: u8 },
    Revoke { who: Who },
    Properties { flags: u8 },
    Presence { listen: u8 },
    Close,
}

/// A connection the input plays the other end of.
struct Played {
    core: usize,
    conn: ConnId,
    who: Who,
}

struct Harness<'f> {
    f: &'f Fixture,
    cores: Vec<Core<MemoryStore>>,
    now: Timestamp,
    played: Vec<Played>,
    /// Connections of each core that are open (not closed by either side).
    open: Vec<BTreeSet<ConnId>>,
    /// Connections each core asked to close: nothing may be sent on them after.
    closed: Vec<BTreeSet<ConnId>>,
    /// The link between the two cores: (core, conn) → (other core, its conn).
    ends: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    in_flight: VecDeque<(usize, ConnId, Option<Vec<u8>>)>,
    next_conn: u64,
    /// Records the played neighbors signed, and the broken ones.
    made: Vec<Record>,
    broken: Vec<Record>,
    nonce: u64,
}

/// One or two mesh cores (the admin's, and a member's when the input asks) of the fixed
/// group, driven by neighbors the input plays: they open and close connections, say hello
/// and welcome (or not), flood records signed with the fixture's keys (new ones, new
/// versions, duplicates, broken copies), announce and ask for keys, prune, request syncs
/// and send sync records; time passes and timers run; the two cores, linked when the input
/// asks, carry each other's messages (some lost); the application creates, updates,
/// deletes, revokes, changes properties and presence, and leaves.
///
/// Checks: nothing panics; every message a core sends encodes and decodes to itself and
/// goes to a connection that is open and that the core did not ask to close; a broken
/// record is never stored, reported or forwarded.
pub fn mesh_signed(data: &[u8]) {
    let Some(f) = Fixture::get() else { return };
    let mut u = Unstructured::new(data);
    let Ok(two) = u.arbitrary::<bool>() else {
        return;
    };
    let Some(mut h) = Harness::new(f, two) else {
        return;
    };
    let mut ops = 0;
    while ops < MAX_OPS && !u.is_empty() {
        let Ok(op) = u.arbitrary::<Op>() else { break };
        h.apply(op);
        ops += 1;
    }
    h.tick(Duration::from_secs(30));
}

fn address(n: u64) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8),
        3587,
    ))
}

impl<'f> Harness<'f> {
    fn new(f: &'f Fixture, two: bool) -> Option<Self> {
        let now = T0.saturating_add(Duration::from_secs(60));
        let admin = f.member(Who::Admin);
        let mut scratch = Database::open(MemoryStore::new(), &f.root).ok()?;
        scratch.adopt_members(&f.known);
        let properties = scratch
            .set_properties(
                LocalSigner {
                    key: &admin.key,
                    chain: &admin.chain,
                },
                &GroupProperties::new("Fuzz group", admin.peer().clone()),
                now,
            )
            .ok()?
            .record;
        let who: &[Who] = if two {
            &[Who::Admin, Who::Alice]
        } else {
            &[Who::Admin]
        };
        let mut cores = Vec::new();
        for (i, w) in who.iter().enumerate() {
            let m = f.member(*w);
            let mut db = Database::open(MemoryStore::new(), &f.root).ok()?;
            db.adopt_members(&f.known);
            db.apply(vec![properties.clone()], now).ok()?;
            let me = LocalMember {
                key: peergroup_identity::KeyPair::from_secret(&m.key.secret()),
                chain: m.chain.clone(),
            };
            let node = NodeId(1 + i as u64);
            let mut core = Core::new(
                db,
                me,
                node,
                MeshConfig::default(),
                crate::rng::Seed::from_u64(i as u64),
                now.into(),
            )
            .ok()?;
            core.set_listen_addrs(vec![address(1 + i as u64)], now.into())
                .ok()?;
            core.start_listening();
            cores.push(core);
        }
        let n = cores.len();
        let mut h = Harness {
            f,
            cores,
            now,
            played: Vec::new(),
            open: vec![BTreeSet::new(); n],
            closed: vec![BTreeSet::new(); n],
            ends: BTreeMap::new(),
            in_flight: VecDeque::new(),
            next_conn: 0,
            made: Vec::new(),
            broken: Vec::new(),
            nonce: 0,
        };
        for i in 0..n {
            h.drain(i);
        }
        h.link();
        Some(h)
    }

    fn conn(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    fn core_index(&self, second: bool) -> usize {
        usize::from(second && self.cores.len() > 1)
    }

    fn info(&self, who: Who, outbound: bool, n: u64) -> PeerInfo {
        let m = self.f.member(who);
        PeerInfo {
            peer: m.peer().clone(),
            addr: address(100 + n),
            outbound,
            chain: Some(m.chain.clone()),
            udp: false,
            relayed: false,
        }
    }

    /// Connects the two cores (as the transport would), when both run and are not linked.
    fn link(&mut self) {
        if self.cores.len() < 2 || !self.ends.is_empty() {
            return;
        }
        let (a, b) = (self.conn(), self.conn());
        self.ends.insert((0, a), (1, b));
        self.ends.insert((1, b), (0, a));
        let now = self.now;
        let to_alice = PeerInfo {
            addr: address(2),
            ..self.info(Who::Alice, true, 0)
        };
        let to_admin = PeerInfo {
            addr: address(1),
            ..self.info(Who::Admin, false, 0)
        };
        self.open[1].insert(b);
        self.cores[1].handle_connected(b, to_admin, now.into());
        self.open[0].insert(a);
        self.cores[0].handle_connected(a, to_alice, now.into());
        self.drain(1);
        self.drain(0);
        self.carry();
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Open {
                core,
                who,
                outbound,
            } => {
                let i = self.core_index(core);
                let conn = self.conn();
                let info = self.info(who, outbound, conn.0);
                self.open[i].insert(conn);
                self.played.push(Played { core: i, conn, who });
                self.cores[i].handle_connected(conn, info, now.into());
                self.drain(i);
            }
            Op::Close { link } => {
                let Some(p) = self.pick_played(link) else {
                    return;
                };
                let (i, conn) = (p.core, p.conn);
                self.open[i].remove(&conn);
                self.cores[i].handle_disconnected(conn, now.into());
                self.drain(i);
            }
            Op::Send { link, msg } => {
                let Some(p) = self.pick_played(link) else {
                    return;
                };
                let (i, conn, who) = (p.core, p.conn, p.who);
                if !self.open[i].contains(&conn) {
                    return;
                }
                let bytes = match self.message(i, who, msg) {
                    Some(m) => m.encode(),
                    None => return,
                };
                self.cores[i].handle_message(conn, &bytes, now.into());
                self.drain(i);
            }
            Op::Flush { core } => {
                let i = self.core_index(core);
                let _ = self.cores[i].flush(now.into());
                self.drain(i);
                self.carry();
            }
            Op::Tick { millis } => self.tick(Duration::from_millis(u64::from(millis) * 10)),
            Op::Lose { count } => {
                for _ in 0..count {
                    if self.in_flight.pop_front().is_none() {
                        break;
                    }
                }
            }
            Op::Link => self.link(),
            Op::Local { core, act } => {
                let i = self.core_index(core);
                self.local(i, act);
                self.drain(i);
                self.carry();
            }
        }
    }

    fn pick_played(&self, link: u8) -> Option<&Played> {
        match self.played.len() {
            0 => None,
            n => self.played.get(usize::from(link) % n),
        }
    }

    fn pick_made(&self, i: u8) -> Option<&Record> {
        match self.made.len() {
            0 => None,
            n => self.made.get(usize::from(i) % n),
        }
    }

    fn key(&self, core: usize, k: Key) -> u64 {
        match k {
            Key::Made(i) => self.pick_made(i).map_or(0, Record::item_key),
            Key::Stored(i) => {
                let keys = self.cores[core].db().item_keys(false);
                match keys.len() {
                    0 => 0,
                    n => keys[usize::from(i) % n],
                }
            }
            Key::Any(k) => k,
        }
    }

    /// The message a played neighbor `who` sends to core `core`.
    fn message(&mut self, core: usize, who: Who, msg: Msg) -> Option<MeshMessage> {
        let reason = |r: u8| match r % 7 {
            0 => Reason::Busy,
            1 => Reason::AlreadyConnected,
            2 => Reason::Leaving,
            3 => Reason::LeastUseful,
            4 => Reason::Closed,
            5 => Reason::ProtocolError,
            _ => Reason::SelfConnection,
        };
        let addrs = |n: u8| (0..u64::from(n % 40)).map(|i| address(200 + i)).collect();
        Some(match msg {
            Msg::Hello { node, listen } => MeshMessage::Hello {
                node: NodeId(u64::from(node % 4)),
                listen: addrs(listen),
            },
            Msg::Welcome {
                node,
                referrals,
                skew_secs,
            } => {
                let t = if skew_secs >= 0 {
                    self.now
                        .saturating_add(Duration::from_secs(skew_secs.unsigned_abs().into()))
                } else {
                    self.now
                        .saturating_sub(Duration::from_secs(skew_secs.unsigned_abs().into()))
                };
                MeshMessage::Welcome {
                    node: NodeId(u64::from(node % 4)),
                    listen: addrs(referrals / 2),
                    peer_time: t,
                    referrals: addrs(referrals),
                }
            }
            Msg::Refuse {
                reason: r,
                referrals,
            } => MeshMessage::Refuse {
                reason: reason(r),
                referrals: addrs(referrals),
            },
            Msg::Disconnect {
                reason: r,
                referrals,
            } => MeshMessage::Disconnect {
                reason: reason(r),
                referrals: addrs(referrals),
            },
            Msg::SyncRequest => MeshMessage::SyncRequest,
            Msg::Flood(spec) => MeshMessage::Flood(self.sign(who, spec)?),
            Msg::Again(i) => MeshMessage::Flood(self.pick_made(i)?.clone()),
            Msg::Repush(i) => MeshMessage::Repush(self.pick_made(i)?.clone()),
            Msg::Broken { base, how } => {
                let nonce = self.nonce as u8;
                let r = how.apply(self.f, self.pick_made(base)?, nonce)?;
                self.nonce += 1;
                self.broken.push(r.clone());
                MeshMessage::Flood(r)
            }
            Msg::IHave(keys) => MeshMessage::IHave(
                keys.into_iter()
                    .take(64)
                    .map(|k| self.key(core, k))
                    .collect(),
            ),
            Msg::Graft { keys, eager } => MeshMessage::Graft {
                keys: keys
                    .into_iter()
                    .take(64)
                    .map(|k| self.key(core, k))
                    .collect(),
                eager,
            },
            Msg::Prune => MeshMessage::Prune,
            Msg::SyncRecords {
                session,
                security,
                records,
            } => MeshMessage::Sync {
                session: u32::from(session % 4),
                message: SyncMessage::Records {
                    class: class(security),
                    records: records
                        .into_iter()
                        .take(16)
                        .filter_map(|i| self.pick_made(i).cloned())
                        .collect(),
                },
            },
            Msg::SyncDone { session, security } => MeshMessage::Sync {
                session: u32::from(session % 4),
                message: SyncMessage::ClassDone {
                    class: class(security),
                },
            },
            Msg::Raw(bytes) => {
                return MeshMessage::decode(&[&[1u8][..], &bytes].concat()).ok();
            }
        })
    }

    /// A record signed by `who` as `spec` says.
    fn sign(&mut self, who: Who, spec: Spec) -> Option<Record> {
        let f = self.f;
        let by = f.member(spec.by);
        let _ = who;
        let base = spec.base.and_then(|i| self.pick_made(i).cloned());
        let mut r = match base {
            Some(b) => next_version(&b, by, 0, self.now)?,
            None => {
                self.nonce += 1;
                let expires = spec.life.expires(self.now, by);
                new_record(
                    f,
                    by,
                    spec.kind.record_type(f),
                    self.nonce.to_be_bytes(),
                    self.now,
                    expires,
                )
            }
        };
        r.attributes = spec.attrs.xml();
        r.payload = spec.payload.bytes();
        r.flags = r.flags.with_deleted(spec.deleted);
        if spec.deleted {
            r.attributes.clear();
            r.payload.clear();
        }
        sign(&mut r, &by.key, &f.group);
        self.made.push(r.clone());
        Some(r)
    }

    fn local(&mut self, i: usize, act: Local) {
        let now = self.now;
        let core = &mut self.cores[i];
        let later = now.saturating_add(Duration::from_secs(3600));
        let mine = || -> Vec<Record> {
            let mut out = Vec::new();
            let _ = core.db().for_each(&mut |r| {
                if !r.is_deleted() && !r.record_type.is_reserved() {
                    out.push(r);
                }
            });
            out
        };
        let pick = |rs: Vec<Record>, p: u8| match rs.len() {
            0 => None,
            n => rs.into_iter().nth(usize::from(p) % n),
        };
        match act {
            Local::Create { kind, payload } => {
                let new = NewRecord {
                    record_type: kind.record_type(self.f),
                    attributes: Attrs::None.xml(),
                    payload: payload.bytes(),
                    expires: later,
                    autorefresh: false,
                };
                let _ = core.create_record(new, now.into());
            }
            Local::Update { pick: p, payload } => {
                if let Some(r) = pick(mine(), p) {
                    let update = RecordUpdate {
                        payload: Some(payload.bytes()),
                        ..RecordUpdate::default()
                    };
                    let _ = core.update_record(r.id, update, now.into());
                }
            }
            Local::Delete { pick: p } => {
                if let Some(r) = pick(mine(), p) {
                    let _ = core.delete_record(r.id, now.into());
                }
            }
            Local::Revoke { who } => {
                let target = RevocationTarget::Peer(self.f.member(who).peer().clone());
                let _ = core.revoke(target, "fuzz", now.into());
            }
            Local::Properties { flags } => {
                let mut p = core.db().properties();
                p.flags = u32::from(flags & 0x7);
                let _ = core.set_properties(&p, now.into());
            }
            Local::Presence { listen } => {
                let addrs = (0..u64::from(listen % 4))
                    .map(|n| address(50 + n))
                    .collect();
                let _ = core.set_listen_addrs(addrs, now.into());
            }
            Local::Close => {
                let _ = core.close(now.into());
            }
        }
    }

    /// Lets `span` pass: timers as they come due (the cores' messages carried after each).
    fn tick(&mut self, span: Duration) {
        let end = self.now.saturating_add(span);
        self.carry();
        for _ in 0..64 {
            let next = self
                .cores
                .iter()
                .filter_map(|c| c.poll_timeout())
                .min()
                // Monotonic instants are the wall time's milliseconds here (`Now::from`).
                .map(|t| Timestamp::from_millis(t.as_millis()))
                .filter(|t| *t <= end);
            let Some(t) = next else { break };
            // A timer due now that sets no later deadline would spin: step the clock.
            self.now = t.max(self.now.saturating_add(Duration::from_millis(1)));
            let now = self.now;
            for i in 0..self.cores.len() {
                if self.cores[i]
                    .poll_timeout()
                    .is_some_and(|d| d.as_millis() <= now.as_millis())
                {
                    let _ = self.cores[i].handle_timeout(now.into());
                    self.drain(i);
                }
            }
            self.carry();
        }
        self.now = self.now.max(end);
    }

    /// Carries the two cores' messages to each other until none is in flight (bounded).
    fn carry(&mut self) {
        for _ in 0..MAX_CARRIED {
            let Some((to, conn, bytes)) = self.in_flight.pop_front() else {
                return;
            };
            let now = self.now;
            match bytes {
                Some(b) => {
                    self.cores[to].handle_message(conn, &b, now.into());
                    let _ = self.cores[to].flush(now.into());
                }
                None => {
                    self.open[to].remove(&conn);
                    self.cores[to].handle_disconnected(conn, now.into());
                }
            }
            self.drain(to);
        }
    }

    /// Takes core `i`'s outputs and events, checking each.
    fn drain(&mut self, i: usize) {
        while let Some(out) = self.cores[i].poll_output() {
            match out {
                Output::Send { conn, message } => {
                    assert!(
                        self.open[i].contains(&conn) && !self.closed[i].contains(&conn),
                        "core {i} sent {} on {conn:?}, which is not open",
                        message.kind()
                    );
                    let bytes = message.encode();
                    assert!(
                        MeshMessage::decode(&bytes).ok().as_ref() == Some(&message),
                        "a message does not decode to itself: {message:?}"
                    );
                    if let MeshMessage::Flood(r) | MeshMessage::Repush(r) = &message {
                        self.not_broken(r, "forwarded");
                    }
                    if let Some(&(to, their)) = self.ends.get(&(i, conn)) {
                        self.in_flight.push_back((to, their, Some(bytes)));
                    }
                }
                Output::Close { conn } => {
                    self.closed[i].insert(conn);
                    self.open[i].remove(&conn);
                    if let Some((to, their)) = self.ends.remove(&(i, conn)) {
                        self.ends.remove(&(to, their));
                        self.in_flight.push_back((to, their, None));
                    }
                }
                Output::Connect { .. }
                | Output::Punch { .. }
                | Output::RelayStream { .. }
                | Output::RelayData { .. }
                | Output::RelayCredit { .. }
                | Output::RelayClosed { .. } => {}
            }
        }
        while let Some(e) = self.cores[i].poll_event() {
            if let Event::Record(change) = &e {
                self.not_broken(&change.record, "reported");
            }
        }
        for b in &self.broken {
            let stored = self.cores[i].db().get_any(b.id).ok().flatten();
            assert!(
                stored.as_ref() != Some(b),
                "a broken record was stored: {b:?}"
            );
        }
    }

    fn not_broken(&self, r: &Record, what: &str) {
        assert!(
            !self.broken.contains(r),
            "a broken record was {what}: {r:?}"
        );
    }
}

fn class(security: bool) -> SyncClass {
    if security {
        SyncClass::Security
    } else {
        SyncClass::Data
    }
}
