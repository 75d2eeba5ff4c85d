//! The core's randomness, all from the [`Seed`] it is given: a small generator (splitmix64)
//! for mesh decisions and [`RecordIds`] for the ids of the records it publishes. Nothing draws
//! from a global generator, so a seed reproduces a run (the simulator) and a node's driver
//! gives each core a seed from the operating system.

/// splitmix64.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The randomness a core is given: 32 bytes, from the operating system in a real node, from
/// a scenario's seed in the simulator.
#[derive(Clone)]
pub struct Seed(pub [u8; 32]);

impl Seed {
    /// A seed spread from a 64-bit number (the simulator, tests, fuzzing): mesh decisions get
    /// exactly `n` as their generator's seed.
    pub fn from_u64(n: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        let mut spread = Rng::new(n);
        for chunk in bytes[8..].chunks_mut(8) {
            chunk.copy_from_slice(&spread.next_u64().to_le_bytes());
        }
        Seed(bytes)
    }

    /// The seed of the generator for mesh decisions (the first 8 bytes).
    pub fn mesh(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(first)
    }
}

/// Never printed: it would let anyone predict the core's choices and ids.
impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(..)")
    }
}

/// The nonces of the ids of records a core publishes: the first 8 bytes of
/// SHA-256(seed ‖ counter), so ids are unpredictable without the seed and tell nothing of it
/// (the mesh generator's outputs, which neighbors can partly observe, never make an id).
#[derive(Clone)]
pub struct RecordIds {
    seed: Seed,
    counter: u64,
}

impl RecordIds {
    /// Ids from `seed`.
    pub fn new(seed: Seed) -> Self {
        RecordIds { seed, counter: 0 }
    }

    /// The next nonce (see [`RecordId::derive`](peergroup_record_db::RecordId::derive)).
    pub fn next_nonce(&mut self) -> [u8; 8] {
        let mut input = [0u8; 40];
        input[..32].copy_from_slice(&self.seed.0);
        input[32..].copy_from_slice(&self.counter.to_be_bytes());
        self.counter = self.counter.wrapping_add(1);
        let digest = peergroup_identity::sha256(&input);
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&digest[..8]);
        nonce
    }
}

impl std::fmt::Debug for RecordIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordIds")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_reproduces_ids_and_different_seeds_differ() {
        let mut a = RecordIds::new(Seed::from_u64(1));
        let mut b = RecordIds::new(Seed::from_u64(1));
        let mut c = RecordIds::new(Seed::from_u64(2));
        let first: Vec<[u8; 8]> = (0..100).map(|_| a.next_nonce()).collect();
        let again: Vec<[u8; 8]> = (0..100).map(|_| b.next_nonce()).collect();
        let other: Vec<[u8; 8]> = (0..100).map(|_| c.next_nonce()).collect();
        assert_eq!(first, again);
        assert_ne!(first, other);
        let mut unique = first.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 100, "nonces repeat");
        assert_eq!(Seed::from_u64(42).mesh(), 42);
        assert_eq!(format!("{:?}", Seed::from_u64(42)), "Seed(..)");
    }
}
