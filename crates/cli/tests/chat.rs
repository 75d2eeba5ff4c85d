//! Three `peergroup chat` processes in line mode on loopback: a message typed in one appears
//! in the others; a whisper appears only at its target; the participants update when one
//! quits.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

fn pg(home: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_peergroup"))
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "peergroup {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct ChatProc {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl ChatProc {
    fn start(name: &'static str, home: &Path, connect: Option<&str>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
        cmd.arg("--home").arg(home).args([
            "chat",
            "--group",
            "Friends",
            "--listen",
            "127.0.0.1:0",
            "--no-discovery",
        ]);
        if let Some(a) = connect {
            cmd.args(["--connect", a]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        ChatProc {
            name,
            stdin: child.stdin.take(),
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    fn say(&mut self, text: &str) {
        writeln!(self.stdin.as_mut().unwrap(), "{text}").unwrap();
    }

    /// Waits for a line containing `needle`; returns it.
    fn expect(&mut self, needle: &str, within: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "{} never printed {needle:?}; it printed: {:#?}",
            self.name, self.seen
        );
    }

    /// Everything printed within `window`.
    fn drain(&mut self, window: Duration) -> &[String] {
        let deadline = Instant::now() + window;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => break,
            }
        }
        &self.seen
    }

    fn quit(&mut self) {
        self.say("/quit");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} did not quit", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChatProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn setup(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (a, b, c) = (dir.join("alice"), dir.join("bob"), dir.join("carol"));
    pg(
        &a,
        &["identity", "create", "Alice", "--classifier", "alice"],
    );
    pg(&a, &["group", "create", "Friends", "--identity", "Alice"]);
    for (home, name) in [(&b, "Bob"), (&c, "Carol")] {
        pg(home, &["identity", "create", name]);
        let info = dir.join(format!("{name}.idinfo"));
        std::fs::write(&info, pg(home, &["identity", "xml", name])).unwrap();
        let inv = dir.join(format!("{name}.inv"));
        std::fs::write(
            &inv,
            pg(
                &a,
                &[
                    "invite",
                    "--group",
                    "Friends",
                    "--identity-info",
                    info.to_str().unwrap(),
                ],
            ),
        )
        .unwrap();
        pg(home, &["join", inv.to_str().unwrap(), "--identity", name]);
    }
    (a, b, c)
}

#[test]
fn three_chats_in_line_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = setup(dir.path());
    let wait = Duration::from_secs(45);

    let mut alice = ChatProc::start("alice", &a, None);
    let banner = alice.expect("listening on", wait);
    let addr = banner
        .rsplit("listening on ")
        .next()
        .unwrap()
        .trim_end_matches(')')
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let mut bob = ChatProc::start("bob", &b, Some(&addr));
    let mut carol = ChatProc::start("carol", &c, Some(&addr));
    bob.expect("present:", wait);
    carol.expect("present:", wait);
    alice.expect("Carol is here", wait);

    // A message typed in one appears in the others.
    alice.say("hello everyone");
    bob.expect("Alice: hello everyone", wait);
    carol.expect("Alice: hello everyone", wait);
    bob.say("hi Alice");
    alice.expect("Bob: hi Alice", wait);

    // A whisper appears only at its target.
    alice.say("/w Bob psst, just for you");
    alice.expect("(whisper to Bob) psst, just for you", wait);
    bob.expect("(whisper from Alice) psst, just for you", wait);
    let carol_saw = carol.drain(Duration::from_secs(2));
    assert!(
        !carol_saw.iter().any(|l| l.contains("psst")),
        "Carol saw the whisper: {carol_saw:#?}"
    );

    // The participants update when one quits.
    carol.quit();
    alice.expect("Carol left the chat", wait);
    alice.say("/members");
    let members = alice.expect("members present:", wait);
    assert!(
        members.contains("Alice") && members.contains("Bob") && !members.contains("Carol"),
        "{members}"
    );
    bob.quit();
    alice.quit();
}
