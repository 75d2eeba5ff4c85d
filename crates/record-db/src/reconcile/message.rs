//! The wire messages (postcard-encoded), their bounds and their raw decoding.

use serde::{Deserialize, Serialize};

use super::error::{ReconcileError, Violation};
use super::symbol::{CodedSymbol, fixed64_vec};

/// The protocol version this implementation speaks, carried by the initiator's first message.
/// Later messages of a session use the version the first message fixed.
///
/// Version 2 bounds every message ([`MAX_MESSAGE_BYTES`]): symbol batches, key lists and
/// `Done` travel in parts ([`Message::SymbolsPart`], [`Message::KeysPart`],
/// [`Message::DonePart`]), the last part of each in the message version 1 sent whole.
pub const PROTOCOL_VERSION: u16 = 2;

/// Most coded symbols one message ([`Message::Start`], [`Message::SymbolsPart`],
/// [`Message::Symbols`]) carries: 2¹⁵. A
/// [`Message::More`] may ask for more (up to [`Config::max_symbols_per_request`]); they come
/// in several `Symbols` messages. At most 26 bytes a symbol, so at most 832 KiB of symbols.
///
/// [`Config::max_symbols_per_request`]: super::Config::max_symbols_per_request
pub const MAX_SYMBOLS_PER_MESSAGE: usize = 1 << 15;

/// Most keys one message carries: 2¹⁷ (1 MiB of 8-byte keys), in a key list part
/// ([`Message::StartKeys`], [`Message::KeysPart`], [`Message::Keys`]) or in both lists of a
/// `Done` part together ([`Message::DonePart`], [`Message::Done`]). Longer lists travel in
/// several messages.
pub const MAX_KEYS_PER_MESSAGE: usize = 1 << 17;

/// Most bytes of one encoded [`Message`]: 1 MiB + 64 bytes. The largest message is a `Done`
/// part with [`MAX_KEYS_PER_MESSAGE`] keys (1,048,576 bytes of keys, 3-byte lengths, a set
/// symbol of at most 26 bytes, a tag: 1,048,609 bytes); a batch of [`MAX_SYMBOLS_PER_MESSAGE`]
/// symbols of the largest encoding is 851,982 bytes. A session never sends more, and refuses a
/// larger message from its peer ([`Violation::MessageTooLarge`]) before decoding it.
pub const MAX_MESSAGE_BYTES: usize = (1 << 20) + 64;

/// One reconciliation message.
///
/// Keys and symbol sums are 8 fixed little-endian bytes on the wire; counts, sizes and indices
/// are varints. Every key list is strictly ascending, across the parts of a list too. See the
/// [module docs](super) for the message flow.
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
    /// whole key list instead of symbols, in this one message.
    StartKeys {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u16,
        /// Every key of the initiator's set, ascending.
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
    /// Initiator → responder: a part of the symbols a [`Message::More`] asked for that more
    /// parts follow; the answer ends with [`Message::Symbols`]. Parts are consecutive, none
    /// empty, each of at most [`MAX_SYMBOLS_PER_MESSAGE`] symbols.
    SymbolsPart {
        /// Index of the first symbol.
        from: u64,
        /// The symbols `from..from + symbols.len()`.
        symbols: Vec<CodedSymbol>,
    },
    /// Initiator → responder: the last (or only) part of the symbols a [`Message::More`] asked
    /// for; with the parts before it, exactly the `count` requested.
    Symbols {
        /// Index of the first symbol.
        from: u64,
        /// The symbols `from..from + symbols.len()`.
        symbols: Vec<CodedSymbol>,
    },
    /// Responder → initiator: give up on symbols, send your whole key list (full-list fallback,
    /// used when the initiator's set is the smaller one).
    SendKeys,
    /// Either direction: a part of the sender's whole key list (full-list fallback) that more
    /// parts follow; the list ends with [`Message::Keys`].
    KeysPart {
        /// The next keys of the sender's set, ascending.
        #[serde(with = "fixed64_vec")]
        keys: Vec<u64>,
    },
    /// Either direction: the last (or only) part of the sender's whole key list (full-list
    /// fallback). The receiver computes the difference and answers with [`Message::Done`].
    Keys {
        /// The last keys of the sender's set, ascending.
        #[serde(with = "fixed64_vec")]
        keys: Vec<u64>,
    },
    /// From whichever side computed the difference: a part of the result that more parts
    /// follow; the result ends with [`Message::Done`]. Each list continues, ascending, where the
    /// previous part left it.
    DonePart {
        /// Keys the responder holds and the initiator lacks.
        #[serde(with = "fixed64_vec")]
        initiator_lacks: Vec<u64>,
        /// Keys the initiator holds and the responder lacks.
        #[serde(with = "fixed64_vec")]
        responder_lacks: Vec<u64>,
    },
    /// Final message (the last or only part of the result), from whichever side computed the
    /// difference.
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

    /// Decodes one message, rejecting trailing bytes, and a message over the bounds
    /// ([`MAX_MESSAGE_BYTES`], [`MAX_SYMBOLS_PER_MESSAGE`], [`MAX_KEYS_PER_MESSAGE`]) as a
    /// [`ReconcileError::ProtocolViolation`]; more than [`MAX_MESSAGE_BYTES`] are refused
    /// before decoding.
    pub fn decode(bytes: &[u8]) -> Result<Message, ReconcileError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(Violation::MessageTooLarge {
                bytes: bytes.len() as u64,
                limit: MAX_MESSAGE_BYTES as u64,
            }
            .into());
        }
        match postcard::take_from_bytes::<Message>(bytes) {
            Ok((message, [])) => {
                message.check_bounds()?;
                Ok(message)
            }
            Ok((_, rest)) => Err(ReconcileError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            ))),
            Err(e) => Err(ReconcileError::Malformed(e.to_string())),
        }
    }

    /// Checks the per-message bounds: at most [`MAX_SYMBOLS_PER_MESSAGE`] symbols, at most
    /// [`MAX_KEYS_PER_MESSAGE`] keys (both lists of a `Done` part together). Within them a
    /// message encodes to at most [`MAX_MESSAGE_BYTES`].
    pub fn check_bounds(&self) -> Result<(), Violation> {
        let (symbols, keys) = self.payload_counts();
        if symbols > MAX_SYMBOLS_PER_MESSAGE as u64 {
            return Err(Violation::SymbolLimit {
                requested: symbols,
                limit: MAX_SYMBOLS_PER_MESSAGE as u64,
            });
        }
        if keys > MAX_KEYS_PER_MESSAGE as u64 {
            return Err(Violation::KeyLimit {
                got: keys,
                limit: MAX_KEYS_PER_MESSAGE as u64,
            });
        }
        Ok(())
    }

    /// The message kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Start { .. } => "Start",
            Message::StartKeys { .. } => "StartKeys",
            Message::More { .. } => "More",
            Message::SymbolsPart { .. } => "SymbolsPart",
            Message::Symbols { .. } => "Symbols",
            Message::SendKeys => "SendKeys",
            Message::KeysPart { .. } => "KeysPart",
            Message::Keys { .. } => "Keys",
            Message::DonePart { .. } => "DonePart",
            Message::Done { .. } => "Done",
        }
    }

    /// (symbols, keys) carried by the message, for the statistics and the bounds.
    pub(crate) fn payload_counts(&self) -> (u64, u64) {
        match self {
            Message::Start { symbols, .. }
            | Message::SymbolsPart { symbols, .. }
            | Message::Symbols { symbols, .. } => (symbols.len() as u64, 0),
            Message::StartKeys { keys, .. }
            | Message::KeysPart { keys }
            | Message::Keys { keys } => (0, keys.len() as u64),
            Message::DonePart {
                initiator_lacks,
                responder_lacks,
            }
            | Message::Done {
                initiator_lacks,
                responder_lacks,
                ..
            } => (
                0,
                (initiator_lacks.len() as u64).saturating_add(responder_lacks.len() as u64),
            ),
            Message::More { .. } | Message::SendKeys => (0, 0),
        }
    }
}
