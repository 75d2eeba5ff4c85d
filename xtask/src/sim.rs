//! `cargo xtask sim <scenario>`: runs a scenario of `crates/mesh/scenarios/` (a name or a
//! path, `all`, or `scale` for the 10,000-node ones of `scale/`) in the simulator, optimised, and prints its report; fails when the run
//! broke one of the scenario's goals.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::util::{self, cargo, step};

/// The scenarios of `crates/mesh/scenarios/` (CI runs them all) or, with `scale`, of its
/// `scale/` folder (10,000 nodes: minutes each, run by `cargo xtask bench`), by name.
pub(crate) fn names(scale: bool) -> Result<Vec<String>> {
    let mut dir = util::root().join("crates/mesh/scenarios");
    if scale {
        dir.push("scale");
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|n| if scale { format!("scale/{n}") } else { n })
        .collect();
    names.sort();
    Ok(names)
}

/// Runs every scenario (or every scale scenario), and fails if any broke a goal (after
/// running them all).
pub(crate) fn run_all(scale: bool) -> Result<()> {
    let mut failed = Vec::new();
    for name in &names(scale)? {
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
    if scenario == "all" || scenario == "scale" {
        return run_all(scenario == "scale");
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
