//! The wire messages (postcard-encoded) and their raw decoding.

use serde::{Deserialize, Serialize};

use super::error::ReconcileError;
use super::symbol::{CodedSymbol, fixed64_vec};

/// The protocol version this implementation speaks, carried by the initiator's first message.
/// Later messages of a session use the version the first message fixed.
pub const PROTOCOL_VERSION: u16 = 1;

/// One reconciliation message.
///
/// Keys and symbol sums are 8 fixed little-endian bytes on the wire; counts, sizes and indices
/// are varints. See the [module docs](super) for the message flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Initiator → responder, first message: the initiator's set size and its coded symbols
    /// `0..symbols.len()`.
    Start {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u16,
        /// Number of keys in the initiator's set.
        set_size: u64,
        /// Coded symbols starting at index 0.
        symbols: Vec<CodedSymbol>,
    },
    /// Initiator → responder, first message when the initiator's set is tiny (or empty): the
    /// whole key list instead of symbols.
    StartKeys {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u16,
        /// Every key of the initiator's set.
        #[serde(with = "fixed64_vec")]
        keys: Vec<u64>,
    },
    /// Responder → initiator: decoding failed; send `count` more symbols starting at `from`
    /// (always the number of symbols sent so far).
    More {
        /// First index wanted.
        from: u64,
        /// Number of symbols wanted.
        count: u64,
    },
    /// Initiator → responder: the symbols a [`Message::More`] asked for.
    Symbols {
        /// Index of the first symbol.
        from: u64,
        /// The symbols `from..from + symbols.len()`.
        symbols: Vec<CodedSymbol>,
    },
    /// Responder → initiator: give up on symbols, send your whole key list (full-list fallback,
    /// used when the initiator's set is the smaller one).
    SendKeys,
    /// Either direction: the sender's whole key list (full-list fallback). The receiver computes
    /// the difference and answers with [`Message::Done`].
    Keys {
        /// Every key of the sender's set.
        #[serde(with = "fixed64_vec")]
        keys: Vec<u64>,
    },
    /// Final message, from whichever side computed the difference.
    Done {
        /// Keys the responder holds and the initiator lacks.
        #[serde(with = "fixed64_vec")]
        initiator_lacks: Vec<u64>,
        /// Keys the initiator holds and the responder lacks.
        #[serde(with = "fixed64_vec")]
        responder_lacks: Vec<u64>,
        /// The sender's whole set as one coded symbol (its count and both sums). The receiver
        /// applies the two differences to its own set's symbol and must arrive at this one: a
        /// wrong difference (a mistaken decode, a corrupted or forged list) fails the session
        /// on both sides' terms instead of leaving the sender waiting.
        sender_set: CodedSymbol,
    },
}

impl Message {
    /// The postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these types into a Vec cannot fail: no maps, no unsized sequences.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Length of the postcard encoding, without allocating it.
    pub fn encoded_len(&self) -> usize {
        postcard::serialize_with_flavor(self, postcard::ser_flavors::Size::default()).unwrap_or(0)
    }

    /// Decodes one message, rejecting trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Message, ReconcileError> {
        match postcard::take_from_bytes::<Message>(bytes) {
            Ok((message, [])) => Ok(message),
            Ok((_, rest)) => Err(ReconcileError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            ))),
            Err(e) => Err(ReconcileError::Malformed(e.to_string())),
        }
    }

    /// The message kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Start { .. } => "Start",
            Message::StartKeys { .. } => "StartKeys",
            Message::More { .. } => "More",
            Message::Symbols { .. } => "Symbols",
            Message::SendKeys => "SendKeys",
            Message::Keys { .. } => "Keys",
            Message::Done { .. } => "Done",
        }
    }

    /// (symbols, keys) carried by the message, for the statistics.
    pub(crate) fn payload_counts(&self) -> (u64, u64) {
        match self {
            Message::Start { symbols, .. } | Message::Symbols { symbols, .. } => {
                (symbols.len() as u64, 0)
            }
            Message::StartKeys { keys, .. } | Message::Keys { keys } => (0, keys.len() as u64),
            Message::Done {
                initiator_lacks,
                responder_lacks,
                ..
            } => (0, (initiator_lacks.len() + responder_lacks.len()) as u64),
            Message::More { .. } | Message::SendKeys => (0, 0),
        }
    }
}
