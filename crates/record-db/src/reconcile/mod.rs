//! Set reconciliation: two replicas find the symmetric difference of their item-key sets with
//! traffic proportional to the number of differences `d`, not to the set size `N`.
//!
//! # Item keys
//!
//! Every stored record is summarised by a 64-bit *item key*: the first 8 bytes of
//! `SHA-256(record id ‖ version ‖ signature)`, computed by the record layer. This module only
//! sees `u64`s and relies on them being uniformly random and distinct; two records with the same
//! key are the same record. The result tells each side which keys the other lacks; fetching the
//! records is the caller's business.
//!
//! # Coded symbols (rateless IBLT)
//!
//! We implement Rateless Invertible Bloom Lookup Tables (Yang, Gilad, Alizadeh, *Practical
//! Rateless Set Reconciliation*, SIGCOMM 2024). A set is encoded as an unbounded stream of
//! [`CodedSymbol`]s `(count, key_sum, check_sum)`: each key is added to symbol 0 and to a sparse
//! increasing sequence of further indices ([`IndexSequence`], density `1/(1 + i/2)`; the exact
//! mapping is documented in the `symbol` module and on [`IndexSequence`]). `key_sum` XORs the
//! keys, `check_sum` XORs their [`check_hash`] (SipHash-1-3 under a fixed public key).
//!
//! Subtracting the responder's symbols from the initiator's, index by index, gives the symbol
//! stream of the symmetric difference alone: common keys cancel. The [`Decoder`] peels it: a
//! symbol with count ±1 whose check sum matches `check_hash(key_sum)` holds exactly one key
//! (the sign says which side has it); removing that key from the other symbols frees more. Any
//! prefix of the stream can be decoded once it is about 1.35–1.5·d symbols long (more, relatively,
//! for small d), so the sender never has to guess `d` beforehand: it just sends more.
//!
//! An [`Encoder`] keeps the first symbols of a changing set up to date (at most [`PREFIX`],
//! 4096, in O(log PREFIX) per insert or remove: ≈ 16 symbol updates, 96 KiB of state), so
//! starting a session costs nothing; symbols past the prefix are computed on demand by one
//! pass over the keys. The database keeps four symbols per key, up to [`PREFIX`].
//!
//! # Protocol
//!
//! ```text
//! initiator                                         responder
//!   Start { version, set_size, symbols 0..32 } ──▶   subtract own symbols, peel
//!        ◀── DonePart…, Done { initiator_lacks, responder_lacks, sender_set }   (decoded)
//!                        ◀── More { from, count }                          (not yet)
//!   SymbolsPart…, Symbols { from, symbols } ──▶      subtract, peel, ...
//! ```
//!
//! * **Every message is bounded** ([`MAX_MESSAGE_BYTES`], 1 MiB + 64 bytes): a message carries
//!   at most [`MAX_SYMBOLS_PER_MESSAGE`] (2¹⁵) symbols or [`MAX_KEYS_PER_MESSAGE`] (2¹⁷) keys.
//!   Anything longer (the answer to a `More`, a key list, the result) travels as a *flight* of
//!   parts: `SymbolsPart`/`KeysPart`/`DonePart` messages, then the last part in
//!   `Symbols`/`Keys`/`Done`. A side sends its next flight only once the peer's is complete,
//!   so round trips count flights, not messages. Key lists are strictly ascending across
//!   parts, and each part is checked as it arrives.
//! * `More` always continues the stream where it stands. The responder sizes it from the
//!   failure ([`DifferenceEstimate`]): symbol 0's residual count gives the exact imbalance
//!   `|A∖B| − |B∖A|`; the other residual counts give a moment estimate of the hidden keys
//!   (relative error ≈ √(2/m) after `m` symbols); the number of zero symbols gives another. The
//!   cautious estimate `d̂` ([`DifferenceEstimate::upper`]) is the recovered keys plus the
//!   imbalance, plus the moment's excess over the imbalance scaled up by one standard error
//!   when that excess is significant. The responder then asks for enough symbols to reach
//!   `1.45·d̂ + 3·√d̂ + 8` in total (decoding needs ≈ 1.37–1.6·d), and, if an earlier `More`
//!   already fell short, at least as many as it already has (doubling).
//! * The responder checks the decoded keys against its own set and the sizes against
//!   `set_size` before answering `Done`; the initiator checks `Done` against its set, and
//!   that its own set with the differences applied is the `sender_set` symbol `Done` carries.
//! * **Full-list fallback (very large d).** When the symbols still needed would cost more bytes
//!   than the smaller set's key list (8 bytes per key), for instance because one set is empty
//!   or tiny, or `d` approaches the set size, or the symbol cap ([`Config::max_total_symbols`])
//!   is reached, the smaller side sends its whole list: the responder sends `Keys` itself, or
//!   asks the initiator with `SendKeys`. Whoever receives a full list computes both
//!   differences and sends `Done`. An initiator with at most [`Config::initial_symbols`] keys
//!   sends `StartKeys` (its list) instead of `Start`.
//!
//! Costs: about 19 bytes per symbol and 8 per key in `Done`, and a few bytes per extra part. `d = 0` and `d` up to about 15
//! take one round trip (`Start → Done`, ≈ 0.6 KB); larger `d` usually two (one `More`), a few
//! percent three. Measured at N = 100k: d = 100 scattered ≈ 50 bytes per difference, d = 1000
//! one-sided ≈ 36 (see `tests/reconcile_measure.rs`). Messages are
//! postcard-encoded [`Message`]s; [`Session`] is the sans-IO state machine and documents the
//! calling contract; [`Stats`] counts bytes, messages, symbols and round trips.
//!
//! # Why not range-based reconciliation
//!
//! Range-based reconciliation (negentropy, iroh's ranger) recursively splits the key space and
//! exchanges fingerprints of ranges until the differing ranges are small. It needs no
//! per-session state beyond a sorted index, but each difference costs a fingerprint at every
//! level of the recursion, and the recursion costs round trips: the published numbers are
//! 3 round trips and 2.3 KB for `d = 1`, and 1.6 KB per difference at `d = 100`. A rateless
//! IBLT sends one stream whose length depends only on `d` (≈ 1.4 symbols per difference, no
//! per-level overhead), decodes `d ≤ ~15` in the first message, and costs nothing to keep ready
//! with the incremental encoder. Its weakness, very large `d`, is exactly where a plain key
//! list is already optimal, hence the fallback.
//!
//! # Untrusted peers
//!
//! Every message is bounded in bytes and in symbols or keys ([`MAX_MESSAGE_BYTES`]; a larger
//! one is refused before decoding), every session too ([`Config`]: symbols per request and per
//! session, `More` requests per session, keys per list; a peer's key list is at most our own
//! set's size), so neither side can be made to do unbounded work or hold unbounded memory;
//! out-of-order or unexpected messages fail the session with a typed [`ReconcileError`] whose
//! [`fault`](ReconcileError::fault) names the culprit. No message sequence makes a session
//! panic or run forever, short of a peer going silent (mid-flight too: a flight's last part
//! never arriving), which the caller's timeout ends; hostile symbols are caught by the
//! decoder ([`PeelError`]) or by checking the result against the local set. A peer can always
//! lie about its own set; it cannot make us believe we hold keys we do not.

mod config;
mod error;
mod estimate;
mod hash;
mod message;
mod parts;
mod peel;
mod policy;
mod session;
mod source;
mod symbol;

#[doc(hidden)]
pub mod fuzz;
#[doc(hidden)]
pub mod measure;

pub use config::{Config, Outcome, Role, Stats};
pub use error::{Fault, ReconcileError, Violation};
pub use estimate::DifferenceEstimate;
#[doc(hidden)]
pub use measure::{DiffShape, Measurement, measure};
pub use message::{
    MAX_KEYS_PER_MESSAGE, MAX_MESSAGE_BYTES, MAX_SYMBOLS_PER_MESSAGE, Message, PROTOCOL_VERSION,
};
pub use peel::{DecodeStatus, Decoder, PeelError};
pub use session::Session;
pub use source::{SetSnapshot, SymbolSource};
pub use symbol::{
    CodedSymbol, Encoder, IndexSequence, PREFIX, check_hash, density, hit_probabilities, symbols_of,
};
