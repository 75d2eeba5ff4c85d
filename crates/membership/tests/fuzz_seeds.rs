//! Runs the mesh-core fuzz body over its seed corpus and over mutations of each seed.

use std::path::Path;

use peergroup_membership::fuzz_targets::mesh_core;

#[test]
fn mesh_core_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/mesh_core");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {} missing: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 4, "too few seeds");
    for seed in &seeds {
        mesh_core(seed);
        for i in (0..seed.len()).step_by(7) {
            let mut m = seed.clone();
            m[i] ^= 0x5a;
            mesh_core(&m);
            mesh_core(&seed[..i]);
        }
    }
}
