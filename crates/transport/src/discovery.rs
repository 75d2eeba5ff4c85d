//! Finding members on the local network with mDNS/DNS-SD (RFC 6762/6763), the replacement
//! for PNRP that Microsoft itself recommends.
//!
//! A member advertises the service `_peergroup._tcp.local.` with TXT `g=<group tag>`
//! ([`group_tag`]: a hash, never the group's name), `n=<node id>` and `p=peergroup/1`. Its
//! instance and host names are hashes too. Browsing for a group yields the addresses of every
//! instance whose tag matches; whoever answers still has to pass the TLS handshake, so a
//! forged advertisement costs a failed connection, nothing more.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use mdns_sd::{ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};
use peergroup_identity::{PeerName, sha256};
use tokio::sync::broadcast;

use crate::naming::{SERVICE_TYPE, TXT_GROUP, TXT_NODE, TXT_PROTOCOL, group_tag};

/// Why discovery failed (the mDNS daemon could not start or refused a request).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The mDNS daemon reported an error.
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
    /// The node id is unusable in a TXT record (empty, or over 64 bytes).
    #[error("bad node id: {0}")]
    BadNodeId(String),
    /// The browsing thread could not start.
    #[error("cannot start browsing: {0}")]
    Io(#[from] std::io::Error),
}

/// A member found on the local network.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Discovered {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The node id it advertised (to skip ourselves, or to tell instances apart).
    pub node_id: String,
}

/// Resolved services seen on the network, shared by every [`Browse`] of one [`Discovery`].
///
/// `mdns-sd` keeps one subscription per service type, so all groups share one browse of
/// `_peergroup._tcp.local.`: a thread forwards its events here, and each `Browse` filters by
/// its group's tag (replaying what was resolved before it started).
struct Browser {
    events: broadcast::Sender<Arc<ResolvedService>>,
    resolved: Mutex<HashMap<String, Arc<ResolvedService>>>,
}

impl Browser {
    fn resolved(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ResolvedService>>> {
        self.resolved.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Resolved services buffered per `Browse` before the oldest are skipped (mDNS repeats
/// itself, so a skipped one comes back).
const BROWSE_BUFFER: usize = 256;

/// An mDNS responder and browser (`mdns-sd` runs one background thread; browsing adds one
/// more that fans events out to every [`Browse`]).
pub struct Discovery {
    daemon: ServiceDaemon,
    browser: Mutex<Option<Arc<Browser>>>,
}

/// The DNS-SD instance name of `node_id` in `group`: a hash of both, so neither shows.
pub(crate) fn instance_name(group: &PeerName, node_id: &str) -> String {
    let digest = sha256(format!("{}\n{node_id}", group_tag(group)).as_bytes());
    format!("pg-{}", hex::encode(&digest[..8]))
}

/// The advertisement of `node_id` in `group` on `port`: what goes on the network.
pub(crate) fn service_info(
    group: &PeerName,
    port: u16,
    node_id: &str,
) -> Result<ServiceInfo, DiscoveryError> {
    if node_id.is_empty() || node_id.len() > 64 {
        return Err(DiscoveryError::BadNodeId(format!(
            "{} bytes (1 to 64 allowed)",
            node_id.len()
        )));
    }
    let instance = instance_name(group, node_id);
    let host = format!("{instance}.local.");
    let tag = group_tag(group);
    let properties = [
        (TXT_GROUP, tag.as_str()),
        (TXT_NODE, node_id),
        (TXT_PROTOCOL, "peergroup/1"),
    ];
    let info = ServiceInfo::new(SERVICE_TYPE, &instance, &host, "", port, &properties[..])?;
    Ok(info.enable_addr_auto())
}

impl Discovery {
    /// Starts the mDNS daemon.
    pub fn new() -> Result<Self, DiscoveryError> {
        Ok(Discovery {
            daemon: ServiceDaemon::new()?,
            browser: Mutex::new(None),
        })
    }

    /// Advertises that `node_id` serves `group` on `port`, on every interface, with every
    /// address it has (IPv4 and IPv6), until [`Discovery::withdraw`] or shutdown.
    pub fn advertise(
        &self,
        group: &PeerName,
        port: u16,
        node_id: &str,
    ) -> Result<(), DiscoveryError> {
        self.daemon.register(service_info(group, port, node_id)?)?;
        Ok(())
    }

    /// Stops advertising `node_id` in `group`.
    pub fn withdraw(&self, group: &PeerName, node_id: &str) -> Result<(), DiscoveryError> {
        let fullname = format!("{}.{SERVICE_TYPE}", instance_name(group, node_id));
        self.daemon.unregister(&fullname)?;
        Ok(())
    }

    /// Browses for members of `group`: a stream of each address found (IPv4 and IPv6, each
    /// once), starting with those already known. Several groups can be browsed at once. It
    /// ends when the [`Discovery`] is shut down.
    pub fn browse(&self, group: &PeerName) -> Result<Browse, DiscoveryError> {
        let browser = self.browser()?;
        // Subscribe before taking the snapshot: nothing falls in between (repeats are
        // filtered by the `Browse`).
        let live = browser.events.subscribe();
        let known: Vec<Arc<ResolvedService>> = browser.resolved().values().cloned().collect();
        let live = futures_util::stream::unfold(live, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(service) => return Some((service, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(Browse {
            events: Box::pin(futures_util::stream::iter(known).chain(live)),
            tag: group_tag(group),
            ready: VecDeque::new(),
            seen: HashSet::new(),
        })
    }

    /// The shared browse of our service type, started on first use.
    fn browser(&self) -> Result<Arc<Browser>, DiscoveryError> {
        let mut slot = self.browser.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = slot.as_ref() {
            return Ok(b.clone());
        }
        let receiver = self.daemon.browse(SERVICE_TYPE)?;
        let browser = Arc::new(Browser {
            events: broadcast::Sender::new(BROWSE_BUFFER),
            resolved: Mutex::new(HashMap::new()),
        });
        let forward = browser.clone();
        // Ends when the daemon shuts down and drops its end of the channel.
        std::thread::Builder::new()
            .name("peergroup-mdns-browse".into())
            .spawn(move || {
                while let Ok(event) = receiver.recv() {
                    match event {
                        ServiceEvent::ServiceResolved(service) => {
                            let service: Arc<ResolvedService> = Arc::from(service);
                            forward
                                .resolved()
                                .insert(service.fullname.clone(), service.clone());
                            let _ = forward.events.send(service);
                        }
                        ServiceEvent::ServiceRemoved(_, fullname) => {
                            forward.resolved().remove(&fullname);
                        }
                        _ => {}
                    }
                }
            })?;
        *slot = Some(browser.clone());
        Ok(browser)
    }

    /// Stops the daemon (advertisements are withdrawn with goodbye packets).
    pub fn shutdown(self) -> Result<(), DiscoveryError> {
        self.daemon.shutdown()?;
        Ok(())
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").finish_non_exhaustive()
    }
}

/// Members of one group found by [`Discovery::browse`].
pub struct Browse {
    events: Pin<Box<dyn Stream<Item = Arc<ResolvedService>> + Send>>,
    tag: String,
    ready: VecDeque<Discovered>,
    seen: HashSet<Discovered>,
}

impl Browse {
    /// The next member address found.
    pub async fn next(&mut self) -> Option<Discovered> {
        futures_util::StreamExt::next(self).await
    }

    fn take_service(&mut self, service: &ResolvedService) {
        let props = &service.txt_properties;
        if props.get_property_val_str(TXT_GROUP) != Some(self.tag.as_str()) {
            return;
        }
        let node_id = props
            .get_property_val_str(TXT_NODE)
            .unwrap_or_default()
            .to_owned();
        let mut addrs: Vec<SocketAddr> = service
            .addresses
            .iter()
            .filter(|ip| is_dialable(ip.to_ip_addr()))
            .map(|ip| socket_addr(ip, service.port))
            .collect();
        // IPv4 first, then global IPv6, then link-local: the order worth trying.
        addrs.sort_by_key(|a| match a {
            SocketAddr::V4(_) => 0,
            SocketAddr::V6(v6) if v6.scope_id() == 0 => 1,
            SocketAddr::V6(_) => 2,
        });
        for addr in addrs {
            let found = Discovered {
                addr,
                node_id: node_id.clone(),
            };
            if self.seen.insert(found.clone()) {
                self.ready.push_back(found);
            }
        }
    }
}

impl Stream for Browse {
    type Item = Discovered;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Discovered>> {
        loop {
            if let Some(found) = self.ready.pop_front() {
                return Poll::Ready(Some(found));
            }
            match self.events.as_mut().poll_next(cx) {
                Poll::Ready(Some(service)) => self.take_service(&service),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for Browse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browse")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// A socket address for a discovered IP, keeping the interface of link-local IPv6.
fn socket_addr(ip: &ScopedIp, port: u16) -> SocketAddr {
    match ip {
        ScopedIp::V6(v6) => {
            let addr = *v6.addr();
            let scope = if addr.is_unicast_link_local() {
                v6.scope_id().index
            } else {
                0
            };
            SocketAddr::V6(SocketAddrV6::new(addr, port, 0, scope))
        }
        other => SocketAddr::new(other.to_ip_addr(), port),
    }
}

/// Whether `ip` is worth dialing (not unspecified or multicast).
pub(crate) fn is_dialable(ip: IpAddr) -> bool {
    !ip.is_unspecified() && !ip.is_multicast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use peergroup_identity::{Classifier, KeyPair};

    fn group() -> PeerName {
        PeerName::new(
            &KeyPair::from_test_seed(100).public(),
            Classifier::new("friends").unwrap(),
        )
    }

    #[test]
    fn advertisement_carries_the_tag_not_the_name() {
        let g = group();
        let info = service_info(&g, 4242, "node-1").unwrap();
        assert_eq!(info.get_type(), SERVICE_TYPE);
        assert_eq!(
            info.get_property_val_str(TXT_GROUP),
            Some(group_tag(&g).as_str())
        );
        assert_eq!(info.get_property_val_str(TXT_NODE), Some("node-1"));
        assert_eq!(info.get_property_val_str(TXT_PROTOCOL), Some("peergroup/1"));
        assert_eq!(info.get_port(), 4242);
        let name = g.to_string();
        for text in [info.get_fullname(), info.get_hostname()] {
            assert!(!text.contains(&name), "{text} shows the group name");
            assert!(!text.contains("friends"), "{text} shows the classifier");
        }
        for p in info.get_properties().iter() {
            assert!(!p.val_str().contains("friends"));
        }
    }

    #[test]
    fn instance_names_differ_by_node_and_group() {
        let g = group();
        let other = PeerName::new(
            &KeyPair::from_test_seed(101).public(),
            Classifier::new("friends").unwrap(),
        );
        assert_ne!(instance_name(&g, "a"), instance_name(&g, "b"));
        assert_ne!(instance_name(&g, "a"), instance_name(&other, "a"));
        assert_eq!(instance_name(&g, "a"), instance_name(&g, "a"));
        assert!(instance_name(&g, "a").len() <= 63);
    }

    #[test]
    fn node_ids_are_bounded() {
        assert!(service_info(&group(), 1, "").is_err());
        assert!(service_info(&group(), 1, &"x".repeat(65)).is_err());
    }

    #[test]
    fn dialable_addresses() {
        assert!(is_dialable("10.0.0.1".parse().unwrap()));
        assert!(!is_dialable("0.0.0.0".parse().unwrap()));
        assert!(!is_dialable("ff02::fb".parse().unwrap()));
    }
}
