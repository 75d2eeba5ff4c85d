//! Port mappings on the local router (PCP and NAT-PMP through `crab_nat`, UPnP-IGD through
//! `igd-next`): members outside reach this one at the router's public address, the *mapped*
//! candidate of address discovery, whatever kind of NAT the router is (a mapping is a static
//! forward).
//!
//! [`Endpoint::bind`](crate::Endpoint::bind) starts [`keep`] when
//! [`TransportConfig::port_mapping`](crate::TransportConfig::port_mapping) is on: it asks the
//! default gateway by PCP (NAT-PMP where the router wants it; `pcp.rs`), else finds a
//! UPnP-IGD gateway by SSDP, maps the listening port for UDP (QUIC) and TCP, publishes the external
//! address through a watch channel ([`Endpoint::mapped_addrs`](crate::Endpoint::mapped_addrs)),
//! renews the mapping at half its lease and removes it when the endpoint closes. Where no
//! gateway answers, it tries again every [`PORT_MAPPING_RETRY`]. The gateway is a device on
//! the local network; every exchange with it is bounded in time ([`GATEWAY_TIMEOUT`]).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

mod pcp;

pub use pcp::PCP_FIRST_TIMEOUT;

use igd_next::PortMappingProtocol;
use igd_next::aio::Gateway;
use igd_next::aio::tokio::Tokio;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a mapping is leased for (renewed at half of it).
pub const PORT_MAPPING_LEASE: Duration = Duration::from_secs(20 * 60);
/// How long to wait before looking for a gateway again when none answered.
pub const PORT_MAPPING_RETRY: Duration = Duration::from_secs(5 * 60);
/// How long a search for the gateway, or one request to it, may take.
pub const GATEWAY_TIMEOUT: Duration = Duration::from_secs(3);

/// What went wrong asking the router for a mapping.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortMapError {
    /// No gateway answered on the local network.
    #[error("no gateway answered on the local network: {0}")]
    NoGateway(String),
    /// The gateway did not answer in time.
    #[error("the gateway did not answer within {0:?}")]
    Timeout(Duration),
    /// The gateway refused the mapping.
    #[error("the gateway refused the mapping: {0}")]
    Refused(String),
    /// The gateway's external address is not one others can reach.
    #[error("the gateway's external address {0} is not usable")]
    External(IpAddr),
    /// No local address faces the gateway.
    #[error("no local address on the gateway's network: {0}")]
    Local(std::io::Error),
}

/// Which protocol the router granted a mapping by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MappedBy {
    /// Port Control Protocol (RFC 6887).
    Pcp,
    /// NAT Port Mapping Protocol (RFC 6886).
    NatPmp,
    /// UPnP Internet Gateway Device.
    Upnp,
}

/// One mapping: the router forwards `external` to `internal`, for UDP and (when it agreed)
/// TCP.
#[derive(Debug)]
pub struct PortMapping {
    backend: Backend,
    /// Where others reach us.
    pub external: SocketAddr,
    /// Where the router sends it.
    pub internal: SocketAddr,
    /// Whether TCP is mapped too.
    pub tcp: bool,
    /// The protocol the router spoke.
    pub by: MappedBy,
}

#[derive(Debug)]
enum Backend {
    Upnp(Gateway<Tokio>),
    Pcp(pcp::Pcp),
}

/// The local address that faces `peer` (no packet is sent).
fn local_ip_towards(peer: SocketAddr) -> Result<IpAddr, PortMapError> {
    let probe = UdpSocket::bind(("0.0.0.0", 0)).map_err(PortMapError::Local)?;
    probe.connect(peer).map_err(PortMapError::Local)?;
    Ok(probe.local_addr().map_err(PortMapError::Local)?.ip())
}

async fn bounded<T, E: std::fmt::Display>(
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, PortMapError> {
    match tokio::time::timeout(GATEWAY_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(PortMapError::Refused(e.to_string())),
        Err(_) => Err(PortMapError::Timeout(GATEWAY_TIMEOUT)),
    }
}

impl PortMapping {
    /// Asks the router to forward `port` (UDP, and TCP on the same external port) to this
    /// host, for `lease`: by PCP or NAT-PMP at the default gateway (a round trip where the
    /// router speaks them), else by UPnP-IGD (an SSDP search first).
    pub async fn request(port: u16, lease: Duration) -> Result<PortMapping, PortMapError> {
        match pcp::request(port, lease).await {
            Ok((backend, external, internal, by)) => {
                return Ok(PortMapping {
                    tcp: backend.tcp(),
                    backend: Backend::Pcp(backend),
                    external,
                    internal,
                    by,
                });
            }
            Err(e) => tracing::debug!(error = %e, "no PCP/NAT-PMP mapping; trying UPnP-IGD"),
        }
        Self::request_upnp(port, lease).await
    }

    /// Finds a UPnP-IGD gateway and asks it to forward `port` (UDP, and TCP on the same
    /// external port) to this host, for `lease`.
    pub async fn request_upnp(port: u16, lease: Duration) -> Result<PortMapping, PortMapError> {
        let options = igd_next::SearchOptions {
            timeout: Some(GATEWAY_TIMEOUT),
            single_search_timeout: Some(GATEWAY_TIMEOUT),
            ..Default::default()
        };
        let gateway = igd_next::aio::tokio::search_gateway(options)
            .await
            .map_err(|e| PortMapError::NoGateway(e.to_string()))?;
        let local_ip = local_ip_towards(gateway.addr)?;
        let internal = SocketAddr::new(local_ip, port);
        let external_ip = bounded(gateway.get_external_ip()).await?;
        if external_ip.is_unspecified() || external_ip.is_loopback() {
            return Err(PortMapError::External(external_ip));
        }
        let secs = u32::try_from(lease.as_secs()).unwrap_or(u32::MAX);
        let udp = PortMappingProtocol::UDP;
        let external_port = match bounded(gateway.add_port(udp, port, internal, secs, NAME)).await {
            Ok(()) => port,
            // Taken by another host: any port will do.
            Err(PortMapError::Refused(_)) => {
                bounded(gateway.add_any_port(udp, internal, secs, NAME)).await?
            }
            Err(e) => return Err(e),
        };
        let tcp = PortMappingProtocol::TCP;
        let tcp = bounded(gateway.add_port(tcp, external_port, internal, secs, NAME))
            .await
            .inspect_err(|e| tracing::debug!(error = %e, "no TCP port mapping"))
            .is_ok();
        Ok(PortMapping {
            backend: Backend::Upnp(gateway),
            external: SocketAddr::new(external_ip, external_port),
            internal,
            tcp,
            by: MappedBy::Upnp,
        })
    }

    /// Renews the mapping for another `lease` (PCP and NAT-PMP: for the lifetime first
    /// granted).
    pub async fn renew(&mut self, lease: Duration) -> Result<(), PortMapError> {
        let gateway = match &mut self.backend {
            Backend::Pcp(p) => return p.renew().await,
            Backend::Upnp(g) => g,
        };
        let secs = u32::try_from(lease.as_secs()).unwrap_or(u32::MAX);
        let (port, internal) = (self.external.port(), self.internal);
        let udp = PortMappingProtocol::UDP;
        bounded(gateway.add_port(udp, port, internal, secs, NAME)).await?;
        if self.tcp {
            let tcp = PortMappingProtocol::TCP;
            bounded(gateway.add_port(tcp, port, internal, secs, NAME)).await?;
        }
        Ok(())
    }

    /// Asks the router to drop the mapping (best effort: it ends with its lease anyway).
    pub async fn remove(self) {
        let port = self.external.port();
        match self.backend {
            Backend::Pcp(p) => p.remove().await,
            Backend::Upnp(gateway) => {
                let _ = bounded(gateway.remove_port(PortMappingProtocol::UDP, port)).await;
                if self.tcp {
                    let _ = bounded(gateway.remove_port(PortMappingProtocol::TCP, port)).await;
                }
            }
        }
    }
}

/// The description the router shows for our mappings.
const NAME: &str = "peergroup";

/// Keeps a mapping of `port` while `stop` is not cancelled, publishing its external address
/// on `mapped` (empty while there is none).
pub(crate) async fn keep(
    port: u16,
    mapped: watch::Sender<Vec<SocketAddr>>,
    stop: CancellationToken,
) {
    loop {
        let mapping = tokio::select! {
            () = stop.cancelled() => return,
            m = PortMapping::request(port, PORT_MAPPING_LEASE) => m,
        };
        let mut mapping = match mapping {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "no port mapping");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(PORT_MAPPING_RETRY) => continue,
                }
            }
        };
        tracing::info!(external = %mapping.external, tcp = mapping.tcp, by = ?mapping.by, "port mapped by the router");
        mapped.send_replace(vec![mapping.external]);
        loop {
            tokio::select! {
                () = stop.cancelled() => {
                    mapping.remove().await;
                    return;
                }
                () = tokio::time::sleep(PORT_MAPPING_LEASE / 2) => {}
            }
            if let Err(e) = mapping.renew(PORT_MAPPING_LEASE).await {
                tracing::info!(error = %e, "the port mapping could not be renewed");
                mapped.send_replace(Vec::new());
                break;
            }
        }
    }
}
