//! Routing the endpoint's connections to open groups.
//!
//! One endpoint serves every open group (the transport tells them apart by a hashed TLS
//! server name). Each authenticated connection waits (bounded) for its first frame, then goes
//! to its group, which tells by that frame what it is for: a direct connection starts with a
//! direct-connection hello; anything else is a neighbor of the mesh.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use peergroup_identity::PeerName;
use peergroup_transport::{Connection, Endpoint};
use tokio::sync::oneshot;

use crate::node::{Node, Served};

/// How long a new connection may take to send its first frame (a member's node sends it at
/// once: a hello).
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(3);
/// Most authenticated connections waiting for their first frame, per member: beyond it the
/// member's oldest waiting one is closed.
pub const MAX_AWAITING_FIRST_FRAME_PER_MEMBER: usize = 8;
/// Most authenticated connections waiting for their first frame, in all: beyond it the
/// oldest waiting one is closed.
pub const MAX_AWAITING_FIRST_FRAME: usize = 64;

/// Connections waiting for their first frame, oldest first, each with what closes it.
#[derive(Default)]
struct Waiting {
    next: u64,
    by_id: BTreeMap<u64, (PeerName, oneshot::Sender<()>)>,
    per_member: HashMap<PeerName, usize>,
}

impl Waiting {
    /// Registers a connection of `peer`, closing the oldest waiting ones over the bounds.
    /// Returns its number and what tells it it was evicted.
    fn enter(&mut self, peer: &PeerName) -> (u64, oneshot::Receiver<()>) {
        if self.per_member.get(peer).copied().unwrap_or(0) >= MAX_AWAITING_FIRST_FRAME_PER_MEMBER {
            let oldest = self
                .by_id
                .iter()
                .find(|(_, (p, _))| p == peer)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.leave(id);
            }
        }
        if self.by_id.len() >= MAX_AWAITING_FIRST_FRAME
            && let Some(id) = self.by_id.keys().next().copied()
        {
            self.leave(id);
        }
        let id = self.next;
        self.next += 1;
        let (tx, rx) = oneshot::channel();
        self.by_id.insert(id, (peer.clone(), tx));
        *self.per_member.entry(peer.clone()).or_default() += 1;
        (id, rx)
    }

    /// Forgets a connection (its first frame came, it ended, or it is evicted: dropping its
    /// sender tells it).
    fn leave(&mut self, id: u64) {
        if let Some((peer, _evict)) = self.by_id.remove(&id)
            && let Some(n) = self.per_member.get_mut(&peer)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_member.remove(&peer);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.len()
    }
}

/// Accepts the endpoint's connections and hands each, with its first frame, to the group it
/// is for (the only router: the mesh driver and direct connections take what it hands them).
/// Ends when the endpoint closes or the node is gone.
pub(crate) async fn accept_loop(endpoint: Arc<Endpoint>, node: Weak<Node>) {
    let waiting = Arc::new(Mutex::new(Waiting::default()));
    let mut failures = endpoint.auth_failures();
    loop {
        tokio::select! {
            conn = endpoint.accept() => {
                let Some(conn) = conn else { return };
                let Some(node) = node.upgrade() else { return };
                match node.route(&conn.peer().group) {
                    Some(group) => {
                        let (id, evicted) = waiting
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .enter(&conn.peer().peer);
                        let waiting = waiting.clone();
                        tokio::spawn(async move {
                            dispatch(conn, group, evicted).await;
                            waiting.lock().unwrap_or_else(PoisonError::into_inner).leave(id);
                        });
                    }
                    None => conn.close("group not open here"),
                }
            }
            failure = failures.recv() => {
                let Ok(failure) = failure else { continue };
                let Some(node) = node.upgrade() else { return };
                let groups = match &failure.group {
                    Some(g) => node.route(g).into_iter().collect(),
                    None => node.served(),
                };
                for g in groups {
                    g.auth_failed(failure.addr, failure.reason.to_string());
                }
            }
        }
    }
}

/// Waits for a connection's first frame (bounded in time, and by the waiting table's
/// eviction), then hands both to the group.
async fn dispatch(mut conn: Connection, group: Arc<dyn Served>, evicted: oneshot::Receiver<()>) {
    let first = tokio::select! {
        r = tokio::time::timeout(FIRST_FRAME_TIMEOUT, conn.recv()) => match r {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(_) => {
                conn.close("no first frame");
                return;
            }
        },
        _ = evicted => {
            conn.close("too many connections waiting for their first frame");
            return;
        }
    };
    group.dispatch(conn, first);
}

#[cfg(test)]
mod tests {
    use super::*;
    use peergroup_identity::{Classifier, KeyPair};

    fn member(i: u64) -> PeerName {
        PeerName::new(
            &KeyPair::from_test_seed(i).public(),
            Classifier::new("m").unwrap(),
        )
    }

    #[test]
    fn waiting_connections_are_bounded_per_member_and_in_all() {
        let mut w = Waiting::default();
        let hostile = member(1);
        let mut first: Vec<oneshot::Receiver<()>> = Vec::new();
        for _ in 0..100 {
            first.push(w.enter(&hostile).1);
        }
        assert_eq!(w.len(), MAX_AWAITING_FIRST_FRAME_PER_MEMBER);
        // The member's oldest were told to close; its newest wait.
        let closed = first
            .iter_mut()
            .map(|rx| rx.try_recv())
            .filter(|r| *r == Err(oneshot::error::TryRecvError::Closed))
            .count();
        assert_eq!(closed, 100 - MAX_AWAITING_FIRST_FRAME_PER_MEMBER);
        // Many members: the total stays bounded too.
        for m in 0..200 {
            w.enter(&member(100 + m));
        }
        assert_eq!(w.len(), MAX_AWAITING_FIRST_FRAME);
        let counted: usize = w.per_member.values().sum();
        assert_eq!(counted, MAX_AWAITING_FIRST_FRAME);
    }
}
