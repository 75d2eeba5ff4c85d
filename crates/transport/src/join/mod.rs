//! Password joins: a person holding only an identity and a password invitation proves the
//! password online to an admin or inviting member, and is issued a member certificate.
//!
//! The joiner connects with TLS 1.3 offering ALPN [`JOIN_ALPN`] and the group's usual server
//! name, presenting its self-signed identity certificate; the member presents its group
//! chain, which the joiner validates against the group peer name from the invitation (the
//! name is self-certifying: the root's key must own it) and requires to be an issuer's.
//! Inside that TLS session they run OPAQUE's login (an asymmetric PAKE, RFC 9807), bound
//! to the session by a TLS exporter and to both peers and the cost (see `pake.rs`); the member
//! then calls its [`JoinPolicy::issuer`] and sends the chain. The password never travels, and
//! nothing sent or stored in the group lets anyone test guesses offline: each guess costs a
//! connection, and the member allows [`JoinPolicy::max_attempts_per_minute`] per joiner
//! identity and per source address.
//!
//! OPAQUE is asymmetric: the member holds a [`PasswordRecord`] (its OPAQUE server setup and
//! the registration of the password), from which the password cannot be used directly and
//! a guess costs an OPRF and an Argon2id evaluation. Only members that take joins hold one,
//! on their own disk; it is never in the group database. `docs/security.md` ("Password
//! groups") has the threat model.

mod client;
pub(crate) mod limit;
pub(crate) mod pake;
pub(crate) mod secret;
pub(crate) mod server;
mod tls;
mod wire;

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use peergroup_credential_roles::CertChain;
use peergroup_identity::{IdentityCertificate, PeerName};

pub use client::password_join;
pub(crate) use client::password_join_tweaked;
pub use secret::{MAX_KDF_LANES, MAX_KDF_MEMORY_KIB, MAX_KDF_PASSES, PasswordRecord, RecordError};

use crate::endpoint::Endpoint;
use crate::error::{CredentialsError, Phase, Refusal, RefusalKind};
use crate::naming::sni_name;
use limit::{RateLimiter, WINDOW};

/// The ALPN protocol of password joins: `peergroup-join/2` (OPAQUE; `/1` was SPAKE2's, so a
/// joiner or member of either kind is refused at the handshake, not left waiting). A member accepts it only for
/// groups with a [`JoinPolicy`]; members connect with [`ALPN`](crate::ALPN) as always.
pub const JOIN_ALPN: &[u8] = b"peergroup-join/2";

/// Default [`JoinPolicy::max_attempts_per_minute`].
pub const DEFAULT_MAX_ATTEMPTS_PER_MINUTE: u32 = 5;

/// Issues a member certificate for a joiner who proved the password: given the joiner's
/// identity certificate, returns the chain GRC → … → GMC for its key (the facade grants the
/// group's password role, clipped to the issuer's validity), or why not.
pub type Issuer = Arc<dyn Fn(&IdentityCertificate) -> Result<CertChain, String> + Send + Sync>;

/// How a member takes password joins for one group ([`Endpoint::set_join_policy`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct JoinPolicy {
    /// The member's OPAQUE registration of the password (secret: keep it off the group
    /// database).
    pub record: PasswordRecord,
    /// Called once per joiner who proved the password, on a blocking thread.
    pub issuer: Issuer,
    /// Password attempts allowed per joiner identity, and per source address (IPv4 address
    /// or IPv6 /64), in any sliding minute (default 5). Beyond, the joiner gets
    /// [`JoinError::RateLimited`] and the endpoint reports [`RefusalKind::RateLimited`].
    /// 0 refuses every attempt.
    pub max_attempts_per_minute: u32,
}

impl JoinPolicy {
    /// A policy with the default limit of 5 attempts per minute.
    pub fn new(record: PasswordRecord, issuer: Issuer) -> Self {
        JoinPolicy {
            record,
            issuer,
            max_attempts_per_minute: DEFAULT_MAX_ATTEMPTS_PER_MINUTE,
        }
    }

    /// The same policy with another attempt limit.
    pub fn with_max_attempts_per_minute(mut self, max: u32) -> Self {
        self.max_attempts_per_minute = max;
        self
    }
}

impl fmt::Debug for JoinPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinPolicy")
            .field("record", &self.record)
            .field("max_attempts_per_minute", &self.max_attempts_per_minute)
            .finish_non_exhaustive()
    }
}

/// A group's join policy on an endpoint, with its attempt counts (kept when the policy is
/// replaced).
pub(crate) struct JoinService {
    pub(crate) policy: JoinPolicy,
    pub(crate) limiter: Arc<Mutex<RateLimiter>>,
}

/// Why [`password_join`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The member could not verify our proof: the password is wrong.
    #[error("wrong password: the member could not verify it")]
    WrongPassword,
    /// Too many attempts from this identity or address; the member refuses for now.
    #[error("too many password attempts; try again in {} s", retry_after.as_secs())]
    RateLimited {
        /// How long the member says to wait.
        retry_after: Duration,
    },
    /// The member does not take password joins for this group.
    #[error("the member does not accept password joins for this group")]
    JoinsNotAccepted,
    /// The member refused us during the TLS handshake (the kind comes from its alert: an
    /// unknown group, a revoked or malformed identity, …).
    #[error("refused by the member ({alert}){}", kind.map(|k| format!(": {k}")).unwrap_or_default())]
    Refused {
        /// The refusal kind the alert stands for.
        kind: Option<RefusalKind>,
        /// The alert, or "connection closed".
        alert: String,
    },
    /// We refused the member: not a member of the invitation's group, not an issuer, or it
    /// could not prove it knows the password.
    #[error("the member is not authenticated: {0}")]
    NotAuthenticated(Refusal),
    /// The password was right, but the member could not issue credentials.
    #[error("the member could not issue credentials: {0}")]
    IssueFailed(String),
    /// The chain the member sent does not make us a member of the group.
    #[error("the issued credentials are unusable: {0}")]
    BadCredentials(String),
    /// The member broke the join protocol.
    #[error("the member broke the join protocol: {0}")]
    Protocol(String),
    /// A phase did not finish in time.
    #[error("{0} timed out")]
    Timeout(Phase),
    /// The network failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// Our identity key, certificate and trust do not fit together (a caller's mistake).
    #[error("bad credentials: {0}")]
    Credentials(#[from] CredentialsError),
    /// Argon2id cost parameters out of bounds (a caller's, or the member's, mistake), or the
    /// derivation failed.
    #[error("password key derivation: {0}")]
    Kdf(String),
}

impl JoinError {
    /// The refusal kind, whichever side refused.
    pub fn refusal_kind(&self) -> Option<RefusalKind> {
        match self {
            JoinError::WrongPassword => Some(RefusalKind::WrongPassword),
            JoinError::RateLimited { .. } => Some(RefusalKind::RateLimited),
            JoinError::JoinsNotAccepted => Some(RefusalKind::JoinsNotAccepted),
            JoinError::Refused { kind, .. } => *kind,
            JoinError::NotAuthenticated(r) => Some(r.kind),
            _ => None,
        }
    }
}

impl Endpoint {
    /// Takes password joins for `group` (already served, see [`Endpoint::add_group`]) under
    /// `policy`: clients offering [`JOIN_ALPN`] with their identity certificate may prove the
    /// password and are issued credentials by `policy.issuer`. Replaces an earlier policy of
    /// the group, keeping its attempt counts. Fails if the group is not served or our chain
    /// for it cannot issue credentials (neither admin nor inviting member).
    pub fn set_join_policy(
        &self,
        group: &PeerName,
        policy: JoinPolicy,
    ) -> Result<(), CredentialsError> {
        let sni = sni_name(group);
        let served = self.served(&sni);
        let Some(served) = served else {
            return Err(CredentialsError::NotServed(group.clone()));
        };
        if !served.issuer {
            return Err(CredentialsError::NotIssuer);
        }
        let mut joins = self.shared.write_joins();
        let limiter = match joins.get(&sni) {
            Some(old) => {
                let limiter = old.limiter.clone();
                limiter
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .set_max(policy.max_attempts_per_minute);
                limiter
            }
            None => Arc::new(Mutex::new(RateLimiter::new(
                policy.max_attempts_per_minute,
                WINDOW,
            ))),
        };
        joins.insert(sni, Arc::new(JoinService { policy, limiter }));
        Ok(())
    }

    /// Stops taking password joins for `group` (joins in progress finish). Says whether it
    /// took them. [`Endpoint::remove_group`] does this too.
    pub fn clear_join_policy(&self, group: &PeerName) -> bool {
        self.shared.write_joins().remove(&sni_name(group)).is_some()
    }

    /// The groups taking password joins here.
    pub fn join_groups(&self) -> Vec<PeerName> {
        let joins = self.shared.read_joins();
        self.groups()
            .into_iter()
            .filter(|g| joins.contains_key(&sni_name(g)))
            .collect()
    }
}
