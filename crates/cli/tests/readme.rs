//! The README's "Two people chatting, on two terminals" runs as written: every command of its
//! four blocks, in order, in Alice's and Bob's terminals (`peergroup` is the built binary and
//! `/tmp/` a directory of this test; ports, names and flags are the README's own). The two
//! chats then talk. If the README changes, this test reads the new text.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

#[path = "common/bounded.rs"]
mod bounded;

/// The deadline of one wait for a chat line.
const WAIT: Duration = Duration::from_secs(45);
/// The bound on one command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The shell blocks of the README section that starts with `heading`.
fn blocks(readme: &str, heading: &str) -> Vec<Vec<String>> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("the README has no section {heading:?}"));
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in section.lines() {
        match (&mut current, line.trim()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => out.extend(current.take()),
            (Some(b), l) if !l.is_empty() && !l.starts_with('#') => b.push(l.to_owned()),
            _ => {}
        }
    }
    out
}

/// The `expected` shell blocks of the README section that starts with `heading`.
fn readme_blocks(heading: &str, expected: usize) -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let blocks = blocks(&readme, heading);
    assert_eq!(
        blocks.len(),
        expected,
        "the section {heading:?}'s blocks changed: {blocks:#?}"
    );
    blocks
}

/// A chat running in line mode.
struct Chat {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Chat {
    fn expect(&mut self, needle: &str) -> String {
        let start = Instant::now();
        while let Some(left) = WAIT.checked_sub(start.elapsed()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => self.seen.push(l),
                Err(_) => break,
            }
        }
        panic!(
            "no line with {needle:?} within {WAIT:?}; saw {:#?}",
            self.seen
        );
    }

    fn say(&mut self, text: &str) {
        writeln!(self.stdin, "{text}").unwrap();
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One terminal: its environment (what `export` set).
#[derive(Default)]
struct Terminal {
    env: BTreeMap<String, String>,
}

/// Splits a README command into words (double quotes group; no other shell syntax but
/// `> file`, which the caller handles).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

#[test]
fn the_readme_two_terminal_chat_runs_as_written() {
    let blocks = readme_blocks("Two people chatting, on two terminals", 4);
    let dir = tempfile::tempdir().unwrap();
    let tmp = format!("{}/", dir.path().display());
    let here = |s: &str| s.replace("/tmp/", &tmp);
    // Alice's terminal, Bob's, Alice's, Bob's (as the text between the blocks says).
    let mut terminals = [Terminal::default(), Terminal::default()];
    let mut chats: Vec<Chat> = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let term = &mut terminals[i % 2];
        for line in block {
            let line = here(line);
            if let Some(assign) = line.strip_prefix("export ") {
                let (k, v) = assign.split_once('=').unwrap();
                term.env.insert(k.to_owned(), v.to_owned());
                continue;
            }
            let (command, redirect) = match line.split_once(" > ") {
                Some((c, f)) => (c.to_owned(), Some(PathBuf::from(f.trim()))),
                None => (line.clone(), None),
            };
            let mut w = words(&command);
            assert_eq!(w.remove(0), "peergroup", "not a peergroup command: {line}");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
            cmd.args(&w).envs(&term.env);
            if w.first().map(String::as_str) == Some("chat") {
                // Not a terminal: line mode, for scripts.
                let mut chat = spawn_lines(cmd);
                chat.expect("present:");
                chats.push(chat);
                continue;
            }
            let (out, _) =
                bounded::output_within(cmd, bounded::Stdin::Null, &line, COMMAND_TIMEOUT);
            assert!(
                out.status.success(),
                "{line}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if let Some(file) = redirect {
                std::fs::write(file, &out.stdout).unwrap();
            }
        }
    }
    let [alice, bob] = chats.as_mut_slice() else {
        panic!("the README starts two chats; this test saw {}", chats.len());
    };
    alice.say("hello Bob");
    bob.expect("Alice: hello Bob");
    bob.say("/w Alice psst");
    alice.expect("(whisper from Bob) psst");
    bob.say("/quit");
    alice.expect("Bob left the chat");
    alice.say("/quit");
    for chat in chats.iter_mut() {
        let start = Instant::now();
        while chat.child.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < WAIT, "a chat did not quit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A long-running command (`run`, `chat`) whose standard output is read line by line.
fn spawn_lines(mut cmd: Command) -> Chat {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { return };
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let stdin = child.stdin.take().unwrap();
    Chat {
        child,
        stdin,
        lines: rx,
        seen: Vec::new(),
    }
}

/// The README's "A password group" runs as written, each line by `sh` in its terminal's
/// environment (so `echo … > file` is the shell's), with the built `peergroup` first on the
/// PATH: Dana's group is made and its invitation written while nothing runs (so it names no
/// address), Erin joins it with the password through `--connect` and chats with Dana online.
#[test]
fn the_readme_password_group_runs_as_written() {
    let blocks = readme_blocks("A password group", 2);
    let dir = tempfile::tempdir().unwrap();
    let tmp = format!("{}/", dir.path().display());
    let here = |s: &str| s.replace("/tmp/", &tmp);
    let bin = Path::new(env!("CARGO_BIN_EXE_peergroup")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut terminals = [Terminal::default(), Terminal::default()];
    let mut running: Vec<Chat> = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let term = &mut terminals[i % 2];
        for line in block {
            let line = here(line);
            if let Some(assign) = line.strip_prefix("export ") {
                let (k, v) = assign.split_once('=').unwrap();
                term.env.insert(k.to_owned(), v.to_owned());
                continue;
            }
            // `exec`: a command that runs on is the process this test stops.
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(format!("exec {line}"))
                .envs(&term.env)
                .env("PATH", &path)
                .current_dir(dir.path());
            let w = words(&line);
            match (w[0].as_str(), w.get(1).map(String::as_str)) {
                ("peergroup", Some("run")) => {
                    let mut node = spawn_lines(cmd);
                    node.expect("listening ");
                    running.push(node);
                }
                ("peergroup", Some("chat")) => {
                    let mut chat = spawn_lines(cmd);
                    chat.expect("present:");
                    running.push(chat);
                }
                _ => {
                    let (out, _) =
                        bounded::output_within(cmd, bounded::Stdin::Null, &line, COMMAND_TIMEOUT);
                    assert!(
                        out.status.success(),
                        "{line}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }
    let invitation = std::fs::read_to_string(dir.path().join("club.inv")).unwrap();
    assert!(
        !invitation.contains("127.0.0.1"),
        "the invitation was made offline: it names no address"
    );
    // Without --connect, the join says what is missing.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
    cmd.args([
        "join",
        "club.inv",
        "--identity",
        "Erin",
        "--password-file",
        "erin.pw",
    ])
    .envs(&terminals[1].env)
    .current_dir(dir.path());
    let (out, _) = bounded::output_within(cmd, bounded::Stdin::Null, "join", COMMAND_TIMEOUT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--connect"),
        "join without --connect: {err}"
    );
    let [dana, erin] = running.as_mut_slice() else {
        panic!(
            "the README starts run and chat; this test saw {}",
            running.len()
        );
    };
    // Erin is a member: Dana is present to her, and her message reaches Dana's node.
    let start = Instant::now();
    loop {
        erin.say("/members");
        if erin.expect("members present:").contains("Dana") {
            break;
        }
        assert!(start.elapsed() < WAIT, "Dana never present to Erin");
        std::thread::sleep(Duration::from_millis(300));
    }
    erin.say("hello Club");
    dana.expect("record Added");
    erin.say("/quit");
}
