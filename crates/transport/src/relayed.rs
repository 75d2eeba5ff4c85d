//! Connections a member relays: the same TLS 1.3 handshake, the same mutual authentication
//! by member chains, the same acceptance and frames as a direct connection, run inside a
//! byte stream that a third member forwards (the mesh's relay circuits:
//! `peergroup_mesh::core::relay`). Whoever carries the stream sees TLS records only: it
//! cannot read what the two members say, change it unnoticed, or pass for either of them
//! (each end checks the other's chain and the handshake signature made with its key, as
//! over TCP; a revocation closes a relayed connection as it closes a direct one).
//!
//! The two ends are told apart by who asked for the circuit: that member runs
//! [`connect_relayed`] (the TLS client), the one it reaches runs [`accept_relayed`] (the
//! server, which serves only the group of the credentials given, by the same server name and
//! ALPN rules). Both take any `AsyncRead + AsyncWrite` stream: what carries it is the
//! caller's business. The same two halves run a TCP hole punch's connection
//! ([`Endpoint::punch_tcp`](crate::Endpoint::punch_tcp)), where both sides dialed.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::LazyConfigAcceptor;

use crate::alerts::{ALERT_NO_APPLICATION_PROTOCOL, ALERT_UNRECOGNIZED_NAME, send_plain_alert};
use crate::config::{ALPN, TransportConfig};
use crate::connection::{self, ByteGauge, Connection, PeerInfo, Transport};
use crate::endpoint::check_pair;
use crate::error::{ConnectError, Refusal, RefusalKind};
use crate::frame::Frame;
use crate::handshake::{self, AcceptError, ClientTweaks, ServedGroup};
use crate::naming::sni_name;
use crate::tls;
use crate::trust::{GroupCredentials, GroupTrust};

/// Connects as a member of `creds.group` over `io`, a stream that member `via` relays to
/// the member we asked for. `local` is our address on our link to the relay, `via` the
/// relay's (they are what [`PeerInfo`] shows: the two ends' own addresses stay unknown to
/// each other). Bounded by the handshake timeout.
pub async fn connect_relayed<S>(
    io: S,
    local: SocketAddr,
    via: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
) -> Result<Connection, ConnectError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let ends = Ends {
        local,
        remote: via,
        transport: Transport::Relayed,
    };
    connect_over(io, ends, creds, trust, config, None).await
}

/// What a connection over a stream shows of its two ends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ends {
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) transport: Transport,
}

/// The client half over any stream (see [`connect_relayed`]).
pub(crate) async fn connect_over<S>(
    io: S,
    ends: Ends,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
    budget: Option<std::sync::Arc<ByteGauge>>,
) -> Result<Connection, ConnectError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    check_pair(creds, trust)?;
    let config = config.normalized();
    let deadline = Instant::now() + config.handshake_timeout;
    let tweaks = ClientTweaks::default();
    let c = handshake::client_handshake(io, ends.local, creds, trust, &tweaks, deadline).await?;
    let info = stream_info(c.chain, trust, ends);
    Ok(connection::spawn(
        c.tls,
        info,
        trust.clone(),
        &config,
        budget,
    ))
}

/// Accepts, over `io`, the member that asked a relay at `via` for a stream to us: serves
/// the group of `creds` only (any other server name is refused with `unrecognized_name`,
/// any other ALPN with `no_application_protocol`) and admits a member `trust` accepts, as
/// the listener does. `local` is our address on our link to the relay. Our refusals come
/// back as [`ConnectError::NotAuthenticated`], the other side's as
/// [`ConnectError::Refused`]. Bounded by the handshake timeout.
pub async fn accept_relayed<S>(
    io: S,
    local: SocketAddr,
    via: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
) -> Result<Connection, ConnectError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let ends = Ends {
        local,
        remote: via,
        transport: Transport::Relayed,
    };
    accept_over(io, ends, creds, trust, config, None).await
}

/// The server half over any stream (see [`accept_relayed`]).
pub(crate) async fn accept_over<S>(
    io: S,
    ends: Ends,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
    budget: Option<std::sync::Arc<ByteGauge>>,
) -> Result<Connection, ConnectError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    check_pair(creds, trust)?;
    let config = config.normalized();
    let deadline = Instant::now() + config.handshake_timeout;
    let refused = |kind, detail: String| ConnectError::NotAuthenticated(Refusal::new(kind, detail));
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    let start = match tokio::time::timeout_at(deadline, acceptor).await {
        Err(_) => return Err(ConnectError::Timeout(crate::error::Phase::Handshake)),
        Ok(Err(e)) => return Err(refused(RefusalKind::NotTls, format!("no ClientHello: {e}"))),
        Ok(Ok(start)) => start,
    };
    let hello = start.client_hello();
    let sni_ok = hello.server_name() == Some(sni_name(trust.group()).as_str());
    let alpn_ok = hello
        .alpn()
        .is_some_and(|mut offered| offered.any(|p| p == ALPN));
    if !alpn_ok {
        send_plain_alert(start.io, ALERT_NO_APPLICATION_PROTOCOL, deadline).await;
        let detail = "the client did not offer peergroup/1".to_owned();
        return Err(refused(RefusalKind::BadAlpn, detail));
    }
    if !sni_ok {
        send_plain_alert(start.io, ALERT_UNRECOGNIZED_NAME, deadline).await;
        let detail = "the client asked for another group".to_owned();
        return Err(refused(RefusalKind::UnknownGroup, detail));
    }
    let served = ServedGroup {
        group: trust.group().clone(),
        trust: trust.clone(),
        certified: tls::certified_key(creds),
        issuer: false,
        member: creds.peer().clone(),
    };
    let (tls, chain) =
        handshake::member_handshake(start, &served, Frame::Accepted, || {}, deadline, &config)
            .await
            .map_err(|e| match e {
                AcceptError::Refused { reason, .. } => ConnectError::NotAuthenticated(reason),
                AcceptError::PeerRefused { alert, .. } => {
                    ConnectError::Refused { kind: None, alert }
                }
            })?;
    let info = stream_info(chain, trust, ends);
    Ok(connection::spawn(tls, info, trust.clone(), &config, budget))
}

/// Who is at the other end of a connection over a stream.
fn stream_info(
    chain: peergroup_credential_roles::ValidatedChain,
    trust: &GroupTrust,
    ends: Ends,
) -> PeerInfo {
    let info = PeerInfo {
        peer: chain.peer().clone(),
        group: trust.group().clone(),
        addr: ends.remote,
        local_addr: ends.local,
        chain,
        transport: ends.transport,
        observed_addr: None,
    };
    tracing::debug!(peer = %info.peer, at = %ends.remote, transport = ?ends.transport, "connection over a stream up");
    info
}
