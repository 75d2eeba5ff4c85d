//! What a session needs to know about the local set.

use super::error::ReconcileError;
use super::symbol::{CodedSymbol, Encoder};

/// Read access to the local key set for the lifetime of one session.
///
/// The set must not change while a session uses it (symbols sent early and late must describe
/// the same set); take a snapshot, or implement this over a read transaction.
pub trait SymbolSource {
    /// Number of keys in the set.
    fn key_count(&self) -> u64;
    /// Coded symbols `from..from + count` of the set. `count` is bounded by the session's
    /// [`Config`](super::Config).
    fn symbols(&self, from: u64, count: usize) -> Vec<CodedSymbol>;
    /// Whether `key` is in the set.
    fn contains(&self, key: u64) -> bool;
    /// Every key of the set, ascending, without duplicates.
    fn sorted_keys(&self) -> Vec<u64>;
}

impl<T: SymbolSource + ?Sized> SymbolSource for &T {
    fn key_count(&self) -> u64 {
        (**self).key_count()
    }
    fn symbols(&self, from: u64, count: usize) -> Vec<CodedSymbol> {
        (**self).symbols(from, count)
    }
    fn contains(&self, key: u64) -> bool {
        (**self).contains(key)
    }
    fn sorted_keys(&self) -> Vec<u64> {
        (**self).sorted_keys()
    }
}

/// An immutable key set with its [`Encoder`]: the ready-made [`SymbolSource`].
#[derive(Clone, Debug)]
pub struct SetSnapshot {
    keys: Vec<u64>,
    encoder: Encoder,
}

impl SetSnapshot {
    /// A snapshot of `keys` (duplicates are dropped), building the encoder from scratch:
    /// O(N · log PREFIX).
    pub fn new<I: IntoIterator<Item = u64>>(keys: I) -> Self {
        let mut keys: Vec<u64> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let encoder = Encoder::from_keys(keys.iter().copied());
        SetSnapshot { keys, encoder }
    }

    /// A snapshot from keys and an encoder the caller kept up to date incrementally (cheap: no
    /// re-encoding). Checks, in O(N), that the encoder's size and symbol 0 match the keys.
    pub fn from_parts(mut keys: Vec<u64>, encoder: Encoder) -> Result<Self, ReconcileError> {
        keys.sort_unstable();
        keys.dedup();
        if encoder.len() != keys.len() as u64 {
            return Err(ReconcileError::InvalidSnapshot(
                "encoder size differs from key count",
            ));
        }
        let mut zero = CodedSymbol::ZERO;
        for &key in &keys {
            zero.add_key(key);
        }
        if encoder.prefix().first().is_some_and(|s| *s != zero) {
            return Err(ReconcileError::InvalidSnapshot(
                "encoder symbol 0 differs from keys",
            ));
        }
        Ok(SetSnapshot { keys, encoder })
    }

    /// The keys, ascending.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }
}

impl SymbolSource for SetSnapshot {
    fn key_count(&self) -> u64 {
        self.keys.len() as u64
    }
    fn symbols(&self, from: u64, count: usize) -> Vec<CodedSymbol> {
        let end = from.saturating_add(count as u64);
        self.encoder.symbols(from..end, self.keys.iter().copied())
    }
    fn contains(&self, key: u64) -> bool {
        self.keys.binary_search(&key).is_ok()
    }
    fn sorted_keys(&self) -> Vec<u64> {
        self.keys.clone()
    }
}

/// `(a \ b, b \ a)` of two ascending lists.
pub(crate) fn sorted_differences(a: &[u64], b: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => {
                only_a.push(x);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                only_b.push(y);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    only_a.extend(a.get(i..).unwrap_or_default());
    only_b.extend(b.get(j..).unwrap_or_default());
    (only_a, only_b)
}
