//! Routing the endpoint's connections to open groups, and feeding mDNS findings to them.
//!
//! One endpoint serves every open group (the transport tells them apart by a hashed TLS
//! server name). Each authenticated connection's first frame says what it is for: a direct
//! connection starts with a direct-connection hello; anything else is a neighbor of the mesh.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use peergroup_identity::PeerName;
use peergroup_transport::{Connection, Endpoint};
use tokio::sync::oneshot;

use crate::group::Group;
use crate::infra::Inner;

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

pub(crate) async fn accept_loop(endpoint: Arc<Endpoint>, infra: Weak<Inner>) {
    let waiting = Arc::new(Mutex::new(Waiting::default()));
    let mut failures = endpoint.auth_failures();
    loop {
        tokio::select! {
            conn = endpoint.accept() => {
                let Some(conn) = conn else { return };
                let Some(inner) = infra.upgrade() else { return };
                let route = inner.routes.read().ok().and_then(|r| r.get(&conn.peer().group).and_then(|r| r.group.upgrade()));
                match route {
                    Some(route) => {
                        let (id, evicted) = waiting
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .enter(&conn.peer().peer);
                        let waiting = waiting.clone();
                        tokio::spawn(async move {
                            dispatch(conn, route, evicted).await;
                            waiting.lock().unwrap_or_else(PoisonError::into_inner).leave(id);
                        });
                    }
                    None => conn.close("group not open here"),
                }
            }
            failure = failures.recv() => {
                let Ok(failure) = failure else { continue };
                let Some(inner) = infra.upgrade() else { return };
                let groups: Vec<Arc<crate::group::GroupInner>> = match &failure.group {
                    Some(g) => inner.routes.read().ok().and_then(|r| r.get(g).and_then(|r| r.group.upgrade())).into_iter().collect(),
                    None => inner.routes.read().map(|r| r.values().filter_map(|r| r.group.upgrade()).collect()).unwrap_or_default(),
                };
                for g in groups {
                    let _ = g.events.send(crate::GroupEvent::AuthenticationFailed {
                        addr: Some(failure.addr),
                        reason: failure.reason.to_string(),
                    });
                }
            }
        }
    }
}

async fn dispatch(
    mut conn: Connection,
    group: Arc<crate::group::GroupInner>,
    evicted: oneshot::Receiver<()>,
) {
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
    if peergroup_direct_conn::is_direct_hello(&first) {
        group.direct.accept(conn, first);
    } else {
        group.handle.incoming(conn, Some(first));
    }
}

/// Browses mDNS for members of the group and hands their addresses to the mesh, while the
/// group is open (the task holds it weakly).
pub(crate) fn browse(group: &Group, discovery: &peergroup_transport::Discovery) {
    let own = crate::infra::node_tag(group.node_id());
    let mut browse = match discovery.browse(group.peer_name()) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "mDNS browse failed");
            return;
        }
    };
    let group = Arc::downgrade(&group.inner);
    tokio::spawn(async move {
        while let Some(found) = browse.next().await {
            if found.node_id == own {
                continue;
            }
            let Some(group) = group.upgrade() else {
                return;
            };
            if group.handle.add_candidates(vec![found.addr]).await.is_err() {
                return;
            }
        }
    });
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
