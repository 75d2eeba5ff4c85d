//! Runs every fuzz body of this crate over its seed corpus in `fuzz/seeds/<target>/`.

use std::path::Path;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {} missing: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(out.len() >= 3, "too few seeds in {}", dir.display());
    out.sort();
    out
}

#[test]
fn cert_chain_seeds() {
    for seed in seeds("cert_chain") {
        peergroup_credential_roles::fuzz_targets::cert_chain(&seed);
    }
}
