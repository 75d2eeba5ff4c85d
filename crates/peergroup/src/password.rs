//! Password groups: members that know the password take joins; joiners prove it online.
//!
//! Windows published an unsalted SHA-1 of the password to every member. Here nothing that
//! allows testing guesses offline is in the group database or on the wire: the joiner proves
//! the password with OPAQUE (an asymmetric PAKE) bound to the TLS session it runs in (see
//! `peergroup_transport::join` and docs/security.md). Members that can issue credentials (the
//! creator, admins and inviting members who were given it) keep an OPAQUE registration of
//! the password (their own server setup and the record, not the password nor anything that
//! stands in for it) in their own credentials file (mode 0600).
//!
//! A credentials file written before OPAQUE holds a SPAKE2-era password-equivalent secret
//! instead. It cannot be converted without the password; it is left as it is, the group
//! opens without taking password joins, and [`Group::set_password`](crate::Group) (CLI:
//! `peergroup group set-password`) registers the password again.

use std::sync::Arc;
use std::time::Duration;

use peergroup_credential_roles::{CertChain, MemberRequest, Role, Roles};
use peergroup_identity::{KdfParams, KeyPair, PeerName, Timestamp};
use peergroup_invitation_xml::Invitation;
use peergroup_transport::{
    Endpoint, GroupTrust, JoinError, JoinPolicy, PasswordRecord, RecordError,
};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::node::Node;

/// Decodes a stored password record: a SPAKE2-era secret is `PasswordNotRegistered` (with
/// what to do), anything else unreadable `Corrupt`.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<PasswordRecord> {
    PasswordRecord::from_bytes(bytes).map_err(|e| match e {
        RecordError::Legacy => Error::new(
            ErrorKind::PasswordNotRegistered,
            "this member's stored password secret is from the SPAKE2 protocol of earlier \
             versions, which password joins no longer use, and it cannot be converted without \
             the password: this member takes no password joins until the password is set \
             again (`peergroup group set-password`, or Group::set_password)",
        ),
        other => Error::new(
            ErrorKind::Corrupt,
            format!("the stored password record is damaged: {other}"),
        ),
    })
}

/// Registers the password a member keeps for a password group (its OPAQUE setup and record),
/// encoded for the credentials file. One Argon2id evaluation.
pub(crate) fn register(
    password: &[u8],
    group: &PeerName,
    kdf: KdfParams,
) -> Result<Zeroizing<Vec<u8>>> {
    let record = PasswordRecord::register(password, group, kdf)
        .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
    Ok(record.to_bytes())
}

/// On connect: a member holding the password record and able to issue credentials takes
/// password joins on the endpoint, issuing certificates with the group's password role.
///
/// `record` is the stored password record, `chain` and `key` the member's, `role` what the
/// group's properties grant password joiners (checked here against what `chain` may grant).
pub(crate) fn install_policy(
    endpoint: &Endpoint,
    group: &PeerName,
    record: &[u8],
    chain: &CertChain,
    key: Arc<KeyPair>,
    role: Role,
) -> Result<()> {
    let record = decode_record(record)?;
    let role = if chain.leaf().roles().can_issue(role) {
        role
    } else {
        Role::Member
    };
    let issuer_chain = chain.clone();
    let issuer: peergroup_transport::Issuer = Arc::new(move |idc| {
        let now = Timestamp::now();
        issuer_chain
            .issue(
                &key,
                &MemberRequest {
                    subject_key: *idc.public_key(),
                    subject_peer: idc.peer_name().clone(),
                    subject_friendly_name: idc.friendly_name().to_owned(),
                    roles: Roles::one(role),
                    classifiers: vec![],
                    not_before: now,
                    // As Windows: up to the issuer's own end of validity.
                    not_after: Timestamp::MAX_X509,
                },
            )
            .map_err(|e| e.to_string())
    });
    endpoint
        .set_join_policy(group, JoinPolicy::new(record, issuer))
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("cannot take password joins: {e}"),
            )
        })
}

fn join_error(e: JoinError) -> Error {
    let kind = match &e {
        JoinError::WrongPassword => ErrorKind::WrongPassword,
        JoinError::RateLimited { .. } => ErrorKind::RateLimited,
        JoinError::Kdf(_) | JoinError::Credentials(_) => ErrorKind::InvalidArgument,
        JoinError::BadCredentials(_) | JoinError::NotAuthenticated(_) => {
            ErrorKind::InvitationNotTrusted
        }
        _ => ErrorKind::ConnectionFailed,
    };
    Error::with_source(kind, e.to_string(), e)
}

/// Infrastructure::password_join.
pub(crate) async fn join(
    node: &Node,
    identity: &PeerName,
    invitation_xml: &str,
    password: &[u8],
    extra: &[std::net::SocketAddr],
) -> Result<PeerName> {
    let me = node.identities.get(identity)?;
    let Invitation::Password {
        group, addresses, ..
    } = Invitation::parse(invitation_xml)?
    else {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "this is a certificate invitation: join it with join()",
        ));
    };
    let addresses = crate::storage::with_extra(extra, addresses.as_slice());
    if addresses.is_empty() {
        return Err(Error::new(
            ErrorKind::ConnectionFailed,
            "the invitation names no member address to prove the password to (it was made \
             while its inviter was offline): give one",
        ));
    }
    let key = Arc::new(peergroup_identity::KeyPair::from_secret(&me.key().secret()));
    let trust = GroupTrust::new(group.clone());
    let config = node.config.transport.clone();
    let mut last = Error::new(ErrorKind::ConnectionFailed, "no member reachable");
    let mut probes = Probes::start(&addresses);
    while let Some(addr) = probes.next().await {
        let addr = &addr;
        let attempt = peergroup_transport::password_join(
            *addr,
            &group,
            key.clone(),
            me.certificate(),
            password,
            &trust,
            &config,
        );
        match tokio::time::timeout(node.join_timeout() + Duration::from_secs(10), attempt).await {
            Ok(Ok(chain)) => {
                // A joiner that may itself issue credentials registers the password, to take
                // joins too.
                let secret = if chain.leaf().roles().is_issuer() {
                    Some(register(password, &group, node.config.kdf)?)
                } else {
                    None
                };
                return crate::storage::store_joined(
                    &node.identities,
                    &me,
                    chain,
                    addresses.clone(),
                    secret,
                );
            }
            Ok(Err(e)) => {
                let err = join_error(e);
                // A wrong password or a rate limit will not change at another member.
                if matches!(
                    err.kind(),
                    ErrorKind::WrongPassword | ErrorKind::RateLimited
                ) {
                    return Err(err);
                }
                last = err;
            }
            Err(_) => last = Error::new(ErrorKind::ConnectionFailed, format!("{addr}: timed out")),
        }
    }
    Err(last)
}

/// How long the joiner waits for a member's address to answer a TCP connect before trying
/// the addresses that did not.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The order a password joiner tries an invitation's addresses in: those that answer a TCP
/// connect first, as they answer, then the others in the invitation's order. An invitation
/// names its inviter first, whose address may be behind its NAT (a dial nobody answers costs
/// the whole connect timeout), and then members it reached, which the joiner may reach too.
/// The probe connection is closed at once: the member sees a connection that sent nothing.
struct Probes {
    answering: tokio::task::JoinSet<Option<std::net::SocketAddr>>,
    silent: Vec<std::net::SocketAddr>,
    deadline: tokio::time::Instant,
}

impl Probes {
    fn start(addrs: &[std::net::SocketAddr]) -> Probes {
        let mut answering = tokio::task::JoinSet::new();
        for &addr in addrs {
            answering.spawn(async move {
                let probe = tokio::net::TcpStream::connect(addr);
                matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(_)))
                    .then_some(addr)
            });
        }
        Probes {
            answering,
            silent: addrs.to_vec(),
            deadline: tokio::time::Instant::now() + PROBE_TIMEOUT,
        }
    }

    /// The next address to try, or `None` when all were.
    async fn next(&mut self) -> Option<std::net::SocketAddr> {
        loop {
            match tokio::time::timeout_at(self.deadline, self.answering.join_next()).await {
                Ok(Some(Ok(Some(addr)))) => {
                    self.silent.retain(|a| *a != addr);
                    return Some(addr);
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        self.answering.abort_all();
        (!self.silent.is_empty()).then(|| self.silent.remove(0))
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[tokio::test]
    async fn addresses_that_answer_are_tried_first() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap();
        // A port nobody listens on (bound, then released).
        let dead_addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let mut probes = Probes::start(&[dead_addr, live_addr]);
        assert_eq!(
            probes.next().await,
            Some(live_addr),
            "the one that answered first"
        );
        assert_eq!(
            probes.next().await,
            Some(dead_addr),
            "then the rest, in order"
        );
        assert_eq!(probes.next().await, None);
    }
}
