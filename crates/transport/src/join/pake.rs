//! The password proof of a join, sans-IO: messages as bytes in and out, no socket, no clock.
//!
//! OPAQUE (RFC 9807, the `opaque-ke` crate): an asymmetric PAKE. The member holds a
//! [`PasswordRecord`] (its own OPAQUE server setup and the registration record of the group
//! password), never the password or anything a joiner could present instead of it; the
//! joiner runs OPAQUE's login with the typed password. Cipher suite: ristretto255 OPRF,
//! triple Diffie-Hellman over ristretto255 with SHA-512, Argon2id as the key-stretching
//! function at the cost the member stored (bounded by the joiner, [`check_kdf`]).
//!
//! ```text
//! joiner → member   Request   { ke1: OPAQUE KE1 (CredentialRequest) }
//! member → joiner   Start     { kdf, ke2: OPAQUE KE2 (CredentialResponse) }  or Refused
//! joiner → member   Proof     { ke3: OPAQUE KE3 (CredentialFinalization) }   or Abandoned
//! member → joiner   Issued    { chain }                                      or Refused
//!
//! credential identifier = "peergroup password join v2" 0x00 ‖ group (text): the one
//!            "user" of a member's OPAQUE server is the group password
//! context  = SHA-256("peergroup-join/2 context" ‖ exporter ‖ lp(group) ‖ lp(joiner)
//!                    ‖ lp(member) ‖ m ‖ t ‖ p (u32 BE each))
//! exporter = TLS exporter, label "EXPORTER-peergroup-password-join", no context, 32 bytes
//! lp(x)    = u32 BE length ‖ x
//! ```
//!
//! OPAQUE's key exchange MACs cover the context, so KE2 and KE3 made in another TLS session
//! (another exporter), for other peers or other cost parameters do not verify: a login cannot
//! be relayed. The joiner verifies KE2's MAC, so a member that holds no registration of this
//! password (or a relay) cannot pass for one: the joiner then sends `Abandoned` (it cannot
//! tell a wrong password from such a member; the member reports a wrong password). The member
//! verifies KE3 before it issues anything. Nothing on the wire lets anyone test guesses
//! offline: each guess needs the member's OPRF key, one connection (rate-limited) per guess.
//!
//! [`check_kdf`]: crate::join::secret::check_kdf

use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, CredentialFinalization, CredentialRequest,
    CredentialResponse, Identifiers, ServerLogin, ServerLoginParameters, ServerRegistration,
    ServerSetup,
};
use peergroup_credential_roles::MAX_CHAIN_BYTES;
use peergroup_identity::{KdfParams, PeerName, sha256};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};

use crate::join::secret::{PasswordRecord, ksf};

/// The TLS exporter label binding the proof to the TLS session.
pub(crate) const EXPORTER_LABEL: &[u8] = b"EXPORTER-peergroup-password-join";

/// The version byte in front of every message body (1 was SPAKE2's protocol).
pub(crate) const MESSAGE_VERSION: u8 = 2;

/// Largest message body: an issued chain (at most [`MAX_CHAIN_BYTES`]) and some room.
pub(crate) const MAX_MESSAGE: usize = MAX_CHAIN_BYTES + 4096;

/// Largest OPAQUE message accepted in a join message (KE1 is 96 bytes, KE2 320, KE3 64 in
/// this cipher suite; the exact length is checked when it is decoded).
pub(crate) const MAX_OPAQUE_MESSAGE: usize = 1024;

const CONTEXT_LABEL: &[u8] = b"peergroup-join/2 context";
const CREDENTIAL_LABEL: &[u8] = b"peergroup password join v2\0";

/// The 32-byte TLS exporter value of a session.
pub(crate) type Exporter = [u8; 32];

/// The OPAQUE cipher suite of password joins.
pub(crate) struct Suite;

impl opaque_ke::CipherSuite for Suite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = argon2::Argon2<'static>;
}

/// Argon2id cost as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireKdf {
    pub(crate) m_cost_kib: u32,
    pub(crate) t_cost: u32,
    pub(crate) lanes: u32,
}

impl From<KdfParams> for WireKdf {
    fn from(k: KdfParams) -> Self {
        WireKdf {
            m_cost_kib: k.m_cost_kib,
            t_cost: k.t_cost,
            lanes: k.lanes,
        }
    }
}

impl From<WireKdf> for KdfParams {
    fn from(k: WireKdf) -> Self {
        KdfParams {
            m_cost_kib: k.m_cost_kib,
            t_cost: k.t_cost,
            lanes: k.lanes,
        }
    }
}

/// One message of the join protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum JoinMessage {
    /// Joiner → member: OPAQUE's first message (KE1, the blinded password).
    Request {
        /// The serialized `CredentialRequest`.
        ke1: Vec<u8>,
    },
    /// Member → joiner: the Argon2id cost and OPAQUE's second message.
    Start {
        /// Cost of the key-stretching function.
        kdf: WireKdf,
        /// The serialized `CredentialResponse` (KE2).
        ke2: Vec<u8>,
    },
    /// Joiner → member: OPAQUE's third message (KE3, the joiner's key confirmation).
    Proof {
        /// The serialized `CredentialFinalization`.
        ke3: Vec<u8>,
    },
    /// Joiner → member: KE2 did not verify (another password, or a member without a
    /// registration of it); the joiner gives up.
    Abandoned,
    /// Member → joiner: the issued chain (DER, root first).
    Issued {
        /// The new chain GRC → … → GMC for the joiner's key.
        chain: Vec<Vec<u8>>,
    },
    /// Member → joiner: no credentials, and why.
    Refused(WireRefusal),
}
/// Why a member refused a join, as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WireRefusal {
    /// The joiner's key confirmation (KE3) did not verify.
    WrongPassword,
    /// Too many attempts; try again after this many seconds.
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u32,
    },
    /// The password was right but the member could not issue credentials.
    IssueFailed(String),
    /// The joiner broke the protocol.
    Protocol(String),
}

impl WireRefusal {
    /// The same refusal with its text cut to 256 bytes (as close reasons).
    pub(crate) fn truncated(self) -> Self {
        let cut = |s: String| crate::frame::truncate_reason(&s);
        match self {
            WireRefusal::IssueFailed(s) => WireRefusal::IssueFailed(cut(s)),
            WireRefusal::Protocol(s) => WireRefusal::Protocol(cut(s)),
            other => other,
        }
    }
}

/// A message that could not be encoded or decoded, or a proof that did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PakeError {
    /// The peer's key confirmation does not verify: another password (or another session,
    /// other peers, or a member without a registration of this password).
    #[error("the key confirmation does not verify")]
    BadConfirmation,
    /// Bytes that are not a message of this protocol, or an OPAQUE message that is not one.
    #[error("malformed join message: {0}")]
    Malformed(String),
}

/// Encodes a message body: the version byte and postcard.
pub(crate) fn encode(msg: &JoinMessage) -> Result<Vec<u8>, PakeError> {
    postcard::to_extend(msg, vec![MESSAGE_VERSION])
        .map_err(|e| PakeError::Malformed(format!("encoding failed: {e}")))
}

/// Decodes a message body, refusing other versions, oversized bodies and trailing bytes.
pub(crate) fn decode(body: &[u8]) -> Result<JoinMessage, PakeError> {
    if body.len() > MAX_MESSAGE {
        return Err(PakeError::Malformed(format!(
            "{} bytes is too long",
            body.len()
        )));
    }
    let (&version, rest) = body
        .split_first()
        .ok_or_else(|| PakeError::Malformed("empty message".into()))?;
    if version != MESSAGE_VERSION {
        return Err(PakeError::Malformed(format!("unknown version {version}")));
    }
    let (msg, trailing) = postcard::take_from_bytes::<JoinMessage>(rest)
        .map_err(|e| PakeError::Malformed(e.to_string()))?;
    if !trailing.is_empty() {
        return Err(PakeError::Malformed(format!(
            "{} trailing bytes",
            trailing.len()
        )));
    }
    Ok(msg)
}

/// Who proves the password to whom, in which TLS session.
#[derive(Clone, Debug)]
pub(crate) struct Binding {
    /// The group joined.
    pub(crate) group: PeerName,
    /// The joiner (from its identity certificate).
    pub(crate) joiner: PeerName,
    /// The member (the leaf of its chain).
    pub(crate) member: PeerName,
    /// The TLS exporter value of the session.
    pub(crate) exporter: Exporter,
}

/// OPAQUE's context: the session, the peers and the cost, hashed.
pub(crate) fn context(binding: &Binding, kdf: WireKdf) -> [u8; 32] {
    let mut t = CONTEXT_LABEL.to_vec();
    t.extend_from_slice(&binding.exporter);
    for part in [
        binding.group.to_string().as_bytes(),
        binding.joiner.to_string().as_bytes(),
        binding.member.to_string().as_bytes(),
    ] {
        length_prefixed(&mut t, part);
    }
    for n in [kdf.m_cost_kib, kdf.t_cost, kdf.lanes] {
        t.extend_from_slice(&n.to_be_bytes());
    }
    sha256(&t)
}

fn length_prefixed(out: &mut Vec<u8>, part: &[u8]) {
    // Parts are peer names: far below 4 GiB.
    out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(part);
}

/// OPAQUE's credential identifier of the group password (the same at registration and at
/// every login, whoever joins: it picks the OPRF key out of the member's seed).
pub(crate) fn credential_identifier(group: &PeerName) -> Vec<u8> {
    let mut id = CREDENTIAL_LABEL.to_vec();
    id.extend_from_slice(group.to_string().as_bytes());
    id
}

/// Refuses an OPAQUE message longer than [`MAX_OPAQUE_MESSAGE`] before decoding it.
fn bounded<'a>(what: &str, bytes: &'a [u8]) -> Result<&'a [u8], PakeError> {
    if bytes.len() > MAX_OPAQUE_MESSAGE {
        return Err(PakeError::Malformed(format!(
            "a {}-byte {what} (at most {MAX_OPAQUE_MESSAGE})",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn malformed(what: &str, e: opaque_ke::errors::ProtocolError) -> PakeError {
    PakeError::Malformed(format!("{what}: {e:?}"))
}

/// The member's side, between sending `Start` and receiving `Proof`.
pub(crate) struct MemberPake {
    login: ServerLogin<Suite>,
    context: [u8; 32],
}

impl MemberPake {
    /// Answers the joiner's `Request` (its KE1) with the member's record; returns the
    /// `Start` message to send.
    pub(crate) fn start(
        record: &PasswordRecord,
        binding: &Binding,
        ke1: &[u8],
    ) -> Result<(Self, JoinMessage), PakeError> {
        let request = CredentialRequest::<Suite>::deserialize(bounded("KE1", ke1)?)
            .map_err(|e| malformed("KE1", e))?;
        let (setup, registration): (ServerSetup<Suite>, ServerRegistration<Suite>) =
            record.opaque()?;
        let kdf = WireKdf::from(record.kdf());
        let context = context(binding, kdf);
        let started = ServerLogin::start(
            &mut OsRng,
            &setup,
            Some(registration),
            request,
            &credential_identifier(&binding.group),
            ServerLoginParameters {
                context: Some(&context),
                identifiers: Identifiers::default(),
            },
        )
        .map_err(|e| malformed("KE1", e))?;
        let start = JoinMessage::Start {
            kdf,
            ke2: started.message.serialize().to_vec(),
        };
        Ok((
            MemberPake {
                login: started.state,
                context,
            },
            start,
        ))
    }

    /// Checks the joiner's `Proof` (its KE3): [`PakeError::BadConfirmation`] unless the
    /// joiner knows the password and ran this login, in this session, for these peers.
    pub(crate) fn finish(self, ke3: &[u8]) -> Result<(), PakeError> {
        let finalization = CredentialFinalization::<Suite>::deserialize(bounded("KE3", ke3)?)
            .map_err(|e| malformed("KE3", e))?;
        match self.login.finish(
            finalization,
            ServerLoginParameters {
                context: Some(&self.context),
                identifiers: Identifiers::default(),
            },
        ) {
            Ok(_) => Ok(()),
            Err(opaque_ke::errors::ProtocolError::InvalidLoginError) => {
                Err(PakeError::BadConfirmation)
            }
            Err(e) => Err(malformed("KE3", e)),
        }
    }
}

/// The joiner's side, between sending `Request` and receiving `Start`.
pub(crate) struct JoinerPake {
    login: ClientLogin<Suite>,
}

impl JoinerPake {
    /// Starts a login with the typed password; returns the `Request` message to send.
    pub(crate) fn start(password: &[u8]) -> Result<(Self, JoinMessage), PakeError> {
        let started = ClientLogin::<Suite>::start(&mut OsRng, password)
            .map_err(|e| malformed("the password", e))?;
        let request = JoinMessage::Request {
            ke1: started.message.serialize().to_vec(),
        };
        Ok((
            JoinerPake {
                login: started.state,
            },
            request,
        ))
    }

    /// Answers the member's `Start` (its KE2, made at the cost `kdf`, which the caller has
    /// checked): one Argon2id evaluation at that cost, so call it from a blocking context.
    /// Returns the `Proof` message to send, or [`PakeError::BadConfirmation`] when KE2 does
    /// not verify (another password, a member without a registration of it, another
    /// session or other peers).
    pub(crate) fn finish(
        self,
        password: &[u8],
        binding: &Binding,
        kdf: WireKdf,
        ke2: &[u8],
    ) -> Result<JoinMessage, PakeError> {
        let response = CredentialResponse::<Suite>::deserialize(bounded("KE2", ke2)?)
            .map_err(|e| malformed("KE2", e))?;
        let ksf = ksf(kdf.into()).map_err(PakeError::Malformed)?;
        let context = context(binding, kdf);
        match self.login.finish(
            &mut OsRng,
            password,
            response,
            ClientLoginFinishParameters::new(Some(&context), Identifiers::default(), Some(&ksf)),
        ) {
            Ok(finished) => Ok(JoinMessage::Proof {
                ke3: finished.message.serialize().to_vec(),
            }),
            Err(opaque_ke::errors::ProtocolError::InvalidLoginError) => {
                Err(PakeError::BadConfirmation)
            }
            Err(e) => Err(malformed("KE2", e)),
        }
    }
}

#[cfg(test)]
#[path = "pake_tests.rs"]
mod tests;
