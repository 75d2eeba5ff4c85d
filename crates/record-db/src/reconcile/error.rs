//! Reconciliation errors, classified by who is at fault.

use super::message::{Message, PROTOCOL_VERSION};
use super::peel::PeelError;

/// Why a reconciliation session failed.
///
/// [`fault`](Self::fault) says who is to blame. Every error but [`Closed`](Self::Closed) ends the
/// session: later calls to `handle_message` return [`Closed`](Self::Closed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The peer's bytes are not a well-formed message (bad postcard, trailing bytes).
    #[error("malformed reconciliation message: {0}")]
    Malformed(String),
    /// A well-formed message that breaks the protocol.
    #[error("peer violated the reconciliation protocol: {0}")]
    ProtocolViolation(#[from] Violation),
    /// The peer speaks another protocol version.
    #[error("peer speaks reconciliation protocol version {peer}, we speak {ours}")]
    IncompatibleVersion {
        /// The version the peer announced.
        peer: u16,
        /// The version we speak.
        ours: u16,
    },
    /// The caller handed a message to a session that already failed.
    #[error("reconciliation session already failed")]
    Closed,
    /// The caller built a snapshot whose encoder does not describe its keys.
    #[error("encoder does not match the key set: {0}")]
    InvalidSnapshot(&'static str),
}

/// Who caused a [`ReconcileError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The remote peer sent bad bytes or broke the protocol.
    Peer,
    /// The peer is well-behaved but incompatible with us.
    Incompatible,
    /// Our own caller misused the API.
    Caller,
}

impl ReconcileError {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            ReconcileError::Malformed(_) | ReconcileError::ProtocolViolation(_) => Fault::Peer,
            ReconcileError::IncompatibleVersion { .. } => Fault::Incompatible,
            ReconcileError::Closed | ReconcileError::InvalidSnapshot(_) => Fault::Caller,
        }
    }
}

/// How a well-formed message broke the protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The message kind is not allowed in the session's current state.
    #[error("unexpected {got} message while {state}")]
    UnexpectedMessage {
        /// The message kind received.
        got: &'static str,
        /// What the session was waiting for.
        state: &'static str,
    },
    /// A symbol batch or request does not start where the stream stands.
    #[error("symbols out of order: expected index {expected}, got {got}")]
    OutOfOrder {
        /// The index expected.
        expected: u64,
        /// The index received.
        got: u64,
    },
    /// A part of the answer to a request does not fit it: the last part does not complete
    /// the request, or another part is empty or leaves nothing for the last.
    #[error("{expected} symbols of the request to come, a part has {got}")]
    WrongSymbolCount {
        /// Symbols still to come for the request.
        expected: u64,
        /// Symbols received.
        got: u64,
    },
    /// A request or batch exceeds the per-message, per-request or per-session symbol cap, or
    /// asks for none.
    #[error("{requested} symbols requested or sent, limit {limit}")]
    SymbolLimit {
        /// Symbols requested (or sent, or the new total).
        requested: u64,
        /// The cap that applies.
        limit: u64,
    },
    /// More `More` requests than [`Config::max_requests`](super::Config::max_requests).
    #[error("more than {limit} symbol requests")]
    TooManyRequests {
        /// The cap.
        limit: u32,
    },
    /// A key list (or one message of it) exceeds its cap.
    #[error("{got} keys, limit {limit}")]
    KeyLimit {
        /// Keys in the list or announced.
        got: u64,
        /// The cap.
        limit: u64,
    },
    /// A full key list does not have the size announced in `Start`.
    #[error("key list has {got} keys but the set size announced was {announced}")]
    SetSizeMismatch {
        /// Size announced.
        announced: u64,
        /// Keys received.
        got: u64,
    },
    /// A key list repeats a key.
    #[error("key {0:#018x} listed twice")]
    DuplicateKey(u64),
    /// A key list (or one part of it, or the continuation of a list in the next part) is not
    /// ascending.
    #[error("key {0:#018x} out of ascending order")]
    KeysNotAscending(u64),
    /// The message encodes to more than [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES).
    #[error("a message of {bytes} bytes, limit {limit}")]
    MessageTooLarge {
        /// The message's encoded size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The symbols cannot come from an honest encoder.
    #[error("inconsistent symbols: {0}")]
    InconsistentSymbols(PeelError),
    /// The result contradicts our own set: a key we supposedly lack is ours, or a key we
    /// supposedly hold is not.
    #[error("result contradicts the local set at key {0:#018x}")]
    InconsistentResult(u64),
    /// The result's sizes contradict the set size the peer announced.
    #[error("result sizes contradict the announced set size")]
    InconsistentSizes,
    /// `Done`'s differences, applied to our set, do not give the set its sender holds.
    #[error("the differences in Done do not match the sender's set")]
    SetMismatch,
}

/// Accepts only our own protocol version.
pub(crate) fn check_version(version: u16) -> Result<(), ReconcileError> {
    if version == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ReconcileError::IncompatibleVersion {
            peer: version,
            ours: PROTOCOL_VERSION,
        })
    }
}

/// The violation for a message not allowed while `state`.
pub(crate) fn unexpected(message: &Message, state: &'static str) -> ReconcileError {
    Violation::UnexpectedMessage {
        got: message.kind(),
        state,
    }
    .into()
}
