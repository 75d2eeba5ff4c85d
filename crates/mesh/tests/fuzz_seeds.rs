//! Runs the mesh fuzz bodies over their seed corpora in `fuzz/seeds/<target>/`, over
//! mutations of each seed, and over inputs from a fixed pseudo-random sequence.

use std::path::{Path, PathBuf};

use peergroup_mesh::fuzz_targets::{mesh_core, mesh_signed, signed_records};

fn seed_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = seed_dir(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {} missing: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 4, "too few seeds in {}", dir.display());
    seeds
}

/// Inputs of every length up to `max` from a fixed sequence (splitmix64).
fn pseudo_random(count: usize, max: usize) -> Vec<Vec<u8>> {
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|i| {
            let len = (i * 37) % max;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect()
}

#[test]
fn mesh_core_seeds() {
    for seed in &seeds("mesh_core") {
        mesh_core(seed);
        for i in (0..seed.len()).step_by(7) {
            let mut m = seed.clone();
            m[i] ^= 0x5a;
            mesh_core(&m);
            mesh_core(&seed[..i]);
        }
    }
}

#[test]
fn signed_records_seeds() {
    for seed in &seeds("signed_records") {
        signed_records(seed);
        for i in (0..seed.len()).step_by(11) {
            let mut m = seed.clone();
            m[i] ^= 0x5a;
            signed_records(&m);
            signed_records(&seed[..i]);
        }
    }
}

#[test]
fn signed_records_pseudo_random() {
    for input in pseudo_random(400, 1500) {
        signed_records(&input);
    }
}

#[test]
fn mesh_signed_seeds() {
    for seed in &seeds("mesh_signed") {
        mesh_signed(seed);
        for i in (0..seed.len()).step_by(16) {
            let mut m = seed.clone();
            m[i] ^= 0x5a;
            mesh_signed(&m);
            mesh_signed(&seed[..i]);
        }
    }
}

#[test]
fn mesh_signed_pseudo_random() {
    for input in pseudo_random(300, 1500) {
        mesh_signed(&input);
    }
}

/// Writes seeds for `signed_records`: `cargo test -p peergroup-mesh --test fuzz_seeds
/// -- --ignored write_signed_records_seeds`.
#[test]
#[ignore = "writes the seed corpus"]
fn write_signed_records_seeds() {
    let dir = seed_dir("signed_records");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, input) in pseudo_random(64, 1500)
        .into_iter()
        .enumerate()
        .skip(40)
        .step_by(4)
    {
        std::fs::write(dir.join(format!("random-{i:02}.bin")), input).unwrap();
    }
}

/// Writes seeds for `mesh_signed` (the first byte odd: two cores).
#[test]
#[ignore = "writes the seed corpus"]
fn write_mesh_signed_seeds() {
    let dir = seed_dir("mesh_signed");
    std::fs::create_dir_all(&dir).unwrap();
    let inputs = pseudo_random(64, 1500).into_iter().enumerate();
    for (i, mut input) in inputs.skip(41).step_by(4) {
        if let Some(b) = input.first_mut() {
            *b |= 1;
        }
        std::fs::write(dir.join(format!("random-{i:02}.bin")), input).unwrap();
    }
}
