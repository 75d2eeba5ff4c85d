//! Flooding with low redundancy: Plumtree-style eager and lazy links.
//!
//! Every link starts *eager*: a new record is pushed whole. A node that receives a payload it
//! already has makes the link *lazy* on its side and answers `Prune`, and the sender makes it
//! lazy on its side too: from then on each end only announces item keys (`IHave`) over it.
//! The eager links thus thin out to a spanning tree, over which a record from any sender
//! reaches every node exactly once. When an announced record does not
//! arrive in time (its tree path broke, or a message was lost) the node asks an announcer for
//! it with `Graft`, which also makes that link eager again, repairing the tree. Periodic
//! anti-entropy syncs catch whatever both mechanisms miss.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use foldhash::HashMap;

use peergroup_identity::PeerName;
use peergroup_record_db::store::Store;
use peergroup_record_db::{Change, ChangeKind, Received, Record};

use super::again::{Again, MAX_ANNOUNCED_AGAIN};
use super::lag::PushLag;
use super::pending::Pending;
use super::{ConnId, Core};
use crate::message::{MAX_KEYS, MeshMessage, Push};
use crate::time::{Mono, Now};

/// Rounds of payload requests over all announcers before giving a key up to anti-entropy (at
/// 10% loss a request or its answer is lost 19% of the time: three rounds over a single
/// announcer left 0.7% of pulls to anti-entropy, five leave 0.02%).
const GRAFT_ROUNDS: u32 = 5;

/// The broadcast tree: which links push payloads (eager) rather than announce them, the
/// floods waiting for the next flush, and the payloads announced and not received, whose
/// graft deadlines are its timer table (see [`Pending`]).
#[derive(Debug, Default)]
pub(super) struct Broadcast {
    /// The links that push payloads; the others only announce them.
    eager: BTreeSet<ConnId>,
    /// Floods received since the last flush, with how each was pushed.
    pub(super) inbox: Vec<(ConnId, Received, Push)>,
    /// Payloads announced and not received (bounded; see [`super::pending`]).
    pub(super) missing: Pending,
    /// Keys being delivered right now that had to be pulled, with when each was first
    /// announced (scratch for one flush).
    missing_attempts: BTreeMap<u64, Mono>,
    /// Payloads pulled since the last one that arrived by push.
    pulls_in_a_row: u32,
    /// The makers whose last record here had to be pulled (at most [`MAX_PULLED_MAKERS`]).
    pulled_makers: HashSet<PeerName>,
    /// How the latest records first arrived (at most [`MAX_ARRIVED`]): a duplicate is
    /// evidence of a cycle of eager links only when it races a push. (Item keys are hashes a
    /// member can grind: foldhash with a random seed, as for every map by item key here.)
    arrived: HashMap<u64, Arrival>,
    /// The order `arrived` was filled in.
    arrived_order: std::collections::VecDeque<u64>,
    /// Keys forwarded lately, to announce again.
    pub(super) again: Again,
    /// How late pushes come after announcements here: the graft timeout.
    lag: PushLag,
    /// Records pulled lately, with when: whether a push followed each (it was late) or not
    /// (it was lost) is judged [`PUSH_AFTER_PULL_WINDOW`] later (at most [`MAX_ARRIVED`]).
    pulled: std::collections::VecDeque<(u64, Mono)>,
}

/// How long after a pull a push of the same record still counts as late rather than lost.
pub(crate) const PUSH_AFTER_PULL_WINDOW: std::time::Duration = std::time::Duration::from_secs(3);

/// Most makers remembered in [`Broadcast::pulled_makers`]; past it the set starts over (the
/// worst that does is one more pull before a link turns eager).
pub const MAX_PULLED_MAKERS: usize = 4096;

/// How a record first reached this node: when, and whether by a repair (a pull, a sync, or a
/// repush: a push on from a repair upstream) rather than by pushes all the way from its
/// maker.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    at: Mono,
    repaired: bool,
    /// For a record pulled after an announcement: when it was announced. A push of it that
    /// comes later still measures how late pushes come (else a short graft timeout would
    /// only ever see the pushes that beat it, and shrink for good).
    announced: Option<Mono>,
}

/// Most first arrivals remembered in [`Broadcast::arrived`]; past it the oldest is forgotten
/// (a duplicate of a forgotten record prunes, as in plain Plumtree).
pub const MAX_ARRIVED: usize = 4096;

impl Broadcast {
    /// A link is up, eager or lazy.
    pub(super) fn add(&mut self, conn: ConnId, eager: bool) {
        self.set_eager(conn, eager);
    }

    /// A link is gone.
    pub(super) fn remove(&mut self, conn: ConnId) {
        self.eager.remove(&conn);
        self.missing.forget_link(conn);
    }

    /// Every link is gone.
    pub(super) fn clear(&mut self) {
        self.eager.clear();
    }

    pub(super) fn is_eager(&self, conn: ConnId) -> bool {
        self.eager.contains(&conn)
    }

    pub(super) fn set_eager(&mut self, conn: ConnId, eager: bool) {
        if eager {
            self.eager.insert(conn);
        } else {
            self.eager.remove(&conn);
        }
    }

    /// Remembers how `key` first arrived (the oldest of [`MAX_ARRIVED`] is forgotten).
    fn arrived(&mut self, key: u64, arrival: Arrival) {
        if self.arrived.insert(key, arrival).is_none() {
            if self.arrived_order.len() >= MAX_ARRIVED
                && let Some(old) = self.arrived_order.pop_front()
            {
                self.arrived.remove(&old);
            }
            self.arrived_order.push_back(key);
        }
    }

    /// A handshake took `round_trip`: the graft timeout's first guess (see [`PushLag`]).
    pub(super) fn link_round_trip(&mut self, round_trip: std::time::Duration) {
        self.lag.first_guess(round_trip);
    }

    /// The next deadline: the first announced payload due to be pulled, or the next round
    /// of announcements.
    pub(super) fn next_deadline(&self) -> Option<Mono> {
        match (self.missing.next_deadline(), self.again.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl<S: Store> Core<S> {
    /// Validates and stores every record received since the last flush in one batch (one
    /// durable commit), passes new ones on, and answers the sync sessions.
    pub fn flush(&mut self, now: Now) -> Result<(), crate::Error> {
        self.last = now;
        let floods = std::mem::take(&mut self.broadcast.inbox);
        let synced = std::mem::take(&mut self.syncs.inbox);
        if !floods.is_empty() || !synced.is_empty() {
            self.apply_received(floods, synced, now)?;
        }
        self.judge_pulls(now);
        for conn in self.syncs.running() {
            self.pump_sync(conn, now);
        }
        Ok(())
    }

    fn apply_received(
        &mut self,
        floods: Vec<(ConnId, Received, Push)>,
        synced: Vec<(ConnId, Received)>,
        now: Now,
    ) -> Result<(), crate::Error> {
        // Duplicates are found in memory; each tells its eager sender to prune the link.
        let arriving = floods.len() + synced.len();
        let mut source: HashMap<u64, ConnId> =
            HashMap::with_capacity_and_hasher(arriving, Default::default());
        // Where each record came from by id, for the rare stale one (below).
        let mut senders: Vec<(peergroup_record_db::RecordId, ConnId)> =
            Vec::with_capacity(arriving);
        let mut batch = Vec::with_capacity(arriving);
        let mut prune = BTreeSet::new();
        // First copies that came as repushes: repaired upstream, pushed on as such.
        let mut repushed: foldhash::HashSet<u64> = foldhash::HashSet::default();
        for (conn, record, push) in floods {
            let key = record.item_key();
            let first = if source.contains_key(&key) {
                Some(Arrival {
                    at: now.mono,
                    repaired: self.broadcast.missing.pulled(key),
                    announced: None,
                })
            } else if self.db.contains_key(key) {
                // The push of a record pulled before it: how late it came.
                if let Some(announced) = self
                    .broadcast
                    .arrived
                    .get_mut(&key)
                    .and_then(|a| a.announced.take())
                {
                    self.broadcast
                        .lag
                        .sample(now.mono.duration_since(announced));
                    self.broadcast.lag.judge_pull(true);
                    self.stats.pushes_after_pull += 1;
                }
                // Unknown (long ago): a plain Plumtree prune.
                Some(
                    self.broadcast
                        .arrived
                        .get(&key)
                        .copied()
                        .unwrap_or(Arrival {
                            at: now.mono,
                            repaired: false,
                            announced: None,
                        }),
                )
            } else {
                None
            };
            if let Some(first) = first {
                self.stats.duplicate_floods += 1;
                // A duplicate shows a cycle of eager links only when two pushes from its
                // maker race. Not so when our first copy came by a repair (we pulled it, or a
                // sync brought it: this copy may answer our pull, or come from a sender that
                // was late too), nor when this copy comes more than a graft timeout after
                // the first (its sender was reached by a repair and pushed on what it
                // pulled). Pruning on those cut the links that repairs had just made eager:
                // on 50 real nodes the eager graph fell apart into small trees, and half of
                // all deliveries waited for a pull (p50 0.5 s; 8 ms since).
                // Nor when this copy is a repush: a node that pulled the record pushes it on
                // over every eager link, up the tree too, where it crosses the tree's own
                // push. With the first pull lazy, no cycle of eager links was made, so
                // pruning where the two met cut a link of the tree itself, and the part
                // below it pulled from then on (1,000 nodes, random senders: RMR 0.19 and
                // a fifth of the deliveries pulled).
                let late = now.mono.duration_since(first.at) > self.graft_timeout();
                if first.repaired || late || push == Push::Repair {
                    continue;
                }
                // Whatever our side of the link says: the sender pushed, so its side is
                // eager. (Pruning only links eager on our side left one direction of every
                // pruned pair pushing for good: RMR 0.38 at 10% loss in the simulator.)
                prune.insert(conn);
                continue;
            }
            source.insert(key, conn);
            if push == Push::Repair {
                repushed.insert(key);
            }
            senders.push((record.record().id, conn));
            batch.push(record);
        }
        // The duplicate shows the link closes a cycle of the eager graph: drop it from both
        // ends (Plumtree), keeping the graph symmetric.
        for conn in prune {
            if self.neighbors.contains(conn) {
                self.broadcast.set_eager(conn, false);
            }
            self.send(conn, MeshMessage::Prune);
        }
        let mut from_sync: foldhash::HashSet<u64> = foldhash::HashSet::default();
        for (conn, record) in synced {
            let key = record.item_key();
            if !self.db.contains_key(key) && !source.contains_key(&key) {
                source.insert(key, conn);
                from_sync.insert(key);
                senders.push((record.record().id, conn));
                batch.push(record);
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let mut report = self.db.apply_received(batch, now.wall)?;
        for (id, why) in &report.rejected {
            tracing::warn!(record = %id, reason = %why, "rejected a record");
        }
        // Fresh records a sync brought: announced to the other neighbors (below).
        let mut announce: Vec<(u64, Option<ConnId>)> = Vec::new();
        for (record, key) in report.accepted_keyed() {
            match self.broadcast.missing.remove(key) {
                Some(m) if m.attempts > 0 => {
                    self.broadcast.missing_attempts.insert(key, m.announced);
                }
                // Announced first, then pushed (a sync's records are no pushes).
                Some(m) if !from_sync.contains(&key) => {
                    self.broadcast
                        .lag
                        .sample(now.mono.duration_since(m.announced));
                }
                _ => {}
            }
            let from = source.get(&key).copied();
            if from_sync.contains(&key) {
                // Old records cascade by sync instead of flooding (see `sync_finished`). A
                // fresh one a sync brought may have missed the flood here and around: made
                // while its maker synced with us, or flooding while our link was new.
                // Announcing it costs a key per neighbor (up to [`MAX_ANNOUNCED_AGAIN`] per
                // flush); whoever lacks it pulls it. Without this it waited for
                // anti-entropy: 30 s between two members joined through a third, and up to
                // 48 s for nodes whose neighbors had all synced it (500 nodes, 10% loss).
                self.stats.delivered_by_sync += 1;
                self.broadcast.arrived(
                    key,
                    Arrival {
                        at: now.mono,
                        repaired: true,
                        announced: None,
                    },
                );
                if now.wall.duration_since(record.last_modified) > super::FLOOD_WINDOW {
                    if let Some(conn) = from {
                        *self.syncs.learned_old.entry(conn).or_default() += 1;
                    }
                } else if announce.len() < MAX_ANNOUNCED_AGAIN {
                    announce.push((key, from));
                }
                continue;
            }
            let pulled = self.broadcast.missing_attempts.remove(&key);
            let repaired = pulled.is_some() || repushed.contains(&key);
            if pulled.is_some() {
                if self.broadcast.pulled.len() >= MAX_ARRIVED {
                    self.broadcast.pulled.pop_front();
                }
                self.broadcast.pulled.push_back((key, now.mono));
            }
            self.broadcast.arrived(
                key,
                Arrival {
                    at: now.mono,
                    repaired,
                    announced: pulled,
                },
            );
            let maker = record.modified_by.as_ref().unwrap_or(&record.creator);
            if pulled.is_none() {
                self.broadcast.pulls_in_a_row = 0;
                // Usually empty: then no name to hash per record.
                if !self.broadcast.pulled_makers.is_empty() {
                    self.broadcast.pulled_makers.remove(maker);
                }
            } else if let Some(conn) = from {
                self.pulled_again(maker, conn);
            }
            if let Some(conn) = from {
                self.stats.delivered_by_flood += 1;
                if let Some(l) = self.neighbors.get_mut(conn) {
                    l.utility = l.utility - l.utility / 32 + 128;
                }
            }
            let push = if repaired { Push::Repair } else { Push::Tree };
            self.forward(record, key, from, push, now);
        }
        if !announce.is_empty() {
            self.announce(&announce);
        }
        // Our newer version beats what the sender has: send it back (MS-PPGRH §3.1.5.2.10).
        let by_id: HashMap<peergroup_record_db::RecordId, ConnId> = if report.stale.is_empty() {
            HashMap::default()
        } else {
            senders.into_iter().collect()
        };
        for newer in std::mem::take(&mut report.stale) {
            if let Some(conn) = by_id.get(&newer.id).copied() {
                self.send(conn, MeshMessage::Flood(newer));
            }
        }
        let mut changes = report.take_changes();
        changes.extend(report.purged.into_iter().map(|record| Change {
            kind: ChangeKind::Deleted,
            record,
        }));
        let revocation = changes
            .iter()
            .any(|c| c.record.record_type == peergroup_record_db::RecordType::REVOCATION);
        self.record_changes(changes);
        if revocation {
            self.drop_revoked_neighbors(now);
        }
        Ok(())
    }

    /// Closes links to members that are now revoked.
    pub(crate) fn drop_revoked_neighbors(&mut self, now: Now) {
        let revoked: Vec<ConnId> = self
            .neighbors
            .iter()
            .filter(|(_, l)| {
                self.db
                    .revocations()
                    .peer_revoked_at(&l.info.peer)
                    .is_some()
            })
            .map(|(c, _)| c)
            .collect();
        for conn in revoked {
            self.drop_link(conn, super::LinkEnd::Revoked, now);
        }
    }

    /// Pushes a record (whose item key is `key`) to eager neighbors (as `push` says) and
    /// announces it to lazy ones, except `from`.
    pub(crate) fn forward(
        &mut self,
        record: &Record,
        key: u64,
        from: Option<ConnId>,
        push: Push,
        now: Now,
    ) {
        let targets: Vec<(ConnId, bool)> = self
            .neighbors
            .established()
            .filter(|(c, _)| Some(*c) != from)
            .map(|(c, _)| (c, self.broadcast.is_eager(c)))
            .collect();
        for (conn, eager) in targets {
            if eager {
                self.send(conn, push.message(record.clone()));
            } else {
                self.send(conn, MeshMessage::IHave(vec![key]));
            }
        }
        self.broadcast.again.forwarded(key, from, now.mono);
    }

    /// Announces the keys forwarded lately once more, to every neighbor but each key's
    /// source (see `core/again.rs`): whoever lost the push or the announcement pulls it now
    /// rather than at the next anti-entropy round.
    pub(crate) fn announce_again(&mut self, now: Now) {
        let mut keys = self.broadcast.again.take_due(now.mono);
        // A version replaced since is no longer here to give: announcing it would only make
        // the neighbors that have the newer one ask for it in vain.
        keys.retain(|(key, _)| self.db.contains_key(*key));
        if !keys.is_empty() {
            self.announce(&keys);
        }
    }

    /// Announces keys to every established neighbor but the one each came from.
    fn announce(&mut self, keys: &[(u64, Option<ConnId>)]) {
        let links: Vec<ConnId> = self.neighbors.established().map(|(c, _)| c).collect();
        for conn in links {
            let mine: Vec<u64> = keys
                .iter()
                .filter(|(_, from)| *from != Some(conn))
                .map(|(k, _)| *k)
                .collect();
            for chunk in mine.chunks(MAX_KEYS) {
                self.send(conn, MeshMessage::IHave(chunk.to_vec()));
            }
        }
    }

    /// A record made here: flood it.
    pub(crate) fn flood_local(&mut self, record: Record, now: Now) {
        self.forward(&record, record.item_key(), None, Push::Tree, now);
    }

    pub(crate) fn on_ihave(&mut self, conn: ConnId, keys: Vec<u64>, now: Now) {
        // A link that already has its share waiting is not heard (anti-entropy finds
        // anything real): no work per key for a neighbor flooding announcements.
        if self.broadcast.missing.on_link(conn) >= super::MAX_PENDING_PER_LINK {
            self.stats.announcements_ignored += keys.len() as u64;
            return;
        }
        let arriving: HashSet<u64> = self
            .broadcast
            .inbox
            .iter()
            .map(|(_, r, _)| r.item_key())
            .collect();
        let deadline = now.mono.saturating_add(self.graft_timeout());
        let mut ignored = 0usize;
        for key in keys {
            if self.db.contains_key(key) || arriving.contains(&key) {
                continue;
            }
            if !self
                .broadcast
                .missing
                .announce(key, conn, now.mono, deadline)
            {
                ignored += 1;
            }
        }
        if ignored > 0 {
            self.stats.announcements_ignored += ignored as u64;
            tracing::debug!(
                ?conn,
                ignored,
                "announcements over the link's bound ignored"
            );
        }
    }

    pub(crate) fn on_graft(&mut self, conn: ConnId, keys: Vec<u64>, eager: bool) {
        if eager && self.neighbors.contains(conn) {
            self.broadcast.set_eager(conn, true);
        }
        for key in keys {
            if let Ok(Some(record)) = self.db.record_by_key(key) {
                self.send(conn, MeshMessage::Flood(record));
            }
        }
    }

    /// Asks announcers for payloads that did not arrive in time, one announcer at a time,
    /// in turn; after [`GRAFT_ROUNDS`] rounds over all of them the key is left to
    /// anti-entropy.
    pub(crate) fn request_missing(&mut self, now: Now) {
        let mut grafts: BTreeMap<ConnId, Vec<u64>> = BTreeMap::new();
        let linked: Vec<ConnId> = self.neighbors.established().map(|(c, _)| c).collect();
        let established: HashSet<ConnId> = linked.iter().copied().collect();
        let next = now.mono.saturating_add(self.graft_timeout());
        for key in self.broadcast.missing.take_due(now.mono) {
            let Some(m) = self.broadcast.missing.get_mut(key) else {
                continue;
            };
            m.announcers.retain(|c| established.contains(c));
            // Every announcer's link dropped, with whatever it was sending: ask the others.
            let gone = m.announcers.is_empty()
                && !self.broadcast.missing.adopt(key, &linked, GRAFT_ROUNDS);
            let Some(m) = self.broadcast.missing.get_mut(key) else {
                continue;
            };
            if gone || m.attempts >= GRAFT_ROUNDS * m.announcers.len() as u32 {
                // Anti-entropy will bring it.
                self.stats.pulls_given_up += 1;
                self.broadcast.missing.give_up(key);
                continue;
            }
            let conn = m.announcers[m.attempts as usize % m.announcers.len()];
            m.attempts += 1;
            grafts.entry(conn).or_default().push(key);
            self.broadcast.missing.reschedule(key, next);
        }
        // One lost message does not mean the tree is broken: just pull the payload. Pulling
        // again before any record has arrived by push (or having no eager link at all) means
        // the tree no longer reaches us: the link becomes eager again.
        let detached = !self.has_eager_neighbor();
        for (conn, keys) in grafts {
            let eager = detached || self.broadcast.pulls_in_a_row >= 1;
            self.broadcast.pulls_in_a_row = if eager {
                0
            } else {
                self.broadcast.pulls_in_a_row + 1
            };
            if !self.neighbors.contains(conn) {
                continue;
            }
            if eager {
                self.broadcast.set_eager(conn, true);
            }
            for chunk in keys.chunks(MAX_KEYS) {
                self.send(
                    conn,
                    MeshMessage::Graft {
                        keys: chunk.to_vec(),
                        eager,
                    },
                );
            }
        }
    }

    /// A record of `maker` had to be pulled over `conn`. Twice in a row for one maker means
    /// the eager tree does not reach us from that maker's side, however many pushes come
    /// from elsewhere (concurrent prunes can split the tree in two, each part pushing to
    /// itself): the link that answered turns eager, from both ends, so that maker's next
    /// records are pushed, not pulled a graft timeout late. One lost push in a row stays a
    /// plain pull.
    fn pulled_again(&mut self, maker: &PeerName, conn: ConnId) {
        if self.broadcast.pulled_makers.len() >= MAX_PULLED_MAKERS {
            self.broadcast.pulled_makers.clear();
        }
        if self.broadcast.pulled_makers.insert(maker.clone()) {
            return;
        }
        self.broadcast.pulled_makers.remove(maker);
        if self.neighbors.contains(conn) && !self.broadcast.is_eager(conn) {
            self.broadcast.set_eager(conn, true);
            self.send(
                conn,
                MeshMessage::Graft {
                    keys: Vec::new(),
                    eager: true,
                },
            );
        }
    }

    /// The pulls older than [`PUSH_AFTER_PULL_WINDOW`]: those no push followed were lost.
    fn judge_pulls(&mut self, now: Now) {
        while let Some(&(key, at)) = self.broadcast.pulled.front() {
            if now.mono.duration_since(at) < PUSH_AFTER_PULL_WINDOW {
                break;
            }
            self.broadcast.pulled.pop_front();
            // Judged once: a push that comes later still is not counted late too.
            if self
                .broadcast
                .arrived
                .get_mut(&key)
                .and_then(|a| a.announced.take())
                .is_some()
            {
                self.broadcast.lag.judge_pull(false);
                self.stats.pulls_without_push += 1;
            }
        }
    }

    /// A neighbor asks us to stop pushing to it.
    pub(crate) fn on_prune(&mut self, conn: ConnId) {
        self.broadcast.set_eager(conn, false);
    }

    /// How long to wait for an announced payload before asking for it (see [`PushLag`]).
    pub(crate) fn graft_timeout(&self) -> std::time::Duration {
        self.broadcast.lag.timeout(self.config.graft_timeout)
    }

    /// Whether an established neighbor pushes to us (we are on the broadcast tree).
    pub(crate) fn has_eager_neighbor(&self) -> bool {
        self.neighbors
            .established()
            .any(|(c, _)| self.broadcast.is_eager(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_arrivals_are_bounded() {
        let mut b = Broadcast::default();
        let at = Mono::from_millis(0);
        for key in 0..(MAX_ARRIVED as u64 + 100) {
            b.arrived(
                key,
                Arrival {
                    at,
                    repaired: false,
                    announced: None,
                },
            );
        }
        assert_eq!(b.arrived.len(), MAX_ARRIVED);
        assert_eq!(b.arrived_order.len(), MAX_ARRIVED);
        assert!(!b.arrived.contains_key(&0), "the oldest is forgotten first");
        assert!(b.arrived.contains_key(&(MAX_ARRIVED as u64 + 99)));
        // The same key again takes no second place.
        b.arrived(
            MAX_ARRIVED as u64 + 99,
            Arrival {
                at,
                repaired: true,
                announced: None,
            },
        );
        assert_eq!(b.arrived_order.len(), MAX_ARRIVED);
    }
}
