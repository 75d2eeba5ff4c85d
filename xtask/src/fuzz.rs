//! `cargo xtask fuzz`: the fuzz targets in `fuzz/` (outside the workspace).
//!
//! - `cargo xtask fuzz`: compiles every target (stable toolchain, no instrumentation; CI).
//! - `cargo xtask fuzz <target>… [--seconds S | --minutes M] [--runs N]`: runs these targets.
//! - `cargo xtask fuzz --all [--minutes M] [--runs N]`: runs every target in turn, each for
//!   M minutes or N executions, whichever comes first.
//!
//! Running needs cargo-fuzz (installed with `cargo install --locked` when missing). With a
//! nightly toolchain installed (`rustup toolchain list`) the targets are built with it and
//! AddressSanitizer; otherwise with the stable toolchain and `--sanitizer none`, which is
//! still coverage-guided. `--sanitizer` chooses. Every target starts from its corpus in
//! `fuzz/corpus/<target>/` (kept between runs, not committed) and its seeds in
//! `fuzz/seeds/<target>/`; crash inputs land in `fuzz/artifacts/<target>/`, the fuzzer's
//! whole output in `target/fuzz-logs/<target>.log`. The fuzzers run at the lowest CPU
//! priority (`nice -n 19`). A table of executions, rates and crashes ends the run, which
//! fails if any target crashed.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};

use crate::util::{self, cargo, step};

/// Compiles every fuzz target, reusing the workspace's dependency versions and build cache.
pub(crate) fn build() -> Result<()> {
    step("fuzz targets compile");
    let root = util::root();
    copy_lock_file(&root)?;
    util::run(
        cargo()
            .args(["build", "--manifest-path", "fuzz/Cargo.toml", "--bins"])
            .env("CARGO_TARGET_DIR", root.join("target/fuzz")),
    )
}

/// Starts from the workspace lock file so the fuzz crate builds the same versions.
fn copy_lock_file(root: &Path) -> Result<()> {
    std::fs::copy(root.join("Cargo.lock"), root.join("fuzz/Cargo.lock"))
        .context("copying Cargo.lock into fuzz/")?;
    Ok(())
}

/// What `cargo xtask fuzz` was asked to do.
#[derive(Debug)]
pub(crate) struct Options {
    /// The targets to run; with none and not `all`, only build.
    pub(crate) targets: Vec<String>,
    /// Run every target in turn.
    pub(crate) all: bool,
    /// Time per target, in seconds.
    pub(crate) seconds: u64,
    /// Executions per target at most.
    pub(crate) runs: Option<u64>,
    /// `address`, `none`, … (cargo fuzz's names); `None` picks by toolchain.
    pub(crate) sanitizer: Option<String>,
}

/// How the targets are built.
struct Toolchain {
    nightly: bool,
    sanitizer: String,
}

impl Toolchain {
    fn choose(requested: Option<&str>) -> Result<Self> {
        let nightly = Command::new("rustup")
            .args(["run", "nightly", "rustc", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let sanitizer = match requested {
            Some(s) => s.to_owned(),
            None if nightly => "address".to_owned(),
            None => "none".to_owned(),
        };
        ensure!(
            nightly || sanitizer == "none",
            "--sanitizer {sanitizer} needs a nightly toolchain (`rustup toolchain install \
             nightly`); on stable use --sanitizer none"
        );
        Ok(Toolchain { nightly, sanitizer })
    }

    fn describe(&self) -> String {
        let toolchain = if self.nightly { "nightly" } else { "stable" };
        let sanitizer = match self.sanitizer.as_str() {
            "none" => "no sanitizer (--sanitizer none)".to_owned(),
            "address" => "AddressSanitizer".to_owned(),
            other => format!("sanitizer {other}"),
        };
        format!("{toolchain} toolchain, {sanitizer}, debug assertions on")
    }

    /// `cargo fuzz <args>` on this toolchain.
    fn cargo_fuzz(&self, root: &Path) -> Command {
        let mut c = if self.nightly {
            let mut c = Command::new("rustup");
            c.args(["run", "nightly", "cargo"]);
            // The outer (stable) cargo's path must not leak into cargo-fuzz's builds.
            c.env_remove("CARGO").env_remove("RUSTC");
            c
        } else {
            cargo()
        };
        c.current_dir(root.join("fuzz")).arg("fuzz");
        c
    }

    fn target_dir(&self, root: &Path) -> PathBuf {
        root.join("target")
            .join(format!("fuzz-run-{}", self.sanitizer))
    }
}

/// One target's run.
struct Outcome {
    target: String,
    executions: u64,
    seconds: f64,
    exec_per_sec: f64,
    crashes: Vec<PathBuf>,
    failed: Option<String>,
}

/// `cargo xtask fuzz …`.
pub(crate) fn run(opts: &Options) -> Result<()> {
    let root = util::root();
    let targets = match (opts.targets.is_empty(), opts.all) {
        (true, false) => return build(),
        (false, true) => bail!("give targets or --all, not both"),
        (false, false) => opts.targets.clone(),
        (true, true) => all_targets(&root)?,
    };
    let known = all_targets(&root)?;
    if let Some(unknown) = targets.iter().find(|t| !known.contains(t)) {
        bail!("no fuzz target {unknown} (targets: {})", known.join(", "));
    }
    ensure!(opts.seconds > 0, "the time per target must be positive");
    util::ensure_tools(&[], &[("cargo-fuzz", "cargo-fuzz")])?;
    let toolchain = Toolchain::choose(opts.sanitizer.as_deref())?;
    let limit = match opts.runs {
        Some(n) => format!("{} s or {} executions", opts.seconds, group(n)),
        None => format!("{} s", opts.seconds),
    };
    step(&format!(
        "fuzz {} target(s), {limit} each: {}",
        targets.len(),
        toolchain.describe()
    ));
    copy_lock_file(&root)?;
    let target_dir = toolchain.target_dir(&root);
    util::run(
        toolchain
            .cargo_fuzz(&root)
            .args(["build", "--release", "--sanitizer", &toolchain.sanitizer])
            .arg("--target-dir")
            .arg(&target_dir),
    )?;
    let bin_dir = target_dir.join(host_triple()?).join("release");
    let mut outcomes = Vec::new();
    for target in &targets {
        let outcome = run_target(&root, &bin_dir, target, opts)?;
        outcomes.push(outcome);
    }
    print_table(&outcomes, &toolchain, &limit);
    let crashed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.crashes.is_empty() || o.failed.is_some())
        .map(|o| o.target.as_str())
        .collect();
    if !crashed.is_empty() {
        bail!("fuzz targets crashed or failed: {}", crashed.join(", "));
    }
    Ok(())
}

/// The targets: one per file in `fuzz/fuzz_targets/`, sorted.
fn all_targets(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("fuzz/fuzz_targets");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem()
        {
            out.push(stem.to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// The host's target triple (where cargo fuzz puts its binaries).
fn host_triple() -> Result<String> {
    let out = util::capture(Command::new("rustc").arg("-vV"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV names no host")
}

/// Runs one built target over its corpus and seeds, echoing the fuzzer's progress lines and
/// keeping its whole output in `target/fuzz-logs/<target>.log`.
fn run_target(root: &Path, bin_dir: &Path, target: &str, opts: &Options) -> Result<Outcome> {
    step(&format!("fuzz {target}"));
    let corpus = root.join("fuzz/corpus").join(target);
    let artifacts = root.join("fuzz/artifacts").join(target);
    let seeds = root.join("fuzz/seeds").join(target);
    let logs = root.join("target/fuzz-logs");
    for dir in [&corpus, &artifacts, &logs] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let log_path = logs.join(format!("{target}.log"));
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut cmd = if util::have("nice") {
        let mut c = Command::new("nice");
        c.args(["-n", "19"]).arg(bin_dir.join(target));
        c
    } else {
        Command::new(bin_dir.join(target))
    };
    // New inputs go to the first corpus directory only: the seeds stay as committed.
    cmd.arg(&corpus);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(format!("-max_total_time={}", opts.seconds))
        .arg("-print_final_stats=1")
        // A single input that takes a minute is a hang, whatever the machine's load.
        .arg("-timeout=60");
    if let Some(n) = opts.runs {
        cmd.arg(format!("-runs={n}"));
    }
    // As `cargo fuzz run` does: Rust's duplicated globals across crates are not ODR bugs.
    let asan = std::env::var("ASAN_OPTIONS").unwrap_or_default();
    cmd.env("ASAN_OPTIONS", format!("detect_odr_violation=0:{asan}"))
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    eprintln!("$ {}  (log: {})", util::describe(&cmd), log_path.display());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", util::describe(&cmd)))?;
    // libFuzzer reports on stderr; the target's own prints (rare) go to stdout.
    let stdout = child.stdout.take().context("no stdout")?;
    let echo_stdout = std::thread::spawn(move || -> Vec<String> {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect()
    });
    let stderr = child.stderr.take().context("no stderr")?;
    let mut stats = Stats::default();
    for line in BufReader::new(stderr).lines() {
        let line = line.context("reading the fuzzer's output")?;
        writeln!(log, "{line}")?;
        stats.read(&line);
        if is_progress(&line) {
            eprintln!("  {target}: {line}");
        }
    }
    let status = child.wait()?;
    for line in echo_stdout.join().unwrap_or_default() {
        writeln!(log, "{line}")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let executions = stats.executions.unwrap_or(stats.last_status);
    let exec_per_sec = match stats.exec_per_sec {
        Some(r) if r > 0 => r as f64,
        _ if seconds > 0.0 => executions as f64 / seconds,
        _ => 0.0,
    };
    let failed = (!status.success() && stats.crashes.is_empty()).then(|| {
        format!(
            "the fuzzer exited with {status}; see {}",
            log_path.display()
        )
    });
    Ok(Outcome {
        target: target.to_owned(),
        executions,
        seconds,
        exec_per_sec,
        crashes: stats.crashes,
        failed,
    })
}

/// What the fuzzer's output says.
#[derive(Default)]
struct Stats {
    /// From the final statistics (`stat::number_of_executed_units`).
    executions: Option<u64>,
    /// From the final statistics (`stat::average_exec_per_sec`).
    exec_per_sec: Option<u64>,
    /// The count of the last status line (`#1234 …`), for a run that ended in a crash.
    last_status: u64,
    /// Inputs written as artifacts: crashes, leaks, timeouts, out-of-memory.
    crashes: Vec<PathBuf>,
}

impl Stats {
    fn read(&mut self, line: &str) {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            self.executions = n.trim().parse().ok();
        } else if let Some(n) = line.strip_prefix("stat::average_exec_per_sec:") {
            self.exec_per_sec = n.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix('#')
            && let Some(n) = rest.split_whitespace().next()
            && let Ok(n) = n.parse::<u64>()
        {
            self.last_status = self.last_status.max(n);
        } else if let Some((_, path)) = line.split_once("Test unit written to ") {
            let path = PathBuf::from(path.trim());
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // slow-unit-* files are reports, not failures.
            if ["crash-", "leak-", "timeout-", "oom-"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                self.crashes.push(path);
            }
        }
    }
}

/// Lines worth echoing while a target runs: periodic status, the end, and any failure.
fn is_progress(line: &str) -> bool {
    line.contains("pulse")
        || line.contains("DONE")
        || line.starts_with("Done ")
        || line.contains("panicked")
        || line.contains("ERROR")
        || line.contains("SUMMARY")
        || line.contains("Test unit written")
        || line.starts_with("INFO: Seed")
        || line.contains("INITED")
}

fn print_table(outcomes: &[Outcome], toolchain: &Toolchain, limit: &str) {
    println!();
    println!("fuzzing: {}; {limit} per target", toolchain.describe());
    println!(
        "{:<18} {:>14} {:>8} {:>9} {:>8}  artifact",
        "target", "executions", "minutes", "exec/s", "crashes"
    );
    for o in outcomes {
        let artifact = match (o.crashes.first(), &o.failed) {
            (Some(p), _) => p.display().to_string(),
            (None, Some(why)) => why.clone(),
            (None, None) => String::new(),
        };
        println!(
            "{:<18} {:>14} {:>8.1} {:>9.0} {:>8}  {artifact}",
            o.target,
            group(o.executions),
            o.seconds / 60.0,
            o.exec_per_sec,
            o.crashes.len(),
        );
    }
}

/// 1234567 → "1,234,567".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
