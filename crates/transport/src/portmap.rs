//! Port mappings on the local router (UPnP-IGD, through `igd-next`): members outside reach
//! this one at the router's public address, the *mapped* candidate of address discovery,
//! whatever kind of NAT the router is (a mapping is a static forward).
//!
//! [`Endpoint::bind`](crate::Endpoint::bind) starts [`keep`] when
//! [`TransportConfig::port_mapping`](crate::TransportConfig::port_mapping) is on: it finds the
//! gateway by SSDP, maps the listening port for UDP (QUIC) and TCP, publishes the external
//! address through a watch channel ([`Endpoint::mapped_addrs`](crate::Endpoint::mapped_addrs)),
//! renews the mapping at half its lease and removes it when the endpoint closes. Where no
//! gateway answers, it tries again every [`PORT_MAPPING_RETRY`]. The gateway is a device on
//! the local network; every exchange with it is bounded in time ([`GATEWAY_TIMEOUT`]).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

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
    /// No UPnP gateway answered on the local network.
    #[error("no UPnP gateway answered on the local network: {0}")]
    NoGateway(String),
    /// The gateway did not answer in time.
    #[error("the UPnP gateway did not answer within {0:?}")]
    Timeout(Duration),
    /// The gateway refused the mapping.
    #[error("the UPnP gateway refused the mapping: {0}")]
    Refused(String),
    /// The gateway's external address is not one others can reach.
    #[error("the UPnP gateway's external address {0} is not usable")]
    External(IpAddr),
    /// No local address faces the gateway.
    #[error("no local address on the gateway's network: {0}")]
    Local(std::io::Error),
}

/// One mapping: the router forwards `external` to `internal`, for UDP and (when it agreed)
/// TCP.
#[derive(Debug)]
pub struct PortMapping {
    gateway: Gateway<Tokio>,
    /// Where others reach us.
    pub external: SocketAddr,
    /// Where the router sends it.
    pub internal: SocketAddr,
    /// Whether TCP is mapped too.
    pub tcp: bool,
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
    /// Finds the gateway and asks it to forward `port` (UDP, and TCP on the same external
    /// port) to this host, for `lease`.
    pub async fn request(port: u16, lease: Duration) -> Result<PortMapping, PortMapError> {
        let options = igd_next::SearchOptions {
            timeout: Some(GATEWAY_TIMEOUT),
            single_search_timeout: Some(GATEWAY_TIMEOUT),
            ..Default::default()
        };
        let gateway = igd_next::aio::tokio::search_gateway(options)
            .await
            .map_err(|e| PortMapError::NoGateway(e.to_string()))?;
        // The local address that faces the gateway (no packet is sent).
        let probe = UdpSocket::bind(("0.0.0.0", 0)).map_err(PortMapError::Local)?;
        probe.connect(gateway.addr).map_err(PortMapError::Local)?;
        let local_ip = probe.local_addr().map_err(PortMapError::Local)?.ip();
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
            gateway,
            external: SocketAddr::new(external_ip, external_port),
            internal,
            tcp,
        })
    }

    /// Renews the mapping for another `lease`.
    pub async fn renew(&self, lease: Duration) -> Result<(), PortMapError> {
        let secs = u32::try_from(lease.as_secs()).unwrap_or(u32::MAX);
        let (port, internal) = (self.external.port(), self.internal);
        let udp = PortMappingProtocol::UDP;
        bounded(self.gateway.add_port(udp, port, internal, secs, NAME)).await?;
        if self.tcp {
            let tcp = PortMappingProtocol::TCP;
            bounded(self.gateway.add_port(tcp, port, internal, secs, NAME)).await?;
        }
        Ok(())
    }

    /// Asks the router to drop the mapping (best effort: it ends with its lease anyway).
    pub async fn remove(self) {
        let port = self.external.port();
        let _ = bounded(self.gateway.remove_port(PortMappingProtocol::UDP, port)).await;
        if self.tcp {
            let _ = bounded(self.gateway.remove_port(PortMappingProtocol::TCP, port)).await;
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
        let mapping = match mapping {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "no port mapping");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(PORT_MAPPING_RETRY) => continue,
                }
            }
        };
        tracing::info!(external = %mapping.external, tcp = mapping.tcp, "port mapped by the router");
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
