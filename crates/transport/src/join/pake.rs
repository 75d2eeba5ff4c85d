//! The password proof of a join, sans-IO: messages as bytes in and out, no socket, no clock.
//!
//! SPAKE2 (Ed25519 group) with the joiner as side A and the member as side B, the SPAKE2
//! identities being their secure peer names (text form) and the SPAKE2 password the
//! [`PasswordSecret`], then key confirmation bound to the TLS session:
//!
//! ```text
//! member → joiner   Start  { kdf, pake: SPAKE2 message B }
//! joiner → member   Proof  { pake: SPAKE2 message A, confirm: MAC(K, 1, exporter, T) }
//! member → joiner   Issued { confirm: MAC(K, 2, exporter, T), chain }   or Refused
//!
//! K        = the SPAKE2 shared key (32 bytes)
//! exporter = TLS exporter, label "EXPORTER-peergroup-password-join", no context, 32 bytes
//! T        = SHA-256("peergroup-join/1 transcript" ‖ lp(group) ‖ lp(joiner) ‖ lp(member)
//!                    ‖ m ‖ t ‖ p (u32 BE each) ‖ lp(message B) ‖ lp(message A))
//! MAC(K, role, exporter, T) = HMAC-SHA256(K, "peergroup-join/1 confirm" ‖ role ‖ exporter ‖ T)
//! lp(x)    = u32 BE length ‖ x
//! ```
//!
//! A confirmation computed in another TLS session (another exporter), for other peers, other
//! cost parameters or other SPAKE2 messages does not verify, so a proof cannot be relayed.
//! MACs are compared in constant time (`ring::hmac::verify`). Nothing here can be used to
//! test password guesses offline: the SPAKE2 messages are blinded by the password, and a
//! MAC needs K, which needs one side's ephemeral secret.

use peergroup_credential_roles::MAX_CHAIN_BYTES;
use peergroup_identity::{KdfParams, PeerName, sha256};
use ring::hmac;
use serde::{Deserialize, Serialize};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use crate::join::secret::PasswordSecret;

/// The TLS exporter label binding the proof to the TLS session.
pub(crate) const EXPORTER_LABEL: &[u8] = b"EXPORTER-peergroup-password-join";

/// The version byte in front of every message body.
pub(crate) const MESSAGE_VERSION: u8 = 1;

/// Largest message body: an issued chain (at most [`MAX_CHAIN_BYTES`]) and some room.
pub(crate) const MAX_MESSAGE: usize = MAX_CHAIN_BYTES + 4096;

const TRANSCRIPT_LABEL: &[u8] = b"peergroup-join/1 transcript";
const CONFIRM_LABEL: &[u8] = b"peergroup-join/1 confirm";

/// An HMAC-SHA256 key confirmation.
pub(crate) type Mac = [u8; 32];

/// The 32-byte TLS exporter value of a session.
pub(crate) type Exporter = [u8; 32];

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
    /// Member → joiner: the Argon2id cost and the member's SPAKE2 message.
    Start {
        /// Cost to derive the secret with.
        kdf: WireKdf,
        /// SPAKE2 message of side B.
        pake: Vec<u8>,
    },
    /// Joiner → member: the joiner's SPAKE2 message and its key confirmation.
    Proof {
        /// SPAKE2 message of side A.
        pake: Vec<u8>,
        /// The joiner's confirmation.
        confirm: Mac,
    },
    /// Member → joiner: the member's key confirmation and the issued chain (DER, root first).
    Issued {
        /// The member's confirmation.
        confirm: Mac,
        /// The new chain GRC → … → GMC for the joiner's key.
        chain: Vec<Vec<u8>>,
    },
    /// Member → joiner: no credentials, and why.
    Refused(WireRefusal),
}

/// Why a member refused a join, as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WireRefusal {
    /// The joiner's confirmation did not verify.
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
    /// The peer's key confirmation does not verify: another password (or another session).
    #[error("the key confirmation does not verify")]
    BadConfirmation,
    /// Bytes that are not a message of this protocol, or a SPAKE2 message that is not one.
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

/// Which side a confirmation is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The joiner (SPAKE2 side A).
    Joiner = 1,
    /// The member (SPAKE2 side B).
    Member = 2,
}

/// The transcript hash `T`.
pub(crate) fn transcript(binding: &Binding, kdf: WireKdf, msg_b: &[u8], msg_a: &[u8]) -> [u8; 32] {
    let mut t = TRANSCRIPT_LABEL.to_vec();
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
    length_prefixed(&mut t, msg_b);
    length_prefixed(&mut t, msg_a);
    sha256(&t)
}

fn length_prefixed(out: &mut Vec<u8>, part: &[u8]) {
    // Parts are peer names and SPAKE2 messages: far below 4 GiB.
    out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(part);
}

fn confirm_input(side: Side, exporter: &Exporter, transcript: &[u8; 32]) -> Vec<u8> {
    let mut data = CONFIRM_LABEL.to_vec();
    data.push(side as u8);
    data.extend_from_slice(exporter);
    data.extend_from_slice(transcript);
    data
}

/// `MAC(K, side, exporter, T)`.
pub(crate) fn confirmation(
    key: &[u8],
    side: Side,
    exporter: &Exporter,
    transcript: &[u8; 32],
) -> Mac {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, &confirm_input(side, exporter, transcript));
    let mut mac = [0u8; 32];
    mac.copy_from_slice(tag.as_ref());
    mac
}

/// Checks a confirmation in constant time.
pub(crate) fn verify_confirmation(
    key: &[u8],
    side: Side,
    exporter: &Exporter,
    transcript: &[u8; 32],
    mac: &Mac,
) -> Result<(), PakeError> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&key, &confirm_input(side, exporter, transcript), mac)
        .map_err(|_| PakeError::BadConfirmation)
}

fn identities(binding: &Binding) -> (Identity, Identity) {
    (
        Identity::new(binding.joiner.to_string().as_bytes()),
        Identity::new(binding.member.to_string().as_bytes()),
    )
}

/// The member's side, between sending `Start` and receiving `Proof`.
pub(crate) struct MemberPake {
    spake: Spake2<Ed25519Group>,
    binding: Binding,
    kdf: WireKdf,
    msg_b: Vec<u8>,
}

impl MemberPake {
    /// Starts the member's side with its secret; returns the `Start` message to send.
    pub(crate) fn start(secret: &PasswordSecret, binding: Binding) -> (Self, JoinMessage) {
        let (id_a, id_b) = identities(&binding);
        let password = Password::new(secret.derived_key());
        let (spake, msg_b) = Spake2::<Ed25519Group>::start_b(&password, &id_a, &id_b);
        let kdf = WireKdf::from(secret.kdf());
        let start = JoinMessage::Start {
            kdf,
            pake: msg_b.clone(),
        };
        (
            MemberPake {
                spake,
                binding,
                kdf,
                msg_b,
            },
            start,
        )
    }

    /// Checks the joiner's `Proof`; on success returns the member's confirmation to send with
    /// the issued chain.
    pub(crate) fn finish(self, msg_a: &[u8], confirm: &Mac) -> Result<Mac, PakeError> {
        let key = Zeroizing::new(
            self.spake
                .finish(msg_a)
                .map_err(|e| PakeError::Malformed(format!("SPAKE2: {e:?}")))?,
        );
        let t = transcript(&self.binding, self.kdf, &self.msg_b, msg_a);
        let exporter = &self.binding.exporter;
        verify_confirmation(&key, Side::Joiner, exporter, &t, confirm)?;
        Ok(confirmation(&key, Side::Member, exporter, &t))
    }
}

/// The joiner's side, between sending `Proof` and receiving `Issued`.
pub(crate) struct JoinerPake {
    key: Zeroizing<Vec<u8>>,
    exporter: Exporter,
    transcript: [u8; 32],
}

impl JoinerPake {
    /// Answers the member's `Start` (its SPAKE2 message `msg_b`, with `secret` derived at the
    /// cost it sent); returns the `Proof` message to send.
    pub(crate) fn respond(
        secret: &PasswordSecret,
        binding: &Binding,
        msg_b: &[u8],
    ) -> Result<(Self, JoinMessage), PakeError> {
        let (id_a, id_b) = identities(binding);
        let password = Password::new(secret.derived_key());
        let (spake, msg_a) = Spake2::<Ed25519Group>::start_a(&password, &id_a, &id_b);
        let key = Zeroizing::new(
            spake
                .finish(msg_b)
                .map_err(|e| PakeError::Malformed(format!("SPAKE2: {e:?}")))?,
        );
        let kdf = WireKdf::from(secret.kdf());
        let t = transcript(binding, kdf, msg_b, &msg_a);
        let confirm = confirmation(&key, Side::Joiner, &binding.exporter, &t);
        let proof = JoinMessage::Proof {
            pake: msg_a,
            confirm,
        };
        Ok((
            JoinerPake {
                key,
                exporter: binding.exporter,
                transcript: t,
            },
            proof,
        ))
    }

    /// Checks the member's confirmation (it knows the password too, in this session).
    pub(crate) fn check_member(&self, confirm: &Mac) -> Result<(), PakeError> {
        verify_confirmation(
            &self.key,
            Side::Member,
            &self.exporter,
            &self.transcript,
            confirm,
        )
    }
}

#[cfg(test)]
#[path = "pake_tests.rs"]
mod tests;
