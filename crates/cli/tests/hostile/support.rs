//! Running `peergroup` with every process bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

/// The bound on one command run to completion. These commands are local; quiet, each takes
/// well under a second, and a refusal of an oversized input must not take longer. A command
/// that reaches it hangs (or reads an endless input).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) use bounded::Stdin;

#[path = "../common/bounded.rs"]
mod bounded;

/// Runs `cmd` to completion, killing it and panicking (with what it printed) if it has not
/// finished within [`COMMAND_TIMEOUT`].
pub(crate) fn output_within(cmd: Command, stdin: Stdin, what: &str) -> (Output, Duration) {
    bounded::output_within(cmd, stdin, what, COMMAND_TIMEOUT)
}

/// A `peergroup` command line with its own data directory.
pub(crate) fn peergroup(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("PEERGROUP_HOME")
        .env_remove("PEERGROUP_LOG");
    cmd
}

/// Runs a command within [`COMMAND_TIMEOUT`].
pub(crate) fn run(home: &Path, args: &[&str]) -> Output {
    output_within(
        peergroup(home, args),
        Stdin::Null,
        &format!("peergroup {args:?}"),
    )
    .0
}

/// Runs a command that must succeed; returns its standard output, trimmed.
pub(crate) fn ok(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "peergroup {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The refusal in `out`: it failed, and its standard error is one line starting `error: `.
/// Returns that line.
pub(crate) fn one_line_refusal(out: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{what} succeeded; it printed {}{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.starts_with("error: ") && err.ends_with('\n') && err.matches('\n').count() == 1,
        "{what}: not a one-line refusal: {err:?}"
    );
    assert_no_control_bytes(what, err.trim_end().as_bytes());
    err.trim_end().to_owned()
}

/// Bytes a terminal would act on, or that hide or reorder text: C0 controls (but the line
/// feed, checked apart), DEL, the UTF-8 of the C1 controls, of U+202A–U+202E and
/// U+2066–U+2069 (bidi), U+200B–U+200F (zero-width, marks), U+2028/U+2029, U+FEFF.
pub(crate) fn control_bytes(bytes: &[u8]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        if (*b < 0x20 && *b != b'\n') || *b == 0x7f {
            found.push((i, format!("{b:#04x}")));
        }
    }
    let text = String::from_utf8_lossy(bytes);
    for (i, c) in text.char_indices() {
        if matches!(c, '\u{80}'..='\u{9f}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{feff}')
        {
            found.push((i, format!("U+{:04X}", u32::from(c))));
        }
    }
    found
}

/// Panics, saying where, if `bytes` holds any of [`control_bytes`].
pub(crate) fn assert_no_control_bytes(what: &str, bytes: &[u8]) {
    let found = control_bytes(bytes);
    assert!(
        found.is_empty(),
        "{what} printed raw control bytes {found:?} in {:?}",
        String::from_utf8_lossy(bytes)
    );
}

/// A temporary directory with the files a test writes.
pub(crate) struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    pub(crate) fn new() -> Self {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to the file `name`; returns its path as text.
    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> String {
        std::fs::write(self.path(name), bytes).unwrap();
        s(&self.path(name))
    }
}

/// A path as an argument.
pub(crate) fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// Kills a child process when dropped (a test that fails midway leaves nothing running).
pub(crate) struct Bounded(pub(crate) Child);

impl Drop for Bounded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
