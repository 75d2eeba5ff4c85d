//! `cargo xtask sim <scenario>`: runs a scenario of `crates/membership/scenarios/` (a name or a
//! path) in the simulator, optimised, and prints its report.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::util::{self, cargo, step};

pub(crate) fn run(scenario: &str) -> Result<()> {
    let root = util::root();
    let dir = root.join("crates/membership/scenarios");
    let path = [
        PathBuf::from(scenario),
        dir.join(scenario),
        dir.join(format!("{scenario}.toml")),
    ]
    .into_iter()
    .find(|p| p.is_file());
    let Some(path) = path else {
        let names: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.path()
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .collect();
        bail!("no scenario {scenario:?}; available: {}", names.join(", "));
    };
    step(&format!("simulate {}", path.display()));
    util::run(
        cargo()
            .args([
                "run",
                "--release",
                "-q",
                "-p",
                "peergroup-membership",
                "--example",
                "simulate",
                "--",
            ])
            .arg(path),
    )
}
