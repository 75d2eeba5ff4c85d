//! Shared helpers: the data directory, passwords, durations, output.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use peergroup_identity::{Identity, IdentityStore};

/// The data directory and what lives in it.
pub(crate) struct Home {
    pub(crate) identities: IdentityStore,
}

impl Home {
    /// `--home`, else `PEERGROUP_HOME` (both handled by clap), else the platform data dir.
    pub(crate) fn resolve(explicit: Option<PathBuf>) -> Result<Self> {
        let dir = match explicit {
            Some(d) => d,
            None => directories::ProjectDirs::from("", "", "peergroup")
                .map(|p| p.data_dir().to_path_buf())
                .ok_or_else(|| anyhow!("no home directory found; pass --home DIR"))?,
        };
        peergroup_identity::fs::create_private_dir(&dir)?;
        let identities = IdentityStore::open(dir.join("identities"))?;
        Ok(Home { identities })
    }

    /// An identity by peer name or friendly-name prefix, or the default identity.
    pub(crate) fn identity(&self, query: Option<&str>) -> Result<Identity> {
        Ok(match query {
            Some(q) => self.identities.find(q)?,
            None => self
                .identities
                .default_identity()
                .context("choose one with --identity")?,
        })
    }
}

/// Reads a password from a file: the first line, without its line ending.
pub(crate) fn read_password_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).with_context(|| format!("reading password file {}", path.display()))?,
    );
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bail!("password file {} is empty", path.display());
    }
    Ok(zeroize::Zeroizing::new(line.to_vec()))
}

/// Parses `15d`, `2h 30m`, `90s` …
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 15d, 12h, 30m)"))
}

/// Writes `text` to `output`, or to standard output when none is given.
pub(crate) fn emit(output: Option<&Path>, text: &str) -> Result<()> {
    match output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

/// Prints a value as pretty JSON.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    emit(None, &serde_json::to_string_pretty(value)?)
}

/// An error and its causes on one line.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Logs to standard error at a level set by `-v`.
pub(crate) fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PEERGROUP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
