//! Running commands with clear failures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context as _, Result, bail, ensure};

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// `cargo` as the current toolchain names it.
pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Prints a step heading.
pub(crate) fn step(name: &str) {
    eprintln!("\n==> {name}");
}

/// Runs `cmd`, inheriting output; fails if it exits non-zero.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", describe(cmd)))?;
    if !status.success() {
        bail!("{} failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` and captures its output, whatever its exit status.
pub(crate) fn capture(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .with_context(|| format!("starting {}", describe(cmd)))
}

/// Whether a program is on the PATH.
pub(crate) fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Makes sure the system tools the checks use are present, installing them with apt-get
/// (as root, or with sudo) and cargo where they are missing.
pub(crate) fn ensure_tools(apt: &[(&str, &str)], cargo_tools: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = apt
        .iter()
        .filter(|(bin, _)| !have(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    if !missing.is_empty() {
        eprintln!("installing {} with apt-get", missing.join(" "));
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        let apt = || {
            if root {
                Command::new("apt-get")
            } else {
                let mut c = Command::new("sudo");
                c.arg("apt-get");
                c
            }
        };
        // A fresh machine may have no package lists yet; if this fails, the install says why.
        let _ = apt().args(["update", "-qq"]).status();
        let mut cmd = apt();
        cmd.args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd).with_context(|| {
            format!(
                "installing {} (install them yourself and retry)",
                missing.join(" ")
            )
        })?;
    }
    for (bin, krate) in cargo_tools {
        if !have(bin) {
            eprintln!("installing {krate} with cargo install");
            run(cargo().args(["install", "--locked", "--quiet", krate]))?;
        }
    }
    Ok(())
}

/// Runs the `peergroup` binary `exe` on the data directory `home`; its trimmed output, or an
/// error carrying what it printed to stderr.
pub(crate) fn peergroup(exe: &Path, home: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "peergroup {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
