//! Test hooks: clients that can misbehave in the ways the refusal tests need.

use std::net::SocketAddr;
use std::sync::Arc;

use peergroup_credential_roles::CertChain;
use peergroup_identity::{IdentityCertificate, KeyPair, PeerName};
use tokio::net::TcpStream;

use crate::config::TransportConfig;
use crate::connection::Connection;
use crate::error::ConnectError;
use crate::handshake;
pub use crate::handshake::ClientTweaks;
use crate::join::JoinError;
use crate::trust::{GroupCredentials, GroupTrust};

/// Connects with `tweaks`, without checking that `creds` and `trust` agree (so a member
/// of one group can knock on another's door).
pub async fn connect_tweaked(
    addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
    tweaks: &ClientTweaks,
) -> Result<Connection, ConnectError> {
    crate::endpoint::connect_tweaked(addr, creds, trust, config, tweaks, None, None).await
}

/// Completes the handshake and returns the raw TLS stream (after the acceptance), for
/// writing bytes that are not frames.
pub async fn connect_raw(
    addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let config = config.normalized();
    let connected =
        handshake::connect(addr, creds, trust, &config, &ClientTweaks::default()).await?;
    Ok(connected.tls)
}

/// [`password_join`](crate::password_join) with `tweaks` (another server name, other ALPN
/// protocols, other certificates, none).
#[allow(clippy::too_many_arguments)]
pub async fn password_join_tweaked(
    addr: SocketAddr,
    group: &PeerName,
    identity_key: Arc<KeyPair>,
    idc: &IdentityCertificate,
    password: &[u8],
    trust: &GroupTrust,
    config: &TransportConfig,
    tweaks: &ClientTweaks,
) -> Result<CertChain, JoinError> {
    crate::join::password_join_tweaked(
        addr,
        group,
        identity_key,
        idc,
        password,
        trust,
        config,
        tweaks,
    )
    .await
}
