//! The client side of a QUIC connection: the TLS handshake as a member, then the server's
//! stream and its acceptance frame.

use std::net::SocketAddr;
use std::sync::Arc;

use peergroup_credential_roles::ValidatedChain;
use tokio::time::Instant;

use super::{QuicStream, client_error, local_addr_towards, transport_config};
use crate::config::{ALPN, TransportConfig};
use crate::error::{ConnectError, CredentialsError, Phase, Refusal, RefusalKind};
use crate::handshake::{self, ClientTweaks};
use crate::tls::MemberVerifier;
use crate::trust::{GroupCredentials, GroupTrust};

/// An established client-side QUIC connection.
pub(crate) struct Connected {
    pub(crate) stream: QuicStream,
    pub(crate) chain: ValidatedChain,
    pub(crate) local_addr: SocketAddr,
    /// Our address as the server saw it, when it said.
    pub(crate) observed: Option<SocketAddr>,
}

/// Connects to `addr` from `endpoint` as a member with `creds`, accepting a server that
/// `trust` accepts, then reads the server's acceptance. Bounded by the handshake timeout.
pub(crate) async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
    tweaks: &ClientTweaks,
) -> Result<Connected, ConnectError> {
    let deadline = Instant::now() + config.handshake_timeout;
    let verifier = MemberVerifier::new(trust.clone());
    let (tls, server_name) = handshake::client_tls(creds, trust, tweaks, verifier.clone())?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(tls))
        .map_err(|e| CredentialsError::Tls(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(transport_config(config, false));
    let server_name = server_name.to_str().into_owned();
    let connecting = endpoint
        .connect_with(client, addr, &server_name)
        .map_err(|e| ConnectError::Io(std::io::Error::other(e)))?;

    let result = tokio::time::timeout_at(deadline, connecting).await;
    let outcome = verifier.take_outcome();
    let conn = match result {
        Err(_) => return Err(ConnectError::Timeout(Phase::Handshake)),
        Ok(Err(e)) => {
            return Err(match outcome.refusal {
                Some(refusal) => ConnectError::NotAuthenticated(refusal),
                None => during_handshake(client_error(&e)),
            });
        }
        Ok(Ok(conn)) => conn,
    };
    let Some(chain) = outcome.chain else {
        return Err(ConnectError::NotAuthenticated(Refusal::new(
            RefusalKind::Protocol,
            "the handshake finished without a validated chain",
        )));
    };
    let protocol = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol);
    if protocol.as_deref() != Some(ALPN) {
        return Err(ConnectError::NotAuthenticated(Refusal::new(
            RefusalKind::BadAlpn,
            "the server did not select peergroup/1",
        )));
    }
    // The server checks our chain after our side of the handshake is done: a refusal
    // arrives as the connection's close, in place of its stream.
    let (send, mut recv) = match tokio::time::timeout_at(deadline, conn.accept_bi()).await {
        Err(_) => return Err(ConnectError::Timeout(Phase::Handshake)),
        Ok(Err(e)) => return Err(client_error(&e)),
        Ok(Ok(streams)) => streams,
    };
    let observed =
        match tokio::time::timeout_at(deadline, handshake::read_acceptance(&mut recv)).await {
            Err(_) => return Err(ConnectError::Timeout(Phase::Handshake)),
            Ok(Err(e)) => return Err(conn.close_reason().map_or(e, |c| client_error(&c))),
            Ok(Ok(observed)) => observed,
        };
    Ok(Connected {
        observed,
        local_addr: local_addr_towards(endpoint, addr),
        stream: QuicStream::new(conn, send, recv, config.close_timeout),
        chain,
    })
}

/// A refusal before our side of the handshake is done came before the server saw our
/// chain: `access_denied` then means it serves no such group (it refuses a chain of
/// another group only after our side is done, in place of the stream).
fn during_handshake(e: ConnectError) -> ConnectError {
    match e {
        ConnectError::Refused {
            kind: Some(RefusalKind::WrongGroup),
            alert,
        } => ConnectError::Refused {
            kind: Some(RefusalKind::UnknownGroup),
            alert,
        },
        other => other,
    }
}
