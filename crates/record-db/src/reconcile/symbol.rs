//! Coded symbols, the key → symbol-index mapping, and the encoders that produce symbol streams.
//!
//! # The mapping
//!
//! Every item key maps to index 0 and then to a sparse, strictly increasing sequence of indices.
//! From index `i` the next index is
//!
//! ```text
//! next = i + max(1, ceil((i + 1.5) · (1/sqrt(u) − 1)))
//! ```
//!
//! where `u ∈ (0, 1]` is `((r >> 11) + 1) / 2⁵³` and `r` is the next output of a SplitMix64
//! generator whose state starts at the key itself (keys are already uniformly random). This is
//! the mapping of Yang, Gilad and Alizadeh, "Practical Rateless Set Reconciliation" (SIGCOMM
//! 2024) and of their reference code (which draws `u` from a multiplicative generator seeded by
//! the key's hash instead). Since `P(next > j | i) = ((i + 1.5)/(j + 1.5))²`, a key lands on index
//! `i` with probability close to [`density(i)`](density) `= 1/(1 + i/2)`. A sequence that would
//! overflow `u64` ends.
//!
//! All arithmetic is IEEE-754 `f64` (`sqrt` is correctly rounded, no fused multiply-add), so the
//! mapping is identical on every platform; it is part of the wire contract.

use std::ops::Range;

use serde::{Deserialize, Serialize};

pub use super::hash::check_hash;
use super::hash::splitmix64;

/// One coded symbol: the count of keys mapped to it and the XOR of those keys and of their
/// [`check_hash`]es.
///
/// On the wire (postcard) `count` is a zigzag varint and both sums are 8 fixed little-endian bytes
/// (random 64-bit values would take 10 bytes as varints).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodedSymbol {
    /// Number of keys added minus number removed (for a difference: remote minus local).
    pub count: i64,
    /// XOR of the keys.
    #[serde(with = "fixed64")]
    pub key_sum: u64,
    /// XOR of the keys' [`check_hash`]es.
    #[serde(with = "fixed64")]
    pub check_sum: u64,
}

impl CodedSymbol {
    /// The symbol of the empty set.
    pub const ZERO: CodedSymbol = CodedSymbol {
        count: 0,
        key_sum: 0,
        check_sum: 0,
    };

    /// Whether this is the symbol of the empty set (or of a fully cancelled difference).
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Adds `key` (count + 1).
    pub fn add_key(&mut self, key: u64) {
        self.apply(key, check_hash(key), 1);
    }

    /// Removes `key` (count − 1).
    pub fn remove_key(&mut self, key: u64) {
        self.apply(key, check_hash(key), -1);
    }

    /// `self − other`: counts subtract, sums XOR.
    pub fn subtract(&self, other: &CodedSymbol) -> CodedSymbol {
        CodedSymbol {
            count: self.count.wrapping_sub(other.count),
            key_sum: self.key_sum ^ other.key_sum,
            check_sum: self.check_sum ^ other.check_sum,
        }
    }

    /// If the symbol holds exactly one key with multiplicity ±1, returns the key and the sign.
    pub fn pure_key(&self) -> Option<(u64, i64)> {
        let sign = match self.count {
            1 => 1,
            -1 => -1,
            _ => return None,
        };
        (check_hash(self.key_sum) == self.check_sum).then_some((self.key_sum, sign))
    }

    /// Adds `delta` copies of `key` whose check hash is `hash` (XOR only toggles, so only the
    /// parity of `delta` matters for the sums).
    pub(crate) fn apply(&mut self, key: u64, hash: u64, delta: i64) {
        self.count = self.count.wrapping_add(delta);
        if delta % 2 != 0 {
            self.key_sum ^= key;
            self.check_sum ^= hash;
        }
    }
}

/// The design density of the mapping, `1/(1 + i/2)`: roughly the probability that a key maps to
/// index `i` ([`hit_probabilities`] gives the exact values).
pub fn density(i: u64) -> f64 {
    1.0 / (1.0 + i as f64 / 2.0)
}

/// The exact probability, for each index `0..len`, that a key maps to it.
///
/// The mapping is a Markov chain: from index `j` the next index is `j + k` with probability
/// `(j + 1.5)²·(1/(j + k − 0.5)² − 1/(j + k + 0.5)²)` for `k ≥ 1`, hence
/// `h(0) = 1` and `h(i) = (1/(i + 0.5)² − 1/(i + 1.5)²) · Σ_{j<i} h(j)·(j + 1.5)²`.
/// It approaches [`density`] for large `i` (`h(1) = 0.64` against `2/3`, `h(2) = 0.49` against
/// `1/2`, within 1% from `i ≈ 8`). Ignores the 2⁻⁵³ granularity of `u`.
pub fn hit_probabilities(len: usize) -> Vec<f64> {
    let mut hits = Vec::with_capacity(len);
    let mut weighted_sum = 0.0;
    for i in 0..len {
        let h = if i == 0 {
            1.0
        } else {
            let x = i as f64;
            (1.0 / ((x + 0.5) * (x + 0.5)) - 1.0 / ((x + 1.5) * (x + 1.5))) * weighted_sum
        };
        let y = i as f64 + 1.5;
        weighted_sum += h * y * y;
        hits.push(h);
    }
    hits
}

/// The infinite (until `u64` overflow) increasing sequence of symbol indices of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSequence {
    prng: u64,
    next: Option<u64>,
}

impl IndexSequence {
    /// The sequence of `key`, starting at index 0.
    pub fn new(key: u64) -> Self {
        IndexSequence {
            prng: key,
            next: Some(0),
        }
    }

    /// The index the next call to `next()` returns, without advancing.
    pub fn peek(&self) -> Option<u64> {
        self.next
    }

    /// Advances past every index below `index`.
    pub fn skip_below(&mut self, index: u64) {
        while self.next.is_some_and(|i| i < index) {
            self.next();
        }
    }
}

impl Iterator for IndexSequence {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let current = self.next?;
        let r = splitmix64(&mut self.prng);
        // u in (0, 1]: 53 random bits, shifted up by one so u is never 0.
        let u = ((r >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        let gap = ceil_non_negative((current as f64 + 1.5) * (1.0 / u.sqrt() - 1.0));
        // `as` saturates, so a gap past u64::MAX ends the sequence through checked_add.
        let gap = if gap >= 1.0 { gap as u64 } else { 1 };
        self.next = current.checked_add(gap);
        Some(current)
    }
}

/// `x.ceil()` for `x ≥ 0` (here `x` is never negative), without the call to libm's `ceil`
/// that `f64::ceil` is on x86-64 without SSE 4.1: a key's sequence is walked each time it
/// joins or leaves a stored set. Every `f64` from 2⁵² up is an integer; below, the truncation
/// is exact. A negative `x` or NaN gives 0, which the caller reads as `ceil` would (a gap
/// below 1 is 1); infinity stays infinity.
fn ceil_non_negative(x: f64) -> f64 {
    const INTEGRAL: f64 = (1u64 << 52) as f64;
    if x >= INTEGRAL {
        return x;
    }
    let truncated = x as u64 as f64;
    if truncated < x {
        truncated + 1.0
    } else {
        truncated
    }
}

/// The coded symbols with indices in `range` of the set `keys`, computed from scratch.
///
/// Costs O(|keys| · log(range.end)) and allocates one symbol per index in `range`: callers bound
/// the range. Keys must be distinct (a repeated key is counted twice).
pub fn symbols_of<I: IntoIterator<Item = u64>>(keys: I, range: Range<u64>) -> Vec<CodedSymbol> {
    let mut out = vec![CodedSymbol::ZERO; range_len(&range)];
    add_keys_in_range(&mut out, keys, range.start);
    out
}

/// Adds every key of `keys` to `out`, whose first element is symbol `start`.
fn add_keys_in_range<I: IntoIterator<Item = u64>>(out: &mut [CodedSymbol], keys: I, start: u64) {
    let end = start.saturating_add(out.len() as u64);
    for key in keys {
        let hash = check_hash(key);
        let mut seq = IndexSequence::new(key);
        seq.skip_below(start);
        for index in seq.take_while(|&i| i < end) {
            if let Some(symbol) = usize::try_from(index - start)
                .ok()
                .and_then(|offset| out.get_mut(offset))
            {
                symbol.apply(key, hash, 1);
            }
        }
    }
}

fn range_len(range: &Range<u64>) -> usize {
    usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX)
}

/// Default number of symbols an [`Encoder`] keeps up to date.
pub const PREFIX: usize = 4096;

/// Keeps the first `prefix_len` coded symbols of a changing set up to date.
///
/// [`insert`](Self::insert) and [`remove`](Self::remove) cost O(log prefix_len): a key touches
/// about `2·ln(prefix_len/2) + 1` symbols of the prefix (≈ 16 for the default 4096). Symbols past
/// the prefix are computed on demand from an iterator over the set (see
/// [`symbols`](Self::symbols)).
///
/// The encoder does not know the set: the caller must insert each key once and remove only keys
/// it inserted; otherwise the symbols describe a multiset and decoding against them fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoder {
    prefix: Vec<CodedSymbol>,
    len: u64,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder of the empty set keeping [`PREFIX`] symbols.
    pub fn new() -> Self {
        Self::with_prefix(PREFIX)
    }

    /// An encoder of the empty set keeping `prefix_len` symbols.
    pub fn with_prefix(prefix_len: usize) -> Self {
        Encoder {
            prefix: vec![CodedSymbol::ZERO; prefix_len],
            len: 0,
        }
    }

    /// An encoder (keeping [`PREFIX`] symbols) of the distinct keys `keys`.
    pub fn from_keys<I: IntoIterator<Item = u64>>(keys: I) -> Self {
        let mut encoder = Self::new();
        for key in keys {
            encoder.insert(key);
        }
        encoder
    }

    /// Number of keys in the set (inserts minus removes).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of symbols kept up to date.
    pub fn prefix_len(&self) -> usize {
        self.prefix.len()
    }

    /// The symbols kept up to date, indices `0..prefix_len()`.
    pub fn prefix(&self) -> &[CodedSymbol] {
        &self.prefix
    }

    /// Keeps `prefix_len` symbols up to date from now on (never fewer than now), computing
    /// the added ones from `keys`, every key of the set: O(|keys| · log(prefix_len)).
    pub fn extend_prefix<I: IntoIterator<Item = u64>>(&mut self, prefix_len: usize, keys: I) {
        let start = self.prefix.len();
        if prefix_len <= start {
            return;
        }
        self.prefix.resize(prefix_len, CodedSymbol::ZERO);
        if let Some(tail) = self.prefix.get_mut(start..) {
            add_keys_in_range(tail, keys, start as u64);
        }
    }

    /// Records that `key` joined the set.
    pub fn insert(&mut self, key: u64) {
        self.len = self.len.wrapping_add(1);
        self.apply(key, 1);
    }

    /// Records that `key` left the set.
    pub fn remove(&mut self, key: u64) {
        self.len = self.len.wrapping_sub(1);
        self.apply(key, -1);
    }

    fn apply(&mut self, key: u64, delta: i64) {
        let hash = check_hash(key);
        let end = self.prefix.len() as u64;
        for index in IndexSequence::new(key).take_while(|&i| i < end) {
            if let Some(symbol) = usize::try_from(index)
                .ok()
                .and_then(|i| self.prefix.get_mut(i))
            {
                symbol.apply(key, hash, delta);
            }
        }
    }

    /// The symbols with indices in `range`.
    ///
    /// The part inside the prefix is copied; `keys` (every key of the set, in any order) is
    /// iterated only when `range` extends past the prefix, at O(|keys| · log(range.end)).
    /// Allocates one symbol per index in `range`: callers bound the range.
    pub fn symbols<I: IntoIterator<Item = u64>>(
        &self,
        range: Range<u64>,
        keys: I,
    ) -> Vec<CodedSymbol> {
        let prefix_end = self.prefix.len() as u64;
        let mut out = Vec::with_capacity(range_len(&range));
        if range.start < prefix_end {
            let to = range.end.min(prefix_end);
            let (from, to) = (range.start as usize, to as usize);
            if let Some(cached) = self.prefix.get(from..to) {
                out.extend_from_slice(cached);
            }
        }
        if range.end > prefix_end {
            let tail_start = range.start.max(prefix_end);
            let tail_len = range_len(&(tail_start..range.end));
            let copied = out.len();
            out.resize(copied + tail_len, CodedSymbol::ZERO);
            if let Some(tail) = out.get_mut(copied..) {
                add_keys_in_range(tail, keys, tail_start);
            }
        }
        out
    }
}

/// Serde helper: a `u64` as 8 fixed little-endian bytes (postcard writes arrays without a length).
pub(crate) mod fixed64 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
        value.to_le_bytes().serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        <[u8; 8]>::deserialize(d).map(u64::from_le_bytes)
    }
}

/// Serde helper: a `Vec<u64>` as a length-prefixed sequence of 8-byte little-endian keys.
pub(crate) mod fixed64_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(keys: &[u64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(keys.iter().map(|k| k.to_le_bytes()))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        Vec::<[u8; 8]>::deserialize(d).map(|v| v.into_iter().map(u64::from_le_bytes).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_non_negative_is_ceil() {
        let mut state = 1u64;
        let mut values = vec![
            0.0,
            0.5,
            1.0,
            1.0 + f64::EPSILON,
            2.0 - f64::EPSILON,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9_007_199_254_740_993.0,
            1e300,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::INFINITY,
        ];
        for _ in 0..200_000 {
            let r = splitmix64(&mut state);
            // Non-negative values of every magnitude, and small ones near integers.
            values.push(f64::from_bits(r >> 1));
            values.push((r >> 40) as f64 / 1024.0);
        }
        for x in values.into_iter().filter(|x| !x.is_nan()) {
            assert_eq!(ceil_non_negative(x).to_bits(), x.ceil().to_bits(), "{x:e}");
        }
        assert_eq!(ceil_non_negative(f64::NAN), 0.0);
    }

    /// The mapping is part of the wire contract: the sequences are those `f64::ceil` gave.
    #[test]
    fn index_sequences_are_those_of_f64_ceil() {
        fn reference(key: u64, n: usize) -> Vec<u64> {
            let (mut prng, mut next, mut out) = (key, Some(0u64), Vec::new());
            while let Some(current) = next {
                if out.len() == n {
                    break;
                }
                let r = splitmix64(&mut prng);
                let u = ((r >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
                let gap = ((current as f64 + 1.5) * (1.0 / u.sqrt() - 1.0)).ceil();
                let gap = if gap >= 1.0 { gap as u64 } else { 1 };
                next = current.checked_add(gap);
                out.push(current);
            }
            out
        }
        let mut state = 7u64;
        for _ in 0..5_000 {
            let key = splitmix64(&mut state);
            let seq: Vec<u64> = IndexSequence::new(key).take(120).collect();
            assert_eq!(seq, reference(key, 120), "key {key:#x}");
        }
    }
}
