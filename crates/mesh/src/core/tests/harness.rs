//! A few cores over memory stores, wired to each other on a virtual clock.
//!
//! [`Net::link`] opens a connection as the transport would (both ends told who the other is,
//! with its chain); outputs are carried in order, every message encoded and decoded as on
//! the wire; a `Close` output ends the connection at the other end after what was sent
//! before it; timers run as the virtual clock passes them.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
use peergroup_record_db::reserved::GroupProperties;
use peergroup_record_db::store::MemoryStore;
use peergroup_record_db::{Database, LocalSigner};

use crate::MeshConfig;
use crate::core::{ConnId, Core, Event, LocalMember, Output, PeerInfo};
use crate::message::{MeshMessage, NodeId};
use crate::time::{Mono, Now};

/// What travels between two cores.
enum Wire {
    Message(Vec<u8>),
    Closed,
}

pub(crate) struct Net {
    cores: Vec<Core<MemoryStore>>,
    chains: Vec<CertChain>,
    events: Vec<Vec<Event>>,
    sent: Vec<Vec<(ConnId, MeshMessage)>>,
    /// Hole-punch dials each node asked for, with when.
    punched: Vec<Vec<(SocketAddr, Mono)>>,
    /// The plain dials each node asked for, with when.
    dialed: Vec<Vec<(SocketAddr, Mono)>>,
    /// For each of those dials, whether the node takes TLS's server part over TCP.
    punch_roles: Vec<Vec<bool>>,
    /// Relayed-stream outputs each node gave.
    relay_out: Vec<Vec<Output>>,
    /// Whether the links opened now are relayed ([`Net::link_relayed`]).
    relayed: bool,
    /// Links made now from behind a NAT run over TCP (see [`Net::link_from_nat_tcp`]).
    tcp: bool,
    /// Errors the timers reported (node, error), as the driver would log them.
    pub(crate) timer_errors: Vec<(usize, String)>,
    /// (node, its connection) → (the other node, its end of the connection).
    ends: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    in_flight: VecDeque<(usize, ConnId, Wire)>,
    next_conn: u64,
    /// The monotonic clock, and the wall clock (which [`Net::step_wall_back`] can move back).
    mono: Mono,
    wall: Timestamp,
    /// Messages lost on the way: (sender, kind of message) → how many more to lose.
    losses: BTreeMap<(usize, &'static str), usize>,
}

pub(crate) fn address(i: usize) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 0, i as u8 + 1),
        3587,
    ))
}

impl Net {
    /// `n` members of a fresh group (member 0 the creator, an admin), each a core online.
    pub(crate) fn new(n: usize) -> Self {
        Self::with_lifetimes(n, |_| Duration::from_secs(365 * 86_400))
    }

    /// As [`Net::new`], member `i`'s certificate valid for `lifetime(i)` from the start.
    pub(crate) fn with_lifetimes(n: usize, lifetime: impl Fn(usize) -> Duration) -> Self {
        // Every node publishes its presence, as groups did before they could bound it: the
        // flooding tests count the presence floods of the mesh's formation.
        Self::with(n, lifetime, GroupProperties::ALL_PRESENCE)
    }

    /// As [`Net::new`], in a group whose `max_presence` is `max`.
    pub(crate) fn with_max_presence(n: usize, max: u32) -> Self {
        Self::with(n, |_| Duration::from_secs(365 * 86_400), max)
    }

    fn with(n: usize, lifetime: impl Fn(usize) -> Duration, max_presence: u32) -> Self {
        let now = Timestamp::from_secs(1_800_000_000);
        let key = |i: usize| KeyPair::from_test_seed(7_000 + i as u64);
        let classifier = |i: usize| Classifier::new(&format!("node{i}")).unwrap();
        let peer = |i: usize| PeerName::new(&key(i).public(), classifier(i));
        let root = GroupRoot::with_key(
            KeyPair::from_test_seed(6_999),
            "Core test",
            Classifier::new("coretest").unwrap(),
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
            not_after: now.saturating_add(lifetime(i)),
        };
        let admin = root.issue(&request(0, Role::Admin)).unwrap();
        let mut chains = vec![admin.clone()];
        for i in 1..n {
            chains.push(admin.issue(&key(0), &request(i, Role::Member)).unwrap());
        }
        let mut scratch = Database::open(MemoryStore::new(), root.chain()).unwrap();
        scratch.learn_member(&admin).unwrap();
        let properties = scratch
            .set_properties(
                LocalSigner {
                    key: &key(0),
                    chain: &admin,
                },
                &GroupProperties {
                    max_presence,
                    ..GroupProperties::new("Core test", peer(0))
                },
                now,
            )
            .unwrap()
            .record;
        let mut cores = Vec::new();
        for (i, chain) in chains.iter().enumerate() {
            let mut db = Database::open(MemoryStore::new(), root.chain()).unwrap();
            db.learn_member(&admin).unwrap();
            db.apply(vec![properties.clone()], now).unwrap();
            let me = LocalMember {
                key: key(i),
                chain: chain.clone(),
            };
            let at = Now::new(Mono::from_millis(0), now);
            let mut core = Core::new(
                db,
                me,
                NodeId(100 + i as u64),
                MeshConfig::default(),
                crate::rng::Seed::from_u64(i as u64),
                at,
            )
            .unwrap();
            core.set_listen_addrs(vec![address(i)], at).unwrap();
            core.start_listening();
            cores.push(core);
        }
        let events = vec![Vec::new(); cores.len()];
        let sent = vec![Vec::new(); cores.len()];
        let punched = vec![Vec::new(); cores.len()];
        let dialed = vec![Vec::new(); cores.len()];
        let punch_roles = vec![Vec::new(); cores.len()];
        let relay_out = vec![Vec::new(); cores.len()];
        let mut net = Net {
            cores,
            chains,
            events,
            sent,
            punch_roles,
            punched,
            dialed,
            relay_out,
            relayed: false,
            tcp: false,
            timer_errors: Vec::new(),
            ends: BTreeMap::new(),
            in_flight: VecDeque::new(),
            next_conn: 1,
            mono: Mono::from_millis(0),
            wall: now,
            losses: BTreeMap::new(),
        };
        for i in 0..n {
            net.pump(i);
        }
        net
    }

    pub(crate) fn core(&self, i: usize) -> &Core<MemoryStore> {
        &self.cores[i]
    }

    /// Runs a local operation on node `i` at the current instant, then carries what it sent.
    pub(crate) fn act<T>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Core<MemoryStore>, Now) -> T,
    ) -> T {
        let now = self.now();
        let out = f(&mut self.cores[i], now);
        self.pump(i);
        self.settle();
        out
    }

    /// Both clocks now.
    pub(crate) fn now(&self) -> Now {
        Now::new(self.mono, self.wall)
    }

    /// The wall clock steps back by `by` (an NTP correction, say); the monotonic one does not.
    pub(crate) fn step_wall_back(&mut self, by: Duration) {
        self.wall = self.wall.saturating_sub(by);
    }

    /// Messages node `i` sent since the last call (decoded), by connection.
    pub(crate) fn sent(&mut self, i: usize) -> Vec<(ConnId, MeshMessage)> {
        std::mem::take(&mut self.sent[i])
    }

    /// The plain dials node `i` asked for since the last call, with when (the test links
    /// the nodes it wants linked).
    pub(crate) fn dialed(&mut self, i: usize) -> Vec<(SocketAddr, Mono)> {
        std::mem::take(&mut self.dialed[i])
    }

    /// The hole-punch dials node `i` asked for since the last call, with when.
    pub(crate) fn punched(&mut self, i: usize) -> Vec<(SocketAddr, Mono)> {
        self.punch_roles[i].clear();
        std::mem::take(&mut self.punched[i])
    }

    /// The punch dials node `i` asked for since last asked, with whether it takes TLS's
    /// server part over TCP (clears them, as [`Net::punched`] does).
    pub(crate) fn punched_roles(&mut self, i: usize) -> Vec<(SocketAddr, bool)> {
        let roles = std::mem::take(&mut self.punch_roles[i]);
        std::mem::take(&mut self.punched[i])
            .into_iter()
            .map(|(a, _)| a)
            .zip(roles)
            .collect()
    }

    /// The relayed-stream outputs node `i` gave since the last call.
    pub(crate) fn relay_out(&mut self, i: usize) -> Vec<Output> {
        self.pump(i);
        std::mem::take(&mut self.relay_out[i])
    }

    pub(crate) fn peer(&self, i: usize) -> PeerName {
        self.chains[i].leaf().subject_peer().clone()
    }

    /// The events node `i` reported since the last call.
    pub(crate) fn events(&mut self, i: usize) -> Vec<Event> {
        self.pump(i);
        std::mem::take(&mut self.events[i])
    }

    /// Opens a connection from `dialer` to `acceptor` as the transport would; returns each
    /// end's connection id.
    pub(crate) fn link(&mut self, dialer: usize, acceptor: usize) -> (ConnId, ConnId) {
        self.link_with(dialer, acceptor, None)
    }

    /// As [`Net::link`], for a link another member relays (the stream is the test's).
    pub(crate) fn link_relayed(&mut self, dialer: usize, acceptor: usize) -> (ConnId, ConnId) {
        self.relayed = true;
        let ends = self.link_with(dialer, acceptor, None);
        self.relayed = false;
        ends
    }

    /// What the transport says of node `of` at a new connection.
    fn info(&self, of: usize, outbound: bool, udp: bool) -> PeerInfo {
        PeerInfo {
            peer: self.peer(of),
            addr: address(of),
            outbound,
            chain: Some(self.chains[of].clone()),
            udp,
            relayed: self.relayed,
        }
    }

    /// Opens connections both ways between `a` and `b` at once, as a hole punch does, before
    /// either handshake is answered; returns (a's end, b's end) of the a-dialed one, then of
    /// the b-dialed one.
    pub(crate) fn link_crossed(&mut self, a: usize, b: usize) -> [(ConnId, ConnId); 2] {
        let (a1, b1, b2, a2) = (
            self.conn_id(),
            self.conn_id(),
            self.conn_id(),
            self.conn_id(),
        );
        self.ends.insert((a, a1), (b, b1));
        self.ends.insert((b, b1), (a, a1));
        self.ends.insert((b, b2), (a, a2));
        self.ends.insert((a, a2), (b, b2));
        let now = self.now();
        let (to_b, to_a) = (self.info(b, true, true), self.info(a, true, true));
        let (from_a, from_b) = (self.info(a, false, true), self.info(b, false, true));
        self.cores[a].handle_connected(a1, to_b, now);
        self.cores[b].handle_connected(b2, to_a, now);
        self.cores[b].handle_connected(b1, from_a, now);
        self.cores[a].handle_connected(a2, from_b, now);
        self.pump(a);
        self.pump(b);
        self.settle();
        [(a1, b1), (a2, b2)]
    }

    /// Like [`Net::link`], over UDP from behind a NAT: the acceptor sees the dialer at
    /// `seen` (its NAT's mapping), not at its own address.
    pub(crate) fn link_from_nat(
        &mut self,
        dialer: usize,
        acceptor: usize,
        seen: SocketAddr,
    ) -> (ConnId, ConnId) {
        self.link_with(dialer, acceptor, Some(seen))
    }

    /// Like [`Net::link_from_nat`], over TCP: the acceptor sees the dialer at `seen`, a port
    /// of its NAT nobody can dial.
    pub(crate) fn link_from_nat_tcp(
        &mut self,
        dialer: usize,
        acceptor: usize,
        seen: SocketAddr,
    ) -> (ConnId, ConnId) {
        self.tcp = true;
        let ends = self.link_with(dialer, acceptor, Some(seen));
        self.tcp = false;
        ends
    }

    fn link_with(
        &mut self,
        dialer: usize,
        acceptor: usize,
        seen: Option<SocketAddr>,
    ) -> (ConnId, ConnId) {
        let (a, b) = (self.conn_id(), self.conn_id());
        self.ends.insert((dialer, a), (acceptor, b));
        self.ends.insert((acceptor, b), (dialer, a));
        let now = self.now();
        let udp = seen.is_some() && !self.tcp;
        let to_acceptor = self.info(acceptor, true, udp);
        let to_dialer = PeerInfo {
            addr: seen.unwrap_or(address(dialer)),
            ..self.info(dialer, false, udp)
        };
        self.cores[acceptor].handle_connected(b, to_dialer, now);
        self.cores[dialer].handle_connected(a, to_acceptor, now);
        self.pump(acceptor);
        self.pump(dialer);
        self.settle();
        (a, b)
    }

    /// Loses the next `count` messages of `kind` ([`MeshMessage::kind`]) that node `from`
    /// sends, on any connection (they still count as sent).
    pub(crate) fn lose(&mut self, from: usize, kind: &'static str, count: usize) {
        self.losses.insert((from, kind), count);
    }

    /// Whether node `i` holds the record with item key `key`.
    pub(crate) fn has(&self, i: usize, key: u64) -> bool {
        self.cores[i].db().contains_key(key)
    }

    /// Hands node `i` a message on its connection `conn`, as if its neighbor had sent it.
    pub(crate) fn deliver(&mut self, i: usize, conn: ConnId, message: MeshMessage) {
        let now = self.now();
        self.cores[i].handle_message(conn, &message.encode(), now);
        self.cores[i].flush(now).unwrap();
        self.pump(i);
        self.settle();
    }

    /// Carries messages until none is in flight (no time passes).
    pub(crate) fn settle(&mut self) {
        while let Some((to, conn, wire)) = self.in_flight.pop_front() {
            let now = self.now();
            match wire {
                Wire::Message(bytes) => {
                    self.cores[to].handle_message(conn, &bytes, now);
                    self.cores[to].flush(now).unwrap();
                }
                Wire::Closed => self.cores[to].handle_disconnected(conn, now),
            }
            self.pump(to);
        }
    }

    /// Lets `span` of virtual time pass, running timers as they come due.
    pub(crate) fn run_for(&mut self, span: Duration) {
        let end = self.mono.saturating_add(span);
        self.settle();
        loop {
            let next = self
                .cores
                .iter()
                .filter_map(|c| c.poll_timeout())
                .min()
                .filter(|t| *t <= end);
            let Some(t) = next else { break };
            self.advance_to(t);
            for i in 0..self.cores.len() {
                if self.cores[i].poll_timeout().is_some_and(|d| d <= self.mono) {
                    let now = self.now();
                    if let Err(e) = self.cores[i].handle_timeout(now) {
                        self.timer_errors.push((i, e.to_string()));
                    }
                    self.pump(i);
                }
            }
            self.settle();
            // A timer due now that set no later deadline would spin: step the clock.
            if self
                .cores
                .iter()
                .filter_map(|c| c.poll_timeout())
                .any(|d| d <= self.mono)
            {
                self.advance_to(self.mono.saturating_add(Duration::from_millis(1)));
            }
        }
        self.advance_to(end);
    }

    /// Both clocks move forward to the monotonic instant `t`.
    fn advance_to(&mut self, t: Mono) {
        let by = t.duration_since(self.mono);
        self.mono = self.mono.saturating_add(by);
        self.wall = self.wall.saturating_add(by);
    }

    fn conn_id(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    /// Takes node `i`'s outputs onto the wire and its events into its log.
    fn pump(&mut self, i: usize) {
        while let Some(out) = self.cores[i].poll_output() {
            match out {
                Output::Send { conn, message } => {
                    self.sent[i].push((conn, message.clone()));
                    if let Some(left) = self.losses.get_mut(&(i, message.kind()))
                        && *left > 0
                    {
                        *left -= 1;
                        continue;
                    }
                    if let Some(&(to, their)) = self.ends.get(&(i, conn)) {
                        self.in_flight
                            .push_back((to, their, Wire::Message(message.encode())));
                    }
                }
                Output::Close { conn } => {
                    if let Some((to, their)) = self.ends.remove(&(i, conn)) {
                        self.ends.remove(&(to, their));
                        self.in_flight.push_back((to, their, Wire::Closed));
                    }
                }
                // Dialing is the test's to do, with `link`.
                Output::Connect { addr } => self.dialed[i].push((addr, self.mono)),
                Output::Punch { addr, tcp_server } => {
                    self.punched[i].push((addr, self.mono));
                    self.punch_roles[i].push(tcp_server);
                }
                relay @ (Output::RelayStream { .. }
                | Output::RelayData { .. }
                | Output::RelayCredit { .. }
                | Output::RelayClosed { .. }) => self.relay_out[i].push(relay),
            }
        }
        while let Some(e) = self.cores[i].poll_event() {
            self.events[i].push(e);
        }
    }
}
