//! The member's side of a password join: the TLS handshake with the joiner's identity
//! certificate, the attempt limit, the password proof, issuance. Runs in the endpoint's
//! task for the connection; never delivered through `Endpoint::accept`.

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};

use peergroup_identity::IdentityCertificate;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_rustls::server;

use crate::alerts::{
    ALERT_NO_APPLICATION_PROTOCOL, classify_server_error, linger, send_plain_alert,
};
use crate::config::TransportConfig;
use crate::error::{AuthFailure, Refusal, RefusalKind};
use crate::handshake::{AcceptError, ServedGroup};
use crate::join::limit::LimitKey;
use crate::join::pake::{Binding, EXPORTER_LABEL, JoinMessage, MemberPake, PakeError, WireRefusal};
use crate::join::tls::IdentityVerifier;
use crate::join::wire::{WireError, read_message, write_message};
use crate::join::{JOIN_ALPN, JoinService};
use crate::tls;

/// A finished join handshake: the joiner is who its identity certificate says.
pub(crate) struct JoinAccepted {
    tls: server::TlsStream<TcpStream>,
    idc: IdentityCertificate,
    group: Arc<ServedGroup>,
    service: Arc<JoinService>,
}

/// The TLS handshake of a join, after the ClientHello chose the join protocol for `served`.
/// A group without a join policy is refused with `no_application_protocol`.
pub(crate) async fn handshake(
    start: tokio_rustls::StartHandshake<TcpStream>,
    served: Arc<ServedGroup>,
    service: Option<Arc<JoinService>>,
    deadline: Instant,
    config: &TransportConfig,
) -> Result<JoinAccepted, AcceptError> {
    let group = Some(served.group.clone());
    let refused = |kind, detail: String| AcceptError::Refused {
        reason: Refusal::new(kind, detail),
        group: group.clone(),
    };
    // A policy left over from credentials that could issue is not enough: ours must now.
    let Some(service) = service.filter(|_| served.issuer) else {
        send_plain_alert(start.io, ALERT_NO_APPLICATION_PROTOCOL, deadline).await;
        return Err(refused(
            RefusalKind::JoinsNotAccepted,
            "a password join for a group that takes none here".into(),
        ));
    };
    let verifier = IdentityVerifier::new(served.trust.clone());
    let server_config =
        tls::server_config_for(served.certified.clone(), verifier.clone(), JOIN_ALPN)
            .map_err(|e| refused(RefusalKind::Protocol, e.to_string()))?;
    let handshake = start.into_stream(Arc::new(server_config)).into_fallible();
    let result = tokio::time::timeout_at(deadline, handshake).await;
    let outcome = verifier.take_outcome();
    let tls = match result {
        Err(_) => {
            return Err(refused(
                RefusalKind::HandshakeTimeout,
                format!(
                    "no complete join handshake within {:?}",
                    config.handshake_timeout
                ),
            ));
        }
        Ok(Err((e, tcp))) => {
            linger(tcp, config).await;
            if let Some(reason) = outcome.refusal {
                return Err(AcceptError::Refused { reason, group });
            }
            return Err(classify_server_error(&e, &served.group));
        }
        Ok(Ok(tls)) => tls,
    };
    let Some(idc) = outcome.idc else {
        return Err(refused(
            RefusalKind::Protocol,
            "the join handshake finished without an identity certificate".into(),
        ));
    };
    Ok(JoinAccepted {
        tls,
        idc,
        group: served,
        service,
    })
}

/// How one join ended, seen from the member.
enum Outcome {
    /// Credentials were sent.
    Issued,
    /// The joiner was refused (reported as an authentication failure).
    Refused(Refusal),
    /// The password was right but the issuer said no, or its chain was unusable (logged).
    IssueFailed(String),
}

/// Runs the join protocol on an accepted join connection and reports how it ended.
pub(crate) async fn run(
    accepted: JoinAccepted,
    addr: SocketAddr,
    config: &TransportConfig,
    failures: &broadcast::Sender<AuthFailure>,
) {
    let JoinAccepted {
        mut tls,
        idc,
        group,
        service,
    } = accepted;
    let joiner = idc.peer_name().clone();
    let deadline = Instant::now() + config.handshake_timeout;
    let outcome =
        match tokio::time::timeout_at(deadline, exchange(&mut tls, &idc, &group, &service, addr))
            .await
        {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Refused(Refusal::new(
                RefusalKind::HandshakeTimeout,
                format!("no password proof within {:?}", config.handshake_timeout),
            )),
        };
    // Goodbye (bounded): the last message is flushed already, now close_notify.
    let _ = tokio::time::timeout(config.close_timeout, tls.shutdown()).await;
    match outcome {
        Outcome::Issued => {
            tracing::info!(peer = %addr, joiner = %joiner, group = %group.group, "password join: credentials issued");
        }
        Outcome::IssueFailed(why) => {
            tracing::warn!(peer = %addr, joiner = %joiner, group = %group.group, %why, "password join: issuing failed");
        }
        Outcome::Refused(reason) => {
            tracing::warn!(peer = %addr, joiner = %joiner, group = %group.group, %reason, "password join refused");
            let _ = failures.send(AuthFailure {
                addr,
                group: Some(group.group.clone()),
                peer: Some(joiner),
                reason,
            });
        }
    }
}

/// The exchange itself: `Request`, limit, `Start`, `Proof`, issuance, `Issued` (or a
/// `Refused`).
async fn exchange(
    tls: &mut server::TlsStream<TcpStream>,
    idc: &IdentityCertificate,
    group: &ServedGroup,
    service: &JoinService,
    addr: SocketAddr,
) -> Outcome {
    let joiner = idc.peer_name();
    let protocol = |detail: String| Outcome::Refused(Refusal::new(RefusalKind::Protocol, detail));
    // The joiner speaks first (OPAQUE's KE1); the attempt counts once it is read, before any
    // work on it, and the refusal answers it.
    let ke1 = match read_message(tls).await {
        Ok(JoinMessage::Request { ke1 }) => ke1,
        Ok(_) => return refuse(tls, "expected a login request".into()).await,
        Err(WireError::Malformed(e)) => return refuse(tls, e).await,
        Err(WireError::Io(e)) => {
            return protocol(format!("the joiner left before its login request: {e}"));
        }
    };
    let keys = [LimitKey::Peer(joiner.clone()), LimitKey::source(addr.ip())];
    let allowed = service
        .limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .attempt(&keys, std::time::Instant::now());
    if let Err(wait) = allowed {
        let retry_after_secs = u32::try_from(wait.as_secs().max(1)).unwrap_or(u32::MAX);
        let msg = JoinMessage::Refused(WireRefusal::RateLimited { retry_after_secs });
        let _ = write_message(tls, &msg).await;
        return Outcome::Refused(Refusal::new(
            RefusalKind::RateLimited,
            format!(
                "{joiner} from {}: more than {} password attempts in a minute (retry in {retry_after_secs} s)",
                addr.ip(),
                service.policy.max_attempts_per_minute
            ),
        ));
    }
    let exporter = match tls
        .get_ref()
        .1
        .export_keying_material([0u8; 32], EXPORTER_LABEL, None)
    {
        Ok(e) => e,
        Err(e) => return protocol(format!("TLS exporter: {e}")),
    };
    let binding = Binding {
        group: group.group.clone(),
        joiner: joiner.clone(),
        member: group.member.clone(),
        exporter,
    };
    let (pake, start) = match MemberPake::start(&service.policy.record, &binding, &ke1) {
        Ok(started) => started,
        Err(e) => return refuse(tls, e.to_string()).await,
    };
    if let Err(e) = write_message(tls, &start).await {
        return protocol(format!("sending the start: {e}"));
    }
    let wrong_password = |how: &str| {
        Outcome::Refused(Refusal::new(
            RefusalKind::WrongPassword,
            format!("{joiner} from {} {how}", addr.ip()),
        ))
    };
    let ke3 = match read_message(tls).await {
        Ok(JoinMessage::Proof { ke3 }) => ke3,
        Ok(JoinMessage::Abandoned) => {
            return wrong_password("typed another password (our login response did not verify)");
        }
        Ok(_) => return refuse(tls, "expected a proof".into()).await,
        Err(WireError::Malformed(e)) => return refuse(tls, e).await,
        Err(WireError::Io(e)) => return protocol(format!("the joiner left before its proof: {e}")),
    };
    match pake.finish(&ke3) {
        Ok(()) => {}
        Err(PakeError::BadConfirmation) => {
            let _ = write_message(tls, &JoinMessage::Refused(WireRefusal::WrongPassword)).await;
            return wrong_password("proved another password");
        }
        Err(e) => return refuse(tls, e.to_string()).await,
    }
    let chain = match issue(service, idc, group).await {
        Ok(chain) => chain,
        Err(why) => {
            let refusal = WireRefusal::IssueFailed(why.clone()).truncated();
            let _ = write_message(tls, &JoinMessage::Refused(refusal)).await;
            return Outcome::IssueFailed(why);
        }
    };
    match write_message(tls, &JoinMessage::Issued { chain }).await {
        Ok(()) => Outcome::Issued,
        Err(e) => Outcome::IssueFailed(format!("sending the credentials failed: {e}")),
    }
}

/// Tells the joiner it broke the protocol; the outcome to report.
async fn refuse(tls: &mut server::TlsStream<TcpStream>, detail: String) -> Outcome {
    let msg = JoinMessage::Refused(WireRefusal::Protocol(detail.clone()).truncated());
    let _ = write_message(tls, &msg).await;
    Outcome::Refused(Refusal::new(RefusalKind::Protocol, detail))
}

/// Calls the issuer on a blocking thread and checks its chain: for this group, for the
/// joiner's key, valid now. Returns DER certificates, root first.
async fn issue(
    service: &JoinService,
    idc: &IdentityCertificate,
    group: &ServedGroup,
) -> Result<Vec<Vec<u8>>, String> {
    let issuer = service.policy.issuer.clone();
    let for_issuer = idc.clone();
    let chain = tokio::task::spawn_blocking(move || issuer(&for_issuer))
        .await
        .map_err(|e| format!("the issuer failed: {e}"))??;
    let valid = group
        .trust
        .validate(&chain, idc.public_key())
        .map_err(|e| format!("the issued chain does not validate: {e}"))?;
    if valid.is_group_root() || valid.peer() != idc.peer_name() {
        return Err("the issued chain is not a member certificate for the joiner".into());
    }
    Ok(chain
        .certificates()
        .iter()
        .map(|c| c.der().to_vec())
        .collect())
}
