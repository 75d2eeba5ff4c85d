//! Runs every fuzz body over every seed file in `fuzz/seeds/<target>/`, and checks that the
//! seeds are what their names say: `valid-*` parses, `invalid-*` does not.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::path::{Path, PathBuf};

use peergroup_invitation_xml::{
    GroupConfig, IdentityExport, IdentityInfo, Invitation, fuzz_targets,
};

type Body = fn(&[u8]);
type Parses = fn(&[u8]) -> bool;

const TARGETS: &[(&str, Body, Parses)] = &[
    ("identity_info", fuzz_targets::identity_info, |d| {
        IdentityInfo::parse_bytes(d).is_ok()
    }),
    ("invitation", fuzz_targets::invitation, |d| {
        Invitation::parse_bytes(d).is_ok()
    }),
    ("identity_export", fuzz_targets::identity_export, |d| {
        IdentityExport::parse_bytes(d).is_ok()
    }),
    ("group_config", fuzz_targets::group_config, |d| {
        GroupConfig::parse_bytes(d).is_ok()
    }),
];

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")
}

fn seed_files(target: &str) -> Vec<PathBuf> {
    let dir = seeds_dir().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read seeds in {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_body_runs_over_every_seed() {
    let mut runs = 0;
    for (seed_target, _, _) in TARGETS {
        for file in seed_files(seed_target) {
            let data = std::fs::read(&file).unwrap();
            for (_, body, _) in TARGETS {
                body(&data);
                runs += 1;
            }
        }
    }
    assert!(runs > 0);
}

#[test]
fn seeds_are_what_their_names_say() {
    for (target, _, parses) in TARGETS {
        let files = seed_files(target);
        let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            files.iter().any(|f| name(f).starts_with("valid"))
                && files.iter().any(|f| name(f).starts_with("invalid")),
            "{target} needs valid and invalid seeds"
        );
        for file in files {
            let n = name(&file);
            let ok = parses(&std::fs::read(&file).unwrap());
            if n.starts_with("valid") {
                assert!(ok, "seed {target}/{n} should parse");
            } else if n.starts_with("invalid") {
                assert!(!ok, "seed {target}/{n} should not parse");
            }
        }
    }
}
