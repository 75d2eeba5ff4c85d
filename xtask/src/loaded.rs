//! `cargo xtask loaded [--busy N] [--runs R] [--only NAME]`: the tests that wait on the
//! network, run again and again on a busy machine.
//!
//! A developer's machine and CI are rarely quiet; a test that passes only when they are
//! blocks every landing at random. This starts `N` busy-loop processes (`yes > /dev/null`,
//! default 2: load ~2 on top of the tests themselves), runs each target `R` times (default
//! 10) beside them, then once more without them, and prints how long each run took and how
//! many passed. It fails if any run failed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::util::{self, cargo, step};

/// Busy-loop processes, stopped when dropped (also when a target panics).
struct Busy(Vec<Child>);

impl Busy {
    fn start(n: usize) -> Result<Self> {
        let mut children = Vec::new();
        for _ in 0..n {
            children.push(
                Command::new("yes")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?,
            );
        }
        Ok(Busy(children))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One thing to run: a name and how.
struct Target {
    name: &'static str,
    run: fn() -> Result<()>,
}

fn quiet_cargo(args: &[&str]) -> Result<()> {
    let out = util::capture(cargo().args(args))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = text.lines().chain(err.lines()).rev().take(60).collect();
    bail!(
        "cargo {} failed:\n{}",
        args.join(" "),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

const TARGETS: &[Target] = &[
    Target {
        name: "chat three_chats_in_line_mode",
        run: || {
            quiet_cargo(&[
                "test",
                "-q",
                "-p",
                "peergroup-cli",
                "--test",
                "chat",
                "three_chats_in_line_mode",
            ])
        },
    },
    Target {
        name: "chat tmux TUI (xtask tui-test)",
        run: crate::tui_test::run,
    },
    Target {
        name: "membership net (loopback tests)",
        run: || {
            quiet_cargo(&[
                "test",
                "-q",
                "-p",
                "peergroup-membership",
                "--test",
                "net",
                "--",
                "--skip",
                "processes::",
            ])
        },
    },
    Target {
        name: "membership processes (five, kill -9)",
        run: || {
            quiet_cargo(&[
                "test",
                "-q",
                "-p",
                "peergroup-membership",
                "--test",
                "net",
                "processes::five_processes",
            ])
        },
    },
    Target {
        name: "soak (1 minute, 8 peers)",
        run: || crate::soak::run(1.0, 8, 1),
    },
    Target {
        name: "demo",
        run: || {
            let exe = util::root().join("target/debug/peergroup");
            let out = util::capture(Command::new(exe).arg("demo"))?;
            if out.status.success() {
                return Ok(());
            }
            bail!(
                "peergroup demo failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        },
    },
];

pub(crate) fn run(busy: usize, runs: usize, only: Option<&str>) -> Result<()> {
    let targets: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| only.is_none_or(|o| t.name.contains(o)))
        .collect();
    if targets.is_empty() {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        bail!(
            "no target matches {only:?}; the targets: {}",
            names.join(", ")
        );
    }
    step("building what the targets run");
    util::run(cargo().args(["build", "-q", "-p", "peergroup-cli"]))?;
    util::run(cargo().args([
        "test",
        "-q",
        "--no-run",
        "-p",
        "peergroup-cli",
        "-p",
        "peergroup-membership",
    ]))?;

    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for t in targets {
        step(&format!(
            "{}: once quiet, then {runs} runs beside {busy} busy loops",
            t.name
        ));
        let quiet = time(t, &mut failures, "quiet");
        let guard = Busy::start(busy)?;
        let mut loaded = Vec::new();
        for k in 1..=runs {
            loaded.push(time(t, &mut failures, &format!("loaded run {k}")));
        }
        drop(guard);
        let passed = loaded.iter().filter(|r| r.1).count();
        let secs: Vec<f64> = loaded.iter().map(|r| r.0.as_secs_f64()).collect();
        let max = secs.iter().copied().fold(0.0, f64::max);
        let mean = secs.iter().sum::<f64>() / secs.len().max(1) as f64;
        lines.push(format!(
            "  {:<40} quiet {:>6.1} s ({})   loaded {passed}/{runs} passed, mean {mean:>6.1} s, max {max:>6.1} s",
            t.name,
            quiet.0.as_secs_f64(),
            if quiet.1 { "passed" } else { "FAILED" },
        ));
    }
    println!("\nloaded runs ({busy} busy loops beside each loaded run)");
    for l in &lines {
        println!("{l}");
    }
    if !failures.is_empty() {
        bail!(
            "{} run(s) failed:\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
    Ok(())
}

fn time(t: &Target, failures: &mut Vec<String>, what: &str) -> (Duration, bool) {
    let start = Instant::now();
    let result = (t.run)();
    let took = start.elapsed();
    match result {
        Ok(()) => {
            eprintln!("{} {what}: passed in {took:.1?}", t.name);
            (took, true)
        }
        Err(e) => {
            eprintln!("{} {what}: FAILED after {took:.1?}: {e:#}", t.name);
            failures.push(format!("{} {what}: {e:#}", t.name));
            (took, false)
        }
    }
}
