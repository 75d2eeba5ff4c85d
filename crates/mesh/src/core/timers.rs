//! The per-link deadlines of the core, kept in order so the next one is found in O(log n)
//! instead of by a scan of every link at each poll.

use std::collections::{BTreeMap, BTreeSet};

use peergroup_identity::Timestamp;

use super::ConnId;
use crate::time::Mono;

/// What a link's monotonic deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LinkTimer {
    /// The handshake must end by then.
    Handshake,
    /// The current sync must make progress by then.
    SyncStall,
}

/// Every link's deadlines (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct LinkTimers {
    /// Monotonic deadlines in order, and each one's instant by link and kind.
    due: BTreeSet<(Mono, ConnId, LinkTimer)>,
    at: BTreeMap<(ConnId, LinkTimer), Mono>,
    /// The ends of members' rights (wall clock), in order, and each link's.
    expiries: BTreeSet<(Timestamp, ConnId)>,
    expiry_of: BTreeMap<ConnId, Timestamp>,
}

impl LinkTimers {
    /// Sets (or moves) a link's deadline of `kind`.
    pub(crate) fn set(&mut self, conn: ConnId, kind: LinkTimer, at: Mono) {
        if let Some(old) = self.at.insert((conn, kind), at) {
            self.due.remove(&(old, conn, kind));
        }
        self.due.insert((at, conn, kind));
    }

    /// Cancels a link's deadline of `kind`.
    pub(crate) fn cancel(&mut self, conn: ConnId, kind: LinkTimer) {
        if let Some(old) = self.at.remove(&(conn, kind)) {
            self.due.remove(&(old, conn, kind));
        }
    }

    /// Sets when the link's member's rights end.
    pub(crate) fn set_expiry(&mut self, conn: ConnId, at: Timestamp) {
        if let Some(old) = self.expiry_of.insert(conn, at) {
            self.expiries.remove(&(old, conn));
        }
        self.expiries.insert((at, conn));
    }

    /// Forgets every deadline of a link (it closed).
    pub(crate) fn forget(&mut self, conn: ConnId) {
        for kind in [LinkTimer::Handshake, LinkTimer::SyncStall] {
            self.cancel(conn, kind);
        }
        if let Some(old) = self.expiry_of.remove(&conn) {
            self.expiries.remove(&(old, conn));
        }
    }

    /// Forgets every link.
    pub(crate) fn clear(&mut self) {
        *self = LinkTimers::default();
    }

    /// The earliest monotonic deadline.
    pub(crate) fn next(&self) -> Option<Mono> {
        self.due.first().map(|(t, _, _)| *t)
    }

    /// The earliest end of a member's rights.
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        self.expiries.first().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_deadline_follows_sets_moves_and_cancels() {
        let mut t = LinkTimers::default();
        assert_eq!(t.next(), None);
        t.set(ConnId(1), LinkTimer::Handshake, Mono::from_millis(50));
        t.set(ConnId(2), LinkTimer::SyncStall, Mono::from_millis(30));
        assert_eq!(t.next(), Some(Mono::from_millis(30)));
        // Moving a deadline replaces it.
        t.set(ConnId(2), LinkTimer::SyncStall, Mono::from_millis(90));
        assert_eq!(t.next(), Some(Mono::from_millis(50)));
        t.cancel(ConnId(1), LinkTimer::Handshake);
        assert_eq!(t.next(), Some(Mono::from_millis(90)));
        t.set_expiry(ConnId(2), Timestamp::from_millis(7));
        t.set_expiry(ConnId(3), Timestamp::from_millis(5));
        assert_eq!(t.next_expiry(), Some(Timestamp::from_millis(5)));
        t.forget(ConnId(3));
        assert_eq!(t.next_expiry(), Some(Timestamp::from_millis(7)));
        t.forget(ConnId(2));
        assert_eq!((t.next(), t.next_expiry()), (None, None));
    }
}
