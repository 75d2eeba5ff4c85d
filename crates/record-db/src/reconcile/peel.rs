//! The decoder: subtracts the local symbols from the remote ones and peels the difference.
//!
//! The difference stream `remote − local` is the coded-symbol stream of the symmetric difference,
//! with count +1 per key only the remote side holds and −1 per key only the local side holds. A
//! *pure* symbol (count ±1, `check_hash(key_sum) == check_sum`) reveals one key; the decoder
//! removes that key from every received symbol it maps to, which may make others pure, and so on.
//! Decoding is complete when every received symbol is zero.
//!
//! Hostile input cannot make the decoder loop or grow without bound: with honest symbols every
//! peel zeroes a symbol for good, so at most one key per received symbol can be recovered; a key
//! recovered twice or more keys than symbols is reported as [`PeelError`].

use std::collections::BTreeSet;

use super::estimate::DifferenceEstimate;
use super::symbol::{CodedSymbol, IndexSequence, check_hash};

/// Inconsistent symbols: they cannot come from two honest encoders of two sets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeelError {
    /// The remote and local batches have different lengths (a caller mistake).
    #[error("remote batch has {remote} symbols, local batch {local}")]
    LengthMismatch {
        /// Remote batch length.
        remote: usize,
        /// Local batch length.
        local: usize,
    },
    /// The same key was recovered twice.
    #[error("key {0:#018x} recovered twice")]
    DuplicateKey(u64),
    /// More keys were recovered than symbols received.
    #[error("more keys recovered than symbols received")]
    TooManyKeys,
}

/// Result of feeding symbols to the [`Decoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeStatus {
    /// Every received symbol peeled to zero: [`Decoder::local_only`] and
    /// [`Decoder::remote_only`] are the whole difference (up to a ≈2⁻⁶⁴ chance of a false pure
    /// symbol, which callers catch by checking the keys against their own set).
    Decoded,
    /// More symbols are needed.
    NeedMore,
}

/// A recovered key and where its index sequence continues past the received prefix.
#[derive(Clone, Debug)]
struct Recovered {
    key: u64,
    hash: u64,
    /// +1: only the remote side holds it; −1: only the local side.
    sign: i64,
    rest: IndexSequence,
}

/// Incremental peeling decoder over a growing prefix of the difference stream.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    diff: Vec<CodedSymbol>,
    recovered: Vec<Recovered>,
    seen: BTreeSet<u64>,
    queue: Vec<usize>,
}

impl Decoder {
    /// A decoder that has received nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of symbols received so far (the next batch starts at this index).
    pub fn len(&self) -> usize {
        self.diff.len()
    }

    /// Whether no symbol has been received.
    pub fn is_empty(&self) -> bool {
        self.diff.is_empty()
    }

    /// Appends the next batch: `remote[j] − local[j]` becomes symbol `len() + j`. Then peels.
    pub fn add_symbols(
        &mut self,
        remote: &[CodedSymbol],
        local: &[CodedSymbol],
    ) -> Result<DecodeStatus, PeelError> {
        if remote.len() != local.len() {
            return Err(PeelError::LengthMismatch {
                remote: remote.len(),
                local: local.len(),
            });
        }
        let diffs: Vec<CodedSymbol> = remote
            .iter()
            .zip(local)
            .map(|(r, l)| r.subtract(l))
            .collect();
        self.add_differences(&diffs)
    }

    /// Appends already-subtracted difference symbols, then peels.
    pub fn add_differences(&mut self, diffs: &[CodedSymbol]) -> Result<DecodeStatus, PeelError> {
        let start = self.diff.len();
        self.diff.extend_from_slice(diffs);
        let end = self.diff.len() as u64;
        // Keys recovered earlier are removed from the new symbols as well.
        for r in &mut self.recovered {
            while let Some(index) = r.rest.peek().filter(|&i| i < end) {
                r.rest.next();
                if let Some(symbol) = self.diff.get_mut(index as usize) {
                    symbol.apply(r.key, r.hash, -r.sign);
                }
            }
        }
        self.queue.extend(start..self.diff.len());
        self.peel()?;
        Ok(self.status())
    }

    fn peel(&mut self) -> Result<(), PeelError> {
        let end = self.diff.len() as u64;
        while let Some(position) = self.queue.pop() {
            let Some((key, sign)) = self.diff.get(position).and_then(CodedSymbol::pure_key) else {
                continue;
            };
            if self.recovered.len() >= self.diff.len() {
                return Err(PeelError::TooManyKeys);
            }
            if !self.seen.insert(key) {
                return Err(PeelError::DuplicateKey(key));
            }
            let hash = check_hash(key);
            let mut rest = IndexSequence::new(key);
            while let Some(index) = rest.peek().filter(|&i| i < end) {
                rest.next();
                if let Some(symbol) = self.diff.get_mut(index as usize) {
                    symbol.apply(key, hash, -sign);
                    self.queue.push(index as usize);
                }
            }
            self.recovered.push(Recovered {
                key,
                hash,
                sign,
                rest,
            });
        }
        Ok(())
    }

    /// [`DecodeStatus::Decoded`] when at least one symbol was received and all peeled to zero.
    pub fn status(&self) -> DecodeStatus {
        if self.is_decoded() {
            DecodeStatus::Decoded
        } else {
            DecodeStatus::NeedMore
        }
    }

    /// Whether at least one symbol was received and all peeled to zero.
    pub fn is_decoded(&self) -> bool {
        !self.diff.is_empty() && self.diff.iter().all(CodedSymbol::is_zero)
    }

    /// Keys recovered so far that only the local side holds, ascending.
    pub fn local_only(&self) -> Vec<u64> {
        self.recovered_with_sign(-1)
    }

    /// Keys recovered so far that only the remote side holds, ascending.
    pub fn remote_only(&self) -> Vec<u64> {
        self.recovered_with_sign(1)
    }

    fn recovered_with_sign(&self, sign: i64) -> Vec<u64> {
        let mut keys: Vec<u64> = self
            .recovered
            .iter()
            .filter(|r| r.sign == sign)
            .map(|r| r.key)
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Number of keys recovered so far.
    pub fn recovered_count(&self) -> usize {
        self.recovered.len()
    }

    /// The residual (not yet peeled) difference symbols.
    pub fn residual(&self) -> &[CodedSymbol] {
        &self.diff
    }

    /// Estimates the size of the whole difference from what was received (see
    /// [`DifferenceEstimate`]).
    pub fn estimate(&self) -> DifferenceEstimate {
        DifferenceEstimate::new(&self.diff, self.recovered.len())
    }

    /// Point estimate of the size of the whole symmetric difference
    /// ([`DifferenceEstimate::point`]).
    pub fn estimate_difference(&self) -> f64 {
        self.estimate().point()
    }
}
