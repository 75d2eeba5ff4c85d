//! `cargo xtask <command>`: the project's automation, one subcommand per job.
//!
//! - `ci`: everything CI checks (format, lints, tests, supply chain, interop, fuzz targets).
//! - `interop`: our certificates and XML checked by tools we did not write (openssl, xmllint).
//! - `netns`: members in network namespaces, with a link cut and a healed isolation.
//! - `sim`: run a simulation scenario of the mesh.
//! - `fuzz`: build the fuzz targets, or run one or all of them for a while.
//! - `bench`: the criterion benchmarks, a summary of the figures with goals, the simulations.
//! - `loaded`: the tests that wait on the network, run many times beside busy loops.
//! - `hostile`: attacks on a real node (floods, oversized frames, slow loris, expired
//!   members, malformed and deferred records, peer time, terminal escapes) with its bounds.

#![forbid(unsafe_code)]

mod bench;
mod ci;
mod fuzz;
mod hostile;
mod interop;
mod loaded;
mod netns;
mod sim;
mod soak;
mod tui_test;
mod util;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "peergroup project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Format check, clippy (warnings denied), all tests, cargo deny, interop, fuzz build.
    Ci {
        /// Skip the steps that need the network or extra tools (deny, interop).
        #[arg(long)]
        quick: bool,
    },
    /// Check our certificates with openssl and our XML with xmllint.
    Interop,
    /// Members in network namespaces: a link cut and an isolation that heals (needs root).
    Netns,
    /// The NAT matrix: members behind six kinds of NAT box (one with UPnP, one with PCP)
    /// linking directly or through a relay, every pair of kinds, TCP-only pairs and joins
    /// from behind a NAT (needs root, iptables and miniupnpd).
    Nat,
    /// Peers as real `peergroup run` processes with churn and random operations; checks
    /// convergence, acknowledged records and memory.
    Soak {
        /// How long to run.
        #[arg(long, default_value_t = 1.0)]
        minutes: f64,
        /// How many peers.
        #[arg(long, default_value_t = 8)]
        peers: usize,
        /// The random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The chat's terminal UI driven through tmux.
    TuiTest,
    /// Attacks on a real `peergroup run` node over loopback (docs/hostile.md): its memory,
    /// an honest member's sync time and the records it keeps must stay within bounds.
    Hostile {
        /// Shorter attacks (what `cargo xtask ci` runs).
        #[arg(long)]
        short: bool,
        /// Only these attacks (repeatable; `target/debug/peergroup-hostile --list`).
        #[arg(long = "only", value_name = "ATTACK")]
        only: Vec<String>,
    },
    /// The tests that wait on the network (chat, TUI, mesh, processes, soak, demo), run
    /// many times beside busy loops: they must pass on a loaded machine.
    Loaded {
        /// Busy-loop processes beside each loaded run.
        #[arg(long, default_value_t = 2)]
        busy: usize,
        /// Loaded runs of each target.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Only the targets whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// Run a simulation scenario (a name from crates/mesh/scenarios, a path, `all`, or
    /// `scale` for the 10,000-node ones).
    Sim {
        /// The scenario.
        scenario: String,
    },
    /// Run the benchmarks, summarise them, and run every simulation scenario.
    Bench {
        /// Shorter criterion runs (--warm-up-time 1 --measurement-time 3).
        #[arg(long)]
        quick: bool,
        /// Skip the simulation scenarios.
        #[arg(long)]
        no_sim: bool,
    },
    /// Build every fuzz target, or run one (or all in turn) with cargo-fuzz and print a
    /// table of executions, rates and crashes (fails if any target crashed).
    Fuzz {
        /// The targets to run, in turn (omit them, and omit --all, to only build them all).
        targets: Vec<String>,
        /// Run every target in turn.
        #[arg(long, conflicts_with = "targets")]
        all: bool,
        /// Seconds to run each target.
        #[arg(long, default_value_t = 60, conflicts_with = "minutes")]
        seconds: u64,
        /// Minutes to run each target (instead of --seconds).
        #[arg(long)]
        minutes: Option<f64>,
        /// Stop each target after this many executions, if its time is not up first.
        #[arg(long)]
        runs: Option<u64>,
        /// cargo fuzz's sanitizer (address, none, ...); default: address with a nightly
        /// toolchain installed, none on stable.
        #[arg(long)]
        sanitizer: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ci { quick } => ci::run(quick),
        Command::Interop => interop::run(),
        Command::Netns => netns::run(),
        Command::Nat => netns::nat(),
        Command::Sim { scenario } => sim::run(&scenario),
        Command::Soak {
            minutes,
            peers,
            seed,
        } => soak::run(minutes, peers, seed),
        Command::TuiTest => tui_test::run(),
        Command::Hostile { short, only } => hostile::run(short, &only),
        Command::Loaded { busy, runs, only } => loaded::run(busy, runs, only.as_deref()),
        Command::Bench { quick, no_sim } => bench::run(quick, no_sim),
        Command::Fuzz {
            targets,
            all,
            seconds,
            minutes,
            runs,
            sanitizer,
        } => fuzz::run(&fuzz::Options {
            targets,
            all,
            seconds: minutes.map_or(seconds, |m| (m * 60.0).round().max(1.0) as u64),
            runs,
            sanitizer,
        }),
    }
}
