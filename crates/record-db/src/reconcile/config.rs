//! Session configuration, roles, results and statistics.

use super::message::{MAX_KEYS_PER_MESSAGE, MAX_SYMBOLS_PER_MESSAGE};
#[cfg(doc)]
use super::{message::Message, session::Session};

/// Limits and tuning of a session. Both peers should use the same limits: a request the other
/// side considers excessive fails the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Symbols the initiator puts in `Start` (default 32; at most
    /// [`MAX_SYMBOLS_PER_MESSAGE`] are sent). An initiator with at most this many keys sends
    /// them as `StartKeys` instead.
    pub initial_symbols: usize,
    /// Most symbols one `More` may ask for (default 2¹⁸); the answer travels in `Symbols`
    /// messages of at most [`symbols_per_message`](Self::symbols_per_message) each.
    pub max_symbols_per_request: u64,
    /// Symbols this side puts in one part of the answer to a `More` (default and most
    /// [`MAX_SYMBOLS_PER_MESSAGE`]; smaller values only split the answer finer, e.g. in
    /// tests). The peer accepts any split within [`MAX_SYMBOLS_PER_MESSAGE`].
    pub symbols_per_message: usize,
    /// Keys this side puts in one part of a key list or of `Done` (default and most
    /// [`MAX_KEYS_PER_MESSAGE`]; smaller values only split lists finer). The peer accepts any
    /// split within [`MAX_KEYS_PER_MESSAGE`]. (`StartKeys` is one message of at most
    /// [`initial_symbols`](Self::initial_symbols) keys.)
    pub keys_per_message: usize,
    /// Most symbols one session may exchange in total (default 2²⁰); past it the responder
    /// falls back to the full key list.
    pub max_total_symbols: u64,
    /// Most `More` requests per session (default 32). Each request past the encoder prefix
    /// costs the initiator a pass over its keys, so this bounds the work a hostile responder
    /// can cause; an honest one needs about 16 at most (it doubles after a shortfall). Past it
    /// the responder falls back to the full key list.
    pub max_requests: u32,
    /// Most keys a whole key list or `Done` list may carry over all its parts, and the largest
    /// set size a peer may announce (default 2²⁴). Tighter bounds apply where the protocol
    /// knows more: a peer's key list is at most our own set's size (the smaller side sends
    /// its list) or exactly the size it announced; a `Done` after symbols lists at most as many
    /// keys as symbols were sent.
    pub max_keys: u64,
}

impl Config {
    /// [`symbols_per_message`](Self::symbols_per_message) within `1..=MAX_SYMBOLS_PER_MESSAGE`.
    pub(crate) fn symbols_chunk(&self) -> usize {
        self.symbols_per_message.clamp(1, MAX_SYMBOLS_PER_MESSAGE)
    }

    /// [`keys_per_message`](Self::keys_per_message) within `1..=MAX_KEYS_PER_MESSAGE`.
    pub(crate) fn keys_chunk(&self) -> usize {
        self.keys_per_message.clamp(1, MAX_KEYS_PER_MESSAGE)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_symbols: 32,
            max_symbols_per_request: 1 << 18,
            symbols_per_message: MAX_SYMBOLS_PER_MESSAGE,
            keys_per_message: MAX_KEYS_PER_MESSAGE,
            max_total_symbols: 1 << 20,
            max_requests: 32,
            max_keys: 1 << 24,
        }
    }
}

/// Which end of the exchange a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends its symbols; learns the result from the responder (or computes it in the fallback).
    Initiator,
    /// Decodes the initiator's symbols against its own.
    Responder,
}

/// The result of a successful session, from this side's point of view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Keys only we hold (the peer lacks them), ascending.
    pub local_only: Vec<u64>,
    /// Keys only the peer holds (we lack them), ascending.
    pub remote_only: Vec<u64>,
}

/// Traffic counters of one session. Bytes are postcard-encoded message sizes
/// ([`Message::encoded_len`]); add any framing yourself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of messages taken from [`Session::poll_transmit`].
    pub bytes_sent: u64,
    /// Bytes of messages handed to [`Session::handle_message`].
    pub bytes_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Coded symbols sent.
    pub symbols_sent: u64,
    /// Coded symbols received.
    pub symbols_received: u64,
    /// Keys sent in key lists and `Done`.
    pub keys_sent: u64,
    /// Keys received in key lists and `Done`.
    pub keys_received: u64,
    /// Flights: runs of consecutive messages in one direction. The protocol alternates
    /// flights (a request, then every part of its answer), so both ends count the same.
    pub flights: u64,
}

impl Stats {
    /// Round trips: `ceil(flights / 2)`. Flights strictly alternate, so this is the number of
    /// request/response pairs however many messages each flight has: `Start → Done` is 1,
    /// `Start → More → Symbols… → Done…` is 2, `Start → Keys… → Done…` (3 flights) counts as
    /// 2. Both ends of a finished session report the same number.
    pub fn round_trips(&self) -> u64 {
        self.flights.div_ceil(2)
    }

    /// Bytes sent plus bytes received.
    pub fn total_bytes(&self) -> u64 {
        self.bytes_sent + self.bytes_received
    }
}
