//! The tokio driver: runs a [`Core`] over the authenticated transport.
//!
//! One task per group owns the core and its SQLite database. It reads messages from every
//! neighbor connection (a reader task per connection forwards frames), hands them to the core
//! in bursts (one durable commit per burst), writes the core's outputs through each
//! connection's bounded send queue, dials the addresses the core asks for, accepts the
//! connections routed to it, and fires the core's timers. The application talks to it through
//! a cheap, cloneable [`GroupHandle`].

mod commands;
mod reader;
mod relay;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use peergroup_identity::Timestamp;
use peergroup_record_db::Received;
use peergroup_record_db::store::Store;
use peergroup_transport::{
    Connection, ConnectionSender, Dial, Endpoint, GroupCredentials, GroupTrust, Transport,
    TransportConfig,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use commands::{Command, GroupHandle};
pub use reader::{READ_BYTES_PER_CONN, READ_BYTES_PER_NODE, READ_INPUTS_PER_CONN};

use crate::core::{ConnId, Core, Event, Output, PeerInfo, Status};
use crate::message::{MeshMessage, Push};
use crate::time::{Mono, Now};

/// Most input handed to the core before one flush (one durable commit), in KiB: a unit per
/// KiB, at least one per message or flooded record (see [`Input::weight`]). Bounding the work
/// per round by size keeps the driver answering commands while a large sync streams in: a
/// sync message carries up to 256 records, and counted as one it let a 10,000-record sync
/// be stored in one round, during which a progress query waited.
const BURST: usize = 512;
/// Most `create_record` calls that share one durable commit (group commit): the calls
/// waiting when the driver takes one are stored together, each answered when the commit is
/// durable, so 32 callers in flight pay one fsync per round instead of one each.
pub const GROUP_COMMIT_MAX: usize = 256;
/// Events kept for slow subscribers before they are told they lagged.
const EVENT_CAPACITY: usize = 4096;

/// What the driver needs besides the core.
pub struct DriverConfig {
    /// Transport timeouts and limits for the connections this driver dials.
    pub transport: TransportConfig,
    /// The shared endpoint, when this member listens (its addresses are published).
    pub endpoint: Option<Arc<Endpoint>>,
    /// The member's credentials for the group.
    pub credentials: GroupCredentials,
    /// The group's trust state (revocations), shared with the endpoint.
    pub trust: GroupTrust,
    /// A clock (tests and the simulator pass their own).
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// The largest frame the group's other protocols need on its connections (the facade's
    /// direct connections: their largest data frame); 0 for none. The group's frame limit,
    /// which binds every connection from its first byte, is never set below it, while each
    /// connection the mesh takes is held to [`mesh_frame_limit`] from then on.
    pub min_group_frame: usize,
}

/// Inputs of the driver task from its helpers. What a reader hands over holds room in its
/// byte budget ([`reader::READ_BYTES_PER_CONN`]) until the driver takes it.
enum Input {
    /// A message the reader could not decode (the core refuses it as a protocol error).
    Message(ConnId, Bytes, reader::Held),
    /// A message the reader decoded, with its encoded size.
    Decoded(ConnId, Box<MeshMessage>, usize, reader::Held),
    /// The neighbor broke the protocol in a way the reader saw (an oversized flood).
    Violation(ConnId, crate::core::PeerFault),
    /// Flooded records whose signatures the connection's reader checked, and which message
    /// pushed them (floods or repushes).
    Floods(ConnId, Vec<Received>, Push, reader::Held),
    /// A sync message's records whose signatures the connection's reader checked, with the
    /// message's encoded size.
    CheckedSync {
        conn: ConnId,
        session: u32,
        class: peergroup_record_db::sync::SyncClass,
        records: Vec<Received>,
        len: usize,
        held: reader::Held,
    },
    Closed(ConnId),
    Dialed(SocketAddr, Result<Connection, String>),
    Incoming(Connection, Option<Bytes>),
    /// The router's forward to us changed (see [`Endpoint::mapped_addrs`]).
    Mapped,
    /// Bytes our side of a relayed stream wrote, within its credit.
    RelayOut(crate::core::CircuitId, Vec<u8>),
    /// Bytes that arrived on a relayed stream were taken.
    RelayTaken(crate::core::CircuitId, u32),
    /// Our side of a relayed stream ended.
    RelayEnded(crate::core::CircuitId),
    /// A relayed stream's handshake ended: the connection, or why not; whether we asked.
    Relayed(crate::core::CircuitId, Result<Connection, String>, bool),
    /// A TCP hole punch's connection (see [`Endpoint::punch_tcp`]), and whether we took
    /// TLS's server part (then the link is the other side's to open, as an accepted one).
    PunchedTcp(Connection, bool),
}

impl Input {
    /// The input, holding `held` until the driver takes it.
    fn holding(self, held: reader::Held) -> Self {
        match self {
            Input::Message(c, b, _) => Input::Message(c, b, held),
            Input::Decoded(c, m, n, _) => Input::Decoded(c, m, n, held),
            Input::Floods(c, r, p, _) => Input::Floods(c, r, p, held),
            Input::CheckedSync {
                conn,
                session,
                class,
                records,
                len,
                ..
            } => Input::CheckedSync {
                conn,
                session,
                class,
                records,
                len,
                held,
            },
            other => other,
        }
    }

    /// What it counts for in a receive burst: its size in KiB, at least one per message or
    /// flooded record (a 1 KiB record counts one, a 1 MiB record a thousand).
    fn weight(&self) -> usize {
        let kib = |bytes: usize| (bytes / 1024).max(1);
        match self {
            Input::Floods(_, records, _, _) => records
                .iter()
                .map(|r| kib(r.record().data_size()))
                .sum::<usize>()
                .max(1),
            Input::Message(_, bytes, _) => kib(bytes.len()),
            Input::Decoded(_, _, len, _) | Input::CheckedSync { len, .. } => kib(*len),
            _ => 1,
        }
    }
}

/// Bytes queued for one connection (in our queue and not yet handed to the transport) above
/// which the neighbor counts as too slow and is dropped.
const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;
/// A sync sends its next burst only while less than this is queued.
const SYNC_QUEUE_BYTES: usize = 2 * 1024 * 1024;

pub use crate::message::{MIN_MESH_FRAME, mesh_frame_limit};

/// What the driver hands a connection's writer task.
enum Write {
    /// A frame to send.
    Frame(Bytes),
    /// Close the connection once everything before this is sent.
    Close(&'static str),
}

struct Link {
    /// To the connection's writer task, which feeds the transport's bounded queue.
    writer: mpsc::UnboundedSender<Write>,
    /// The writer task (awaited when the group closes, so goodbyes get out).
    task: tokio::task::JoinHandle<()>,
    /// Bytes given to the writer and not yet taken by the transport: bounds our buffering.
    queued: Arc<AtomicUsize>,
    sender: ConnectionSender,
}

/// Starts the driver task for `core`. Connections accepted by the endpoint for this group must
/// be handed over with [`GroupHandle::incoming`]: the endpoint may serve several groups and
/// carry direct connections too, so whoever owns it routes (the facade's router).
pub fn spawn<S: Store + 'static>(core: Core<S>, config: DriverConfig) -> GroupHandle {
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (events_tx, _) = broadcast::channel(EVENT_CAPACITY);
    let (status_tx, status_rx) = watch::channel(core.status());
    let mono_origin = core.last_input().mono;
    let (input_tx, input_rx) = mpsc::channel(4096);
    let handle = GroupHandle::new(
        cmd_tx,
        events_tx.clone(),
        status_rx,
        input_tx.clone(),
        core.group().clone(),
    );
    let driver = Driver {
        core,
        config,
        links: BTreeMap::new(),
        relays: BTreeMap::new(),
        next_conn: 1,
        input_tx,
        events: events_tx,
        status: status_tx,
        revocations_known: 0,
        read_budget: reader::Budget::node(),
        max_flood: Arc::new(AtomicUsize::new(usize::MAX)),
        started: std::time::Instant::now(),
        mono_origin,
        closing: Vec::new(),
        close_reply: None,
    };
    tokio::spawn(driver.run(cmd_rx, input_rx));
    handle
}

/// Hands every connection `endpoint` accepts to `handle`, for an endpoint that serves this
/// one group and nothing else (tests, benchmarks, tools); connections of another group are
/// closed. Ends when the endpoint closes. A node serving several groups or direct
/// connections routes by the first frame instead (the facade's router, the only one).
pub async fn serve_one_group(endpoint: Arc<Endpoint>, handle: GroupHandle) {
    while let Some(conn) = endpoint.accept().await {
        if &conn.peer().group == handle.group() {
            handle.incoming(conn, None);
        } else {
            conn.close("group not open here");
        }
    }
}

struct Driver<S: Store> {
    core: Core<S>,
    config: DriverConfig,
    links: BTreeMap<ConnId, Link>,
    /// Relayed streams this node is an end of (bounded by the core's `MAX_RELAYED_ENDS`).
    relays: BTreeMap<crate::core::CircuitId, relay::Pipe>,
    next_conn: u64,
    input_tx: mpsc::Sender<Input>,
    events: broadcast::Sender<Event>,
    status: watch::Sender<Status>,
    /// Revocations already given to the transport's trust state.
    revocations_known: usize,
    /// The node-wide byte budget of what readers hand over (see [`reader::Budget`]).
    read_budget: Arc<tokio::sync::Semaphore>,
    /// The largest flood frame a reader lets through (the group's largest record and its
    /// envelope), kept current with the group's properties.
    max_flood: Arc<AtomicUsize>,
    /// When the driver started, and the core's monotonic time then: the driver's monotonic
    /// clock continues the one the core was made with.
    started: std::time::Instant,
    mono_origin: Mono,
    /// Writer tasks of connections being closed (they finish sending first).
    closing: Vec<tokio::task::JoinHandle<()>>,
    /// Who asked the driver to close, answered once everything is flushed.
    close_reply: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<S: Store + 'static> Driver<S> {
    /// Both clocks: the monotonic one (since the driver started) for the mesh's timers, the
    /// configured wall clock for validity.
    fn now(&self) -> Now {
        let mono = self.mono_origin.saturating_add(self.started.elapsed());
        Now::new(mono, (self.config.clock)())
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut inputs: mpsc::Receiver<Input>,
    ) {
        self.limit_frames();
        if let Some(ep) = self.config.endpoint.clone() {
            self.publish_listen_addrs();
            self.watch_mapped(&ep);
        }
        self.after_input();
        loop {
            let timeout = self
                .core
                .poll_timeout()
                .map(|t| t.duration_since(self.now().mono));
            let sleep = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(3600)));
            let backlog = !self.core.sync_backlog().is_empty();
            tokio::select! {
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { break };
                    if self.commands(cmd, &mut commands) {
                        break;
                    }
                }
                input = inputs.recv() => {
                    let Some(input) = input else { break };
                    heavy(|| {
                        let mut n = input.weight();
                        self.input(input);
                        // Take what else is waiting, up to a burst, before committing.
                        while n < BURST {
                            match inputs.try_recv() {
                                Ok(i) => {
                                    n += i.weight();
                                    self.input(i);
                                }
                                Err(_) => break,
                            }
                        }
                        let now = self.now();
                        if let Err(e) = self.core.flush(now) {
                            tracing::error!(error = %e, "storing received records failed");
                        }
                        self.settle();
                    });
                }
                () = sleep => heavy(|| {
                    let now = self.now();
                    if let Err(e) = self.core.handle_timeout(now) {
                        tracing::error!(error = %e, "mesh timer failed");
                    }
                    self.settle();
                }),
                () = tokio::time::sleep(Duration::from_millis(2)), if backlog => {
                    heavy(|| self.settle());
                }
            }
        }
        let now = self.now();
        let _ = self.core.close(now);
        self.after_input();
        // Let every connection send what is queued (presence withdrawal, goodbyes), then close.
        let links = std::mem::take(&mut self.links);
        for (_, link) in links {
            if link.writer.send(Write::Close("group closed")).is_err() {
                link.sender.close("group closed");
            }
            self.closing.push(link.task);
        }
        let flush = futures_util::future::join_all(std::mem::take(&mut self.closing));
        let _ = tokio::time::timeout(Duration::from_secs(3), flush).await;
        if let Some(reply) = self.close_reply.take() {
            let _ = reply.send(());
        }
    }

    /// Limits the frames of every connection of the group — mesh and direct, accepted or
    /// dialed, from the first byte of each — to what the group's records and its other
    /// protocols need ([`DriverConfig::min_group_frame`]), and each mesh connection to what
    /// the mesh needs ([`mesh_frame_limit`]): a member cannot make us buffer more.
    fn limit_frames(&self) {
        let max_record = self.core.db().properties().max_record_size;
        let mesh = mesh_frame_limit(max_record);
        self.config
            .trust
            .set_max_frame(Some(mesh.max(self.config.min_group_frame)));
        for link in self.links.values() {
            link.sender.set_max_frame(Some(mesh));
        }
        let flood = (max_record as usize)
            .saturating_add(peergroup_record_db::reserved::RECORD_OVERHEAD_ALLOWANCE as usize);
        self.max_flood.store(flood, Ordering::Relaxed);
    }

    /// After any input: lets backlogged syncs go on, carries out the outputs.
    fn settle(&mut self) {
        self.continue_syncs();
        self.after_input();
    }

    /// Lets backlogged syncs send more where the connection's queue has room.
    fn continue_syncs(&mut self) {
        let now = self.now();
        for conn in self.core.sync_backlog() {
            if self
                .links
                .get(&conn)
                .is_some_and(|l| l.queued.load(Ordering::Relaxed) < SYNC_QUEUE_BYTES)
            {
                self.core.continue_sync(conn, now);
            }
        }
    }

    /// Publishes where the endpoint listens, and the router's forward to it, if any.
    pub(super) fn publish_listen_addrs(&mut self) {
        let Some(ep) = &self.config.endpoint else {
            return;
        };
        let mut addrs = publishable_addrs(ep.local_addrs());
        for a in ep.mapped_addrs().borrow().iter() {
            if !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        let now = self.now();
        if let Err(e) = self.core.set_listen_addrs(addrs, now) {
            tracing::warn!(error = %e, "could not publish listen addresses");
        }
    }

    /// Publishes the addresses again whenever the endpoint's port mapping changes; ends with
    /// the endpoint or the driver.
    pub(super) fn watch_mapped(&self, ep: &Endpoint) {
        let mut mapped = ep.mapped_addrs();
        let tx = self.input_tx.downgrade();
        tokio::spawn(async move {
            while mapped.changed().await.is_ok() {
                let Some(tx) = tx.upgrade() else { return };
                if tx.send(Input::Mapped).await.is_err() {
                    return;
                }
            }
        });
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        match input {
            Input::Message(conn, bytes, _held) => self.core.handle_message(conn, &bytes, now),
            Input::Decoded(conn, message, _, _held) => {
                self.core.handle_decoded(conn, *message, now)
            }
            Input::Violation(conn, fault) => self.core.handle_violation(conn, fault, now),
            Input::Floods(conn, records, push, _held) => {
                self.core.handle_checked_floods(conn, records, push, now)
            }
            Input::CheckedSync {
                conn,
                session,
                class,
                records,
                len: _,
                held: _held,
            } => self
                .core
                .handle_checked_sync(conn, session, class, records, now),
            Input::Closed(conn) => {
                if self.links.remove(&conn).is_some() {
                    self.core.handle_disconnected(conn, now);
                }
            }
            Input::Dialed(_, Ok(conn)) => {
                self.note_observed(&conn);
                self.attach(conn, true, None);
            }
            Input::Dialed(addr, Err(reason)) => self.core.handle_connect_failed(addr, &reason, now),
            Input::Mapped => self.publish_listen_addrs(),
            Input::RelayOut(circuit, data) => {
                if self.core.relay_send(circuit, data).is_err() {
                    self.relays.remove(&circuit);
                }
            }
            Input::RelayTaken(circuit, n) => self.core.relay_consumed(circuit, n),
            Input::RelayEnded(circuit) => {
                self.relays.remove(&circuit);
                self.core.relay_close(circuit);
            }
            Input::Relayed(circuit, Ok(conn), initiator) => {
                if self.relays.contains_key(&circuit) {
                    self.attach(conn, initiator, None);
                } else {
                    conn.close("the relayed stream ended");
                }
            }
            Input::PunchedTcp(conn, server) => self.attach(conn, !server, None),
            Input::Relayed(circuit, Err(reason), _) => {
                tracing::debug!(%reason, "relayed stream failed");
                self.relays.remove(&circuit);
                self.core.relay_close(circuit);
            }
            Input::Incoming(conn, first) => {
                if self.core.status().listening {
                    self.attach(conn, false, first);
                } else {
                    conn.close("not listening yet (not synchronised)");
                }
            }
        }
    }

    /// What the server of a connection we dialed saw as our address, noted as a candidate
    /// to publish when it is the mapping of our listening socket: a QUIC connection dialed
    /// from the node's endpoint (a TCP connection comes from a port nobody can dial).
    fn note_observed(&mut self, conn: &Connection) {
        let info = conn.peer();
        let from_our_socket = self.config.endpoint.is_some() && info.transport == Transport::Quic;
        if let (true, Some(observed)) = (from_our_socket, info.observed_addr) {
            let now = self.now();
            if let Err(e) = self.core.note_observed_addr(observed, &info.peer, now) {
                tracing::warn!(error = %e, "could not publish an observed address");
            }
        }
    }

    /// Registers a connection with the core and starts its reader.
    fn attach(&mut self, conn: Connection, outbound: bool, first: Option<Bytes>) {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        let info = conn.peer().clone();
        let max_record = self.core.db().properties().max_record_size;
        conn.set_max_frame(Some(mesh_frame_limit(max_record)));
        let (sender, receiver) = conn.split();
        let tx = self.input_tx.clone();
        let keys = self.core.db().signer_keys();
        let budget = reader::Budget::new(self.read_budget.clone());
        let max_flood = self.max_flood.clone();
        tokio::spawn(reader::run(id, receiver, keys, budget, max_flood, tx));
        let (writer, mut queue) = mpsc::unbounded_channel::<Write>();
        let queued = Arc::new(AtomicUsize::new(0));
        let (out, count) = (sender.clone(), queued.clone());
        let task = tokio::spawn(async move {
            while let Some(w) = queue.recv().await {
                match w {
                    Write::Frame(bytes) => {
                        let len = bytes.len();
                        let sent = out.send(bytes).await;
                        count.fetch_sub(len, Ordering::Relaxed);
                        if sent.is_err() {
                            return;
                        }
                    }
                    Write::Close(reason) => {
                        out.close(reason);
                        // Until the queued frames (the presence withdrawal) and the goodbye
                        // are out: a closing process exits when its driver's tasks are done.
                        out.finished().await;
                        return;
                    }
                }
            }
        });
        self.links.insert(
            id,
            Link {
                writer,
                task,
                queued,
                sender,
            },
        );
        let now = self.now();
        self.core.handle_connected(
            id,
            PeerInfo {
                peer: info.peer.clone(),
                addr: info.addr,
                outbound,
                chain: Some(info.chain.chain().clone()),
                udp: info.transport == peergroup_transport::Transport::Quic,
                relayed: info.transport == peergroup_transport::Transport::Relayed,
            },
            now,
        );
        if let Some(bytes) = first {
            self.core.handle_message(id, &bytes, now);
        }
    }

    /// Carries out the core's outputs and publishes its events.
    fn after_input(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Send { conn, message } => self.send(conn, &message),
                Output::Connect { addr } => self.dial(addr, None),
                Output::Punch { addr, tcp_server } => {
                    self.dial(addr, Some(Dial::Quic));
                    self.punch_tcp(addr, tcp_server);
                }
                Output::RelayStream {
                    circuit,
                    peer,
                    initiator,
                } => self.open_relayed(circuit, peer, initiator),
                Output::RelayData { circuit, data } => {
                    if let Some(pipe) = self.relays.get(&circuit) {
                        pipe.deliver(data);
                    }
                }
                Output::RelayCredit { circuit, bytes } => {
                    if let Some(pipe) = self.relays.get(&circuit) {
                        pipe.credit(bytes);
                    }
                }
                Output::RelayClosed { circuit } => {
                    self.relays.remove(&circuit);
                }
                Output::Close { conn } => {
                    if let Some(link) = self.links.remove(&conn) {
                        // After what was queued for it (a goodbye, say).
                        if link
                            .writer
                            .send(Write::Close("closed by the mesh"))
                            .is_err()
                        {
                            link.sender.close("closed by the mesh");
                        }
                        // Keep only writers still flushing, so this stays small.
                        self.closing.retain(|t| !t.is_finished());
                        self.closing.push(link.task);
                    }
                }
            }
        }
        // The status first: a subscriber woken by an event (a neighbor gone, say) then reads
        // a status at least as new as that event.
        let status = self.core.status();
        self.status
            .send_if_modified(|s| std::mem::replace(s, status) != status);
        let mut properties = false;
        while let Some(e) = self.core.poll_event() {
            properties |= matches!(&e, Event::Record(c)
                if c.record.record_type == peergroup_record_db::RecordType::GROUP_PROPERTIES);
            // No subscriber is fine; a slow one is told it lagged by the broadcast channel.
            let _ = self.events.send(e);
        }
        if properties {
            // The largest record may have changed: so does what a frame may carry.
            self.limit_frames();
        }
        // Revocations learned from the database take effect at the handshake too (and close
        // live connections of the revoked).
        let revocations = self.core.db().revocations();
        if revocations.len() != self.revocations_known {
            self.revocations_known = revocations.len();
            self.config.trust.set_revocations(revocations.clone());
        }
    }

    fn send(&mut self, conn: ConnId, message: &MeshMessage) {
        let Some(link) = self.links.get(&conn) else {
            return;
        };
        let bytes = Bytes::from(message.encode());
        if bytes.len() > link.sender.max_data_len() {
            tracing::warn!(
                ?conn,
                kind = message.kind(),
                len = bytes.len(),
                "message over the frame limit not sent"
            );
            return;
        }
        let len = bytes.len();
        let before = link.queued.fetch_add(len, Ordering::Relaxed);
        if before + len > MAX_QUEUED_BYTES || link.writer.send(Write::Frame(bytes)).is_err() {
            link.queued.fetch_sub(len, Ordering::Relaxed);
            // This neighbor reads slower than we write. Rather than buffer without bound, drop
            // it; it can reconnect and sync.
            tracing::warn!(?conn, "neighbor too slow (send queue full); closing");
            link.sender.close("send queue full");
            self.links.remove(&conn);
            let now = self.now();
            self.core.handle_disconnected(conn, now);
        }
    }

    /// Opens our side of a relayed stream over the link to the relay.
    fn open_relayed(
        &mut self,
        circuit: crate::core::CircuitId,
        peer: peergroup_identity::PeerName,
        initiator: bool,
    ) {
        let Some(link) = self.links.get(&circuit.conn) else {
            self.core.relay_close(circuit);
            return;
        };
        let info = link.sender.peer();
        let ends = relay::Ends {
            credentials: self.config.credentials.clone(),
            trust: self.config.trust.clone(),
            transport: self.config.transport.clone(),
            local: info.local_addr,
            via: info.addr,
        };
        let pipe = relay::open(circuit, peer, initiator, ends, &self.input_tx);
        self.relays.insert(circuit, pipe);
    }

    /// Dials `addr` over the configured transport, or over `over` (a hole punch dials QUIC
    /// from the listening socket, the one the other side was told of).
    /// The TCP half of a hole punch: a simultaneous open from the listening port. A failure
    /// is only logged (the QUIC dial beside it reports the address's failure).
    fn punch_tcp(&self, addr: SocketAddr, tcp_server: bool) {
        let Some(ep) = self.config.endpoint.clone() else {
            return;
        };
        let tx = self.input_tx.clone();
        let creds = self.config.credentials.clone();
        let trust = self.config.trust.clone();
        tokio::spawn(async move {
            match ep.punch_tcp(addr, &creds, &trust, tcp_server).await {
                Ok((conn, served)) => {
                    let _ = tx.send(Input::PunchedTcp(conn, served)).await;
                }
                Err(e) => tracing::debug!(%addr, error = %e, "TCP punch made no connection"),
            }
        });
    }

    fn dial(&self, addr: SocketAddr, over: Option<Dial>) {
        let tx = self.input_tx.clone();
        let creds = self.config.credentials.clone();
        let trust = self.config.trust.clone();
        let mut transport = self.config.transport.clone();
        let dial = over.unwrap_or(transport.dial);
        transport.dial = dial;
        let endpoint = self.config.endpoint.clone();
        tokio::spawn(async move {
            // Through the node's endpoint when it has one, so what dialed connections buffer
            // counts toward the endpoint's bound on unread bytes with the accepted ones.
            let result = match endpoint {
                Some(ep) => ep.connect_to_over(addr, &creds, &trust, dial).await,
                None => Endpoint::connect(addr, &creds, &trust, &transport).await,
            }
            .map_err(|e| e.to_string());
            let _ = tx.send(Input::Dialed(addr, result)).await;
        });
    }
}

/// Runs synchronous work that can take milliseconds (validating and storing a burst of
/// records: batch signature checks, a durable SQLite commit; a local change; a sync burst)
/// without holding up the runtime's other tasks: on a multi-thread runtime the worker first
/// hands its other tasks to another thread (`block_in_place`). Without the handover the
/// connection tasks this work wakes waited for it. Measured with two nodes on two cores
/// (`benches/benches/network.rs`): a node given 10,000 records to flood sent almost none
/// until it had validated and stored them all, so it and its neighbor took turns instead of
/// working at once, and the flood ran at 0.33 of the verify-and-store baseline instead of
/// 0.57. On a current-thread runtime there is nobody to hand over to. The hand-over costs
/// a receiving node CPU: run inline, or on one thread, its flood took ~0.08× of the floor
/// less per record at some throughput (docs/architecture.md, flow step 6).
fn heavy<R>(work: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Commands that only read memory: not worth a handover (see [`heavy`]).
fn is_quick(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Members(..)
            | Command::Neighbors(..)
            | Command::BootstrapAddrs(..)
            | Command::Connect(..)
            | Command::AddCandidates(..)
            | Command::Properties(..)
            | Command::Stats(..)
            | Command::SyncProgress(..)
            | Command::PeerTime(..)
    )
}

/// Listen addresses worth publishing. An unspecified address (0.0.0.0, ::) stands for every
/// interface: it is replaced by the interfaces' addresses of the same family (loopback only
/// when there is nothing else), with the listening port.
pub fn publishable_addrs(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let interfaces: Vec<std::net::IpAddr> = if_addrs::get_if_addrs()
        .map(|list| list.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for a in addrs {
        if !a.ip().is_unspecified() {
            out.push(*a);
            continue;
        }
        let same_family = |ip: &std::net::IpAddr| ip.is_ipv4() == a.is_ipv4();
        let mut expanded: Vec<SocketAddr> = interfaces
            .iter()
            .filter(|ip| same_family(ip) && !ip.is_loopback() && !is_ipv6_link_local(ip))
            .map(|ip| SocketAddr::new(*ip, a.port()))
            .collect();
        if expanded.is_empty() {
            expanded = interfaces
                .iter()
                .filter(|ip| same_family(ip) && ip.is_loopback())
                .map(|ip| SocketAddr::new(*ip, a.port()))
                .collect();
        }
        out.extend(expanded);
    }
    out.sort();
    out.dedup();
    out.truncate(crate::message::MAX_ADDRESSES);
    out
}

fn is_ipv6_link_local(ip: &std::net::IpAddr) -> bool {
    matches!(ip, std::net::IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

#[doc(hidden)]
pub type Reply<T> = oneshot::Sender<T>;

#[cfg(test)]
mod tests {
    use super::heavy;

    #[test]
    fn heavy_work_runs_on_either_runtime() {
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(current.block_on(async { heavy(|| 1) }), 1);
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let spawned = multi.spawn(async { heavy(|| 2) });
        assert_eq!(multi.block_on(spawned).unwrap(), 2);
        assert_eq!(heavy(|| 3), 3, "outside any runtime");
    }
}
