//! Measurement helpers for tests, benchmarks and reports: deterministic key sets with a chosen
//! difference, an in-memory driver for two sessions, and the resulting traffic.

use std::collections::BTreeSet;
use std::fmt;

use super::config::{Config, Outcome};
use super::error::ReconcileError;
use super::hash::splitmix64;
use super::session::Session;
use super::source::{SetSnapshot, SymbolSource};

/// How the two sets of a measurement differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffShape {
    /// `d` keys picked at random from the common set of `n`: the first ⌈d/2⌉ are missing from
    /// the initiator, the other ⌊d/2⌋ from the responder (sizes differ by at most 1).
    Scattered(usize),
    /// The initiator lacks the `d` newest of the responder's `n` keys (sizes differ by `d`).
    Recent(usize),
}

impl DiffShape {
    /// The size of the symmetric difference.
    pub fn d(self) -> usize {
        match self {
            DiffShape::Scattered(d) | DiffShape::Recent(d) => d,
        }
    }
}

/// What one reconciliation cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// Keys in the union of the two sets.
    pub n: usize,
    /// The difference.
    pub shape: DiffShape,
    /// Bytes initiator → responder (postcard message sizes).
    pub initiator_to_responder: u64,
    /// Bytes responder → initiator.
    pub responder_to_initiator: u64,
    /// Messages exchanged.
    pub messages: u64,
    /// [`Stats::round_trips`](super::Stats::round_trips).
    pub round_trips: u64,
    /// Coded symbols sent by the initiator.
    pub symbols: u64,
    /// Keys sent in key lists and `Done` (both directions).
    pub keys: u64,
    /// Both outcomes equal the true differences.
    pub correct: bool,
    /// The error, if the sessions failed.
    pub error: Option<ReconcileError>,
}

impl Measurement {
    /// Total bytes in both directions.
    pub fn total_bytes(&self) -> u64 {
        self.initiator_to_responder + self.responder_to_initiator
    }

    /// Total bytes divided by the size of the difference (total bytes when d = 0).
    pub fn bytes_per_difference(&self) -> f64 {
        self.total_bytes() as f64 / self.shape.d().max(1) as f64
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "N={:>8} {:<16} bytes={:>7} (I→R {:>7}, R→I {:>6}) {:>7.1} B/diff  RT={} msgs={} \
             symbols={} keys={} correct={}",
            self.n,
            format!("{:?}", self.shape),
            self.total_bytes(),
            self.initiator_to_responder,
            self.responder_to_initiator,
            self.bytes_per_difference(),
            self.round_trips,
            self.messages,
            self.symbols,
            self.keys,
            self.correct,
        )?;
        if let Some(e) = &self.error {
            write!(f, " error={e}")?;
        }
        Ok(())
    }
}

/// `n` distinct pseudo-random keys from `seed`, oldest first.
pub fn random_keys(n: usize, seed: u64) -> Vec<u64> {
    let mut state = seed;
    let mut seen = BTreeSet::new();
    let mut keys = Vec::with_capacity(n);
    while keys.len() < n {
        let key = splitmix64(&mut state);
        if seen.insert(key) {
            keys.push(key);
        }
    }
    keys
}

/// The (initiator, responder) key sets of `n` keys in the union differing as `shape` says
/// (`d` is clamped to `n`).
pub fn key_sets(n: usize, shape: DiffShape, seed: u64) -> (Vec<u64>, Vec<u64>) {
    let base = random_keys(n, seed);
    match shape {
        DiffShape::Recent(d) => {
            let keep = n - d.min(n);
            (base.get(..keep).unwrap_or_default().to_vec(), base)
        }
        DiffShape::Scattered(d) => {
            let d = d.min(n);
            let mut state = seed ^ 0x5ca7_7e3e_d000_0000;
            let mut picked = Vec::with_capacity(d);
            let mut seen = BTreeSet::new();
            while picked.len() < d {
                let index = (splitmix64(&mut state) % n as u64) as usize;
                if seen.insert(index) {
                    picked.push(index);
                }
            }
            let (from_initiator, from_responder) = picked.split_at(d.div_ceil(2));
            let without = |drop: &[usize]| -> Vec<u64> {
                let drop: BTreeSet<usize> = drop.iter().copied().collect();
                (0..n)
                    .filter(|i| !drop.contains(i))
                    .filter_map(|i| base.get(i).copied())
                    .collect()
            };
            (without(from_initiator), without(from_responder))
        }
    }
}

/// Passes messages between two sessions until neither has anything to send (at most 10 000
/// messages). Returns the first error either side reported.
pub fn drive<A: SymbolSource, B: SymbolSource>(
    initiator: &mut Session<A>,
    responder: &mut Session<B>,
) -> Result<(), ReconcileError> {
    for _ in 0..10_000 {
        let mut moved = false;
        while let Some(message) = initiator.poll_transmit() {
            responder.handle_message(message)?;
            moved = true;
        }
        while let Some(message) = responder.poll_transmit() {
            initiator.handle_message(message)?;
            moved = true;
        }
        if !moved {
            break;
        }
    }
    Ok(())
}

/// The expected outcome for a side holding `ours` against a peer holding `theirs`.
pub fn expected_outcome(ours: &[u64], theirs: &[u64]) -> Outcome {
    let ours: BTreeSet<u64> = ours.iter().copied().collect();
    let theirs: BTreeSet<u64> = theirs.iter().copied().collect();
    Outcome {
        local_only: ours.difference(&theirs).copied().collect(),
        remote_only: theirs.difference(&ours).copied().collect(),
    }
}

/// Reconciles two in-memory sets of `n` keys differing as `shape` says, with the default
/// [`Config`], and reports the traffic.
pub fn measure(n: usize, shape: DiffShape, seed: u64) -> Measurement {
    measure_with(n, shape, seed, Config::default())
}

/// [`measure`] with a chosen [`Config`].
pub fn measure_with(n: usize, shape: DiffShape, seed: u64, config: Config) -> Measurement {
    let (a, b) = key_sets(n, shape, seed);
    let mut initiator = Session::initiator(SetSnapshot::new(a.iter().copied()), config);
    let mut responder = Session::responder(SetSnapshot::new(b.iter().copied()), config);
    let error = drive(&mut initiator, &mut responder).err();
    let stats = initiator.stats();
    let correct = initiator.outcome() == Some(&expected_outcome(&a, &b))
        && responder.outcome() == Some(&expected_outcome(&b, &a));
    Measurement {
        n,
        shape,
        initiator_to_responder: stats.bytes_sent,
        responder_to_initiator: stats.bytes_received,
        messages: stats.messages_sent + stats.messages_received,
        round_trips: stats.round_trips(),
        symbols: stats.symbols_sent,
        keys: stats.keys_sent + stats.keys_received,
        correct,
        error,
    }
}
