//! The two fixed, deterministic hash functions of the reconciliation protocol.
//!
//! Both are part of the wire contract: two peers must compute identical values, so neither may
//! change without bumping [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).

/// SipHash key (k0, k1) for check sums: the ASCII bytes `"peergrp-reconcl1"` read as two
/// little-endian `u64` words. Public and fixed, so a peer can precompute symbols.
const CHECK_KEY: (u64, u64) = (
    u64::from_le_bytes(*b"peergrp-"),
    u64::from_le_bytes(*b"reconcl1"),
);

/// The check-sum hash of an item key: SipHash-1-3 keyed with `(k0, k1)` = the ASCII bytes
/// `"peergrp-reconcl1"` as two little-endian `u64` words, over the key's 8
/// little-endian bytes.
///
/// A coded symbol is *pure* (holds exactly one key) when its count is ±1 and its check sum equals
/// `check_hash(key_sum)`. SipHash is non-linear, so XOR-ing several keys does not fake a pure
/// symbol except with probability about 2⁻⁶⁴.
pub fn check_hash(key: u64) -> u64 {
    siphash::<1, 3>(CHECK_KEY.0, CHECK_KEY.1, key)
}

/// SipHash-c-d of the 8-byte little-endian encoding of `message` (the reference algorithm
/// specialised to one 8-byte block plus the length block).
pub(crate) fn siphash<const C: usize, const D: usize>(k0: u64, k1: u64, message: u64) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    // The message block, then the final block: length (8) in the top byte, no tail bytes.
    for block in [message, 8u64 << 56] {
        v[3] ^= block;
        for _ in 0..C {
            sip_round(&mut v);
        }
        v[0] ^= block;
    }
    v[2] ^= 0xff;
    for _ in 0..D {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// One step of SplitMix64 (Steele, Lea, Flood 2014): advances `state` by the golden-ratio gamma
/// and returns the mixed output. Used as the per-key PRNG of the index mapping and by the
/// measurement helpers.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hasher;

    #[test]
    #[allow(deprecated)] // std's SipHasher is SipHash-2-4; it checks our generic implementation.
    fn siphash_2_4_matches_std() {
        let mut state = 7;
        for _ in 0..1000 {
            let (k0, k1, m) = (
                splitmix64(&mut state),
                splitmix64(&mut state),
                splitmix64(&mut state),
            );
            let mut std_hasher = std::hash::SipHasher::new_with_keys(k0, k1);
            std_hasher.write(&m.to_le_bytes());
            assert_eq!(siphash::<2, 4>(k0, k1, m), std_hasher.finish());
        }
    }

    #[test]
    fn splitmix64_reference_values() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut state = 1_234_567;
        assert_eq!(splitmix64(&mut state), 6_457_827_717_110_365_317);
        assert_eq!(splitmix64(&mut state), 3_203_168_211_198_807_973);
    }
}
