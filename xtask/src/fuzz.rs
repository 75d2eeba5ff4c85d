//! `cargo xtask fuzz`: the fuzz targets in `fuzz/` (outside the workspace).
//!
//! Building needs only the stable toolchain. Running needs cargo-fuzz
//! (`cargo install cargo-fuzz`); on a stable toolchain it runs without a sanitizer
//! (`--sanitizer none`), which still gives coverage-guided fuzzing.

use anyhow::{Context as _, Result, bail};

use crate::util::{self, cargo, step};

/// Compiles every fuzz target, reusing the workspace's dependency versions and build cache.
pub(crate) fn build() -> Result<()> {
    step("fuzz targets compile");
    let root = util::root();
    // Start from the workspace lock file so the fuzz crate builds the same versions.
    std::fs::copy(root.join("Cargo.lock"), root.join("fuzz/Cargo.lock"))
        .context("copying Cargo.lock into fuzz/")?;
    util::run(
        cargo()
            .args(["build", "--manifest-path", "fuzz/Cargo.toml", "--bins"])
            .env("CARGO_TARGET_DIR", root.join("target/fuzz")),
    )
}

/// Runs one target for `seconds`, starting from its seed corpus.
pub(crate) fn run(target: Option<&str>, seconds: u64) -> Result<()> {
    let Some(target) = target else { return build() };
    if !util::have("cargo-fuzz") {
        bail!("cargo-fuzz is not installed: `cargo install cargo-fuzz --locked`");
    }
    let root = util::root();
    let corpus = root.join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    step(&format!("fuzz {target} for {seconds}s"));
    util::run(
        cargo()
            .current_dir(root.join("fuzz"))
            .args(["fuzz", "run", "--sanitizer", "none", target])
            .arg(&corpus)
            .arg(root.join("fuzz/seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}")),
    )
}
