//! The simulated network: an event queue on a virtual clock, connections between nodes,
//! latency, jitter, loss and a partition.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::Duration;

use peergroup_credential_roles::CertChain;
use peergroup_identity::Timestamp;

use super::Scenario;
use crate::core::{ConnId, Output, PeerInfo};
use crate::message::MeshMessage;
use crate::rng::Rng;

/// Something that happens at an instant.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "records travel by value; boxing them buys nothing measurable"
)]
pub(crate) enum Ev {
    Publish,
    Crash(usize),
    Restart(usize),
    Join(usize),
    Leave(usize),
    PartitionStart,
    PartitionEnd,
    Timer {
        node: usize,
        incarnation: u32,
    },
    Connected {
        node: usize,
        incarnation: u32,
        conn: ConnId,
        info: PeerInfo,
    },
    ConnectFailed {
        node: usize,
        incarnation: u32,
        addr: SocketAddr,
    },
    Disconnected {
        node: usize,
        incarnation: u32,
        conn: ConnId,
    },
    Deliver {
        node: usize,
        incarnation: u32,
        conn: ConnId,
        from: usize,
        message: MeshMessage,
    },
}

/// One end of a connection.
#[derive(Clone, Copy, Debug)]
struct End {
    node: usize,
    incarnation: u32,
    peer: usize,
    peer_incarnation: u32,
    peer_conn: ConnId,
    /// Messages on a connection arrive in order (it is TCP): never before this.
    last_arrival: Timestamp,
}

pub(crate) struct Network {
    queue: BinaryHeap<Reverse<(Timestamp, u64)>>,
    events: BTreeMap<u64, Ev>,
    seq: u64,
    ends: BTreeMap<ConnId, End>,
    next_conn: u64,
    rng: Rng,
    latency: Duration,
    jitter_ms: u64,
    loss: f64,
    /// Nodes below this index are cut off from the others, while set.
    cut: Option<usize>,
    addresses: BTreeMap<SocketAddr, usize>,
    peers: Vec<peergroup_identity::PeerName>,
    /// The chains the transport shows for each node: the joiners' (a real TLS handshake
    /// shows the peer's chain, which teaches it to a node that has not seen its membership
    /// record yet); none for the nodes every database knows from the start.
    chains: Vec<Option<CertChain>>,
}

impl Network {
    pub(crate) fn new(
        s: &Scenario,
        seed: u64,
        peers: Vec<peergroup_identity::PeerName>,
        chains: Vec<Option<CertChain>>,
    ) -> Self {
        Network {
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            seq: 0,
            ends: BTreeMap::new(),
            next_conn: 1,
            rng: Rng::new(seed),
            latency: Duration::from_millis(s.latency_ms),
            jitter_ms: s.jitter_ms,
            loss: s.loss,
            cut: None,
            addresses: (0..peers.len()).map(|i| (super::address(i), i)).collect(),
            peers,
            chains,
        }
    }

    pub(crate) fn schedule(&mut self, at: Timestamp, ev: Ev) {
        self.seq += 1;
        self.events.insert(self.seq, ev);
        self.queue.push(Reverse((at, self.seq)));
    }

    pub(crate) fn pop(&mut self) -> Option<(Timestamp, Ev)> {
        let Reverse((at, seq)) = self.queue.pop()?;
        self.events.remove(&seq).map(|ev| (at, ev))
    }

    fn delay(&mut self) -> Duration {
        self.latency + Duration::from_millis(self.rng.below(self.jitter_ms + 1))
    }

    fn separated(&self, a: usize, b: usize) -> bool {
        self.cut.is_some_and(|c| (a < c) != (b < c))
    }

    /// Carries out one output of node `i`.
    pub(crate) fn output(
        &mut self,
        i: usize,
        incarnation: u32,
        o: Output,
        now: Timestamp,
        listening: &dyn Fn(usize) -> bool,
        incarnation_of: &dyn Fn(usize) -> u32,
    ) {
        match o {
            Output::Send { conn, message } => {
                let Some(end) = self.ends.get(&conn).copied() else {
                    return;
                };
                if self.separated(end.node, end.peer) || self.rng.chance(self.loss) {
                    return;
                }
                let at = now.saturating_add(self.delay()).max(end.last_arrival);
                if let Some(e) = self.ends.get_mut(&conn) {
                    e.last_arrival = at;
                }
                self.schedule(
                    at,
                    Ev::Deliver {
                        node: end.peer,
                        incarnation: end.peer_incarnation,
                        conn: end.peer_conn,
                        from: i,
                        message,
                    },
                );
            }
            // The simulator has no NATs: a hole punch's dial is a plain dial.
            Output::Connect { addr } | Output::Punch { addr, .. } => {
                let delay = self.delay();
                let target = self.addresses.get(&addr).copied();
                let reachable =
                    target.filter(|t| *t != i && listening(*t) && !self.separated(i, *t));
                let Some(t) = reachable else {
                    self.schedule(
                        now.saturating_add(delay * 2),
                        Ev::ConnectFailed {
                            node: i,
                            incarnation,
                            addr,
                        },
                    );
                    return;
                };
                let (a, b) = (ConnId(self.next_conn), ConnId(self.next_conn + 1));
                self.next_conn += 2;
                let t_inc = incarnation_of(t);
                let at = now.saturating_add(delay);
                self.ends.insert(
                    a,
                    End {
                        node: i,
                        incarnation,
                        peer: t,
                        peer_incarnation: t_inc,
                        peer_conn: b,
                        last_arrival: at,
                    },
                );
                self.ends.insert(
                    b,
                    End {
                        node: t,
                        incarnation: t_inc,
                        peer: i,
                        peer_incarnation: incarnation,
                        peer_conn: a,
                        last_arrival: at,
                    },
                );
                let (to_t, to_i) = (
                    self.info(t, addr, true),
                    self.info(i, super::address(i), false),
                );
                self.schedule(
                    at,
                    Ev::Connected {
                        node: i,
                        incarnation,
                        conn: a,
                        info: to_t,
                    },
                );
                self.schedule(
                    at,
                    Ev::Connected {
                        node: t,
                        incarnation: t_inc,
                        conn: b,
                        info: to_i,
                    },
                );
            }
            // The simulator carries no relayed streams (nothing there asks for one).
            Output::RelayStream { .. }
            | Output::RelayData { .. }
            | Output::RelayCredit { .. }
            | Output::RelayClosed { .. } => {}
            Output::Close { conn } => {
                if let Some(end) = self.ends.remove(&conn)
                    && self.ends.remove(&end.peer_conn).is_some()
                {
                    let at = now.saturating_add(self.delay()).max(end.last_arrival);
                    self.schedule(
                        at,
                        Ev::Disconnected {
                            node: end.peer,
                            incarnation: end.peer_incarnation,
                            conn: end.peer_conn,
                        },
                    );
                }
            }
        }
    }

    /// A node crashed: its peers notice after a delay.
    pub(crate) fn crash(&mut self, i: usize, now: Timestamp) {
        let mine: Vec<ConnId> = self
            .ends
            .iter()
            .filter(|(_, e)| e.node == i)
            .map(|(c, _)| *c)
            .collect();
        for conn in mine {
            if let Some(end) = self.ends.remove(&conn) {
                self.ends.remove(&end.peer_conn);
                let at = now.saturating_add(self.delay() * 4);
                self.schedule(
                    at,
                    Ev::Disconnected {
                        node: end.peer,
                        incarnation: end.peer_incarnation,
                        conn: end.peer_conn,
                    },
                );
            }
        }
    }

    /// Cuts the network between nodes below `cut` and the rest; returns the connections
    /// that cross the cut.
    pub(crate) fn partition(&mut self, cut: usize) -> Vec<(ConnId, ConnId)> {
        self.cut = Some(cut);
        self.ends
            .iter()
            .filter(|(c, e)| c.0 < e.peer_conn.0 && self.separated(e.node, e.peer))
            .map(|(c, e)| (*c, e.peer_conn))
            .collect()
    }

    pub(crate) fn heal(&mut self) {
        self.cut = None;
    }

    /// Breaks a connection: both ends learn it after a while (as TCP would time out).
    pub(crate) fn disconnect_later(&mut self, a: ConnId, b: ConnId, now: Timestamp) {
        for conn in [a, b] {
            if let Some(end) = self.ends.remove(&conn) {
                let at = now.saturating_add(Duration::from_secs(5));
                self.schedule(
                    at,
                    Ev::Disconnected {
                        node: end.node,
                        incarnation: end.incarnation,
                        conn,
                    },
                );
            }
        }
    }

    /// The peer info a node gets for a connection: the simulated transport authenticates by
    /// construction.
    fn info(&self, peer_index: usize, addr: SocketAddr, outbound: bool) -> PeerInfo {
        PeerInfo {
            peer: self.peers[peer_index].clone(),
            addr,
            outbound,
            chain: self.chains.get(peer_index).cloned().flatten(),
            udp: false,
            relayed: false,
        }
    }
}
