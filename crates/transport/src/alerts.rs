//! TLS alerts: the ones we send before a TLS session exists, and what the ones we receive
//! (or the errors rustls reports) mean as refusals.

use std::io;

use peergroup_identity::PeerName;
use rustls::AlertDescription;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::config::TransportConfig;
use crate::error::{ConnectError, Refusal, RefusalKind};
use crate::handshake::AcceptError;

/// TLS alert `unrecognized_name` (RFC 6066): no group here for the SNI asked for.
pub(crate) const ALERT_UNRECOGNIZED_NAME: u8 = 112;
/// TLS alert `no_application_protocol` (RFC 7301).
pub(crate) const ALERT_NO_APPLICATION_PROTOCOL: u8 = 120;

/// What went wrong on the server side when our verifier did not refuse.
pub(crate) fn classify_server_error(e: &io::Error, group: &PeerName) -> AcceptError {
    let (kind, detail) = match rustls_error(e) {
        Some(rustls::Error::NoCertificatesPresented) => (
            RefusalKind::NoCertificate,
            "the client presented no certificate".to_owned(),
        ),
        Some(rustls::Error::AlertReceived(alert)) => {
            return AcceptError::PeerRefused {
                group: group.clone(),
                alert: format!("{alert:?}"),
            };
        }
        Some(rustls::Error::PeerIncompatible(p)) => (RefusalKind::Incompatible, format!("{p:?}")),
        Some(rustls::Error::NoApplicationProtocol) => {
            (RefusalKind::BadAlpn, "no common ALPN protocol".to_owned())
        }
        Some(other) => (RefusalKind::Protocol, other.to_string()),
        None if e.kind() == io::ErrorKind::UnexpectedEof => (
            RefusalKind::Protocol,
            "the connection closed during the handshake".to_owned(),
        ),
        None => (RefusalKind::Protocol, e.to_string()),
    };
    AcceptError::Refused {
        reason: Refusal::new(kind, detail),
        group: Some(group.clone()),
    }
}

/// Writes a fatal TLS alert in a plaintext record (before any key exists) and closes.
pub(crate) async fn send_plain_alert<S: AsyncRead + AsyncWrite + Unpin>(
    mut tcp: S,
    description: u8,
    deadline: Instant,
) {
    // ContentType alert (21), legacy version TLS 1.2, length 2, level fatal (2).
    let record = [21, 3, 3, 0, 2, 2, description];
    let _ = tokio::time::timeout_at(deadline, async {
        tcp.write_all(&record).await?;
        tcp.shutdown().await
    })
    .await;
}

/// After a refusal, lets the peer read our alert: half-close, then read (and drop) what it
/// still sends for a moment, so closing does not reset the connection under the alert.
pub(crate) async fn linger<S: AsyncRead + AsyncWrite + Unpin>(
    mut tcp: S,
    config: &TransportConfig,
) {
    let _ = tokio::time::timeout(config.close_timeout, async {
        let _ = tcp.shutdown().await;
        let mut sink = [0u8; 1024];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// What went wrong on the client side when our verifier did not refuse.
pub(crate) fn classify_client_error(e: io::Error) -> ConnectError {
    let refusal = |kind, detail: String| ConnectError::NotAuthenticated(Refusal::new(kind, detail));
    match rustls_error(&e) {
        Some(rustls::Error::AlertReceived(alert)) => ConnectError::Refused {
            kind: kind_of_alert(*alert),
            alert: format!("{alert:?}"),
        },
        Some(rustls::Error::PeerIncompatible(p)) => {
            refusal(RefusalKind::Incompatible, format!("{p:?}"))
        }
        Some(rustls::Error::NoApplicationProtocol) => {
            refusal(RefusalKind::BadAlpn, "no common ALPN protocol".into())
        }
        Some(
            err @ (rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. }),
        ) => refusal(
            RefusalKind::NotTls,
            format!("the server does not speak TLS: {err}"),
        ),
        Some(other) => refusal(RefusalKind::Protocol, other.to_string()),
        None => match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ConnectError::Refused {
                kind: None,
                alert: "connection closed".into(),
            },
            _ => ConnectError::Io(e),
        },
    }
}

/// The refusal a TLS alert from the server stands for (see `tls::certificate_error` for the
/// alerts we send).
pub(crate) fn kind_of_alert(alert: AlertDescription) -> Option<RefusalKind> {
    Some(match alert {
        AlertDescription::CertificateRequired => RefusalKind::NoCertificate,
        AlertDescription::UnknownCA | AlertDescription::BadCertificate => RefusalKind::NotMember,
        AlertDescription::AccessDenied => RefusalKind::WrongGroup,
        AlertDescription::CertificateExpired => RefusalKind::Expired,
        AlertDescription::CertificateRevoked => RefusalKind::Revoked,
        AlertDescription::NoApplicationProtocol => RefusalKind::BadAlpn,
        AlertDescription::UnrecognisedName => RefusalKind::UnknownGroup,
        AlertDescription::DecryptError => RefusalKind::BadSignature,
        AlertDescription::ProtocolVersion
        | AlertDescription::HandshakeFailure
        | AlertDescription::InsufficientSecurity => RefusalKind::Incompatible,
        _ => return None,
    })
}

/// The rustls error inside an I/O error from tokio-rustls, if that is what it is.
pub(crate) fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}
