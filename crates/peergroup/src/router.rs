//! Routing the endpoint's connections to open groups, and feeding mDNS findings to them.
//!
//! One endpoint serves every open group (the transport tells them apart by a hashed TLS
//! server name). Each authenticated connection's first frame says what it is for: a direct
//! connection starts with a direct-connection hello; anything else is a neighbor of the mesh.

use std::sync::{Arc, Weak};
use std::time::Duration;

use peergroup_transport::{Connection, Endpoint};

use crate::group::Group;
use crate::infra::Inner;

/// How long a new connection may take to send its first frame.
const FIRST_FRAME: Duration = Duration::from_secs(10);

pub(crate) async fn accept_loop(endpoint: Arc<Endpoint>, infra: Weak<Inner>) {
    let mut failures = endpoint.auth_failures();
    loop {
        tokio::select! {
            conn = endpoint.accept() => {
                let Some(conn) = conn else { return };
                let Some(inner) = infra.upgrade() else { return };
                let route = inner.routes.read().ok().and_then(|r| r.get(&conn.peer().group).cloned());
                match route {
                    Some(route) => {
                        tokio::spawn(dispatch(conn, route.group));
                    }
                    None => conn.close("group not open here"),
                }
            }
            failure = failures.recv() => {
                let Ok(failure) = failure else { continue };
                let Some(inner) = infra.upgrade() else { return };
                let groups: Vec<Arc<crate::group::GroupInner>> = match &failure.group {
                    Some(g) => inner.routes.read().ok().and_then(|r| r.get(g).map(|r| r.group.clone())).into_iter().collect(),
                    None => inner.routes.read().map(|r| r.values().map(|r| r.group.clone()).collect()).unwrap_or_default(),
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

async fn dispatch(mut conn: Connection, group: Arc<crate::group::GroupInner>) {
    let first = match tokio::time::timeout(FIRST_FRAME, conn.recv()).await {
        Ok(Some(f)) => f,
        Ok(None) => return,
        Err(_) => {
            conn.close("no first frame");
            return;
        }
    };
    if peergroup_direct_conn::is_direct_hello(&first) {
        group.direct.accept(conn, first);
    } else {
        group.handle.incoming(conn, Some(first));
    }
}

/// Browses mDNS for members of the group and hands their addresses to the mesh.
pub(crate) fn browse(group: Group, discovery: &peergroup_transport::Discovery) {
    let own = crate::infra::node_tag(group.node_id());
    let mut browse = match discovery.browse(group.peer_name()) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "mDNS browse failed");
            return;
        }
    };
    tokio::spawn(async move {
        while let Some(found) = browse.next().await {
            if found.node_id == own {
                continue;
            }
            if group
                .inner
                .handle
                .add_candidates(vec![found.addr])
                .await
                .is_err()
            {
                return;
            }
        }
    });
}
