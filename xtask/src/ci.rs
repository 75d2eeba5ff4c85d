//! `cargo xtask ci`: what CI checks, in order, stopping at the first failure.

use anyhow::{Result, bail};

use crate::util::{self, cargo, step};

pub(crate) fn run(quick: bool) -> Result<()> {
    step("format");
    util::run(cargo().args(["fmt", "--all", "--", "--check"]))?;

    step("clippy (warnings denied)");
    // Library and binary code: every lint, warnings denied.
    util::run(cargo().args([
        "clippy",
        "--workspace",
        "--lib",
        "--bins",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Tests, benches and examples may unwrap and panic: that is how a test fails.
    util::run(cargo().args([
        "clippy",
        "--workspace",
        "--tests",
        "--benches",
        "--examples",
        "--",
        "-D",
        "warnings",
        "-A",
        "clippy::unwrap_used",
        "-A",
        "clippy::expect_used",
        "-A",
        "clippy::panic",
    ]))?;

    layers()?;

    step("tests");
    // Some tests call openssl and xmllint (certificates and XML read by the real tools):
    // install them first, as the interop step would, or a fresh machine fails here.
    util::ensure_tools(&[("openssl", "openssl"), ("xmllint", "libxml2-utils")], &[])?;
    util::run(cargo().args(["test", "--workspace", "--no-fail-fast"]))?;

    if !quick {
        step("supply chain (cargo deny)");
        deny()?;

        crate::interop::run()?;
        // Where the machine allows network namespaces (root), run the multi-host test too.
        crate::netns::run()?;
        crate::netns::nat()?;
        // The simulator: every scenario (50 to 1,000 nodes, loss, partition, churn), each
        // failing on a broken goal (RMR, missed deliveries, convergence p99).
        crate::sim::run_all(false)?;
        // The chat's terminal UI through tmux, a one-minute soak, and the demo.
        crate::tui_test::run()?;
        crate::soak::run(1.0, 8, 1)?;
        crate::hostile::run(true, &[])?;
        step("demo");
        util::run(cargo().args(["run", "-q", "-p", "peergroup-cli", "--", "demo"]))?;
    }

    crate::fuzz::build()?;

    eprintln!("\nci: all steps passed");
    Ok(())
}

/// `cargo deny check`. The advisory database lives on github.com; where that cannot be
/// reached (some CI sandboxes reach only package registries) the advisory check is reported
/// as not run and the other checks (bans, licenses, sources) must still pass.
fn deny() -> Result<()> {
    util::ensure_tools(&[], &[("cargo-deny", "cargo-deny")])?;
    let out = util::capture(cargo().args(["deny", "check"]))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        eprintln!("{}", stderr.lines().last().unwrap_or("cargo deny: ok"));
        return Ok(());
    }
    if stderr.contains("failed to fetch advisory database") {
        eprintln!(
            "warning: the RustSec advisory database could not be fetched (no route to github.com); \
             advisories NOT checked in this run"
        );
        return util::run(cargo().args(["deny", "check", "bans", "licenses", "sources"]));
    }
    eprintln!("{stderr}");
    bail!("cargo deny check failed")
}

/// Crates that do IO: none may be in the mesh protocol crate's dependency tree.
const IO_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "if-addrs",
    "mdns-sd",
    "rustls",
    "tokio-rustls",
];

/// The mesh protocol crate is sans-IO in fact: its (normal) dependency tree holds no
/// runtime, socket or TLS crate.
fn layers() -> Result<()> {
    step("layers: the mesh protocol crate has no runtime, socket or TLS crate");
    let out = util::capture(cargo().args([
        "tree",
        "-p",
        "peergroup-mesh",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]))?;
    if !out.status.success() {
        bail!(
            "cargo tree -p peergroup-mesh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let found: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| IO_CRATES.contains(name))
        .collect();
    if !found.is_empty() {
        bail!("peergroup-mesh depends on IO crates: {found:?}");
    }
    let names: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    eprintln!(
        "peergroup-mesh: {} crates in its tree, none of {IO_CRATES:?}",
        names.len()
    );
    Ok(())
}
