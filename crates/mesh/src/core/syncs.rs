//! Sync scheduling: each link's reconciliation session (at most one at a time, numbered),
//! the rate a neighbor may start them at, the stall deadline of each, the records they
//! brought that wait for the next flush, and when the next anti-entropy round is due. The
//! sessions' messages are handled in `conn.rs`; what to sync with whom is decided here.

use std::collections::BTreeMap;

use peergroup_record_db::Received;
use peergroup_record_db::sync::SyncSession;

use super::ConnId;
use super::timers::TimerTable;
use crate::time::Mono;

/// One link's sync state.
#[derive(Debug)]
pub(super) struct LinkSync {
    /// The session running now.
    pub(super) session: Option<SyncSession>,
    /// Number of the current (or last) session.
    pub(super) id: u32,
    /// When the session last made progress.
    pub(super) progress: Mono,
    /// When the neighbor's next session is due by its allowed rate (see
    /// [`super::SYNC_SESSION_INTERVAL`]).
    pub(super) tat: Mono,
    /// Another sync is wanted once the current one ends.
    pub(super) wanted: bool,
    /// The session has more to send than the last burst allowed.
    pub(super) backlog: bool,
}

/// The sync scheduler (see the module docs).
#[derive(Debug)]
pub(super) struct SyncSchedule {
    links: BTreeMap<ConnId, LinkSync>,
    /// When each running session stalls if nothing arrives.
    stalls: TimerTable<ConnId, Mono>,
    /// Records the sessions brought since the last flush (with what a reader's check of
    /// their signatures found).
    pub(super) inbox: Vec<(ConnId, Received)>,
    /// Per link, records learned by sync that flooding would not bring (older than
    /// [`super::FLOOD_WINDOW`]): a sync that learned any cascades to the other neighbors.
    pub(super) learned_old: BTreeMap<ConnId, u64>,
    pub(super) next_anti_entropy: Mono,
}

impl SyncSchedule {
    pub(super) fn new(now: Mono) -> Self {
        SyncSchedule {
            links: BTreeMap::new(),
            stalls: TimerTable::default(),
            inbox: Vec::new(),
            learned_old: BTreeMap::new(),
            next_anti_entropy: now,
        }
    }

    /// A link is up: no session yet.
    pub(super) fn add(&mut self, conn: ConnId, now: Mono) {
        self.links.insert(
            conn,
            LinkSync {
                session: None,
                id: 0,
                progress: now,
                tat: now,
                wanted: false,
                backlog: false,
            },
        );
    }

    /// A link is gone: its session, deadline and counts with it.
    pub(super) fn remove(&mut self, conn: ConnId) {
        self.links.remove(&conn);
        self.stalls.cancel(conn);
        self.learned_old.remove(&conn);
    }

    /// Every link is gone.
    pub(super) fn clear(&mut self) {
        self.links.clear();
        self.stalls.clear();
        self.learned_old.clear();
    }

    pub(super) fn get_mut(&mut self, conn: ConnId) -> Option<&mut LinkSync> {
        self.links.get_mut(&conn)
    }

    /// Whether a session runs on the link.
    pub(super) fn is_running(&self, conn: ConnId) -> bool {
        self.links.get(&conn).is_some_and(|s| s.session.is_some())
    }

    /// The links with a running session, in connection order.
    pub(super) fn running(&self) -> Vec<ConnId> {
        self.iter_running().map(|(c, _)| c).collect()
    }

    pub(super) fn iter_running(&self) -> impl Iterator<Item = (ConnId, &LinkSync)> {
        self.links
            .iter()
            .filter(|(_, s)| s.session.is_some())
            .map(|(c, s)| (*c, s))
    }

    /// The link's session made progress at `now`: it stalls at `stall` unless more comes.
    pub(super) fn progressed(&mut self, conn: ConnId, now: Mono, stall: Mono) {
        if let Some(s) = self.links.get_mut(&conn) {
            s.progress = now;
            self.stalls.set(conn, stall);
        }
    }

    /// The link's session ended (done, failed or abandoned).
    pub(super) fn end(&mut self, conn: ConnId) {
        if let Some(s) = self.links.get_mut(&conn) {
            s.session = None;
        }
        self.stalls.cancel(conn);
    }

    /// Links whose session has stalled at `now`, in connection order.
    pub(super) fn stalled(&self, now: Mono) -> Vec<ConnId> {
        self.stalls.due(now)
    }

    /// The next deadline: anti-entropy or a stall.
    pub(super) fn next_deadline(&self) -> Mono {
        match self.stalls.next() {
            Some(s) => s.min(self.next_anti_entropy),
            None => self.next_anti_entropy,
        }
    }
}
