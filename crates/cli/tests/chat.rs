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

/// How long any step may take: generous, for a loaded machine (a step takes well under a
/// second on a quiet one). A step that does not happen at all fails after this.
const WAIT: Duration = Duration::from_secs(60);

struct ChatProc {
    name: &'static str,
    /// Its log (stderr), shown when a wait fails.
    log: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl ChatProc {
    fn start(name: &'static str, home: &Path, connect: Option<&str>) -> Self {
        let log = home.with_extension("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
        cmd.env("PEERGROUP_LOG", "info");
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
            .stderr(std::fs::File::create(&log).unwrap())
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
            log,
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
    fn expect(&mut self, needle: &str) -> String {
        let within = WAIT;
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
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        panic!(
            "{} never printed {needle:?} within {within:?}; it printed: {:#?}\nthe end of its log:\n{}",
            self.name,
            self.seen,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
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
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} did not quit within {WAIT:?} of /quit", self.name);
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

    let mut alice = ChatProc::start("alice", &a, None);
    let banner = alice.expect("listening on");
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
    // In sync, each knows who is here (the first line named only the user).
    let present = bob.expect("present:");
    assert!(present.contains("Alice"), "{present}");
    carol.expect("present:");
    alice.expect("Carol is here");

    // A message typed in one appears in the others.
    alice.say("hello everyone");
    bob.expect("Alice: hello everyone");
    carol.expect("Alice: hello everyone");
    bob.say("hi Alice");
    alice.expect("Bob: hi Alice");

    // A whisper appears only at its target.
    alice.say("/w Bob psst, just for you");
    alice.expect("(whisper to Bob) psst, just for you");
    bob.expect("(whisper from Alice) psst, just for you");
    let carol_saw = carol.drain(Duration::from_secs(2));
    assert!(
        !carol_saw.iter().any(|l| l.contains("psst")),
        "Carol saw the whisper: {carol_saw:#?}"
    );

    // Our own joining and presence are no news to us.
    assert!(
        !alice
            .drain(Duration::from_millis(200))
            .iter()
            .any(|l| l.contains("Alice joined") || l.contains("Alice is here")),
        "{:#?}",
        alice.seen
    );
    // An invitation from the chat is written beside the identity info, by its full name;
    // a member who may not invite is told so.
    let bob_info = dir.path().join("Bob.idinfo");
    alice.say(&format!("/invite {}", bob_info.display()));
    let written = dir.path().join("Bob.invitation.xml");
    alice.expect(&format!("written to {}", written.display()));
    assert!(written.exists());
    bob.say(&format!(
        "/invite {}",
        dir.path().join("Carol.idinfo").display()
    ));
    bob.expect("only admins and members with the invite role can invite");

    // The participants update when one quits.
    carol.quit();
    alice.expect("Carol left the chat");
    alice.say("/members");
    let members = alice.expect("members present:");
    assert!(
        members.contains("Alice") && members.contains("Bob") && !members.contains("Carol"),
        "{members}"
    );
    bob.quit();
    alice.say("while you were away");
    alice.expect("Alice: while you were away");
    // Back, Bob sees the history once: a message that reaches him by sync as he starts is
    // in the history and not shown again when its event comes.
    let mut bob = ChatProc::start("bob", &b, Some(&addr));
    bob.expect("present:");
    let seen = bob.drain(Duration::from_secs(2));
    for text in ["Alice: hello everyone", "Alice: while you were away"] {
        let n = seen.iter().filter(|l| l.contains(text)).count();
        assert_eq!(n, 1, "{text:?} shown {n} times: {seen:#?}");
    }
    bob.quit();
    alice.quit();
}
