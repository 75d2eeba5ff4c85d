//! Connections: the hello/welcome handshake, dispatch of neighbor messages, sync sessions,
//! and the end of a connection.

use peergroup_record_db::Received;
use peergroup_record_db::store::Store;
use peergroup_record_db::sync::{SyncClass, SyncMessage, SyncSession};

use super::neighbors::{Link, Phase};
use super::{ConnId, Core, Event, LinkEnd, NeighborChange, Output, PeerFault, PeerInfo, Status};
use crate::message::{MeshMessage, Push, Reason};
use crate::time::Now;

impl<S: Store> Core<S> {
    /// A transport connection is up (we dialed it, or accepted it).
    pub fn handle_connected(&mut self, conn: ConnId, info: PeerInfo, now: Now) {
        if self.closed {
            self.outputs.push_back(Output::Close { conn });
            return;
        }
        if let Some(chain) = &info.chain {
            // The transport validated it; knowing it lets the peer's records validate at once.
            let _ = self.db.learn_member(chain);
        }
        if info.outbound {
            self.neighbors.dialing.remove(&info.addr);
            if let Some(c) = self.neighbors.candidates.get_mut(&info.addr) {
                c.failures = 0;
            }
        } else {
            // A member may hold only a few links to us, and strangers to the mesh (links
            // still waiting for their hello) only so many at once.
            let same = self
                .neighbors
                .iter()
                .filter(|(_, l)| l.info.peer == info.peer)
                .count();
            let waiting = self
                .neighbors
                .iter()
                .filter(|(_, l)| l.phase == Phase::AwaitHello)
                .count();
            if same >= super::MAX_LINKS_PER_MEMBER || waiting >= super::MAX_AWAITING_HELLO {
                tracing::debug!(peer = %info.peer, same, waiting, "refusing a link over the bounds");
                self.stats.links_refused += 1;
                self.outputs.push_back(Output::Close { conn });
                return;
            }
        }
        // Rights end on time: the link closes when the first certificate of the peer's chain
        // expires (see `expire_links`).
        let expires = info
            .chain
            .as_ref()
            .and_then(|c| c.certificates().iter().map(|c| c.not_after()).min());
        let phase = if info.outbound {
            Phase::AwaitWelcome(now.mono)
        } else {
            Phase::AwaitHello
        };
        let outbound = info.outbound;
        // The eager links form a tree; a node already on it joins new links lazily (they would
        // only close cycles and carry duplicates). A node with no eager link pushes eagerly.
        let eager = !self.has_eager_neighbor();
        self.neighbors.insert(
            conn,
            Link {
                info,
                expires,
                phase,
                opened: now.mono,
                node: None,
                listen: Vec::new(),
                utility: 0,
                welcomed: None,
            },
            now.mono.saturating_add(self.config.handshake_timeout),
        );
        self.broadcast.add(conn, eager);
        self.syncs.add(conn, now.mono);
        if outbound {
            let hello = MeshMessage::Hello {
                node: self.node,
                listen: self.neighbors.listen.clone(),
            };
            self.send(conn, hello);
        }
    }

    /// The driver saw a neighbor break the protocol before handing its message over (a flood
    /// larger than the group's records): the connection is closed with the reason.
    pub fn handle_violation(&mut self, conn: ConnId, fault: PeerFault, now: Now) {
        tracing::warn!(?conn, %fault, "closing a connection that broke the protocol");
        self.drop_link(conn, LinkEnd::Protocol(fault), now);
    }

    /// A message arrived from a connection. Malformed input closes that connection only.
    pub fn handle_message(&mut self, conn: ConnId, bytes: &[u8], now: Now) {
        match MeshMessage::decode(bytes) {
            Ok(message) => self.handle_decoded(conn, message, now),
            Err(e) => {
                tracing::warn!(?conn, error = %e, "closing a connection that sent a malformed message");
                self.drop_link(conn, LinkEnd::Protocol(PeerFault::Message(e)), now);
            }
        }
    }

    /// Flooded records arrived whose signatures the connection's reader already checked
    /// ([`peergroup_record_db::SignerKeys::check`]); as [`Core::handle_message`] with one
    /// flood message per record otherwise.
    /// `push` says which message brought them (floods or repushes).
    pub fn handle_checked_floods(
        &mut self,
        conn: ConnId,
        records: Vec<Received>,
        push: Push,
        now: Now,
    ) {
        let established = self.neighbors.is_established(conn);
        if self.closed || !established {
            // Not a neighbor (yet): the handshake rules decide what a flood means here.
            for received in records {
                self.handle_decoded(conn, push.message(received.into_record()), now);
            }
            return;
        }
        self.note_neighbor_message(conn, now);
        self.stats.floods_received += records.len() as u64;
        self.broadcast
            .inbox
            .extend(records.into_iter().map(|r| (conn, r, push)));
    }

    /// The records of a sync `Records` message whose signatures the connection's reader
    /// already checked ([`peergroup_record_db::SignerKeys::check`]), so the group's task
    /// does not check them again; as [`Core::handle_message`] with that message otherwise.
    pub fn handle_checked_sync(
        &mut self,
        conn: ConnId,
        session: u32,
        class: SyncClass,
        records: Vec<Received>,
        now: Now,
    ) {
        if self.closed || !self.neighbors.is_established(conn) {
            // Not a neighbor (yet): the handshake rules decide what it means here.
            let records = records.into_iter().map(Received::into_record).collect();
            let message = SyncMessage::Records { class, records };
            self.handle_decoded(conn, MeshMessage::Sync { session, message }, now);
            return;
        }
        self.note_neighbor_message(conn, now);
        self.on_sync_message(conn, session, SyncInput::Checked { class, records }, now);
    }

    /// A decoded message arrived (the simulator skips the encoding).
    pub fn handle_decoded(&mut self, conn: ConnId, message: MeshMessage, now: Now) {
        if self.closed {
            return;
        }
        let Some(link) = self.neighbors.get(conn) else {
            return;
        };
        let phase = link.phase;
        let from = link.info.peer.clone();
        match (phase, message) {
            (_, MeshMessage::Disconnect { referrals, reason }) => {
                self.add_referred(&referrals, &from);
                self.drop_link(conn, LinkEnd::NeighborLeft(reason), now);
            }
            (Phase::AwaitHello, MeshMessage::Hello { node, listen }) => {
                self.on_hello(conn, node, listen, now)
            }
            (
                Phase::AwaitWelcome(sent),
                MeshMessage::Welcome {
                    node,
                    listen,
                    peer_time,
                    referrals,
                },
            ) => {
                self.add_referred(&referrals, &from);
                if node == self.node {
                    let end = LinkEnd::Duplicate(Reason::SelfConnection);
                    self.drop_link(conn, end, now);
                    return;
                }
                if let Some((existing, we_dialed)) = self.neighbors.link_to_node(node) {
                    // Both dialed at once (a hole punch does) and each accepted the other's
                    // hello before its own was welcomed: the link the smaller node dialed
                    // stays, which both ends decide alike. (Had the other end's welcome come
                    // first, it refused our hello and this link is already gone there.)
                    // A direct link replaces a relayed one, whoever dialed.
                    let end = LinkEnd::Duplicate(Reason::AlreadyConnected);
                    let (old_relayed, new_relayed) =
                        (self.is_relayed(existing), self.is_relayed(conn));
                    if old_relayed != new_relayed {
                        let relayed = if old_relayed { existing } else { conn };
                        self.drop_link(relayed, end, now);
                        if relayed == conn {
                            return;
                        }
                    } else if !we_dialed && self.node < node {
                        self.drop_link(existing, end, now);
                    } else {
                        self.drop_link(conn, end, now);
                        return;
                    }
                }
                // The round trip on the monotonic clock; the hello's wall time derived from it.
                let round_trip = now.mono.duration_since(sent);
                let t_hello = now.wall.saturating_sub(round_trip);
                self.presence.peer_time.sample(t_hello, now.wall, peer_time);
                self.broadcast.link_round_trip(round_trip);
                self.establish(conn, node, listen, now);
            }
            (Phase::AwaitWelcome(_), MeshMessage::Refuse { reason, referrals }) => {
                self.add_referred(&referrals, &from);
                let addr = self.neighbors.get(conn).map(|l| l.info.addr);
                self.drop_link(conn, LinkEnd::RefusedBy(reason), now);
                if reason == Reason::Busy {
                    self.refused_busy(addr, now);
                }
            }
            (Phase::Established, message) => self.on_neighbor_message(conn, message, now),
            (_, other) => {
                let fault = PeerFault::UnexpectedInHandshake(other.kind());
                self.drop_link(conn, LinkEnd::Protocol(fault), now);
            }
        }
    }

    fn on_hello(
        &mut self,
        conn: ConnId,
        node: crate::message::NodeId,
        listen: Vec<std::net::SocketAddr>,
        now: Now,
    ) {
        // (Two dials that crossed are settled when the welcome comes back: see there.)
        // A direct link replaces a relayed one (a punch that succeeded later).
        if let Some((existing, _)) = self.neighbors.link_to_node(node)
            && self.is_relayed(existing)
            && !self.is_relayed(conn)
        {
            let end = LinkEnd::Duplicate(Reason::AlreadyConnected);
            self.drop_link(existing, end, now);
        }
        let refusal = if node == self.node {
            Some(Reason::SelfConnection)
        } else if self.neighbors.link_to_node(node).is_some() {
            Some(Reason::AlreadyConnected)
        } else if self.neighbors.established_count() >= self.config.max_neighbors {
            Some(Reason::Busy)
        } else {
            None
        };
        if let Some(from) = self.neighbors.get(conn).map(|l| l.info.peer.clone()) {
            self.add_referred(&listen, &from);
        }
        if let Some(reason) = refusal {
            let referrals = self.referrals(Some(conn));
            self.send(conn, MeshMessage::Refuse { reason, referrals });
            self.close_link(conn, LinkEnd::Refused(reason), now);
            return;
        }

        let welcome = MeshMessage::Welcome {
            node: self.node,
            listen: self.neighbors.listen.clone(),
            peer_time: self.presence.peer_time.to_peer(now.wall),
            referrals: self.referrals(Some(conn)),
        };
        self.send(conn, welcome);
        self.establish(conn, node, listen, now);
        if let Some(link) = self.neighbors.get_mut(conn) {
            link.welcomed = Some(now.mono);
        }
    }

    /// Whether another member relays link `conn`.
    fn is_relayed(&self, conn: ConnId) -> bool {
        self.neighbors.get(conn).is_some_and(|l| l.info.relayed)
    }

    fn establish(
        &mut self,
        conn: ConnId,
        node: crate::message::NodeId,
        listen: Vec<std::net::SocketAddr>,
        now: Now,
    ) {
        let Some(link) = self.neighbors.establish(conn) else {
            return;
        };
        link.node = Some(node);
        link.listen = listen;
        let (peer, addr, outbound) = (link.info.peer.clone(), link.info.addr, link.info.outbound);
        self.events.push_back(Event::Neighbor {
            conn,
            peer: peer.clone(),
            addr,
            change: NeighborChange::Connected,
        });
        if let Some(change) = self.presence.members.node_found(&peer, node) {
            self.events.push_back(Event::Member { peer, change });
        }
        self.update_connections_flag();
        // A link this node joined eagerly (it was on no tree) must push both ways: the other
        // end, already on a tree, joined it lazily and would only announce to us. Left so,
        // this node counted itself on the tree while nothing reached it by push, and pulled
        // every record a graft timeout late.
        if self.broadcast.is_eager(conn) {
            self.send(
                conn,
                MeshMessage::Graft {
                    keys: Vec::new(),
                    eager: true,
                },
            );
        }
        // Every new connection syncs; the dialer initiates.
        if outbound {
            self.start_sync(conn, now);
        }
    }

    /// What any message from an established neighbor tells before its content.
    fn note_neighbor_message(&mut self, conn: ConnId, now: Now) {
        // The dialer's first message answers our welcome: an acceptor's round trip, the
        // graft timeout's first guess as a dialer's is (the creator only ever accepts).
        if let Some(welcomed) = self.neighbors.get_mut(conn).and_then(|l| l.welcomed.take()) {
            self.broadcast
                .link_round_trip(now.mono.duration_since(welcomed));
        }
    }

    fn on_neighbor_message(&mut self, conn: ConnId, message: MeshMessage, now: Now) {
        self.note_neighbor_message(conn, now);
        match message {
            MeshMessage::Sync { session, message } => {
                self.on_sync_message(conn, session, SyncInput::Message(message), now)
            }
            MeshMessage::SyncRequest => {
                let outbound = self.neighbors.get(conn).map(|l| l.info.outbound);
                if let (Some(outbound), Some(sync)) = (outbound, self.syncs.get_mut(conn)) {
                    if sync.session.is_some() {
                        sync.wanted = true;
                    } else if outbound {
                        self.start_sync(conn, now);
                    }
                }
            }
            MeshMessage::Flood(record) => {
                self.stats.floods_received += 1;
                self.broadcast
                    .inbox
                    .push((conn, Received::unchecked(record), Push::Tree));
            }
            MeshMessage::Repush(record) => {
                self.stats.floods_received += 1;
                self.broadcast
                    .inbox
                    .push((conn, Received::unchecked(record), Push::Repair));
            }
            MeshMessage::IHave(keys) => self.on_ihave(conn, keys, now),
            MeshMessage::Graft { keys, eager } => self.on_graft(conn, keys, eager),
            MeshMessage::Prune => self.on_prune(conn),
            MeshMessage::Lost { peer, node } => self.on_lost(conn, peer, node, now),
            MeshMessage::PunchVia {
                to,
                id,
                step,
                candidates,
            } => self.on_punch_via(conn, to, id, step, candidates, now),
            MeshMessage::PunchFrom {
                from,
                id,
                step,
                candidates,
            } => self.on_punch_from(conn, from, id, step, candidates, now),
            MeshMessage::RelayOpen { circuit, to } => self.on_relay_open(conn, circuit, to, now),
            MeshMessage::RelayIncoming { circuit, from } => {
                self.on_relay_incoming(conn, circuit, from)
            }
            MeshMessage::RelayData { circuit, data } => self.on_relay_data(conn, circuit, data),
            MeshMessage::RelayAck { circuit, bytes } => self.on_relay_ack(conn, circuit, bytes),
            MeshMessage::RelayClose { circuit } => self.on_relay_close(conn, circuit),
            other => {
                let fault = PeerFault::Unexpected(other.kind());
                self.drop_link(conn, LinkEnd::Protocol(fault), now);
            }
        }
    }

    fn on_sync_message(&mut self, conn: ConnId, session: u32, input: SyncInput, now: Now) {
        let Some(outbound) = self.neighbors.get(conn).map(|l| l.info.outbound) else {
            return;
        };
        let Some(link) = self.syncs.get_mut(conn) else {
            return;
        };
        let current = link.session.is_some() && link.id == session;
        if !current {
            // The dialer only ever answers its own current sync; a stale number is a message of
            // an abandoned sync. The acceptor follows the dialer to a newer number.
            if outbound || session < link.id || (session == link.id && link.session.is_none()) {
                return;
            }
            // A new session costs a snapshot of our keys: a neighbor may start them only at
            // a bounded rate (GCRA: a burst of SYNC_SESSION_BURST, then one per interval).
            let interval = super::SYNC_SESSION_INTERVAL;
            let allowance = interval.saturating_mul(super::SYNC_SESSION_BURST);
            if link.tat.saturating_sub(allowance) > now.mono {
                self.stats.syncs_refused += 1;
                tracing::debug!(
                    ?conn,
                    session,
                    "a sync session started too soon was ignored"
                );
                return;
            }
            link.tat = link.tat.max(now.mono).saturating_add(interval);
            link.session = Some(SyncSession::responder());
            link.id = session;
        }
        let result = match link.session.as_mut() {
            Some(s) => match input {
                SyncInput::Message(message) => s.handle(message, &self.db),
                SyncInput::Checked { class, records } => s.handle_records(class, records),
            }
            .map(|()| s.take_received_checked()),
            None => Ok(Vec::new()),
        };
        let stall = now.mono.saturating_add(self.config.sync_stall_timeout);
        self.syncs.progressed(conn, now.mono, stall);
        match result {
            Ok(records) => self
                .syncs
                .inbox
                .extend(records.into_iter().map(|r| (conn, r))),
            Err(e) => self.abandon_sync(conn, &e.to_string(), now),
        }
    }

    /// Gives up the current sync of a link (a lost message stalled it, or it failed); the
    /// dialer starts a fresh one.
    pub(crate) fn abandon_sync(&mut self, conn: ConnId, why: &str, now: Now) {
        let Some(outbound) = self.neighbors.get(conn).map(|l| l.info.outbound) else {
            return;
        };
        tracing::debug!(?conn, why, "abandoning a sync");
        self.syncs.end(conn);
        self.stats.syncs_abandoned += 1;
        if outbound {
            self.start_sync(conn, now);
        }
    }

    /// Starts (dialer) or asks for (acceptor) a sync on a link.
    pub(crate) fn start_sync(&mut self, conn: ConnId, now: Now) {
        let Some(link) = self.neighbors.get(conn) else {
            return;
        };
        if link.phase != Phase::Established {
            return;
        }
        let outbound = link.info.outbound;
        let Some(sync) = self.syncs.get_mut(conn) else {
            return;
        };
        if sync.session.is_some() {
            sync.wanted = true;
            return;
        }
        if outbound {
            sync.session = Some(SyncSession::initiator());
            sync.id = sync.id.wrapping_add(1);
            let stall = now.mono.saturating_add(self.config.sync_stall_timeout);
            self.syncs.progressed(conn, now.mono, stall);
            self.pump_sync(conn, now);
        } else {
            self.send(conn, MeshMessage::SyncRequest);
        }
    }

    /// Sends what a link's sync session has to say; finishes it when done.
    pub(crate) fn pump_sync(&mut self, conn: ConnId, now: Now) {
        let mut out = Vec::new();
        let mut failure = None;
        let mut finished = None;
        let burst = self.config.sync_burst;
        if let Some(link) = self.syncs.get_mut(conn) {
            let id = link.id;
            link.backlog = false;
            if let Some(session) = link.session.as_mut() {
                loop {
                    if out.len() >= burst {
                        link.backlog = true;
                        break;
                    }
                    match session.poll_transmit(&self.db) {
                        Ok(Some(m)) => out.push(MeshMessage::Sync {
                            session: id,
                            message: m,
                        }),
                        Ok(None) => break,
                        Err(e) => {
                            failure = Some(e.to_string());
                            break;
                        }
                    }
                }
                if failure.is_none() && session.is_done() {
                    let (sent, received) = session.record_counts();
                    finished = Some((sent, received));
                }
            }
        }
        if finished.is_some() {
            self.syncs.end(conn);
        } else if failure.is_none() && !out.is_empty() {
            // Sending is progress too: the side that sends a large class's records hears
            // nothing from its peer until they are through (the driver asks for the next
            // burst only once the connection took the last, so a peer that stopped reading
            // still stalls it).
            let stall = now.mono.saturating_add(self.config.sync_stall_timeout);
            self.syncs.progressed(conn, now.mono, stall);
        }
        for m in out {
            self.send(conn, m);
        }
        if let Some(why) = failure {
            self.abandon_sync(conn, &why, now);
            return;
        }
        if let Some((sent, received)) = finished {
            self.sync_finished(conn, sent, received, now);
        }
    }

    fn sync_finished(&mut self, conn: ConnId, sent: u64, received: u64, now: Now) {
        self.stats.syncs += 1;
        self.events.push_back(Event::Synced {
            conn,
            received,
            sent,
        });
        if !self.status.ever_synchronized {
            // Kept for the next run: the replica is the group's now (best effort: a full disk
            // only means the next run waits for a sync before publishing offline).
            let _ = self.db.set_meta(super::SYNCED_META, vec![1]);
        }
        if !self.status.synchronized || !self.status.listening || !self.status.ever_synchronized {
            let s = Status {
                listening: true,
                synchronized: true,
                ever_synchronized: true,
                ..self.status
            };
            self.set_status(s);
            // Now that we listen, say where.
            let _ = self.publish_presence(now);
        }
        // What we learned may be news to our other neighbors: let them reconcile with us
        // (reconciliation costs bytes in proportion to the difference, so this is cheap when
        // they already have it).
        let old = self.syncs.learned_old.remove(&conn).unwrap_or(0);
        if received > 0 && old > 0 {
            let mut others = self.neighbors.conns();
            others.retain(|c| *c != conn);
            for other in others {
                self.start_sync(other, now);
            }
        }
        if let Some(s) = self.syncs.get_mut(conn)
            && s.wanted
        {
            s.wanted = false;
            self.start_sync(conn, now);
        }
    }

    /// A connection ended (closed by either side, or broken).
    pub fn handle_disconnected(&mut self, conn: ConnId, now: Now) {
        if let Some(link) = self.neighbors.remove(conn) {
            self.after_link_removed(conn, link, LinkEnd::ConnectionClosed, now);
        }
    }

    /// Sends `Disconnect` (if a reason is given), asks the driver to close, forgets the link.
    /// Tells the neighbor why ([`LinkEnd::told`]), when there is something to tell, and
    /// closes the link.
    pub(crate) fn drop_link(&mut self, conn: ConnId, end: LinkEnd, now: Now) {
        if let Some(reason) = end.told() {
            let referrals = self.referrals(Some(conn));
            self.send(conn, MeshMessage::Disconnect { reason, referrals });
        }
        self.close_link(conn, end, now);
    }

    fn close_link(&mut self, conn: ConnId, end: LinkEnd, now: Now) {
        self.outputs.push_back(Output::Close { conn });
        if let Some(link) = self.neighbors.remove(conn) {
            self.after_link_removed(conn, link, end, now);
        }
    }

    fn after_link_removed(&mut self, conn: ConnId, link: Link, end: LinkEnd, now: Now) {
        self.syncs.remove(conn);
        self.punches.link_closed(conn);
        self.relay_link_closed(conn);
        self.broadcast.remove(conn);
        if link.info.outbound {
            self.neighbors.dialing.remove(&link.info.addr);
        }
        if link.phase == Phase::Established {
            // Gone without a goodbye: its presence no longer counts here.
            let lost = match (&end, link.node) {
                (LinkEnd::ConnectionClosed, Some(node)) => {
                    self.mark_lost(&link.info.peer, node, None)
                }
                _ => None,
            };
            self.events.push_back(Event::Neighbor {
                conn,
                peer: link.info.peer.clone(),
                addr: link.info.addr,
                change: NeighborChange::Disconnected(end),
            });
            if let Some(change) = lost {
                self.events.push_back(Event::Member {
                    peer: link.info.peer,
                    change,
                });
            }
            self.update_connections_flag();
            // Replace it soon.
            self.neighbors.next_maintenance = self.neighbors.next_maintenance.min(now.mono);
        }
    }
}

/// A sync message as it reaches a session: decoded by the core, or a `Records` message
/// whose signatures the connection's reader checked.
enum SyncInput {
    Message(SyncMessage),
    Checked {
        class: SyncClass,
        records: Vec<Received>,
    },
}
