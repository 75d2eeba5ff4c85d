//! What a group does for the node that serves it: takes the connections routed to it, hears
//! of failed handshakes, stops at shutdown, takes password joins, and finds members by mDNS.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use peergroup_credential_roles::Role;
use peergroup_transport::Connection;

use super::{Group, GroupInner};
use crate::error::{Error, ErrorKind, Result};
use crate::events::GroupEvent;
use crate::node::Served;

impl Served for GroupInner {
    fn dispatch(&self, conn: Connection, first: Bytes) {
        if peergroup_direct_conn::is_direct_hello(&first) {
            self.direct.accept(conn, first);
        } else {
            self.handle.incoming(conn, Some(first));
        }
    }

    fn auth_failed(&self, addr: SocketAddr, reason: String) {
        let _ = self.events.send(GroupEvent::AuthenticationFailed {
            addr: Some(addr),
            reason,
        });
    }

    fn stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let _ = self.handle.close().await;
            self.stopped.notify_one();
        })
    }
}

impl Group {
    /// On connect: a member holding the password record and able to issue credentials takes
    /// password joins on the endpoint, issuing certificates with the group's password role.
    /// A record stored by an earlier version (SPAKE2's secret) is left as it is and takes no
    /// joins: logged here, and [`Group::create_password_invitation`] reports it.
    pub(super) async fn install_join_policy(&self) -> Result<()> {
        let Some(endpoint) = self.inner.host.endpoint.clone() else {
            return Ok(());
        };
        let (secret, chain) = {
            let m = self
                .inner
                .membership
                .lock()
                .map_err(|_| Error::new(ErrorKind::Io, "lock poisoned"))?;
            let Some(s) = m.password.as_ref() else {
                return Ok(());
            };
            (s.clone(), m.chain.clone())
        };
        if !chain.leaf().roles().is_issuer() {
            return Ok(());
        }
        let role = self
            .properties()
            .await?
            .password_role
            .unwrap_or(Role::Member);
        match crate::password::install_policy(
            &endpoint,
            &self.inner.group,
            &secret,
            &chain,
            self.inner.key.clone(),
            role,
        ) {
            Err(e) if e.kind() == ErrorKind::PasswordNotRegistered => {
                tracing::warn!(group = %self.inner.group, "{e}");
                Ok(())
            }
            other => other,
        }
    }

    /// Browses mDNS for members of the group and hands their addresses to the mesh, while the
    /// group is open (the task holds it weakly).
    pub(super) fn browse(&self, discovery: &peergroup_transport::Discovery) {
        let own = crate::node::node_tag(self.node_id());
        let mut browse = match discovery.browse(self.peer_name()) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "mDNS browse failed");
                return;
            }
        };
        let group = Arc::downgrade(&self.inner);
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
}
