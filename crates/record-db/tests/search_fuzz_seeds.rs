//! Runs the search fuzz bodies over their seed corpora in `fuzz/seeds/<target>/`, and checks
//! that seeds named `valid-*` parse and seeds named `invalid-*` do not.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed unwrap or panic is a failed test"
)]

use std::path::{Path, PathBuf};

use peergroup_record_db::search::{Attributes, Query, fuzz};

fn seeds(dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(dir);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("seed corpus {} missing: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    assert!(out.len() >= 4, "too few seeds in {}", dir.display());
    out.sort();
    out
}

fn expect_valid(path: &Path, ok: bool, error: impl std::fmt::Debug) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.starts_with("valid-") {
        assert!(ok, "{name} should parse: {error:?}");
    } else if name.starts_with("invalid-") {
        assert!(!ok, "{name} should not parse");
    }
}

#[test]
fn attributes_xml_seeds() {
    for (path, seed) in seeds(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/seeds/attributes_xml"
    )) {
        fuzz::attributes_xml(&seed);
        let parsed = Attributes::parse(&String::from_utf8_lossy(&seed));
        expect_valid(&path, parsed.is_ok(), parsed.err());
    }
}

#[test]
fn search_xml_seeds() {
    for (path, seed) in seeds(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/seeds/search_xml"
    )) {
        fuzz::search_xml(&seed);
        let parsed = Query::parse(&String::from_utf8_lossy(&seed));
        expect_valid(&path, parsed.is_ok(), parsed.err());
    }
}

#[test]
fn bodies_survive_odd_bytes() {
    for data in [
        &b""[..],
        b"\xff\xfe<\x00a\x00",
        b"<attributes>\xc3</attributes>",
        b"<peersearch><clause attrib=\"a\" type=\"string\">\xf0\x9f</clause></peersearch>",
        b"\0\0\0",
    ] {
        fuzz::attributes_xml(data);
        fuzz::search_xml(data);
    }
}
