//! The sans-IO core of one member's participation in one group.
//!
//! Calling contract (quinn-proto style):
//!
//! - Inputs: [`Core::handle_connected`] when a transport connection to a member is up (either
//!   direction), [`Core::handle_message`] for every message a neighbor sent, then
//!   [`Core::flush`] once a burst of messages has been handed over (received records are
//!   validated and stored in one batch there), [`Core::handle_disconnected`],
//!   [`Core::handle_connect_failed`], and [`Core::handle_timeout`] when the instant from
//!   [`Core::poll_timeout`] has passed. Local operations ([`Core::create_record`] …) are
//!   inputs too. Every input takes `now`, a [`Now`]: its monotonic instant drives every
//!   protocol timer ([`Core::poll_timeout`] answers in it), its wall time decides what
//!   certificates and records allow, so a wall clock stepped back stalls no timer.
//! - Outputs: drain [`Core::poll_output`] (messages to send, connections to open or close)
//!   and [`Core::poll_event`] (what the application sees) after every input.
//!
//! The core owns the member's [`Database`]. It never reads a clock, opens a socket, spawns a
//! task or draws from a global random generator: the driver (tokio) or the simulator does.
//!
//! Inside, the core is four sub-machines with one job each, and the glue between them:
//!
//! - the neighbor set (`neighbors.rs`; handshake in `conn.rs`, upkeep in `maintain.rs`): links,
//!   candidates, dials; deadlines: handshakes, the ends of members' rights, maintenance;
//! - the broadcast tree (`flood.rs`): eager and lazy links, announced payloads; deadlines:
//!   the pulls of announced payloads (`pending.rs`);
//! - sync scheduling (`syncs.rs`): each link's session, its rate, the anti-entropy round;
//!   deadlines: stalls, anti-entropy;
//! - presence and peer time (`presence_time.rs`, `local.rs`, `members.rs`): our presence, the
//!   member view, the group clock; deadline: the refresh round.
//!
//! Each keeps its deadlines in a timer table (`timers.rs`) or a single instant, so
//! [`Core::poll_timeout`] is the least of four answers, each found in O(log n).

mod again;
mod candidates;
mod conn;
mod ending;
mod flood;
mod lag;
mod local;
mod maintain;
mod members;
mod neighbors;
mod observed;
mod pending;
mod presence_bound;
mod presence_time;
mod punch;
mod relay;
mod syncs;
#[cfg(test)]
pub(crate) mod tests;
mod timers;

use std::collections::VecDeque;
use std::net::SocketAddr;

use peergroup_credential_roles::CertChain;
use peergroup_identity::{KeyPair, PeerName};
use peergroup_record_db::store::Store;
use peergroup_record_db::{Change, Database, LocalSigner};

pub use again::{ANNOUNCE_AGAIN_AFTER, MAX_ANNOUNCED_AGAIN};
pub use candidates::{MAX_CANDIDATES, MAX_CANDIDATES_PER_REFERRER};
pub use ending::{LinkEnd, PeerFault};
pub use flood::{MAX_ARRIVED, MAX_PULLED_MAKERS};
pub use lag::{MAX_GRAFT_CEILING_FACTOR, MIN_GRAFT_TIMEOUT};
pub use members::{LOST_REFRESH_INTERVAL, Member, MemberChange};
pub use observed::{MAX_OBSERVED, MAX_OBSERVED_PENDING, OBSERVED_CONFIRMATIONS};
pub use pending::{MAX_ANNOUNCERS, MAX_PENDING_KEYS, MAX_PENDING_PER_LINK};
pub use presence_bound::{
    MAX_COUNTED_PRESENCES_PER_MEMBER, PRESENCE_MAINTENANCE_MAX, PRESENCE_MAINTENANCE_MIN,
    PRESENCE_SLACK,
};
pub use punch::{
    AUTO_PUNCH_BACKOFF, AUTO_PUNCH_GRACE, MAX_AUTO_PUNCH_MEMORY, MAX_PUNCH_CANDIDATES,
    MAX_PUNCH_OFFERS, MAX_PUNCH_RELAYS_PER_MINUTE, MAX_PUNCH_TRIES, MAX_PUNCHES, PUNCH_RELAY_AFTER,
    PUNCH_SETTLE, PUNCH_TIMEOUT, PunchStep,
};
pub use relay::{CircuitId, MAX_RELAY_CHUNK, MAX_RELAYED_ENDS, RELAY_WINDOW, RelayLimits};

use crate::config::MeshConfig;
use crate::message::{MeshMessage, NodeId, Reason};
use crate::peer_time::PeerTime;
use crate::rng::{RecordIds, Rng, Seed};
use crate::stats::Stats;
use crate::time::{Mono, Now};

/// A transport connection, numbered by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Who is at the other end of a new connection (established by the authenticated transport).
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The member's identity peer name (from its certificate chain).
    pub peer: PeerName,
    /// Its address.
    pub addr: SocketAddr,
    /// Whether we dialed.
    pub outbound: bool,
    /// Its certificate chain, when the transport has it (lets its records validate at once).
    pub chain: Option<CertChain>,
    /// Whether the link runs over UDP (QUIC). Then `addr` is where the peer's UDP socket is
    /// seen from here (its NAT's mapping), which a hole punch to it can dial.
    pub udp: bool,
    /// Whether another member relays the link (`core/relay.rs`); then `addr` is the relay's.
    /// A direct link to the same node replaces a relayed one.
    pub relayed: bool,
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "records travel by value; boxing them buys nothing measurable"
)]
pub enum Output {
    /// Send a message on a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        message: MeshMessage,
    },
    /// Open a connection to an address.
    Connect {
        /// Where.
        addr: SocketAddr,
    },
    /// Close a connection (after sending what was queued on it).
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Dial an address now for a hole punch (see `core/punch.rs`): over QUIC from the
    /// listening socket, the one the other side was told of, and over TCP from the listening
    /// port (a simultaneous open, where the other side dials us at the same moment).
    Punch {
        /// Where.
        addr: SocketAddr,
        /// Whether we may take TLS's server part on a TCP simultaneous open (the member with
        /// the smaller peer name may, if the other speaks first; the other is the client).
        tcp_server: bool,
    },
    /// A relayed stream to `peer` opens (see `core/relay.rs`): run the member TLS
    /// handshake over it, as the client when we are the `initiator`, and hand the connection
    /// over with [`Core::handle_connected`] ([`PeerInfo::relayed`] set). Its bytes go out
    /// with [`Core::relay_send`] within the credit (first [`RELAY_WINDOW`]).
    RelayStream {
        /// The circuit.
        circuit: CircuitId,
        /// The member at the other end.
        peer: PeerName,
        /// Whether we asked for it.
        initiator: bool,
    },
    /// Bytes arrived on a relayed stream; say when they are taken with
    /// [`Core::relay_consumed`].
    RelayData {
        /// The circuit.
        circuit: CircuitId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The other end took bytes: this many more may be sent on the stream.
    RelayCredit {
        /// The circuit.
        circuit: CircuitId,
        /// How many.
        bytes: u32,
    },
    /// The relayed stream ended: close its side (the link over it closes with it).
    RelayClosed {
        /// The circuit.
        circuit: CircuitId,
    },
}

/// The group's status flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Status {
    /// Accepting connections (after the first sync, or at once for the creator).
    pub listening: bool,
    /// At least one neighbor.
    pub has_connections: bool,
    /// Synchronised with at least one neighbor since start (or the creator).
    pub synchronized: bool,
    /// Synchronised with a member at some time, in this run or an earlier one (kept in the
    /// database; always for the creator): the replica is the group's, so the member may
    /// publish records while offline.
    pub ever_synchronized: bool,
}

/// Why a neighbor went away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NeighborChange {
    /// It became a neighbor.
    Connected,
    /// It is no longer one, and why.
    Disconnected(LinkEnd),
}

/// What the application sees.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "records travel by value; boxing them buys nothing measurable"
)]
pub enum Event {
    /// A record was added, updated, deleted or expired.
    Record(Change),
    /// A member joined, left, came online, went offline or updated its presence.
    Member {
        /// Who.
        peer: PeerName,
        /// What.
        change: MemberChange,
    },
    /// The status changed.
    Status(Status),
    /// A neighbor connection came or went.
    Neighbor {
        /// The connection.
        conn: ConnId,
        /// The member.
        peer: PeerName,
        /// Its address.
        addr: SocketAddr,
        /// What happened.
        change: NeighborChange,
    },
    /// A connection attempt failed.
    ConnectFailed {
        /// Where.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A sync with a neighbor finished.
    Synced {
        /// The connection.
        conn: ConnId,
        /// Records received.
        received: u64,
        /// Records sent.
        sent: u64,
    },
}

/// The local member: identity key and certificate chain.
pub struct LocalMember {
    /// The identity key.
    pub key: KeyPair,
    /// The member's certificate chain.
    pub chain: CertChain,
}

impl std::fmt::Debug for LocalMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalMember")
            .field("peer", self.chain.leaf().subject_peer())
            .finish()
    }
}

/// One member's participation in one group.
pub struct Core<S: Store> {
    db: Database<S>,
    me: LocalMember,
    node: NodeId,
    config: MeshConfig,
    /// The neighbor set.
    neighbors: neighbors::Neighbors,
    /// The broadcast tree.
    broadcast: flood::Broadcast,
    /// Sync scheduling.
    syncs: syncs::SyncSchedule,
    /// Presence and peer time.
    presence: presence_time::PresenceTime,
    /// Hole punches: ours, those we answered, those we relay.
    punches: punch::Punches,
    /// Relayed streams: ours, and those we carry for others.
    relays: relay::Relays,
    outputs: VecDeque<Output>,
    events: VecDeque<Event>,
    status: Status,
    rng: Rng,
    /// The nonces of the ids of records this member publishes.
    ids: RecordIds,
    /// The time of the latest input (for deadlines kept on the wall clock: certificate ends).
    last: Now,
    stats: Stats,
    closed: bool,
}

impl<S: Store> std::fmt::Debug for Core<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("group", self.db.group())
            .field("node", &self.node)
            .field("links", &self.neighbors.conns().len())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Records modified more recently than this are assumed to be still travelling by flooding;
/// learning them by sync does not make a node cascade syncs to its other neighbors.
pub const FLOOD_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// A neighbor may start sync sessions with us (each costs a snapshot of our keys) in a burst
/// of [`SYNC_SESSION_BURST`], then one per this interval; faster ones are ignored (its sync
/// stalls and it retries after `sync_stall_timeout`).
pub const SYNC_SESSION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// See [`SYNC_SESSION_INTERVAL`].
pub const SYNC_SESSION_BURST: u32 = 8;

/// Most links (neighbor connections, established or in their handshake) one member may hold
/// to this node: a member may run a few nodes, not thousands of connections.
pub const MAX_LINKS_PER_MEMBER: usize = 4;
/// Most incoming links waiting for their hello at once (each closes after the mesh's
/// handshake timeout if the hello does not come).
pub const MAX_AWAITING_HELLO: usize = 32;

/// The metadata key kept once the member has synchronised (see [`Status::ever_synchronized`]).
pub const SYNCED_META: &str = "synchronized_once";

/// The metadata key the peer-time offset is kept under.
pub const PEER_TIME_META: &str = "peer_time_offset_ms";

impl<S: Store> Core<S> {
    /// Starts participating: `db` is the group's database, `me` the local member, `node` a
    /// fresh random node id, `seed` all the randomness it uses (mesh decisions and the ids of
    /// the records it publishes; from the operating system in a node, see [`Seed`]).
    pub fn new(
        mut db: Database<S>,
        me: LocalMember,
        node: NodeId,
        config: MeshConfig,
        seed: Seed,
        now: Now,
    ) -> Result<Self, crate::Error> {
        config.check().map_err(crate::Error::Config)?;
        db.learn_member(&me.chain)?;
        let is_creator = me.chain.leaf().subject_peer() == db.creator();
        let peer_time = if is_creator {
            PeerTime::reference()
        } else {
            match db
                .meta(PEER_TIME_META)?
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            {
                Some(b) => PeerTime::from_offset(i64::from_be_bytes(b)),
                None => PeerTime::default(),
            }
        };
        let mut core = Core {
            db,
            me,
            node,
            config,
            neighbors: neighbors::Neighbors::new(now.mono),
            broadcast: flood::Broadcast::default(),
            syncs: syncs::SyncSchedule::new(now.mono),
            presence: presence_time::PresenceTime::new(peer_time, now.mono),
            punches: punch::Punches::default(),
            relays: relay::Relays::default(),
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            status: Status::default(),
            rng: Rng::new(seed.mesh()),
            ids: RecordIds::new(seed),
            last: now,
            stats: Stats::default(),
            closed: false,
        };
        core.presence.members.rebuild(&core.db, &core.me)?;
        if is_creator {
            core.set_status(Status {
                listening: true,
                has_connections: false,
                synchronized: true,
                ever_synchronized: true,
            });
        } else if core.db.meta(SYNCED_META)?.is_some() {
            let s = Status {
                ever_synchronized: true,
                ..core.status
            };
            core.set_status(s);
        }
        match core.publish_own_records(now) {
            Ok(()) => {}
            // The database refuses our own records: our credentials no longer hold in it
            // (revoked, say, by a revocation that reached us before the cut). The member can
            // still open and read what it holds; what it would publish is refused, and the
            // other members refuse its connections.
            Err(crate::Error::Database(
                e @ (peergroup_record_db::Error::Invalid(_)
                | peergroup_record_db::Error::NotAuthorized(_)),
            )) => tracing::warn!(error = %e, "own membership and presence not published"),
            Err(e) => return Err(e),
        }
        Ok(core)
    }

    /// The group peer name.
    pub fn group(&self) -> &PeerName {
        self.db.group()
    }

    /// This participation's node id.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The local member's peer name.
    pub fn peer(&self) -> &PeerName {
        self.me.chain.leaf().subject_peer()
    }

    /// The database (read-only).
    pub fn db(&self) -> &Database<S> {
        &self.db
    }

    /// The time of the latest input (a driver taking over a core continues its monotonic
    /// clock from here).
    pub fn last_input(&self) -> Now {
        self.last
    }

    /// The status flags.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Flooding and sync counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The peer-time clock.
    pub fn peer_time(&self) -> PeerTime {
        self.presence.peer_time
    }

    /// Starts listening at once: for a member that knows it has a usable database from before
    /// (Windows let such a member listen when nobody else could be reached).
    pub fn start_listening(&mut self) {
        let s = Status {
            listening: true,
            ..self.status
        };
        self.set_status(s);
    }

    /// Goes online (dials members, keeps the mesh) or stays offline (the default is online;
    /// an application opening a group without connecting sets it offline first).
    pub fn set_online(&mut self, online: bool, now: Now) {
        self.neighbors.online = online;
        if online {
            self.neighbors.next_maintenance = now.mono;
        }
    }

    /// Whether the member dials other members.
    pub fn is_online(&self) -> bool {
        self.neighbors.online
    }

    /// Where this node accepts connections, as published in presence.
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.neighbors.listen
    }

    /// Established neighbors: connection, peer, address.
    pub fn neighbors(&self) -> Vec<(ConnId, PeerName, SocketAddr)> {
        self.neighbors
            .established()
            .map(|(c, l)| (c, l.info.peer.clone(), l.info.addr))
            .collect()
    }

    /// How far the syncs running now have got.
    pub fn sync_progress(&self) -> crate::stats::SyncProgress {
        let mut p = crate::stats::SyncProgress::default();
        for s in self
            .syncs
            .iter_running()
            .filter_map(|(_, s)| s.session.as_ref())
        {
            p.running += 1;
            p.received += s.record_counts().1;
            p.expected += s.records_expected();
        }
        p
    }

    /// Links whose sync has more to send (see [`MeshConfig::sync_burst`]).
    pub fn sync_backlog(&self) -> Vec<ConnId> {
        self.syncs
            .iter_running()
            .filter(|(_, s)| s.backlog)
            .map(|(c, _)| c)
            .collect()
    }

    /// Lets a link's sync send its next burst (the driver calls this when the connection has
    /// room in its send queue).
    pub fn continue_sync(&mut self, conn: ConnId, now: Now) {
        self.pump_sync(conn, now);
    }

    /// The next output for the driver.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn send(&mut self, conn: ConnId, message: MeshMessage) {
        self.stats.count_sent(&message);
        self.outputs.push_back(Output::Send { conn, message });
    }

    fn set_status(&mut self, status: Status) {
        if status != self.status {
            self.status = status;
            self.events.push_back(Event::Status(status));
        }
    }

    fn update_connections_flag(&mut self) {
        let has = self.neighbors.established().next().is_some();
        let s = Status {
            has_connections: has,
            ..self.status
        };
        self.set_status(s);
    }

    /// Reports database changes to the application and keeps the member list current.
    fn record_changes(&mut self, changes: Vec<Change>) {
        for change in changes {
            for (peer, mc) in self.presence.members.on_change(&change, &self.db) {
                if mc == MemberChange::Connected && peer != *self.peer() {
                    self.want_auto_punch(self.last);
                }
                self.events.push_back(Event::Member { peer, change: mc });
            }
            self.learn_addresses(&change.record);
            self.events.push_back(Event::Record(change));
        }
    }

    /// The earliest (monotonic) instant [`Core::handle_timeout`] should be called: the
    /// earliest next deadline of the four sub-machines, each kept in order (O(log n) in the
    /// links and pending announcements). Debug builds check it against a scan of every link.
    pub fn poll_timeout(&self) -> Option<Mono> {
        if self.closed {
            return None;
        }
        let mut t = self
            .neighbors
            .next_deadline(self.last)
            .min(self.syncs.next_deadline())
            .min(self.presence.next_deadline());
        if let Some(m) = self.broadcast.next_deadline() {
            t = t.min(m);
        }
        if let Some(p) = self.punches.next_deadline() {
            t = t.min(p);
        }
        if let Some(r) = self.relays.next_deadline(self.config.relay.max_duration) {
            t = t.min(r);
        }
        #[cfg(debug_assertions)]
        debug_assert_eq!(Some(t), self.deadline_by_scan(), "a timer was missed");
        Some(t)
    }

    /// [`Core::poll_timeout`] by a scan of every link and session.
    #[cfg(debug_assertions)]
    fn deadline_by_scan(&self) -> Option<Mono> {
        let mut t = self
            .neighbors
            .next_maintenance
            .min(self.syncs.next_anti_entropy)
            .min(self.presence.next_refresh);
        if let Some(m) = self.broadcast.missing.next_deadline() {
            t = t.min(m);
        }
        if let Some(a) = self.broadcast.again.next_deadline() {
            t = t.min(a);
        }
        if let Some(p) = self.punches.next_deadline() {
            t = t.min(p);
        }
        if let Some(r) = self.relays.next_deadline(self.config.relay.max_duration) {
            t = t.min(r);
        }
        for (_, l) in self.neighbors.iter() {
            if l.phase != neighbors::Phase::Established {
                t = t.min(l.opened.saturating_add(self.config.handshake_timeout));
            }
            if let Some(e) = l.expires {
                // A wall-clock deadline, as far ahead of the latest input as it is.
                let ahead = e.duration_since(self.last.wall);
                t = t.min(self.last.mono.saturating_add(ahead));
            }
        }
        for (_, s) in self.syncs.iter_running() {
            t = t.min(s.progress.saturating_add(self.config.sync_stall_timeout));
        }
        Some(t)
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Now) -> Result<(), crate::Error> {
        if self.closed {
            return Ok(());
        }
        self.expire_links(now);
        self.expire_handshakes_and_syncs(now);
        self.request_missing(now);
        self.announce_again(now);
        self.fire_punches(now);
        self.expire_relays(now);
        // A failing refresh (a full disk, say) must not stop the mesh's own timers.
        self.last = now;
        let refreshed = if now.mono >= self.presence.next_refresh {
            self.refresh(now)
        } else {
            Ok(())
        };
        if now.mono >= self.syncs.next_anti_entropy {
            self.anti_entropy(now);
        }
        if now.mono >= self.neighbors.next_maintenance {
            self.maintain(now);
        }
        refreshed
    }

    /// Leaves the group: deletes our presence, says goodbye to every neighbor, persists the
    /// peer-time offset. The driver closes the connections after sending.
    pub fn close(&mut self, now: Now) -> Result<(), crate::Error> {
        if self.closed {
            return Ok(());
        }
        let presence = crate::presence::Presence::record_id(self.peer(), self.node);
        if self.db.get(presence)?.is_some() {
            let signer = LocalSigner {
                key: &self.me.key,
                chain: &self.me.chain,
            };
            let change = self.db.delete(signer, presence, now.wall)?;
            // Pushed whole over every link, lazy ones too: after the goodbye nobody can pull
            // it from us, and a lazy link whose other path to us is gone would wait for it
            // until the presence expired (the chat's 'Carol left' never came). As repushes:
            // copies over lazy links are no sign of a cycle, and must not prune the tree
            // wherever they meet.
            let established: Vec<ConnId> = self.neighbors.established().map(|(c, _)| c).collect();
            for conn in established {
                self.send(conn, MeshMessage::Repush(change.record.clone()));
            }
            self.record_changes(vec![change]);
        }
        self.persist_peer_time()?;
        let conns = self.neighbors.clear();
        self.broadcast.clear();
        self.syncs.clear();
        for conn in conns {
            self.send(
                conn,
                MeshMessage::Disconnect {
                    reason: Reason::Leaving,
                    referrals: Vec::new(),
                },
            );
            self.outputs.push_back(Output::Close { conn });
        }
        self.closed = true;
        self.set_status(Status::default());
        Ok(())
    }

    /// Ends this participation abruptly (as a crash would) and returns the database.
    pub fn into_database(self) -> Database<S> {
        self.db
    }

    fn persist_peer_time(&mut self) -> Result<(), crate::Error> {
        self.db.set_meta(
            PEER_TIME_META,
            self.presence.peer_time.offset_ms().to_be_bytes().to_vec(),
        )?;
        Ok(())
    }
}
