//! PCP (RFC 6887) and NAT-PMP (RFC 6886) mappings through `crab_nat`: one UDP request to the
//! default gateway, answered in a round trip by routers that speak either (PCP first, NAT-PMP
//! when the router asks for it). The gateway is the default route's (read from the routing
//! table; on systems where we cannot read it, PCP is not tried and UPnP-IGD is).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU16;
use std::time::Duration;

use crab_nat::{InternetProtocol, PortMappingOptions, PortMappingType, TimeoutConfig};

use super::{MappedBy, PortMapError};

/// How long one PCP/NAT-PMP request waits for the gateway at first (then 500 ms, 1 s: about
/// 1.75 s in all before UPnP-IGD is tried).
pub const PCP_FIRST_TIMEOUT: Duration = Duration::from_millis(250);

fn timeouts() -> TimeoutConfig {
    TimeoutConfig {
        initial_timeout: PCP_FIRST_TIMEOUT,
        max_retries: 2,
        max_retry_timeout: Some(PCP_FIRST_TIMEOUT * 4),
    }
}

/// A mapping a PCP or NAT-PMP gateway granted: UDP, and TCP when it agreed.
#[derive(Debug)]
pub(super) struct Pcp {
    udp: crab_nat::PortMapping,
    tcp: Option<crab_nat::PortMapping>,
}

/// Asks the default gateway to forward `port` (UDP, then TCP on the same external port) for
/// `lease`. Returns the mapping, where others reach us, where the router sends it, and which
/// protocol it spoke.
pub(super) async fn request(
    port: u16,
    lease: Duration,
) -> Result<(Pcp, SocketAddr, SocketAddr, MappedBy), PortMapError> {
    let gateway = default_gateway().ok_or_else(|| {
        PortMapError::NoGateway("no default IPv4 gateway in the routing table".into())
    })?;
    let local_ip = super::local_ip_towards(SocketAddr::new(IpAddr::V4(gateway), 0))?;
    let internal_port =
        NonZeroU16::new(port).ok_or_else(|| PortMapError::Refused("cannot map port 0".into()))?;
    let options = |external: Option<NonZeroU16>| PortMappingOptions {
        external_port: external,
        lifetime_seconds: Some(u32::try_from(lease.as_secs()).unwrap_or(u32::MAX)),
        timeout_config: Some(timeouts()),
    };
    let ask = |protocol, external| {
        crab_nat::PortMapping::new(
            gateway.into(),
            local_ip,
            protocol,
            internal_port,
            options(external),
        )
    };
    let udp = ask(InternetProtocol::Udp, Some(internal_port))
        .await
        .map_err(|e| PortMapError::Refused(format!("PCP/NAT-PMP: {e}")))?;
    let (external_ip, by) = match udp.mapping_type() {
        PortMappingType::Pcp { external_ip, .. } => (external_ip, MappedBy::Pcp),
        PortMappingType::NatPmp => {
            let ip = crab_nat::natpmp::external_address(gateway.into(), Some(timeouts()))
                .await
                .map_err(|e| PortMapError::Refused(format!("NAT-PMP external address: {e}")))?;
            (IpAddr::V4(ip), MappedBy::NatPmp)
        }
    };
    if external_ip.is_unspecified() || external_ip.is_loopback() {
        let _ = udp.try_drop().await;
        return Err(PortMapError::External(external_ip));
    }
    let external = SocketAddr::new(external_ip, udp.external_port().get());
    // TCP on the same external port, or none (QUIC is what a punch and most dials use).
    let tcp = match ask(InternetProtocol::Tcp, Some(udp.external_port())).await {
        Ok(t) if t.external_port() == udp.external_port() => Some(t),
        Ok(t) => {
            let _ = t.try_drop().await;
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "no TCP port mapping by PCP/NAT-PMP");
            None
        }
    };
    let internal = SocketAddr::new(local_ip, port);
    Ok((Pcp { udp, tcp }, external, internal, by))
}

impl Pcp {
    /// Whether TCP is mapped too.
    pub(super) fn tcp(&self) -> bool {
        self.tcp.is_some()
    }

    /// Renews both mappings (for the lifetime first granted).
    pub(super) async fn renew(&mut self) -> Result<(), PortMapError> {
        let refused =
            |e: crab_nat::MappingFailure| PortMapError::Refused(format!("PCP/NAT-PMP: {e}"));
        self.udp.renew().await.map_err(refused)?;
        if let Some(t) = &mut self.tcp {
            t.renew().await.map_err(refused)?;
        }
        Ok(())
    }

    /// Asks the gateway to drop both (best effort).
    pub(super) async fn remove(self) {
        let _ = self.udp.try_drop().await;
        if let Some(t) = self.tcp {
            let _ = t.try_drop().await;
        }
    }
}

/// The default IPv4 gateway, from the kernel's routing table (Linux); `None` elsewhere or
/// when there is no default route.
pub(crate) fn default_gateway() -> Option<Ipv4Addr> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    parse_route_table(&table)
}

/// The gateway of the first default route (destination and mask 0, flags up and gateway) in
/// a `/proc/net/route` table; its addresses are hexadecimal in the host's (little-endian)
/// byte order.
pub(crate) fn parse_route_table(table: &str) -> Option<Ipv4Addr> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let hex = |i: usize| f.get(i).and_then(|v| u32::from_str_radix(v, 16).ok());
        let (dest, gateway, flags, mask) = (hex(1)?, hex(2)?, hex(3)?, hex(7)?);
        let default =
            dest == 0 && mask == 0 && flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY;
        (default && gateway != 0).then(|| Ipv4Addr::from(gateway.to_le_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_route_gives_the_gateway() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
             eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(parse_route_table(table), Some(Ipv4Addr::new(10, 0, 1, 1)));
        // No default route; a default route without the gateway flag; garbage.
        let only_local = "h\neth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(parse_route_table(only_local), None);
        let no_gateway_flag = "h\neth0\t00000000\t0101000A\t0001\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(parse_route_table(no_gateway_flag), None);
        assert_eq!(parse_route_table("h\nnot a route\n\u{0}\u{ffff}"), None);
        assert_eq!(parse_route_table(""), None);
    }
}
