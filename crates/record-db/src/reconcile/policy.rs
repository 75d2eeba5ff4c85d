//! The responder's decision after a batch failed to decode: how many symbols to ask for, or
//! whether to fall back to key lists. A pure function of what the responder knows.

use super::config::Config;
use super::estimate::DifferenceEstimate;

/// Approximate wire size of a coded symbol (varint count + two 8-byte sums), to compare the
/// symbol path with the full-list fallback (8 bytes per key).
const SYMBOL_BYTES: u64 = 19;
/// Smallest `More` request.
const MIN_REQUEST: u64 = 8;

/// Symbols to aim for in total once about `d` differences are expected: decoding needs
/// ≈ 1.37·d for large d, ≈ 1.45·d at d = 100 and relatively more for small d; the margin
/// makes a failed attempt (one more round trip) rare without paying much.
pub(crate) fn target_symbols(d: f64) -> u64 {
    (1.45 * d + 3.0 * d.sqrt() + 8.0).ceil() as u64
}

/// What the responder knows after a failed decode.
pub(crate) struct Situation<'a> {
    /// The estimate from the residual stream.
    pub(crate) estimate: DifferenceEstimate,
    /// Symbols received so far.
    pub(crate) received: u64,
    /// Our set size.
    pub(crate) own_size: u64,
    /// The initiator's announced set size.
    pub(crate) remote_size: u64,
    /// `More` messages already sent.
    pub(crate) requests: u32,
    /// The limits.
    pub(crate) config: &'a Config,
}

/// What the responder does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Ask for this many more symbols.
    More(u64),
    /// Full-list fallback, our set is the smaller: send our keys.
    SendOwnKeys,
    /// Full-list fallback, the initiator's set is the smaller: ask for its keys.
    AskForKeys,
}

/// Asks for enough symbols to reach [`target_symbols`] of the cautious estimate
/// ([`DifferenceEstimate::upper`], at least the set-size gap); after a `More` that fell short,
/// at least as many as already received (doubling). Falls back to the smaller side's key list
/// when that costs no more than the symbols it would ask for, or when the symbol or request cap
/// is reached.
pub(crate) fn next_step(situation: &Situation<'_>) -> Step {
    let Situation {
        estimate,
        received,
        own_size,
        remote_size,
        requests,
        config,
    } = situation;
    let d = estimate.upper().max(own_size.abs_diff(*remote_size) as f64);
    let floor = if *requests > 0 { *received } else { 0 };
    let count = target_symbols(d)
        .saturating_sub(*received)
        .max(floor)
        .max(MIN_REQUEST)
        .min(config.max_symbols_per_request)
        .min(config.max_total_symbols.saturating_sub(*received));
    let symbols_cost = count.saturating_mul(SYMBOL_BYTES);
    let keys_cost = own_size.min(remote_size).saturating_mul(8);
    if count > 0 && symbols_cost < keys_cost && *requests < config.max_requests {
        Step::More(count)
    } else if own_size <= remote_size {
        Step::SendOwnKeys
    } else {
        Step::AskForKeys
    }
}
