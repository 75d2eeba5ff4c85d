//! The joiner's side of a password join.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peergroup_credential_roles::{CertChain, ValidatedChain};
use peergroup_identity::{IdentityCertificate, KeyPair, PeerName};
use rustls::AlertDescription;
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::{TlsConnector, client};
use zeroize::Zeroizing;

use crate::alerts::{kind_of_alert, rustls_error};
use crate::config::TransportConfig;
use crate::error::{CredentialsError, Phase, Refusal, RefusalKind};
use crate::handshake::ClientTweaks;
use crate::join::pake::{Binding, EXPORTER_LABEL, JoinMessage, JoinerPake, PakeError, WireRefusal};
use crate::join::secret::check_kdf;
use crate::join::wire::{WireError, read_message, write_message};
use crate::join::{JOIN_ALPN, JoinError};
use crate::naming::sni_name;
use crate::tls::{self, MemberVerifier};
use crate::trust::GroupTrust;

/// Joins `group` by password through the member at `addr`: connects with TLS 1.3 presenting
/// `idc` (signed with `identity_key`), accepts the member only if its chain validates for
/// `group` under `trust` (the group peer name from the invitation is self-certifying: the
/// chain's root key must own it) and it may issue credentials, proves `password` without
/// sending it, and returns the chain the member issued for `identity_key`, validated.
///
/// Bounded by the connect timeout, the handshake timeout, and the handshake timeout again
/// for the proof (which includes one Argon2id derivation here). A wrong password is
/// [`JoinError::WrongPassword`]; too many attempts, [`JoinError::RateLimited`].
pub async fn password_join(
    addr: SocketAddr,
    group: &PeerName,
    identity_key: Arc<KeyPair>,
    idc: &IdentityCertificate,
    password: &[u8],
    trust: &GroupTrust,
    config: &TransportConfig,
) -> Result<CertChain, JoinError> {
    let tweaks = ClientTweaks::default();
    password_join_tweaked(
        addr,
        group,
        identity_key,
        idc,
        password,
        trust,
        config,
        &tweaks,
    )
    .await
}

/// [`password_join`] with test knobs.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn password_join_tweaked(
    addr: SocketAddr,
    group: &PeerName,
    identity_key: Arc<KeyPair>,
    idc: &IdentityCertificate,
    password: &[u8],
    trust: &GroupTrust,
    config: &TransportConfig,
    tweaks: &ClientTweaks,
) -> Result<CertChain, JoinError> {
    if idc.public_key() != &identity_key.public() {
        return Err(CredentialsError::KeyMismatch.into());
    }
    if trust.group() != group {
        return Err(CredentialsError::TrustMismatch {
            trust: trust.group().clone(),
            credentials: group.clone(),
        }
        .into());
    }
    let config = config.normalized();
    let (mut tls, member) =
        connect(addr, group, &identity_key, idc, trust, &config, tweaks).await?;
    let binding = Binding {
        group: group.clone(),
        joiner: idc.peer_name().clone(),
        member: member.peer().clone(),
        exporter: tls
            .get_ref()
            .1
            .export_keying_material([0u8; 32], EXPORTER_LABEL, None)
            .map_err(|e| JoinError::Protocol(format!("TLS exporter: {e}")))?,
    };
    let password = Zeroizing::new(password.to_vec());
    let proof = prove(&mut tls, &binding, password);
    let result = match tokio::time::timeout(config.handshake_timeout, proof).await {
        Err(_) => Err(JoinError::Timeout(Phase::PasswordProof)),
        Ok(r) => r,
    };
    let _ = tokio::time::timeout(config.close_timeout, tls.shutdown()).await;
    let ders = result?;
    let chain = CertChain::from_ders(&ders)
        .map_err(|e| JoinError::BadCredentials(format!("not a group chain: {e}")))?;
    let valid = trust
        .validate(&chain, &identity_key.public())
        .map_err(|e| JoinError::BadCredentials(e.to_string()))?;
    if valid.is_group_root() || valid.peer() != idc.peer_name() {
        return Err(JoinError::BadCredentials(
            "the chain is not a member certificate for our identity".into(),
        ));
    }
    Ok(chain)
}

/// TCP, then TLS as a joiner; returns the stream and the member's validated chain.
async fn connect(
    addr: SocketAddr,
    group: &PeerName,
    identity_key: &Arc<KeyPair>,
    idc: &IdentityCertificate,
    trust: &GroupTrust,
    config: &TransportConfig,
    tweaks: &ClientTweaks,
) -> Result<(client::TlsStream<TcpStream>, ValidatedChain), JoinError> {
    let tcp = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(JoinError::Timeout(Phase::Connect)),
        Ok(r) => r?,
    };
    tcp.set_nodelay(true)?;
    let deadline = Instant::now() + config.handshake_timeout;
    let verifier = MemberVerifier::new(trust.clone());
    let ders = match &tweaks.certificates {
        Some(ders) => ders.clone(),
        None => vec![idc.der().to_vec()],
    };
    let certified =
        (!tweaks.no_certificate).then(|| tls::certified_key_from(&ders, identity_key.clone()));
    let alpn = tweaks
        .alpn
        .clone()
        .unwrap_or_else(|| vec![JOIN_ALPN.to_vec()]);
    let client_config = tls::client_config(certified, verifier.clone(), alpn)
        .map_err(|e| CredentialsError::Tls(e.to_string()))?;
    let sni = tweaks.sni.clone().unwrap_or_else(|| sni_name(group));
    let server_name =
        ServerName::try_from(sni).map_err(|e| CredentialsError::Tls(e.to_string()))?;
    let connector = TlsConnector::from(Arc::new(client_config));
    let result = tokio::time::timeout_at(deadline, connector.connect(server_name, tcp)).await;
    let outcome = verifier.take_outcome();
    let tls = match result {
        Err(_) => return Err(JoinError::Timeout(Phase::Handshake)),
        Ok(Err(e)) => {
            return Err(match outcome.refusal {
                Some(refusal) => JoinError::NotAuthenticated(refusal),
                None => classify_error(e),
            });
        }
        Ok(Ok(tls)) => tls,
    };
    let not_authenticated =
        |kind, detail: &str| JoinError::NotAuthenticated(Refusal::new(kind, detail));
    let Some(chain) = outcome.chain else {
        return Err(not_authenticated(
            RefusalKind::Protocol,
            "the handshake finished without a validated chain",
        ));
    };
    if tls.get_ref().1.alpn_protocol() != Some(JOIN_ALPN) {
        return Err(not_authenticated(
            RefusalKind::BadAlpn,
            "the member did not select peergroup-join/2",
        ));
    }
    if !chain.roles().is_issuer() {
        // Do not let a member that cannot issue credentials test a password guess on us.
        return Err(not_authenticated(
            RefusalKind::NotIssuer,
            &format!("{} holds {} only", chain.peer(), chain.roles()),
        ));
    }
    Ok((tls, chain))
}

/// The proof: `Request` out, `Start` in, `Proof` out, `Issued` in. Returns the issued DER
/// certificates.
async fn prove(
    tls: &mut client::TlsStream<TcpStream>,
    binding: &Binding,
    password: Zeroizing<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, JoinError> {
    let (pake, request) =
        JoinerPake::start(&password).map_err(|e| JoinError::Protocol(e.to_string()))?;
    write_message(tls, &request).await.map_err(wire_error)?;
    let (kdf, ke2) = match read(tls).await? {
        JoinMessage::Start { kdf, ke2 } => (kdf, ke2),
        JoinMessage::Refused(r) => return Err(refused(r)),
        _ => {
            return Err(JoinError::Protocol(
                "expected the start of the proof".into(),
            ));
        }
    };
    check_kdf(kdf.into()).map_err(JoinError::Protocol)?;
    let for_pake = binding.clone();
    let finished =
        tokio::task::spawn_blocking(move || pake.finish(&password, &for_pake, kdf, &ke2))
            .await
            .map_err(|e| JoinError::Kdf(e.to_string()))?;
    let proof = match finished {
        Ok(proof) => proof,
        Err(PakeError::BadConfirmation) => {
            // Another password, or a member that holds no registration of this one (or
            // answers for another session or other peers): it cannot tell which, nor can we.
            let _ = write_message(tls, &JoinMessage::Abandoned).await;
            return Err(JoinError::WrongPassword);
        }
        Err(e) => return Err(JoinError::Protocol(e.to_string())),
    };
    write_message(tls, &proof).await.map_err(wire_error)?;
    match read(tls).await? {
        JoinMessage::Issued { chain } => Ok(chain),
        JoinMessage::Refused(r) => Err(refused(r)),
        _ => Err(JoinError::Protocol(
            "expected credentials or a refusal".into(),
        )),
    }
}

async fn read(tls: &mut client::TlsStream<TcpStream>) -> Result<JoinMessage, JoinError> {
    read_message(tls).await.map_err(wire_error)
}

fn wire_error(e: WireError) -> JoinError {
    match e {
        WireError::Malformed(m) => JoinError::Protocol(m),
        WireError::Io(e) => classify_error(e),
    }
}

fn refused(r: WireRefusal) -> JoinError {
    match r {
        WireRefusal::WrongPassword => JoinError::WrongPassword,
        WireRefusal::RateLimited { retry_after_secs } => JoinError::RateLimited {
            retry_after: Duration::from_secs(retry_after_secs.into()),
        },
        WireRefusal::IssueFailed(why) => JoinError::IssueFailed(why),
        WireRefusal::Protocol(why) => JoinError::Protocol(format!("the member says: {why}")),
    }
}

/// What a TLS or I/O error means for a joiner.
fn classify_error(e: std::io::Error) -> JoinError {
    match rustls_error(&e) {
        Some(rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol)) => {
            JoinError::JoinsNotAccepted
        }
        Some(rustls::Error::AlertReceived(alert)) => JoinError::Refused {
            kind: match alert {
                AlertDescription::BadCertificate => Some(RefusalKind::BadIdentity),
                other => kind_of_alert(*other),
            },
            alert: format!("{alert:?}"),
        },
        Some(other) => JoinError::Protocol(other.to_string()),
        None => match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe => JoinError::Refused {
                kind: None,
                alert: "connection closed".into(),
            },
            _ => JoinError::Io(e),
        },
    }
}
