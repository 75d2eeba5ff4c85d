//! `cargo xtask hostile [--short] [--only ATTACK]…`: the hostile-peer suite
//! (`crates/hostile`, described in `docs/hostile.md`). Builds `peergroup` and
//! `peergroup-hostile`, then runs every attack against a real `peergroup run` node over
//! loopback; fails when any bound (memory, an honest member's sync time, records kept, the
//! attack's own checks) is not met. `--short` is the CI form (a few minutes on 2 cores).

use std::process::Command;

use anyhow::Result;

use crate::util::{self, cargo, step};

pub(crate) fn run(short: bool, only: &[String]) -> Result<()> {
    step(if short {
        "hostile-peer suite (short)"
    } else {
        "hostile-peer suite"
    });
    util::run(cargo().args([
        "build",
        "-q",
        "-p",
        "peergroup-cli",
        "-p",
        "peergroup-hostile",
    ]))?;
    let bin = util::root().join("target/debug");
    let mut cmd = Command::new(bin.join("peergroup-hostile"));
    cmd.current_dir(util::root())
        .arg("--exe")
        .arg(bin.join("peergroup"));
    if short {
        cmd.arg("--short");
    }
    for attack in only {
        cmd.args(["--only", attack]);
    }
    util::run(&mut cmd)
}
