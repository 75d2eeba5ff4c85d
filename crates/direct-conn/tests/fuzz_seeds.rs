//! Runs the direct-connection fuzz bodies over their seed corpora in `fuzz/seeds/direct_frame/`
//! and `fuzz/seeds/direct_handshake/`.

use std::path::Path;

use peergroup_direct_conn::wire::{self, DirectFrame};

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/direct_frame");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {} missing: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    assert!(out.len() >= 4, "too few seeds in {}", dir.display());
    out.sort();
    out
}

#[test]
fn direct_frame_seeds() {
    for (_, seed) in seeds() {
        peergroup_direct_conn::fuzz_targets::direct_frame(&seed);
    }
}

#[test]
fn direct_frame_survives_mutations_of_the_seeds() {
    // A poor man's fuzzer: every seed with each byte flipped, truncated at every length.
    for (_, seed) in seeds() {
        for i in 0..seed.len() {
            let mut s = seed.clone();
            s[i] ^= 0xff;
            peergroup_direct_conn::fuzz_targets::direct_frame(&s);
            peergroup_direct_conn::fuzz_targets::direct_frame(&seed[..i]);
        }
    }
}

#[test]
fn the_seeds_are_what_their_names_say() {
    for (name, seed) in seeds() {
        let decoded = wire::decode(&bytes::Bytes::from(seed));
        let ok = match name.split(['-', '.']).next().unwrap() {
            "hello" => matches!(decoded, Ok(DirectFrame::Hello(_))),
            "welcome" => matches!(decoded, Ok(DirectFrame::Welcome(_))),
            "data" => matches!(decoded, Ok(DirectFrame::Data { .. })),
            "bad" => decoded.is_err(),
            other => panic!("seed {name}: unknown kind {other}"),
        };
        assert!(ok, "seed {name} decodes to {decoded:?}");
    }
}

/// The protocol machine's fuzz body over its seeds in `fuzz/seeds/direct_handshake/`, each
/// also with every byte flipped and cut at every length.
#[test]
fn direct_handshake_seeds_and_their_mutations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/direct_handshake");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {} missing: {e}", dir.display()))
    {
        let seed = std::fs::read(entry.unwrap().path()).unwrap();
        peergroup_direct_conn::fuzz_targets::direct_handshake(&seed);
        for i in 0..seed.len() {
            let mut s = seed.clone();
            s[i] ^= 0xff;
            peergroup_direct_conn::fuzz_targets::direct_handshake(&s);
            peergroup_direct_conn::fuzz_targets::direct_handshake(&seed[..i]);
        }
        count += 1;
    }
    assert!(count >= 4, "too few seeds in {}", dir.display());
}
