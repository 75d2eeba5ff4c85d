//! Coded symbols, the index mapping, the encoder and the peeling decoder.

use std::collections::BTreeSet;

use peergroup_record_db::reconcile::measure::random_keys;
use peergroup_record_db::reconcile::{
    CodedSymbol, DecodeStatus, Decoder, Encoder, IndexSequence, PeelError, check_hash, density,
    symbols_of,
};
use proptest::prelude::*;

#[test]
fn index_sequence_starts_at_zero_and_increases() {
    for key in random_keys(2000, 1) {
        let indices: Vec<u64> = IndexSequence::new(key).take(50).collect();
        assert_eq!(indices.first(), Some(&0));
        assert!(indices.windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn index_sequence_is_deterministic() {
    let a: Vec<u64> = IndexSequence::new(42).take(30).collect();
    let b: Vec<u64> = IndexSequence::new(42).take(30).collect();
    assert_eq!(a, b);
    let c: Vec<u64> = IndexSequence::new(43).take(30).collect();
    assert_ne!(a, c);
}

/// Over many keys, the fraction landing on index i follows 1/(1 + i/2), checked per octave
/// of indices (and exactly at the first few indices).
#[test]
fn index_density_is_one_over_one_plus_half_i() {
    const KEYS: usize = 20_000;
    const END: u64 = 8192;
    let mut hits = vec![0u64; END as usize];
    for key in random_keys(KEYS, 7) {
        for i in IndexSequence::new(key).take_while(|&i| i < END) {
            hits[i as usize] += 1;
        }
    }
    let mut buckets = vec![(0u64, 1u64), (1, 2), (2, 3), (3, 4)];
    let mut lo = 4;
    while lo < END {
        buckets.push((lo, lo * 2));
        lo *= 2;
    }
    for (lo, hi) in buckets {
        let observed: u64 = hits[lo as usize..hi as usize].iter().sum();
        let expected: f64 = (lo..hi).map(density).sum::<f64>() * KEYS as f64;
        let ratio = observed as f64 / expected;
        println!(
            "indices {lo:>5}..{hi:<5} observed {observed:>7} expected {expected:>9.1} ratio {ratio:.3}"
        );
        assert!(
            (0.93..1.07).contains(&ratio),
            "bucket {lo}..{hi}: ratio {ratio}"
        );
    }
}

#[test]
fn symbol_arithmetic() {
    let mut s = CodedSymbol::ZERO;
    s.add_key(5);
    assert_eq!(s.pure_key(), Some((5, 1)));
    s.add_key(9);
    assert_eq!(s.pure_key(), None);
    s.remove_key(5);
    s.remove_key(9);
    assert!(s.is_zero());
    s.remove_key(77);
    assert_eq!(s.pure_key(), Some((77, -1)));
    assert_eq!(s.check_sum, check_hash(77));
    let mut t = CodedSymbol::ZERO;
    t.add_key(77);
    assert_eq!(t.subtract(&t), CodedSymbol::ZERO);
}

#[test]
fn symbols_of_ranges_concatenate() {
    let keys = random_keys(500, 3);
    let whole = symbols_of(keys.iter().copied(), 0..300);
    let a = symbols_of(keys.iter().copied(), 0..17);
    let b = symbols_of(keys.iter().copied(), 17..300);
    assert_eq!([a, b].concat(), whole);
    assert_eq!(whole[0].count, 500);
}

#[test]
fn encoder_beyond_prefix_uses_the_keys() {
    let keys = random_keys(300, 4);
    let encoder = Encoder::from_keys(keys.iter().copied());
    let scratch = symbols_of(keys.iter().copied(), 4000..4200);
    assert_eq!(encoder.symbols(4000..4200, keys.iter().copied()), scratch);
    // Inside the prefix the key iterator is not needed.
    assert_eq!(
        encoder.symbols(10..20, std::iter::empty()),
        symbols_of(keys.iter().copied(), 10..20)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Incremental inserts and removes give the same prefix as encoding the final set afresh.
    #[test]
    fn encoder_incremental_equals_scratch(
        ops in prop::collection::vec((any::<bool>(), 0u64..200), 0..400),
        prefix in 1usize..300,
    ) {
        let keys = random_keys(200, 11);
        let mut set = BTreeSet::new();
        let mut encoder = Encoder::with_prefix(prefix);
        for (insert, i) in ops {
            let key = keys[i as usize];
            if insert && set.insert(key) {
                encoder.insert(key);
            } else if !insert && set.remove(&key) {
                encoder.remove(key);
            }
        }
        prop_assert_eq!(encoder.len(), set.len() as u64);
        prop_assert_eq!(encoder.prefix(), &symbols_of(set.iter().copied(), 0..prefix as u64)[..]);
        let end = prefix as u64 + 50;
        prop_assert_eq!(
            encoder.symbols(0..end, set.iter().copied()),
            symbols_of(set.iter().copied(), 0..end)
        );
    }

    /// Peeling the difference of two overlapping sets recovers exactly the difference, fed in
    /// one batch or in pieces.
    #[test]
    fn peeling_recovers_the_difference(
        common in 0usize..300, only_remote in 0usize..40, only_local in 0usize..40,
        seed in any::<u64>(), batch in 1usize..50,
    ) {
        let keys = random_keys(common + only_remote + only_local, seed);
        let (shared, rest) = keys.split_at(common);
        let (remote_extra, local_extra) = rest.split_at(only_remote);
        let remote: Vec<u64> = shared.iter().chain(remote_extra).copied().collect();
        let local: Vec<u64> = shared.iter().chain(local_extra).copied().collect();
        let mut decoder = Decoder::new();
        let mut status = DecodeStatus::NeedMore;
        let mut from = 0u64;
        while status == DecodeStatus::NeedMore && from < 2000 {
            let range = from..from + batch as u64;
            let r = symbols_of(remote.iter().copied(), range.clone());
            let l = symbols_of(local.iter().copied(), range);
            status = decoder.add_symbols(&r, &l).unwrap();
            from += batch as u64;
        }
        prop_assert_eq!(status, DecodeStatus::Decoded);
        let mut want_remote = remote_extra.to_vec();
        want_remote.sort_unstable();
        let mut want_local = local_extra.to_vec();
        want_local.sort_unstable();
        prop_assert_eq!(decoder.remote_only(), want_remote);
        prop_assert_eq!(decoder.local_only(), want_local);
    }
}

#[test]
fn identical_sets_decode_from_one_symbol() {
    let keys = random_keys(1000, 5);
    let s = symbols_of(keys.iter().copied(), 0..1);
    let mut decoder = Decoder::new();
    assert_eq!(decoder.add_symbols(&s, &s), Ok(DecodeStatus::Decoded));
    assert!(decoder.remote_only().is_empty() && decoder.local_only().is_empty());
}

#[test]
fn empty_decoder_is_not_decoded() {
    let mut decoder = Decoder::new();
    assert_eq!(decoder.add_symbols(&[], &[]), Ok(DecodeStatus::NeedMore));
    assert_eq!(decoder.estimate_difference(), 0.0);
}

#[test]
fn length_mismatch_is_an_error() {
    let mut decoder = Decoder::new();
    assert!(matches!(
        decoder.add_symbols(&[CodedSymbol::ZERO], &[]),
        Err(PeelError::LengthMismatch { .. })
    ));
}

/// A forged stream that makes the same key pure twice is rejected instead of looping.
#[test]
fn hostile_symbols_cannot_loop_the_decoder() {
    let key = 0x1234_5678_9abc_def0;
    let indices: Vec<u64> = IndexSequence::new(key).take_while(|&i| i < 64).collect();
    assert!(indices.len() >= 2);
    // Symbol indices[0] says +key; every other symbol of key is zero, so after peeling key
    // they read -key and would re-add it forever.
    let mut diffs = vec![CodedSymbol::ZERO; 64];
    diffs[indices[0] as usize].add_key(key);
    let mut decoder = Decoder::new();
    assert!(matches!(
        decoder.add_differences(&diffs),
        Err(PeelError::DuplicateKey(_)) | Err(PeelError::TooManyKeys)
    ));
}

#[test]
fn estimate_tracks_the_difference() {
    for d in [50usize, 200, 1000] {
        let keys = random_keys(5000 + d, d as u64);
        let (shared, extra) = keys.split_at(5000);
        let remote: Vec<u64> = shared.iter().chain(extra).copied().collect();
        let r = symbols_of(remote.iter().copied(), 0..32);
        let l = symbols_of(shared.iter().copied(), 0..32);
        let mut decoder = Decoder::new();
        decoder.add_symbols(&r, &l).unwrap();
        let estimate = decoder.estimate_difference();
        assert!(estimate >= d as f64 * 0.99, "d={d} estimate={estimate}");
    }
}

/// Tuning aid: the raw estimates (imbalance, moment, occupancy, combined) relative to d after m
/// symbols, for balanced and one-sided differences (run with --ignored --nocapture).
#[test]
#[ignore]
fn estimate_quality() {
    for one_sided in [false, true] {
        for d in [10usize, 30, 100, 300, 1000] {
            for m in [32usize, 64, 128, 256] {
                let mut parts = [vec![], vec![], vec![], vec![], vec![]];
                for t in 0..300 {
                    let keys = random_keys(d, (d * 7919 + t) as u64);
                    let split = if one_sided { d } else { d / 2 };
                    let (remote, local) = keys.split_at(split);
                    let r = symbols_of(remote.iter().copied(), 0..m as u64);
                    let l = symbols_of(local.iter().copied(), 0..m as u64);
                    let mut decoder = Decoder::new();
                    if decoder.add_symbols(&r, &l).unwrap() == DecodeStatus::Decoded {
                        continue;
                    }
                    let e = decoder.estimate();
                    let rec = e.recovered as f64;
                    parts[0].push((rec + e.imbalance) / d as f64);
                    parts[1].push((rec + e.moment) / d as f64);
                    parts[2].push((rec + e.occupancy) / d as f64);
                    parts[3].push(e.point() / d as f64);
                    parts[4].push(e.upper() / d as f64);
                }
                if parts[0].len() < 30 {
                    continue;
                }
                let mut line = format!(
                    "one_sided={one_sided:<5} d={d:>5} m={m:>4} n={:>3}",
                    parts[0].len()
                );
                for (name, v) in ["imb", "mom", "occ", "point", "upper"]
                    .iter()
                    .zip(parts.iter_mut())
                {
                    v.sort_by(f64::total_cmp);
                    let q = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
                    line += &format!(" | {name} {:.2} {:.2} {:.2}", q(0.1), q(0.5), q(0.9));
                }
                println!("{line}");
            }
        }
    }
}

/// Tuning aid: how many symbols decoding needs, by d, and how good the estimate is after the
/// first 32 symbols, for a balanced difference (run with --ignored --nocapture).
#[test]
#[ignore]
fn overhead_distribution() {
    for d in [1usize, 2, 5, 10, 20, 50, 100, 300, 1000] {
        let trials = if d >= 1000 { 100 } else { 400 };
        let mut needed = Vec::new();
        let mut estimates = Vec::new();
        for t in 0..trials {
            let keys = random_keys(d, (d * 1_000_003 + t) as u64);
            let (remote, local) = keys.split_at(d / 2);
            let end = 4 * d as u64 + 64;
            let r = symbols_of(remote.iter().copied(), 0..end);
            let l = symbols_of(local.iter().copied(), 0..end);
            let mut decoder = Decoder::new();
            let mut used = 0;
            for (i, (r, l)) in r.iter().zip(&l).enumerate() {
                if i == 32 {
                    estimates.push(decoder.estimate_difference() / d as f64);
                }
                used = i + 1;
                if decoder.add_symbols(&[*r], &[*l]).unwrap() == DecodeStatus::Decoded {
                    break;
                }
            }
            needed.push(used as f64 / d as f64);
        }
        needed.sort_by(f64::total_cmp);
        estimates.sort_by(f64::total_cmp);
        let q = |v: &[f64], p: f64| {
            v.get(((v.len().max(1) - 1) as f64 * p) as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!(
            "d={d:>5} needed/d: median {:.2} p90 {:.2} p99 {:.2} max {:.2} | \
             estimate@32/d: p5 {:.2} p10 {:.2} median {:.2} p90 {:.2}",
            q(&needed, 0.5),
            q(&needed, 0.9),
            q(&needed, 0.99),
            q(&needed, 1.0),
            q(&estimates, 0.05),
            q(&estimates, 0.1),
            q(&estimates, 0.5),
            q(&estimates, 0.9),
        );
    }
}
