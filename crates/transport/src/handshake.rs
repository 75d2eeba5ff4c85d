//! Both sides of establishing a connection: TCP, TLS 1.3 with mutual authentication, and the
//! server's acceptance frame. Every step is bounded by a timeout.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use peergroup_credential_roles::ValidatedChain;
use peergroup_identity::PeerName;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::{LazyConfigAcceptor, TlsConnector, client, server};

use crate::alerts::{
    ALERT_NO_APPLICATION_PROTOCOL, ALERT_UNRECOGNIZED_NAME, classify_client_error,
    classify_server_error, linger, rustls_error, send_plain_alert,
};
use crate::config::{ALPN, TransportConfig};
use crate::error::{ConnectError, CredentialsError, Phase, Refusal, RefusalKind};
use crate::frame::{Frame, FrameCodec, LENGTH_PREFIX, decode_body};
use crate::join::{self, JOIN_ALPN, JoinService};
use crate::naming::sni_name;
use crate::tls::{self, MemberVerifier};
use crate::trust::{GroupCredentials, GroupTrust};

/// A group an endpoint serves: what it presents and whom it accepts.
pub(crate) struct ServedGroup {
    pub(crate) group: PeerName,
    pub(crate) trust: GroupTrust,
    pub(crate) certified: Arc<rustls::sign::CertifiedKey>,
    /// Whether our chain may issue credentials (admin or inviting member): password joins
    /// need it.
    pub(crate) issuer: bool,
    /// Our own peer name (the leaf of our chain).
    pub(crate) member: PeerName,
}

/// What an incoming connection became.
#[allow(
    clippy::large_enum_variant,
    reason = "one per incoming connection, moved once into its task"
)]
pub(crate) enum Incoming {
    /// An authenticated member ([`ALPN`]).
    Member(Accepted),
    /// A joiner with an identity certificate ([`JOIN_ALPN`]), for a group taking joins.
    Join(join::server::JoinAccepted),
}

/// Why an incoming connection did not become a [`crate::Connection`].
pub(crate) enum AcceptError {
    /// We refused the client (reported as an [`crate::AuthFailure`]).
    Refused {
        reason: Refusal,
        group: Option<PeerName>,
    },
    /// The client refused us (its alert).
    PeerRefused { group: PeerName, alert: String },
}

/// An established server-side handshake.
pub(crate) struct Accepted {
    pub(crate) tls: server::TlsStream<TcpStream>,
    pub(crate) chain: ValidatedChain,
    pub(crate) group: Arc<ServedGroup>,
    pub(crate) local_addr: SocketAddr,
}

/// Runs the server side of a handshake on `tcp` until `deadline`, choosing the group by SNI
/// and the protocol by ALPN (`lookup` gives the group served under a server name and its
/// join policy, if any; it is called once, after the ClientHello offered our protocol).
/// `authenticated` is called once a member's chain is validated, before the acceptance is
/// sent.
pub(crate) async fn accept(
    tcp: TcpStream,
    deadline: Instant,
    lookup: impl FnOnce(&str) -> Option<(Arc<ServedGroup>, Option<Arc<JoinService>>)>,
    authenticated: impl FnOnce(),
    config: &TransportConfig,
) -> Result<Incoming, AcceptError> {
    let refused = refusal;
    let timed_out = |group: Option<&PeerName>| handshake_timed_out(config, group);
    let local_addr = tcp
        .local_addr()
        .map_err(|e| refused(RefusalKind::Protocol, e.to_string(), None))?;
    let peer_addr = tcp
        .peer_addr()
        .map_err(|e| refused(RefusalKind::Protocol, e.to_string(), None))?;

    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
    let start = match tokio::time::timeout_at(deadline, acceptor).await {
        Err(_) => return Err(timed_out(None)),
        Ok(Err(e)) => {
            let kind = match rustls_error(&e) {
                Some(rustls::Error::PeerIncompatible(_)) => RefusalKind::Incompatible,
                _ => RefusalKind::NotTls,
            };
            let detail = if e.kind() == io::ErrorKind::UnexpectedEof {
                "the connection closed before a TLS ClientHello".to_owned()
            } else {
                format!("no TLS ClientHello: {e}")
            };
            return Err(refused(kind, detail, None));
        }
        Ok(Ok(start)) => start,
    };

    let hello = start.client_hello();
    let sni = hello.server_name().map(str::to_owned);
    let offered: Vec<Vec<u8>> = hello
        .alpn()
        .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
        .unwrap_or_default();
    // A member's protocol wins; the join protocol only when it is all that is offered.
    let joining = !offered.iter().any(|p| p == ALPN) && offered.iter().any(|p| p == JOIN_ALPN);
    if !joining && !offered.iter().any(|p| p == ALPN) {
        send_plain_alert(start.io, ALERT_NO_APPLICATION_PROTOCOL, deadline).await;
        let offered: Vec<String> = offered
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        return Err(refused(
            RefusalKind::BadAlpn,
            format!("the client offered {offered:?}, not [\"peergroup/1\"]"),
            None,
        ));
    }
    let Some((served, join_service)) = sni.as_deref().and_then(lookup) else {
        send_plain_alert(start.io, ALERT_UNRECOGNIZED_NAME, deadline).await;
        let detail = match sni {
            Some(name) => format!("no group here for server name {name:?}"),
            None => "the client named no group (no SNI)".to_owned(),
        };
        return Err(refused(RefusalKind::UnknownGroup, detail, None));
    };
    if joining {
        return join::server::handshake(start, served, join_service, deadline, config)
            .await
            .map(Incoming::Join);
    }

    let (tls, chain) = member_handshake(
        start,
        &served,
        Frame::Welcome {
            observed: peer_addr,
        },
        authenticated,
        deadline,
        config,
    )
    .await?;
    Ok(Incoming::Member(Accepted {
        tls,
        chain,
        group: served,
        local_addr,
    }))
}

/// The member protocol's server side once the ClientHello chose `served`: TLS with the
/// member's chain checked by `served`'s trust, then `acceptance` (the frame that tells the
/// client it is in). `authenticated` is called once the chain is validated. Over TCP, or
/// inside a stream a member relays ([`crate::relayed`]).
pub(crate) async fn member_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    start: tokio_rustls::StartHandshake<S>,
    served: &ServedGroup,
    acceptance: Frame,
    authenticated: impl FnOnce(),
    deadline: Instant,
    config: &TransportConfig,
) -> Result<(server::TlsStream<S>, ValidatedChain), AcceptError> {
    let refused = refusal;
    let timed_out = |group: Option<&PeerName>| handshake_timed_out(config, group);
    let group = Some(&served.group);
    let verifier = MemberVerifier::new(served.trust.clone());
    let server_config = tls::server_config(served.certified.clone(), verifier.clone())
        .map_err(|e| refused(RefusalKind::Protocol, e.to_string(), group))?;
    let handshake = start.into_stream(Arc::new(server_config)).into_fallible();
    let result = tokio::time::timeout_at(deadline, handshake).await;
    let outcome = verifier.take_outcome();
    let mut tls = match result {
        Err(_) => return Err(timed_out(group)),
        Ok(Err((e, tcp))) => {
            linger(tcp, config).await;
            if let Some(reason) = outcome.refusal {
                return Err(AcceptError::Refused {
                    reason,
                    group: group.cloned(),
                });
            }
            return Err(classify_server_error(&e, &served.group));
        }
        Ok(Ok(tls)) => tls,
    };
    let Some(chain) = outcome.chain else {
        return Err(refused(
            RefusalKind::Protocol,
            "the handshake finished without a validated chain".into(),
            group,
        ));
    };

    authenticated();
    // Tell the client it is in (TLS 1.3 clients finish before we have checked them).
    let mut accepted = BytesMut::new();
    FrameCodec::new(64)
        .encode_frame(&acceptance, &mut accepted)
        .map_err(|e| refused(RefusalKind::Protocol, e.to_string(), group))?;
    let write = async {
        tls.write_all(&accepted).await?;
        tls.flush().await
    };
    match tokio::time::timeout_at(deadline, write).await {
        Err(_) => return Err(timed_out(group)),
        Ok(Err(e)) => return Err(refused(RefusalKind::Protocol, e.to_string(), group)),
        Ok(Ok(())) => {}
    }
    Ok((tls, chain))
}

/// Our refusal of a client, of `kind`, for `group` when the client named one we serve.
fn refusal(kind: RefusalKind, detail: String, group: Option<&PeerName>) -> AcceptError {
    AcceptError::Refused {
        reason: Refusal::new(kind, detail),
        group: group.cloned(),
    }
}

/// The handshake did not finish before its deadline.
fn handshake_timed_out(config: &TransportConfig, group: Option<&PeerName>) -> AcceptError {
    refusal(
        RefusalKind::HandshakeTimeout,
        format!(
            "no complete handshake within {:?}",
            config.handshake_timeout
        ),
        group,
    )
}

/// Knobs that only tests turn: the SNI and ALPN offered, and whether to present a
/// certificate at all.
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct ClientTweaks {
    /// Ask for this server name instead of the trust's group.
    pub sni: Option<String>,
    /// Offer these ALPN protocols instead of `peergroup/1`.
    pub alpn: Option<Vec<Vec<u8>>>,
    /// Present no client certificate.
    pub no_certificate: bool,
    /// Present these DER certificates (leaf first) instead of the credentials' chain, still
    /// signing with the credentials' key.
    pub certificates: Option<Vec<Vec<u8>>>,
}

/// An established client-side handshake, over TCP unless said otherwise.
pub(crate) struct Connected<S = TcpStream> {
    pub(crate) tls: client::TlsStream<S>,
    pub(crate) chain: ValidatedChain,
    pub(crate) local_addr: SocketAddr,
    /// Our address as the server saw it, when it said.
    pub(crate) observed: Option<SocketAddr>,
}

/// Runs the client side: TCP connect, TLS as a member with `creds`, accepting a server that
/// `trust` accepts, then the server's acceptance.
pub(crate) async fn connect(
    addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
    tweaks: &ClientTweaks,
) -> Result<Connected, ConnectError> {
    let tcp = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(ConnectError::Timeout(Phase::Connect)),
        Ok(r) => r?,
    };
    tcp.set_nodelay(true)?;
    let local_addr = tcp.local_addr()?;
    let deadline = Instant::now() + config.handshake_timeout;
    client_handshake(tcp, local_addr, creds, trust, tweaks, deadline).await
}

/// The client side over an open byte stream `io` (TCP, or a stream a member relays): TLS
/// as a member with `creds`, accepting a server that `trust` accepts, then the server's
/// acceptance, all before `deadline`.
pub(crate) async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    local_addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    tweaks: &ClientTweaks,
    deadline: Instant,
) -> Result<Connected<S>, ConnectError> {
    let verifier = MemberVerifier::new(trust.clone());
    let (client_config, server_name) = client_tls(creds, trust, tweaks, verifier.clone())?;
    let connector = TlsConnector::from(Arc::new(client_config));
    let result = tokio::time::timeout_at(deadline, connector.connect(server_name, io)).await;
    let outcome = verifier.take_outcome();
    let mut tls = match result {
        Err(_) => return Err(ConnectError::Timeout(Phase::Handshake)),
        Ok(Err(e)) => {
            return Err(match outcome.refusal {
                Some(refusal) => ConnectError::NotAuthenticated(refusal),
                None => classify_client_error(e),
            });
        }
        Ok(Ok(tls)) => tls,
    };
    let Some(chain) = outcome.chain else {
        return Err(ConnectError::NotAuthenticated(Refusal::new(
            RefusalKind::Protocol,
            "the handshake finished without a validated chain",
        )));
    };
    if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
        return Err(ConnectError::NotAuthenticated(Refusal::new(
            RefusalKind::BadAlpn,
            "the server did not select peergroup/1",
        )));
    }
    match tokio::time::timeout_at(deadline, read_acceptance(&mut tls)).await {
        Err(_) => Err(ConnectError::Timeout(Phase::Handshake)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(observed)) => Ok(Connected {
            tls,
            chain,
            local_addr,
            observed,
        }),
    }
}

/// The client's TLS configuration and the server name to ask for, for one handshake whose
/// verifier is `verifier` (with the test knobs applied).
pub(crate) fn client_tls(
    creds: &GroupCredentials,
    trust: &GroupTrust,
    tweaks: &ClientTweaks,
    verifier: Arc<MemberVerifier>,
) -> Result<(rustls::ClientConfig, ServerName<'static>), CredentialsError> {
    let certified = match (&tweaks.certificates, tweaks.no_certificate) {
        (_, true) => None,
        (Some(ders), false) => Some(tls::certified_key_from(ders, creds.key.clone())),
        (None, false) => Some(tls::certified_key(creds)),
    };
    let alpn = tweaks.alpn.clone().unwrap_or_else(|| vec![ALPN.to_vec()]);
    let client_config = tls::client_config(certified, verifier, alpn)
        .map_err(|e| CredentialsError::Tls(e.to_string()))?;
    let sni = tweaks
        .sni
        .clone()
        .unwrap_or_else(|| sni_name(trust.group()));
    let server_name =
        ServerName::try_from(sni).map_err(|e| CredentialsError::Tls(e.to_string()))?;
    Ok((client_config, server_name))
}

/// Reads exactly the server's acceptance (nothing after it, which belongs to the
/// connection), or learns why we were refused. Returns the address the server saw us come
/// from, when it said.
pub(crate) async fn read_acceptance<S: AsyncRead + Unpin>(
    tls: &mut S,
) -> Result<Option<SocketAddr>, ConnectError> {
    let protocol = |detail: String| {
        ConnectError::NotAuthenticated(Refusal::new(RefusalKind::Protocol, detail))
    };
    let mut prefix = [0u8; LENGTH_PREFIX];
    tls.read_exact(&mut prefix)
        .await
        .map_err(classify_client_error)?;
    let len = u32::from_be_bytes(prefix);
    if len > 64 {
        return Err(protocol(format!(
            "a {len}-byte frame instead of the acceptance"
        )));
    }
    let mut body = vec![0u8; len as usize];
    tls.read_exact(&mut body)
        .await
        .map_err(classify_client_error)?;
    match decode_body(&body) {
        Ok(Frame::Accepted) => Ok(None),
        Ok(Frame::Welcome { observed }) => Ok(Some(observed)),
        Ok(Frame::Close { reason }) => Err(ConnectError::Refused {
            kind: None,
            alert: format!("closed: {}", crate::frame::truncate_reason(&reason)),
        }),
        Ok(_) => Err(protocol("another frame instead of the acceptance".into())),
        Err(e) => Err(protocol(e.to_string())),
    }
}
