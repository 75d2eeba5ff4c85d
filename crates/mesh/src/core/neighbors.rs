//! The neighbor set: the member's links (each from its transport connection through the
//! hello/welcome handshake to an established neighbor), the addresses it may dial, and the
//! deadlines that belong to links as such — a handshake must end in time, a member's rights
//! end with its certificate, maintenance runs now and then. What the links carry (the
//! broadcast tree, sync sessions) is kept by the other sub-machines under the same
//! [`ConnId`].

use std::collections::BTreeMap;
use std::net::SocketAddr;

use peergroup_identity::Timestamp;

use super::candidates::Candidates;
use super::timers::TimerTable;
use super::{ConnId, PeerInfo};
use crate::message::NodeId;
use crate::time::{Mono, Now};

/// Where a link is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Acceptor, waiting for the dialer's hello.
    AwaitHello,
    /// Dialer, waiting for the welcome; hello sent at this time.
    AwaitWelcome(Mono),
    /// A neighbor.
    Established,
}

/// One connection and what we know about its peer.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) info: PeerInfo,
    /// When the peer's certificate chain stops being valid (the link closes then).
    pub(super) expires: Option<Timestamp>,
    pub(super) phase: Phase,
    pub(super) opened: Mono,
    pub(super) node: Option<NodeId>,
    pub(super) listen: Vec<SocketAddr>,
    /// Windows-style usefulness: decays, grows with every new record it delivers.
    pub(super) utility: u32,
    /// For a link this node accepted: when it sent its welcome, until the dialer's first
    /// message (which answers it at once: a sync, or an eager graft) gives a round trip.
    pub(super) welcomed: Option<Mono>,
}

/// The neighbor set (see the module docs).
#[derive(Debug)]
pub(super) struct Neighbors {
    links: BTreeMap<ConnId, Link>,
    /// When each link's handshake must have ended.
    handshakes: TimerTable<ConnId, Mono>,
    /// When each link's member's rights end (wall clock).
    rights: TimerTable<ConnId, Timestamp>,
    /// Addresses we could dial: address → next attempt allowed at, failures so far.
    pub(super) candidates: Candidates,
    /// Addresses we are dialing now.
    pub(super) dialing: BTreeMap<SocketAddr, Mono>,
    /// Where this node accepts connections.
    pub(super) listen: Vec<SocketAddr>,
    /// Where other members see this node (published with `listen` once confirmed).
    pub(super) observed: super::observed::Observed,
    pub(super) next_maintenance: Mono,
    /// Whether the member dials other members (a group that is open but not connected only
    /// answers what it is asked locally).
    pub(super) online: bool,
}

impl Neighbors {
    pub(super) fn new(now: Mono) -> Self {
        Neighbors {
            links: BTreeMap::new(),
            handshakes: TimerTable::default(),
            rights: TimerTable::default(),
            candidates: Candidates::default(),
            dialing: BTreeMap::new(),
            listen: Vec::new(),
            observed: super::observed::Observed::default(),
            next_maintenance: now,
            online: true,
        }
    }

    /// Adds a link in its handshake, which must end by `handshake_deadline`.
    pub(super) fn insert(&mut self, conn: ConnId, link: Link, handshake_deadline: Mono) {
        self.handshakes.set(conn, handshake_deadline);
        if let Some(e) = link.expires {
            self.rights.set(conn, e);
        }
        self.links.insert(conn, link);
    }

    /// The handshake of a link ended: it is a neighbor now.
    pub(super) fn establish(&mut self, conn: ConnId) -> Option<&mut Link> {
        let link = self.links.get_mut(&conn)?;
        link.phase = Phase::Established;
        self.handshakes.cancel(conn);
        Some(link)
    }

    /// Removes a link and its deadlines.
    pub(super) fn remove(&mut self, conn: ConnId) -> Option<Link> {
        self.handshakes.cancel(conn);
        self.rights.cancel(conn);
        self.links.remove(&conn)
    }

    /// Removes every link; returns their connections.
    pub(super) fn clear(&mut self) -> Vec<ConnId> {
        self.handshakes.clear();
        self.rights.clear();
        std::mem::take(&mut self.links).into_keys().collect()
    }

    pub(super) fn get(&self, conn: ConnId) -> Option<&Link> {
        self.links.get(&conn)
    }

    pub(super) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Link> {
        self.links.get_mut(&conn)
    }

    pub(super) fn contains(&self, conn: ConnId) -> bool {
        self.links.contains_key(&conn)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Every link, in connection order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (ConnId, &Link)> {
        self.links.iter().map(|(c, l)| (*c, l))
    }

    pub(super) fn links_mut(&mut self) -> impl Iterator<Item = &mut Link> {
        self.links.values_mut()
    }

    /// Every link's connection, in order.
    pub(super) fn conns(&self) -> Vec<ConnId> {
        self.links.keys().copied().collect()
    }

    pub(super) fn is_established(&self, conn: ConnId) -> bool {
        self.links
            .get(&conn)
            .is_some_and(|l| l.phase == Phase::Established)
    }

    /// The established links, in connection order.
    pub(super) fn established(&self) -> impl Iterator<Item = (ConnId, &Link)> {
        self.iter().filter(|(_, l)| l.phase == Phase::Established)
    }

    pub(super) fn established_count(&self) -> usize {
        self.established().count()
    }

    /// Links in their handshake, and dials not yet connected.
    pub(super) fn pending_count(&self) -> usize {
        self.links
            .values()
            .filter(|l| l.phase != Phase::Established)
            .count()
            + self.dialing.len()
    }

    /// The established link to node `node`, and whether we dialed it.
    pub(super) fn link_to_node(&self, node: NodeId) -> Option<(ConnId, bool)> {
        self.established()
            .find(|(_, l)| l.node == Some(node))
            .map(|(c, l)| (c, l.info.outbound))
    }

    /// Whether a link reaches `addr` (its address, or one it listens at).
    pub(super) fn is_connected_to(&self, addr: SocketAddr) -> bool {
        // A relayed link reaches its member through another: dialing the member's own
        // addresses may still make the direct link that replaces it.
        self.links
            .values()
            .any(|l| !l.info.relayed && (l.info.addr == addr || l.listen.contains(&addr)))
    }

    /// Links whose handshake is late at `now`, in connection order.
    pub(super) fn late_handshakes(&self, now: Mono) -> Vec<ConnId> {
        self.handshakes.due(now)
    }

    /// Links whose member's rights have ended at `now`, in connection order.
    pub(super) fn rights_ended(&self, now: Timestamp) -> Vec<ConnId> {
        self.rights.due(now)
    }

    /// The next deadline: maintenance, a handshake, or the end of a member's rights (a
    /// wall-clock deadline, as far ahead of the latest input `last` as it is).
    pub(super) fn next_deadline(&self, last: Now) -> Mono {
        let mut t = self.next_maintenance;
        if let Some(h) = self.handshakes.next() {
            t = t.min(h);
        }
        if let Some(e) = self.rights.next() {
            t = t.min(last.mono.saturating_add(e.duration_since(last.wall)));
        }
        t
    }
}
