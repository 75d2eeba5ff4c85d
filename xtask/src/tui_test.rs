//! `cargo xtask tui-test`: the chat's terminal UI, driven through tmux.
//!
//! Alice and Bob each run `peergroup chat` in a tmux session of their own (a real terminal,
//! so the full-screen UI starts). Bob types a message with `tmux send-keys`; the test reads
//! Alice's screen with `tmux capture-pane` until the message shows there, then both quit.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::util::{self, cargo, peergroup as pg, step};

/// How long a step may take: generous, for a loaded machine; a step that never happens fails
/// after it.
const WAIT: Duration = Duration::from_secs(60);

fn tmux(args: &[&str]) -> Result<String> {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .context("running tmux")?;
    ensure!(
        out.status.success(),
        "tmux {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(session: &str, needle: &str, within: Duration) -> Result<String> {
    let start = Instant::now();
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session])?;
        if screen.contains(needle) {
            return Ok(screen);
        }
        if start.elapsed() > within {
            bail!(
                "{needle:?} did not appear in {session} within {within:?}; the screen was:\n{screen}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Sessions(Vec<String>);

impl Drop for Sessions {
    fn drop(&mut self) {
        for s in &self.0 {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", s])
                .output();
        }
    }
}

pub(crate) fn run() -> Result<()> {
    step("chat terminal UI through tmux");
    util::ensure_tools(&[("tmux", "tmux")], &[])?;
    util::run(cargo().args(["build", "-q", "-p", "peergroup-cli"]))?;
    let exe = util::root().join("target/debug/peergroup");
    let dir = tempfile::tempdir()?;
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    pg(
        &exe,
        &alice,
        &["identity", "create", "Alice", "--classifier", "alice"],
    )?;
    pg(
        &exe,
        &alice,
        &["group", "create", "Friends", "--identity", "Alice"],
    )?;
    pg(&exe, &bob, &["identity", "create", "Bob"])?;
    let info = dir.path().join("bob.idinfo");
    std::fs::write(&info, pg(&exe, &bob, &["identity", "xml", "Bob"])?)?;
    let inv = dir.path().join("bob.inv");
    std::fs::write(
        &inv,
        pg(
            &exe,
            &alice,
            &[
                "invite",
                "--group",
                "Friends",
                "--identity-info",
                &info.to_string_lossy(),
            ],
        )?,
    )?;
    pg(
        &exe,
        &bob,
        &["join", &inv.to_string_lossy(), "--identity", "Bob"],
    )?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let tag = std::process::id();
    let (sa, sb) = (format!("pgtui-alice-{tag}"), format!("pgtui-bob-{tag}"));
    let sessions = Sessions(vec![sa.clone(), sb.clone()]);
    let chat = |home: &Path, extra: &str| {
        format!(
            "{} --home {} chat --group Friends --no-discovery {extra}; sleep 30",
            exe.display(),
            home.display()
        )
    };
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &sa,
        "-x",
        "110",
        "-y",
        "30",
        &chat(&alice, &format!("--listen 127.0.0.1:{port}")),
    ])?;
    wait_for(&sa, "Here (1)", WAIT)?;
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &sb,
        "-x",
        "110",
        "-y",
        "30",
        &chat(
            &bob,
            &format!("--listen 127.0.0.1:0 --connect 127.0.0.1:{port}"),
        ),
    ])?;
    wait_for(&sb, "Here (2)", WAIT)?;
    wait_for(&sa, "Here (2)", WAIT)?;
    eprintln!("both chats are up; Bob types a message");
    tmux(&[
        "send-keys",
        "-t",
        &sb,
        "hello from the terminal UI",
        "Enter",
    ])?;
    let screen = wait_for(&sa, "Bob: hello from the terminal UI", WAIT)?;
    eprintln!("Alice's screen:\n{screen}");
    tmux(&["send-keys", "-t", &sb, "/quit", "Enter"])?;
    wait_for(&sa, "Bob left the chat", WAIT)?;
    tmux(&["send-keys", "-t", &sa, "/quit", "Enter"])?;
    drop(sessions);
    eprintln!("tui-test: the message typed in Bob's UI appeared in Alice's; Bob's leaving too");
    Ok(())
}
