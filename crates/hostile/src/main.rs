//! `peergroup-hostile`: the hostile-peer suite (`cargo xtask hostile`).
//!
//! A real node — `peergroup run --control` in its own data directory, with records seeded
//! through its control channel — is attacked over loopback by members made in-process and
//! invited with the CLI, speaking the transport and the mesh protocol by hand (see
//! `docs/hostile.md` for the attacks). For each attack it asserts that
//!
//! - the node's resident memory stays within +64 MiB of its figure before the attack
//!   (sampled every 100 ms during the attack and for 2 s after),
//! - an honest member (in-process, through the `peergroup` facade) connects to the node and
//!   holds its seeded records within 2 s while the attack goes on,
//! - nothing stored is lost: every seeded record is still there, the record count is not
//!   lower,
//!
//! plus the attack's own checks, prints a table, and exits non-zero when anything is not met.
//! Every child process is killed when the suite ends (guards), and a watchdog ends the suite
//! (killing them) if it overruns its time.

#![forbid(unsafe_code)]

mod attacks;
mod lab;
mod member;
mod mesh;
mod node;
mod report;
mod waits;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Parser;

use crate::lab::Lab;
use crate::waits::{SUITE_DEADLINE, SUITE_DEADLINE_SHORT};

/// Records seeded on the node before the attacks.
const SEEDED: usize = 100;

/// Open files the suite wants for itself: 10,000 attack sockets and headroom.
const WANTED_FILES: u64 = 16_384;

#[derive(Debug, Parser)]
#[command(
    name = "peergroup-hostile",
    about = "Attacks a real `peergroup run` node over loopback and checks its bounds"
)]
struct Args {
    /// The `peergroup` binary (default: `peergroup` beside this one).
    #[arg(long)]
    exe: Option<PathBuf>,
    /// Shorter attacks (for CI).
    #[arg(long)]
    short: bool,
    /// Only these attacks (repeatable; see --list).
    #[arg(long = "only", value_name = "ATTACK")]
    only: Vec<String>,
    /// List the attacks and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for (i, (name, what)) in attacks::ALL.iter().enumerate() {
            println!("{i:>2} {name:<18} {what}");
        }
        return ExitCode::SUCCESS;
    }
    let deadline = if args.short {
        SUITE_DEADLINE_SHORT
    } else {
        SUITE_DEADLINE
    };
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!("hostile: the suite did not finish within {deadline:?}; killing its processes");
        node::kill_all_children();
        std::process::exit(2);
    });
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("hostile: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft open-file limit towards the hard one.
fn raise_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let want = limit.maximum.map_or(WANTED_FILES, |h| h.min(WANTED_FILES));
    if limit.current.is_some_and(|soft| soft < want) {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: limit.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn run(args: &Args) -> Result<bool> {
    let started = Instant::now();
    let selected: Vec<(usize, &'static str)> = attacks::ALL
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| args.only.is_empty() || args.only.iter().any(|o| o == name))
        .map(|(i, (name, _))| (i, *name))
        .collect();
    if let Some(unknown) = args
        .only
        .iter()
        .find(|o| !attacks::ALL.iter().any(|(n, _)| n == o))
    {
        bail!("no attack is called {unknown:?} (see --list)");
    }
    let exe = match &args.exe {
        Some(e) => e.clone(),
        None => std::env::current_exe()
            .context("finding this binary")?
            .with_file_name("peergroup"),
    };
    if !exe.is_file() {
        bail!(
            "the peergroup binary {} does not exist (build it: cargo build -p peergroup-cli)",
            exe.display()
        );
    }
    let files = raise_file_limit();
    eprintln!("hostile: open-file limit {files}");
    let attack_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("attack")
        .enable_all()
        .build()
        .context("starting the attackers' runtime")?;
    let member_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("member")
        .enable_all()
        .build()
        .context("starting the honest member's runtime")?;

    eprintln!("hostile: setting up the node (identity, group, {SEEDED} records)");
    let mut lab = Lab::new(exe, args.short)?;
    lab.seed(SEEDED)?;
    eprintln!(
        "hostile: group {} at {}",
        lab.group,
        lab.node_home.display()
    );
    let mut outcomes = Vec::new();
    for (index, name) in selected {
        eprintln!("\nhostile: attack {index} {name}");
        let outcome = attacks::run(&lab, &attack_rt, member_rt.handle().clone(), index, name);
        eprintln!(
            "hostile: attack {index} {name}: {}",
            if outcome.passed() { "met" } else { "NOT met" }
        );
        outcomes.push(outcome);
    }
    let passed = report::print(&outcomes, args.short, started.elapsed());
    attack_rt.shutdown_timeout(waits::STOP_WAIT);
    member_rt.shutdown_timeout(waits::STOP_WAIT);
    Ok(passed)
}
