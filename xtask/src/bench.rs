//! `cargo xtask bench`: runs the criterion benchmarks of `benches/` (optimised) and the
//! memory probe (a peer of 1M records after a restart and while it serves a fresh member's
//! sync), then prints a summary — every benchmark's median time and throughput from
//! criterion's estimates, the network figures that have goals (the flood's receiver CPU per
//! record against the floor measured in the same run, and its records/s end to end with the
//! author signing on the clock; fresh-member sync seconds), the reconciliation table the
//! network bench wrote, the latency bench's group commit rate and delivery percentiles, the
//! memory probe's figures and verdict — and runs every simulator scenario (the 10,000-node
//! ones of `scale/` too).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, Result, bail};

use crate::util::{self, cargo, step};

/// The flood moves this many records per iteration (see `benches/network.rs`, which judges
/// its goals itself: they need CPU times criterion does not keep).
const FLOOD_ID: &str = "network/flood_1KiB_x10000";
const SIGNING_ID: &str = "network/flood_signing_1KiB_x10000";
const SYNC_ID: &str = "network/fresh_sync_100k_200B";
/// Goal: a fresh member synced within this.
const SYNC_GOAL_SECS: f64 = 8.0;

pub(crate) fn run(quick: bool, no_sim: bool) -> Result<()> {
    step("benchmarks (cargo bench -p peergroup-benches)");
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "peergroup-benches", "--benches"]);
    if quick {
        cmd.args(["--", "--warm-up-time", "1", "--measurement-time", "3"]);
    }
    let started = SystemTime::now();
    util::run(&mut cmd)?;

    // Issue 15 item 7: a peer of 1M records of 200 B after a restart, and while it serves a
    // fresh member's sync (`benches/examples/rss.rs` prints the figures and the verdict,
    // which the summary repeats).
    step("memory: a peer of 1M records after a restart and serving a fresh member's sync");
    let mut rss = cargo();
    rss.args([
        "run",
        "--release",
        "-q",
        "-p",
        "peergroup-benches",
        "--example",
        "rss",
        "--",
        "1000000",
    ]);
    eprintln!("$ {}", util::describe(&rss));
    let out = util::capture(&mut rss)?;
    let memory = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{memory}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("the memory probe failed ({})", out.status);
    }

    let dir = criterion_dir();
    let mut summary = summarize(&dir, started)?;
    writeln!(summary)?;
    for line in memory
        .lines()
        .filter(|l| l.starts_with("node after") || l.starts_with("a node holding"))
    {
        writeln!(summary, "memory, {line}")?;
    }
    step("summary");
    println!("{summary}");

    if !no_sim {
        // Every scenario CI runs, then the 10,000-node ones (issue 15, item 6: messages
        // and memory per node against the 1,000-node run's).
        crate::sim::run_all(false)?;
        crate::sim::run_all(true)?;
    }
    Ok(())
}

/// Where criterion wrote its results.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| util::root().join("target"), PathBuf::from)
        .join("criterion")
}

/// One benchmark's result.
struct Estimate {
    id: String,
    /// Median seconds per iteration.
    median: f64,
    /// Elements per iteration, when the benchmark set a throughput in elements.
    elements: Option<u64>,
    /// When criterion wrote it.
    written: Option<SystemTime>,
}

impl Estimate {
    fn per_sec(&self) -> Option<f64> {
        self.elements.map(|n| n as f64 / self.median)
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Every `…/new/` directory under `dir` with both files criterion writes.
fn estimates(dir: &Path) -> Result<Vec<Estimate>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                let (est, meta) = (path.join("estimates.json"), path.join("benchmark.json"));
                if est.is_file() && meta.is_file() {
                    let written = std::fs::metadata(&est).and_then(|m| m.modified()).ok();
                    let (est, meta) = (read_json(&est)?, read_json(&meta)?);
                    let Some(ns) = est["median"]["point_estimate"].as_f64() else {
                        continue;
                    };
                    found.push(Estimate {
                        id: meta["full_id"].as_str().unwrap_or("?").to_owned(),
                        median: ns / 1e9,
                        elements: meta["throughput"]["Elements"].as_u64(),
                        written,
                    });
                }
            } else if path
                .file_name()
                .is_some_and(|n| n != "report" && n != "base")
            {
                stack.push(path);
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

/// The summary of the results in `dir`; results written before `since` are marked as old.
fn summarize(dir: &Path, since: SystemTime) -> Result<String> {
    let all = estimates(dir)?;
    let mut out = String::new();
    writeln!(
        out,
        "{:<52} {:>12} {:>16}",
        "benchmark (median)", "time", "elements/s"
    )?;
    for e in &all {
        let rate = e.per_sec().map(|r| format!("{r:.0}")).unwrap_or_default();
        let old = if e.written.is_some_and(|t| t < since) {
            "  (not run now)"
        } else {
            ""
        };
        writeln!(
            out,
            "{:<52} {:>12} {:>16}{old}",
            e.id,
            human(e.median),
            rate
        )?;
    }
    let find = |id: &str| all.iter().find(|e| e.id == id);
    writeln!(out)?;
    for (id, what) in [
        (FLOOD_ID, "signed before the clock"),
        (SIGNING_ID, "signing on the clock"),
    ] {
        if let Some(rate) = find(id).and_then(Estimate::per_sec) {
            writeln!(
                out,
                "flood, 1 author → 1 member, TLS loopback, durable, {what}: {rate:>7.0} records/s"
            )?;
        }
    }
    if let Some(s) = find(SYNC_ID) {
        let verdict = if s.median <= SYNC_GOAL_SECS {
            "met"
        } else {
            "NOT met"
        };
        writeln!(
            out,
            "fresh member sync, 100,000 records of 200 B: {:.2} s (goal ≤ {SYNC_GOAL_SECS} s: {verdict})",
            s.median
        )?;
    }
    // What only the network bench knows: the flood's CPU figures with their verdicts (issue
    // 15 item 4) and the reconciliation table.
    let written = dir.join("network-summary.txt");
    if let Ok(text) = std::fs::read_to_string(&written) {
        for title in ["== flood:", "== reconciliation"] {
            if let Some(at) = text.find(title) {
                let section = &text[at..];
                let end = section[title.len()..]
                    .find("\n== ")
                    .map_or(section.len(), |e| e + title.len());
                writeln!(out, "\n{}", section[..end].trim_end())?;
            }
        }
    }
    // The latency bench's figures: group commit and delivery percentiles, each with its goal.
    let latency = dir.join("latency-summary.txt");
    if let Ok(text) = std::fs::read_to_string(&latency) {
        let old = std::fs::metadata(&latency)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < since);
        let note = if old { " (not run now)" } else { "" };
        writeln!(out, "\n{}{note}", text.trim())?;
    }
    Ok(out)
}

/// Seconds in a readable unit.
fn human(secs: f64) -> String {
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else if secs >= 1e-3 {
        format!("{:.3} ms", secs * 1e3)
    } else {
        format!("{:.3} µs", secs * 1e6)
    }
}
