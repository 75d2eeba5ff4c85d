//! `cargo xtask sim <scenario>`: runs a scenario of `crates/mesh/scenarios/` (a name or a
//! path, or `all`) in the simulator, optimised, and prints its report; fails when the run
//! broke one of the scenario's goals.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::util::{self, cargo, step};

/// Runs every scenario, and fails if any broke a goal (after running them all).
pub(crate) fn run_all() -> Result<()> {
    let dir = util::root().join("crates/mesh/scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let mut failed = Vec::new();
    for name in &names {
        if let Err(e) = run(name) {
            eprintln!("{name}: {e:#}");
            failed.push(name.clone());
        }
    }
    if !failed.is_empty() {
        bail!("simulation goals NOT met in: {}", failed.join(", "));
    }
    Ok(())
}

pub(crate) fn run(scenario: &str) -> Result<()> {
    if scenario == "all" {
        return run_all();
    }
    let root = util::root();
    let dir = root.join("crates/mesh/scenarios");
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
                "peergroup-mesh",
                "--example",
                "simulate",
                "--",
            ])
            .arg(path),
    )
}
