//! Hole punching through a common neighbor, as libp2p's DCUtR does it, over the mesh: two
//! members that cannot reach each other (each behind a NAT) but share a neighbor exchange
//! their candidate addresses through it, then dial each other at the same moment, so that
//! each side's NAT has a mapping for the other's packets when they arrive.
//!
//! ```text
//! A (initiator)          R (neighbor of both)          C (target)
//! PunchVia{to C, Request, A's candidates} ─►
//!                        PunchFrom{from A, Request, A's} ─►
//!                                         ◄─ PunchVia{to A, Answer, C's candidates}
//! ◄─ PunchFrom{from C, Answer, C's}
//! (A measures the round trip)
//! PunchVia{to C, Sync} ─►
//!                        PunchFrom{from A, Sync} ─►
//! after half the round trip: dials C's            on the sync: dials A's candidates
//! candidates
//! ```
//!
//! A relay that has no link to the target answers `Unreachable`. Everything is bounded: the
//! attempts a node runs ([`MAX_PUNCHES`]), the requests it answered and waits to sync
//! ([`MAX_PUNCH_OFFERS`]), the candidates taken from a message ([`MAX_PUNCH_CANDIDATES`]),
//! what a relay forwards for one link ([`MAX_PUNCH_RELAYS_PER_MINUTE`]), and every attempt
//! ends after [`PUNCH_TIMEOUT`]. The dials are [`Output::Punch`]: the driver dials them over
//! QUIC from its listening socket (the address its NAT maps and the other side was told).
//!
//! The relay puts first, among the candidates it forwards, the address it sees the sender at
//! when their link runs over UDP ([`super::PeerInfo::udp`]): that is the sender's NAT
//! mapping for its listening socket, which the sender cannot know by itself until two
//! members confirmed it ([`super::observed`]). The relay could lie about it, but a relay
//! already carries the whole exchange and could as well drop it: it can make the two sides
//! send a few QUIC Initials to a wrong address, nothing more.
//!
//! Punching starts by itself: when a member comes online while this node has fewer
//! neighbors than it wants, and again at each maintenance while that lasts, the node punches
//! to present members it has no link to ([`AUTO_PUNCH_GRACE`] after they appear, each at
//! most once per [`AUTO_PUNCH_BACKOFF`]). The punch's dials go to the same addresses a plain
//! dial would, so on a LAN it costs a few messages; behind NATs it is how members meet.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use peergroup_identity::PeerName;
use peergroup_record_db::store::Store;
use serde::{Deserialize, Serialize};

use super::{ConnId, Core, Output};
use crate::message::MeshMessage;
use crate::time::{Mono, Now};

/// Candidate addresses taken from one punch message (more are ignored).
pub const MAX_PUNCH_CANDIDATES: usize = 8;
/// Punch attempts this node runs at once.
pub const MAX_PUNCHES: usize = 8;
/// Requests this node answered and keeps until their sync.
pub const MAX_PUNCH_OFFERS: usize = 16;
/// How long an attempt, or an answered request, lives.
pub const PUNCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Punch messages a relay forwards for one link per minute.
pub const MAX_PUNCH_RELAYS_PER_MINUTE: u32 = 16;
/// Exchanges one attempt runs at most: when no link to the target follows the dials, the
/// exchange is run again (fresh candidates, a fresh round trip), after
/// [`PUNCH_SETTLE`], then twice that, and so on.
pub const MAX_PUNCH_TRIES: u32 = 3;
/// How long after its dials an attempt looks for a link to the target (doubling each try).
pub const PUNCH_SETTLE: Duration = Duration::from_secs(3);
/// How long after its first dials an attempt that has no direct link yet asks for a relayed
/// one (a punch that works links well within it; the tries go on, and may replace it).
pub const PUNCH_RELAY_AFTER: Duration = Duration::from_secs(1);
/// How long after a member comes online an automatic punch to it starts.
pub const AUTO_PUNCH_GRACE: Duration = Duration::from_secs(1);
/// How long before an automatic punch goes to the same member again.
pub const AUTO_PUNCH_BACKOFF: Duration = Duration::from_secs(60);
/// Members remembered as recently punched to (the oldest is forgotten first).
pub const MAX_AUTO_PUNCH_MEMORY: usize = 256;

/// The step of a punch exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PunchStep {
    /// The initiator's candidates, to the target.
    Request,
    /// The target's candidates, to the initiator.
    Answer,
    /// Dial now (the target); the initiator dials half a round trip later.
    Sync,
    /// The relay has no link to the member named.
    Unreachable,
}

/// An attempt this node started.
#[derive(Debug)]
struct Attempt {
    target: PeerName,
    /// The relay's link.
    via: ConnId,
    /// When the current exchange's request left.
    sent: Mono,
    /// Exchanges run so far (the first is 1).
    tries: u32,
    state: State,
    /// When to ask `via` for a relayed link if the dials have made no direct one by then.
    relay_at: Option<Mono>,
}

/// Where an attempt is.
#[derive(Debug)]
enum State {
    /// The request is out; the answer is due before this.
    Asked(Mono),
    /// The target answered: dial these then.
    Dial(Mono, Vec<SocketAddr>),
    /// Dialed: look for a link to the target then.
    Check(Mono),
}

impl Attempt {
    fn due(&self) -> Mono {
        let state = self.state_due();
        self.relay_at.map_or(state, |r| r.min(state))
    }

    fn state_due(&self) -> Mono {
        match &self.state {
            State::Asked(at) | State::Dial(at, _) | State::Check(at) => *at,
        }
    }
}

/// The punch state of a node.
#[derive(Debug, Default)]
pub(super) struct Punches {
    mine: BTreeMap<u64, Attempt>,
    /// Requests answered: (from, id) → their candidates and when the offer ends.
    offers: BTreeMap<(PeerName, u64), (Vec<SocketAddr>, Mono)>,
    /// Forwarded per source link: (window start, count).
    relayed: BTreeMap<ConnId, (Mono, u32)>,
    /// When to look for members to punch to by ourselves.
    auto_at: Option<Mono>,
    /// Members punched to by ourselves lately → when they may be again.
    auto_tried: BTreeMap<PeerName, Mono>,
}

impl Punches {
    /// The next instant something is due (a dial, an expiry).
    pub(super) fn next_deadline(&self) -> Option<Mono> {
        let attempts = self.mine.values().map(Attempt::due);
        let offers = self.offers.values().map(|(_, expires)| *expires);
        attempts.chain(offers).chain(self.auto_at).min()
    }

    /// Looks for members to punch to by ourselves at `at` (or sooner, if already due).
    pub(super) fn arm_auto(&mut self, at: Mono) {
        self.auto_at = Some(self.auto_at.map_or(at, |t| t.min(at)));
    }

    /// Members remembered as recently punched to by ourselves.
    #[cfg(test)]
    pub(super) fn auto_remembered(&self) -> usize {
        self.auto_tried.len()
    }

    /// Remembers `peers` as punched to, until `until`.
    #[cfg(test)]
    pub(super) fn remember_auto(&mut self, peers: impl Iterator<Item = PeerName>, until: Mono) {
        self.auto_tried.extend(peers.map(|p| (p, until)));
    }

    /// Punch attempts running now.
    #[cfg(test)]
    pub(super) fn running(&self) -> usize {
        self.mine.len()
    }

    /// Answered requests waiting for their sync.
    #[cfg(test)]
    pub(super) fn offers(&self) -> usize {
        self.offers.len()
    }

    /// Forgets what concerned a link that closed.
    pub(super) fn link_closed(&mut self, conn: ConnId) {
        self.relayed.remove(&conn);
        self.mine
            .retain(|_, a| a.via != conn || !matches!(a.state, State::Asked(_)));
    }
}

fn truncated(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    addrs.truncate(MAX_PUNCH_CANDIDATES);
    addrs
}

impl<S: Store> Core<S> {
    /// Starts punching a hole to member `target` through a neighbor (one that is not
    /// `target`): candidates are exchanged through it, then both sides dial each other at
    /// once ([`Output::Punch`]). Returns the attempt's id. Refused when this node has no other
    /// neighbor, already has a link to `target`, or runs [`MAX_PUNCHES`] attempts.
    pub fn punch(&mut self, target: &PeerName, now: Now) -> Result<u64, crate::Error> {
        let refuse = |why: &str| Err(crate::Error::Invalid(why.to_owned()));
        if target == self.peer() {
            return refuse("a member cannot punch a hole to itself");
        }
        if self.punches.mine.len() >= MAX_PUNCHES {
            return refuse("too many hole punches in progress");
        }
        let mut via = None;
        for (conn, link) in self.neighbors.iter() {
            if !self.neighbors.is_established(conn) {
                continue;
            }
            if &link.info.peer == target {
                if !link.info.relayed {
                    return refuse("already a neighbor of that member");
                }
                // A relayed link to the target: the punch may replace it.
                continue;
            }
            if !link.info.relayed {
                via.get_or_insert(conn);
            }
        }
        let Some(via) = via else {
            return refuse("no neighbor to introduce us");
        };
        let id = self.rng.next_u64();
        self.punches.mine.insert(
            id,
            Attempt {
                target: target.clone(),
                via,
                sent: now.mono,
                tries: 1,
                state: State::Asked(now.mono.saturating_add(PUNCH_TIMEOUT)),
                relay_at: None,
            },
        );
        self.ask_punch(id, via, target.clone(), now);
        Ok(id)
    }

    /// Sends attempt `id`'s request (our candidates) to `target` through `via`.
    fn ask_punch(&mut self, id: u64, via: ConnId, target: PeerName, now: Now) {
        let candidates = truncated(self.published_addrs());
        self.send(
            via,
            MeshMessage::PunchVia {
                to: target,
                id,
                step: PunchStep::Request,
                candidates,
            },
        );
        if let Some(a) = self.punches.mine.get_mut(&id) {
            a.sent = now.mono;
            a.state = State::Asked(now.mono.saturating_add(PUNCH_TIMEOUT));
        }
    }

    /// A neighbor asks us to forward a punch message to member `to`.
    pub(super) fn on_punch_via(
        &mut self,
        conn: ConnId,
        to: PeerName,
        id: u64,
        step: PunchStep,
        candidates: Vec<SocketAddr>,
        now: Now,
    ) {
        let Some((from, seen)) = self.neighbors.get(conn).map(|l| {
            let seen = if l.info.relayed {
                None
            } else if l.info.udp {
                Some(l.info.addr)
            } else {
                // Over TCP we see a port nobody can dial; a NAT that keeps ports (most home
                // routers, Linux masquerading) maps the listening port to the same one at
                // this address, which a TCP simultaneous open can dial.
                l.listen
                    .first()
                    .map(|a| SocketAddr::new(l.info.addr.ip(), a.port()))
            };
            (l.info.peer.clone(), seen)
        }) else {
            return;
        };
        let window = self.punches.relayed.entry(conn).or_insert((now.mono, 0));
        if now.mono.duration_since(window.0) >= Duration::from_secs(60) {
            *window = (now.mono, 0);
        }
        if window.1 >= MAX_PUNCH_RELAYS_PER_MINUTE {
            self.stats.punches_refused += 1;
            return;
        }
        window.1 += 1;
        let target = self
            .neighbors
            .iter()
            .find(|(c, l)| l.info.peer == to && self.neighbors.is_established(*c))
            .map(|(c, _)| c);
        match target {
            Some(target) if to != from => {
                self.stats.punches_relayed += 1;
                // Where we see the sender first: its NAT's mapping of its listening socket.
                let mut forwarded = Vec::with_capacity(MAX_PUNCH_CANDIDATES);
                if matches!(step, PunchStep::Request | PunchStep::Answer) {
                    forwarded.extend(seen);
                }
                for c in candidates {
                    if forwarded.len() == MAX_PUNCH_CANDIDATES {
                        break;
                    }
                    if !forwarded.contains(&c) {
                        forwarded.push(c);
                    }
                }
                self.send(
                    target,
                    MeshMessage::PunchFrom {
                        from,
                        id,
                        step,
                        candidates: forwarded,
                    },
                );
            }
            _ if step == PunchStep::Request => self.send(
                conn,
                MeshMessage::PunchFrom {
                    from: to,
                    id,
                    step: PunchStep::Unreachable,
                    candidates: Vec::new(),
                },
            ),
            _ => {}
        }
    }

    /// A relay forwards a punch message from member `from`.
    pub(super) fn on_punch_from(
        &mut self,
        conn: ConnId,
        from: PeerName,
        id: u64,
        step: PunchStep,
        candidates: Vec<SocketAddr>,
        now: Now,
    ) {
        match step {
            PunchStep::Request => {
                let key = (from.clone(), id);
                if self.punches.offers.len() >= MAX_PUNCH_OFFERS
                    && !self.punches.offers.contains_key(&key)
                {
                    self.stats.punches_refused += 1;
                    return;
                }
                let expires = now.mono.saturating_add(PUNCH_TIMEOUT);
                self.punches
                    .offers
                    .insert(key, (truncated(candidates), expires));
                let mine = truncated(self.published_addrs());
                self.send(
                    conn,
                    MeshMessage::PunchVia {
                        to: from,
                        id,
                        step: PunchStep::Answer,
                        candidates: mine,
                    },
                );
            }
            PunchStep::Answer => {
                let Some(attempt) = self.punches.mine.get_mut(&id) else {
                    return;
                };
                if attempt.target != from
                    || attempt.via != conn
                    || !matches!(attempt.state, State::Asked(_))
                {
                    return;
                }
                // Half the round trip from here to the target (through the relay): when
                // the sync reaches it.
                let rtt = now.mono.duration_since(attempt.sent);
                attempt.state =
                    State::Dial(now.mono.saturating_add(rtt / 2), truncated(candidates));
                self.send(
                    conn,
                    MeshMessage::PunchVia {
                        to: from,
                        id,
                        step: PunchStep::Sync,
                        candidates: Vec::new(),
                    },
                );
                self.fire_punches(now);
            }
            PunchStep::Sync => {
                if let Some((addrs, _)) = self.punches.offers.remove(&(from.clone(), id)) {
                    self.stats.punches += 1;
                    self.dial_punch(&addrs, &from);
                }
            }
            PunchStep::Unreachable => {
                if self
                    .punches
                    .mine
                    .get(&id)
                    .is_some_and(|a| a.target == from && a.via == conn)
                {
                    self.punches.mine.remove(&id);
                }
            }
        }
    }

    /// Runs what is due: dials, checks for the link after them (and tries again without
    /// one), and forgets unanswered attempts and stale offers.
    pub(super) fn fire_punches(&mut self, now: Now) {
        let due: Vec<u64> = self
            .punches
            .mine
            .iter()
            .filter(|(_, a)| a.due() <= now.mono)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(mut a) = self.punches.mine.remove(&id) else {
                continue;
            };
            if a.relay_at.is_some_and(|t| t <= now.mono) {
                a.relay_at = None;
                self.relay_unless_linked(&a);
                if a.state_due() > now.mono {
                    self.punches.mine.insert(id, a);
                    continue;
                }
            }
            match std::mem::replace(&mut a.state, State::Check(now.mono)) {
                // Never answered.
                State::Asked(_) => {}
                State::Dial(_, addrs) => {
                    self.stats.punches += 1;
                    self.dial_punch(&addrs, &a.target);
                    let settle = PUNCH_SETTLE.saturating_mul(1 << (a.tries - 1).min(8));
                    a.state = State::Check(now.mono.saturating_add(settle));
                    if a.tries == 1 {
                        a.relay_at = Some(now.mono.saturating_add(PUNCH_RELAY_AFTER));
                    }
                    self.punches.mine.insert(id, a);
                }
                State::Check(_) => {
                    let linked = self.relay_unless_linked(&a);
                    let relay_up = self.neighbors.is_established(a.via);
                    if !linked && relay_up && a.tries < MAX_PUNCH_TRIES {
                        a.tries += 1;
                        let (via, target) = (a.via, a.target.clone());
                        self.punches.mine.insert(id, a);
                        self.ask_punch(id, via, target, now);
                    }
                }
            }
        }
        self.punches.offers.retain(|_, (_, e)| *e > now.mono);
        if self.punches.auto_at.is_some_and(|t| t <= now.mono) {
            self.punches.auto_at = None;
            self.auto_punch(now);
        }
    }

    /// Whether attempt `a`'s target has a direct link to us; when it has none, the neighbor
    /// that answered for it relays a link to it (a symmetric NAT against a port-dependent one
    /// cannot punch), unless one is relayed already.
    fn relay_unless_linked(&mut self, a: &Attempt) -> bool {
        let linked = self.neighbors.iter().any(|(c, l)| {
            l.info.peer == a.target && !l.info.relayed && self.neighbors.is_established(c)
        });
        if !linked && self.neighbors.is_established(a.via) {
            let relayed = self.relays.has_end_with(&a.target)
                || self
                    .neighbors
                    .iter()
                    .any(|(_, l)| l.info.peer == a.target && l.info.relayed);
            if !relayed && let Err(e) = self.relay(&a.target, Some(a.via)) {
                tracing::debug!(target = %a.target, error = %e, "no relayed link");
            }
        }
        linked
    }

    /// A member came online, or maintenance found us short of neighbors: look for members
    /// to punch to after [`AUTO_PUNCH_GRACE`], if we still want neighbors then.
    pub(super) fn want_auto_punch(&mut self, now: Now) {
        if self.wants_neighbors() || self.has_relayed_links() {
            self.punches
                .arm_auto(now.mono.saturating_add(AUTO_PUNCH_GRACE));
        }
    }

    /// Whether a link of ours is relayed (and punching may replace it).
    fn has_relayed_links(&self) -> bool {
        self.config.auto_punch
            && self.neighbors.online
            && self.neighbors.iter().any(|(_, l)| l.info.relayed)
    }

    /// Whether we have a neighbor to introduce us but fewer links than we want. Dials still
    /// out do not count: one to an address behind a NAT hangs until it times out.
    fn wants_neighbors(&self) -> bool {
        self.config.auto_punch
            && self.neighbors.online
            && self.neighbors.established_count() > 0
            && self.neighbors.iter().count() < self.config.ideal_neighbors
    }

    /// Punches to present members we have no link to, as many as we lack neighbors, each
    /// at most once per [`AUTO_PUNCH_BACKOFF`].
    fn auto_punch(&mut self, now: Now) {
        let wants = self.wants_neighbors();
        if self.closed || !(wants || self.has_relayed_links()) {
            return;
        }
        let want = if wants {
            self.config
                .ideal_neighbors
                .saturating_sub(self.neighbors.iter().count())
        } else {
            0
        };
        self.punches.auto_tried.retain(|_, next| *next > now.mono);
        let linked: std::collections::BTreeSet<&PeerName> =
            self.neighbors.iter().map(|(_, l)| &l.info.peer).collect();
        // Members reached only through a relay: a punch may work now (a NAT's mapping
        // changed, one of us moved), and a direct link then replaces the relayed one.
        let relayed_only: Vec<PeerName> = self
            .neighbors
            .iter()
            .filter(|(_, l)| l.info.relayed)
            .map(|(_, l)| l.info.peer.clone())
            .filter(|p| {
                !self
                    .neighbors
                    .iter()
                    .any(|(_, l)| &l.info.peer == p && !l.info.relayed)
                    && !self.punches.auto_tried.contains_key(p)
                    && !self.punches.mine.values().any(|a| &a.target == p)
            })
            .collect();
        let mut targets: Vec<PeerName> = self
            .presence
            .members
            .present_peers()
            .filter(|p| {
                *p != self.peer()
                    && !linked.contains(p)
                    && !self.punches.auto_tried.contains_key(*p)
                    && !self.punches.mine.values().any(|a| &a.target == *p)
            })
            .cloned()
            .collect();
        self.rng.shuffle(&mut targets);
        targets.truncate(want);
        targets.extend(relayed_only);
        for target in targets {
            if self.punch(&target, now).is_err() {
                break;
            }
            if self.punches.auto_tried.len() >= MAX_AUTO_PUNCH_MEMORY {
                let oldest = self
                    .punches
                    .auto_tried
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(p, _)| p.clone());
                if let Some(p) = oldest {
                    self.punches.auto_tried.remove(&p);
                }
            }
            self.punches
                .auto_tried
                .insert(target, now.mono.saturating_add(AUTO_PUNCH_BACKOFF));
        }
    }

    /// Dials `target`'s candidates at once. Over TCP both sides dial (a simultaneous open),
    /// so TLS's roles need a rule: the member with the larger peer name is the client, the
    /// smaller may serve (`peergroup_transport`'s `Endpoint::punch_tcp`).
    fn dial_punch(&mut self, addrs: &[SocketAddr], target: &PeerName) {
        let tcp_server = self.peer() < target;
        for addr in addrs.iter().take(MAX_PUNCH_CANDIDATES) {
            if self.is_own_addr(addr) || self.neighbors.is_connected_to(*addr) {
                continue;
            }
            self.outputs.push_back(Output::Punch {
                addr: *addr,
                tcp_server,
            });
        }
    }
}
