//! QUIC beside TCP (quinn on the same rustls and ring). The handshake is the TLS 1.3
//! handshake of the TCP transport, carried inside QUIC: the group is chosen by SNI, the
//! protocol by ALPN (`peergroup/1`), both sides present and validate group chains with the
//! same verifier and the same refusals. Once it is done the server opens one bidirectional
//! stream and writes its acceptance frame on it; from then on that stream carries the same
//! frames as a TCP connection, through the same connection task. QUIC keeps the connection
//! when an address changes (migration), which TCP cannot.

pub(crate) mod client;
pub(crate) mod route;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::{RecvStream, SendStream, VarInt};
use rustls::AlertDescription;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::alerts::kind_of_alert;
use crate::config::{QUIC_RECEIVE_WINDOW, TransportConfig};
use crate::error::{ConnectError, Phase, Refusal, RefusalKind};

/// QUIC error codes in this range carry a TLS alert (RFC 9001, 4.8).
const CRYPTO_ERROR: std::ops::Range<u64> = 0x100..0x200;

/// A UDP socket on `addr` (an IPv6 one takes IPv6 only, as the TCP listener).
pub(crate) fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A quinn endpoint on `socket`, taking incoming connections when `server` is given.
pub(crate) fn endpoint(
    socket: std::net::UdpSocket,
    server: Option<quinn::ServerConfig>,
) -> io::Result<quinn::Endpoint> {
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
}

/// A client-only quinn endpoint on a free port of the family of `remote`.
pub(crate) fn client_endpoint(remote: SocketAddr) -> io::Result<quinn::Endpoint> {
    let any: SocketAddr = if remote.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    endpoint(bind_udp(any)?, None)
}

/// quinn's settings for our connections: one stream, opened by the server; no datagrams;
/// windows of [`QUIC_RECEIVE_WINDOW`]; an idle timeout a little past ours (our keepalive
/// pings keep a live connection busy, our idle timeout closes a dead one first).
pub(crate) fn transport_config(
    config: &TransportConfig,
    server: bool,
) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(VarInt::from_u32(u32::from(!server)))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(QUIC_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(QUIC_RECEIVE_WINDOW))
        .send_window(u64::from(QUIC_RECEIVE_WINDOW))
        .datagram_receive_buffer_size(None)
        .keep_alive_interval(None)
        .max_idle_timeout(
            quinn::IdleTimeout::try_from(config.idle_timeout + Duration::from_secs(5)).ok(),
        );
    Arc::new(t)
}

/// The address we use towards `remote` from `endpoint`: its port, and the IP the system
/// routes from (an unspecified bind address says nothing).
pub(crate) fn local_addr_towards(endpoint: &quinn::Endpoint, remote: SocketAddr) -> SocketAddr {
    let local = endpoint
        .local_addr()
        .unwrap_or_else(|_| (std::net::Ipv4Addr::UNSPECIFIED, 0).into());
    if !local.ip().is_unspecified() {
        return local;
    }
    let routed = std::net::UdpSocket::bind(SocketAddr::new(local.ip(), 0))
        .and_then(|s| s.connect(remote).and_then(|()| s.local_addr()));
    match routed {
        Ok(a) => SocketAddr::new(a.ip(), local.port()),
        Err(_) => local,
    }
}

/// What a closed QUIC connection means to a client: the peer's TLS alert as a refusal, a
/// timeout, or a hang-up.
pub(crate) fn client_error(e: &quinn::ConnectionError) -> ConnectError {
    use quinn::ConnectionError as E;
    match e {
        E::ConnectionClosed(close) => match alert_of(close.error_code) {
            Some(alert) => ConnectError::Refused {
                kind: kind_of_alert(alert),
                alert: format!("{alert:?}"),
            },
            None => ConnectError::Refused {
                kind: None,
                alert: format!("closed: {close}"),
            },
        },
        E::ApplicationClosed(close) => ConnectError::Refused {
            kind: None,
            alert: format!("closed: {close}"),
        },
        E::TimedOut => ConnectError::Timeout(Phase::Handshake),
        E::TransportError(t) => match alert_of(t.code) {
            Some(AlertDescription::NoApplicationProtocol) => ConnectError::NotAuthenticated(
                Refusal::new(RefusalKind::BadAlpn, "no common ALPN protocol"),
            ),
            _ => ConnectError::NotAuthenticated(Refusal::new(RefusalKind::Protocol, t.to_string())),
        },
        E::VersionMismatch => ConnectError::NotAuthenticated(Refusal::new(
            RefusalKind::Incompatible,
            "no common QUIC version",
        )),
        E::Reset | E::LocallyClosed | E::CidsExhausted => ConnectError::Refused {
            kind: None,
            alert: e.to_string(),
        },
    }
}

/// The TLS alert a QUIC error code carries, if it carries one.
pub(crate) fn alert_of(code: quinn::TransportErrorCode) -> Option<AlertDescription> {
    let code = u64::from(code);
    CRYPTO_ERROR
        .contains(&code)
        .then(|| AlertDescription::from((code - CRYPTO_ERROR.start) as u8))
}

/// The refusal a server makes of a QUIC handshake that failed without our verifier or
/// router saying why (the error quinn reports, by the alert in it when there is one).
pub(crate) fn server_refusal(e: &quinn::ConnectionError) -> Refusal {
    use quinn::ConnectionError as E;
    let (kind, detail) = match e {
        E::TransportError(t) => match alert_of(t.code) {
            Some(AlertDescription::NoApplicationProtocol) => {
                (RefusalKind::BadAlpn, "no common ALPN protocol".to_owned())
            }
            Some(AlertDescription::CertificateRequired) => (
                RefusalKind::NoCertificate,
                "the client presented no certificate".to_owned(),
            ),
            Some(alert) => (
                kind_of_alert(alert).unwrap_or(RefusalKind::Protocol),
                t.to_string(),
            ),
            None => (RefusalKind::Protocol, t.to_string()),
        },
        E::TimedOut => (
            RefusalKind::HandshakeTimeout,
            "the client went silent during the handshake".to_owned(),
        ),
        E::VersionMismatch => (RefusalKind::Incompatible, e.to_string()),
        _ => (RefusalKind::Protocol, e.to_string()),
    };
    Refusal::new(kind, detail)
}

/// The stream of an established QUIC connection, as the connection task reads and writes
/// it. Dropped, it keeps the connection open until the peer closes it or
/// [`TransportConfig::close_timeout`] passes, so our last frames (the goodbye) arrive:
/// quinn discards unsent data when the last handle goes.
pub(crate) struct QuicStream {
    conn: quinn::Connection,
    send: SendStream,
    recv: RecvStream,
    linger: Duration,
}

impl QuicStream {
    pub(crate) fn new(
        conn: quinn::Connection,
        send: SendStream,
        recv: RecvStream,
        linger: Duration,
    ) -> Self {
        QuicStream {
            conn,
            send,
            recv,
            linger,
        }
    }
}

impl Drop for QuicStream {
    fn drop(&mut self) {
        let conn = self.conn.clone();
        let linger = self.linger;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(linger, conn.closed()).await;
                conn.close(VarInt::from_u32(0), b"closed");
            });
        }
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        AsyncRead::poll_read(Pin::new(&mut self.recv), cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.send), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_shutdown(Pin::new(&mut self.send), cx)
    }
}
