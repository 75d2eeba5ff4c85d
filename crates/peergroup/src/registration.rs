//! What a connected group registers with the node — its TLS server name and join policy on
//! the endpoint, its route, its mDNS advertisement — held as one value that takes all of it
//! back when dropped: by [`Group::close`](crate::Group::close), or when the last handle of a
//! group that was never closed goes. The route refers to the group weakly, so nothing the
//! node holds keeps a group alive.

use std::sync::{Arc, Weak};

use peergroup_identity::PeerName;
use peergroup_transport::{GroupCredentials, GroupTrust};

use crate::error::{Error, ErrorKind, Result};
use crate::node::{Node, Served};

/// A group's registration with the node (see the module docs).
pub(crate) struct Registration {
    node: Weak<Node>,
    group: PeerName,
    /// The route this registration put in the table (removed only while it is still ours).
    route: Weak<dyn Served>,
    /// The node tag of the mDNS advertisement, once advertised.
    advertised: Option<String>,
}

impl Registration {
    /// Serves `group` on the endpoint (its server name, under `creds` and `trust`) and routes
    /// its connections to it. Without an endpoint (an offline infrastructure) nothing is
    /// registered but the value still stands for it.
    pub(crate) fn register(
        node: &Arc<Node>,
        served: Weak<dyn Served>,
        creds: GroupCredentials,
        trust: GroupTrust,
    ) -> Result<Self> {
        let group = creds.group.clone();
        let registration = Registration {
            node: Arc::downgrade(node),
            group: group.clone(),
            route: served.clone(),
            advertised: None,
        };
        if let Some(ep) = &node.endpoint {
            ep.add_group(creds, trust)
                .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
            if let Ok(mut routes) = node.routes.write() {
                routes.insert(group, served);
            }
        }
        Ok(registration)
    }

    /// Advertises the group on the local network under `node_tag`, listening on `port`.
    pub(crate) fn advertise(
        &mut self,
        discovery: &peergroup_transport::Discovery,
        port: u16,
        node_tag: String,
    ) {
        match discovery.advertise(&self.group, port, &node_tag) {
            Ok(()) => self.advertised = Some(node_tag),
            Err(e) => tracing::warn!(error = %e, "mDNS advertisement failed"),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        if let Ok(mut routes) = node.routes.write()
            && routes
                .get(&self.group)
                .is_some_and(|r| Weak::ptr_eq(r, &self.route))
        {
            routes.remove(&self.group);
            if let Some(ep) = &node.endpoint {
                ep.remove_group(&self.group);
            }
        }
        if let Some(tag) = &self.advertised
            && let Ok(guard) = node.discovery.lock()
            && let Some(d) = guard.as_ref()
        {
            let _ = d.withdraw(&self.group, tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{GroupSpec, Infrastructure, InfrastructureConfig, KdfParams};

    /// Generous: quiet, the driver stops within milliseconds of the last handle going.
    const WAIT: Duration = Duration::from_secs(30);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connected_group_dropped_without_close_stops_and_is_no_longer_served() {
        let dir = tempfile::tempdir().unwrap();
        let infra = Infrastructure::start(InfrastructureConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            discovery: false,
            kdf: KdfParams::INSECURE_FAST,
            ..InfrastructureConfig::new(dir.path().join("data"))
        })
        .await
        .unwrap();
        let me = infra
            .identities()
            .create("Alice", Some("alice"))
            .await
            .unwrap()
            .peer_name()
            .clone();
        let name = infra
            .create_group(&me, &GroupSpec::new("Friends"))
            .await
            .unwrap();
        let group = infra.open_group(&me, &name).await.unwrap();
        group.connect().await.unwrap();
        let endpoint = infra.inner.endpoint.clone().unwrap();
        let served = |infra: &Infrastructure| {
            let routed = infra.inner.routes.read().unwrap().contains_key(&name);
            (routed, endpoint.groups().contains(&name))
        };
        assert_eq!(served(&infra), (true, true));
        // The driver's status sender goes when the driver stops.
        let mut status = group.inner.handle.status_watch();
        let weak = std::sync::Arc::downgrade(&group.inner);

        drop(group);
        // A task may hold it a moment longer (the event forwarder, while it hands an event
        // over); nothing may hold it for good.
        let released = tokio::time::timeout(WAIT, async {
            while weak.strong_count() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            released.is_ok(),
            "something still holds the group after {WAIT:?}"
        );
        // The last holder may be another thread: the count reaches zero just before the
        // group's drop (which takes its registration back) runs there.
        let unserved = tokio::time::timeout(WAIT, async {
            while served(&infra) != (false, false) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            unserved.is_ok(),
            "the group is still served {WAIT:?} after it was released: {:?}",
            served(&infra)
        );
        let stopped =
            tokio::time::timeout(WAIT, async { while status.changed().await.is_ok() {} }).await;
        assert!(stopped.is_ok(), "the driver did not stop within {WAIT:?}");
        // It is not in use any more: it opens again.
        let again = infra.open_group(&me, &name).await.unwrap();
        again.connect().await.unwrap();
        assert_eq!(served(&infra), (true, true));
        again.close().await.unwrap();
        assert_eq!(served(&infra), (false, false));
        infra.shutdown().await;
    }
}
