//! Runs the record-decoding fuzz body over its seed corpus, and over signed records and
//! mutations of them.

use std::path::Path;

use peergroup_record_db::fuzz_targets::record_decode;

fn seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/record_decode");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {} missing: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    out
}

#[test]
fn record_decode_seeds() {
    let seeds = seeds();
    assert!(seeds.len() >= 4, "too few seeds");
    let mut decoded = 0;
    for seed in &seeds {
        record_decode(seed);
        decoded += usize::from(peergroup_record_db::codec::decode(seed).is_ok());
        // Every single-byte mutation and every prefix must be handled without a panic.
        for i in 0..seed.len().min(300) {
            let mut m = seed.clone();
            m[i] ^= 0x41;
            record_decode(&m);
            record_decode(&seed[..i]);
        }
    }
    assert!(decoded >= 2, "no valid record among the seeds");
}
