//! Outgoing connections: over TCP, over QUIC, or QUIC first with TCP after a moment
//! ([`Dial`]).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Dial, TCP_FALLBACK_DELAY, TransportConfig};
use crate::connection::{self, ByteGauge, Connection, PeerInfo, Transport};
use crate::error::ConnectError;
use crate::handshake::{self, ClientTweaks};
use crate::quic;
use crate::trust::{GroupCredentials, GroupTrust};

/// The client side, with test knobs; no consistency check between `creds` and `trust`.
/// Unread incoming data counts towards `recv_budget` when given (an endpoint's). QUIC
/// dials from `quic` when given (an endpoint's), else from a socket of its own.
pub(crate) async fn connect_tweaked(
    addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
    tweaks: &ClientTweaks,
    recv_budget: Option<Arc<ByteGauge>>,
    quic: Option<quinn::Endpoint>,
) -> Result<Connection, ConnectError> {
    let config = config.normalized();
    let tcp = || connect_tcp(addr, creds, trust, &config, tweaks, recv_budget.clone());
    let quic = || {
        connect_quic(
            addr,
            creds,
            trust,
            &config,
            tweaks,
            recv_budget.clone(),
            quic.clone(),
        )
    };
    match config.dial {
        Dial::Tcp => tcp().await,
        Dial::Quic => quic().await,
        Dial::QuicThenTcp => {
            let tcp = async {
                tokio::time::sleep(TCP_FALLBACK_DELAY).await;
                tcp().await
            };
            race(quic(), tcp).await
        }
    }
}

/// The first of two attempts to connect; a refusal by the peer (or our own) ends both.
async fn race(
    first: impl std::future::Future<Output = Result<Connection, ConnectError>>,
    second: impl std::future::Future<Output = Result<Connection, ConnectError>>,
) -> Result<Connection, ConnectError> {
    let final_error =
        |e: &ConnectError| e.refusal_kind().is_some() || matches!(e, ConnectError::Credentials(_));
    tokio::pin!(first, second);
    let (mut first_failed, mut second_failed) = (None, None);
    loop {
        tokio::select! {
            r = &mut first, if first_failed.is_none() => match r {
                Ok(c) => return Ok(c),
                Err(e) if final_error(&e) => return Err(e),
                Err(e) => match second_failed.take() {
                    Some(other) => return Err(other),
                    None => first_failed = Some(e),
                },
            },
            r = &mut second, if second_failed.is_none() => match r {
                Ok(c) => return Ok(c),
                Err(e) if final_error(&e) || first_failed.is_some() => return Err(e),
                Err(e) => second_failed = Some(e),
            },
        }
    }
}

async fn connect_tcp(
    addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
    tweaks: &ClientTweaks,
    recv_budget: Option<Arc<ByteGauge>>,
) -> Result<Connection, ConnectError> {
    let c = handshake::connect(addr, creds, trust, config, tweaks).await?;
    let mut info = client_info(addr, c.local_addr, c.chain, trust, Transport::Tcp);
    info.observed_addr = c.observed;
    Ok(connection::spawn(
        c.tls,
        info,
        trust.clone(),
        config,
        recv_budget,
    ))
}

async fn connect_quic(
    addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
    tweaks: &ClientTweaks,
    recv_budget: Option<Arc<ByteGauge>>,
    quic: Option<quinn::Endpoint>,
) -> Result<Connection, ConnectError> {
    let endpoint = match quic {
        Some(e) => e,
        None => quic::client_endpoint(addr)?,
    };
    let c = quic::client::connect(&endpoint, addr, creds, trust, config, tweaks).await?;
    let mut info = client_info(addr, c.local_addr, c.chain, trust, Transport::Quic);
    info.observed_addr = c.observed;
    Ok(connection::spawn(
        c.stream,
        info,
        trust.clone(),
        config,
        recv_budget,
    ))
}

/// Who we connected to, as our side of a new connection says.
fn client_info(
    addr: SocketAddr,
    local_addr: SocketAddr,
    chain: peergroup_credential_roles::ValidatedChain,
    trust: &GroupTrust,
    transport: Transport,
) -> PeerInfo {
    let info = PeerInfo {
        peer: chain.peer().clone(),
        group: trust.group().clone(),
        addr,
        local_addr,
        chain,
        transport,
        observed_addr: None,
    };
    tracing::debug!(peer = %info.peer, %addr, %transport, "connected");
    info
}
