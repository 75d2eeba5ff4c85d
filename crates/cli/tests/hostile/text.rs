//! A hostile member's text reaches the other member's terminal inert: chat line mode
//! (messages, whispers, names, notices), `record get`/`list`, `members`, `group show`,
//! `invitation show`; and refusals are one line with what they quote escaped.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::{Bounded, Dir, assert_no_control_bytes, ok, one_line_refusal, run, s};

/// How long one step of the chat may take (a member connecting, a record or a whisper
/// arriving, a process quitting): well under a second on a quiet machine; generous because a
/// busy one is slow, not broken.
const WAIT: Duration = Duration::from_secs(60);

/// The chat's record type (`peergroup chat` publishes messages as records of it).
const CHAT_TYPE: &str = "4c8e2f10-7d3b-4a61-9b5e-2a6c0d9e1f37";

/// Eve's friendly name: a bidi override and a zero-width space (identities refuse control
/// characters in names, but not these).
const EVE: &str = "Eve\u{202e}\u{200b}lived";
/// How it must be shown.
const EVE_SHOWN: &str = r"Eve\u{202e}\u{200b}lived";

/// Eve's group: its name hides a bidi override (shown in Alice's invitation and groups).
const GROUP: &str = "Friends\u{202e}sdneirF";
const GROUP_SHOWN: &str = r"Friends\u{202e}sdneirF";

/// A message Eve publishes as a record, with what only a record can carry: a newline.
const RECORD: &[u8] = b"\x1b]0;pwned\x07\x1b[2J\r\nAlice: fake line\xe2\x80\xae reversed\xc2\x9b2J";
const RECORD_SHOWN: &str =
    r"\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nAlice: fake line\u{202e} reversed\u{9b}2J";

/// A message Eve types in the chat.
const TYPED: &[u8] = b"\x1b[2J\x1b[H\rAlice: typed spoof\x07\xc2\x9b2J\xe2\x80\xae!";
const TYPED_SHOWN: &str = r"\u{1b}[2J\u{1b}[H\rAlice: typed spoof\u{7}\u{9b}2J\u{202e}!";

/// A whisper Eve sends Alice.
const WHISPER: &[u8] = b"\x1b]0;whisper title\x07\rAlice: whisper spoof\xe2\x80\xae";
const WHISPER_SHOWN: &str = r"\u{1b}]0;whisper title\u{7}\rAlice: whisper spoof\u{202e}";

/// Attributes of Eve's record: XML carries no ESC, but a newline, a C1 CSI and a bidi
/// override it does.
const ATTRIBUTES: &str = "<attributes><attribute name=\"Note\" type=\"string\">one\nAlice: \
                          attribute spoof\u{9b}2J\u{202e}x</attribute></attributes>";
const ATTRIBUTES_SHOWN: &str = r"one\nAlice: attribute spoof\u{9b}2J\u{202e}x";

/// `peergroup chat` in line mode, its standard output kept as raw bytes.
struct ChatProc {
    name: &'static str,
    /// Its log (standard error), shown when a wait fails.
    log: PathBuf,
    child: Bounded,
    stdin: Option<ChildStdin>,
    /// Each line printed, as bytes (without the newline).
    lines: Receiver<Vec<u8>>,
    seen: Vec<Vec<u8>>,
    /// Every byte printed, once the output ends.
    all: Option<JoinHandle<Vec<u8>>>,
}

impl ChatProc {
    fn start(name: &'static str, home: &Path, connect: Option<&str>) -> Self {
        let log = home.with_extension("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
        cmd.env("PEERGROUP_LOG", "info")
            .env_remove("PEERGROUP_HOME")
            .arg("--home")
            .arg(home)
            .args([
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
        let stdin = child.stdin.take();
        let (tx, rx) = channel();
        let all = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return all,
                    Ok(_) => {
                        all.extend_from_slice(&line);
                        if line.last() == Some(&b'\n') {
                            line.pop();
                        }
                        let _ = tx.send(line);
                    }
                }
            }
        });
        ChatProc {
            name,
            log,
            child: Bounded(child),
            stdin,
            lines: rx,
            seen: Vec::new(),
            all: Some(all),
        }
    }

    /// Types `bytes` and Enter.
    fn type_line(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for a line containing `needle` (the line read as UTF-8, lossily); returns it.
    fn expect(&mut self, needle: &str) -> String {
        let text = |l: &[u8]| String::from_utf8_lossy(l).into_owned();
        if let Some(l) = self.seen.iter().find(|l| text(l).contains(needle)) {
            return text(l);
        }
        let start = Instant::now();
        while let Some(left) = WAIT.checked_sub(start.elapsed()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if text(&line).contains(needle) {
                        return text(&line);
                    }
                }
                Err(_) => break,
            }
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let seen: Vec<String> = self.seen.iter().map(|l| text(l)).collect();
        panic!(
            "{} never printed a line containing {needle:?} within {:?} (waited {WAIT:?}); it \
             printed: {seen:#?}\nthe end of its log:\n{}",
            self.name,
            start.elapsed(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    /// `/quit`; waits for the process to end; returns every byte it printed.
    fn quit(mut self) -> Vec<u8> {
        self.type_line(b"/quit");
        drop(self.stdin.take());
        let start = Instant::now();
        while self.child.0.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < WAIT,
                "{} did not quit within {WAIT:?} of /quit",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.all.take().unwrap().join().unwrap()
    }
}

/// Eve, whose name hides a bidi override, creates a group whose name hides one too, and
/// invites Alice, who joins. Eve being the creator, she may publish before any member
/// connects (a member may only once it has synchronised). Returns the two data directories
/// and the invitation file.
fn setup(dir: &Dir) -> (PathBuf, PathBuf, String) {
    let (a, e) = (dir.path("alice"), dir.path("eve"));
    ok(&e, &["identity", "create", EVE, "--classifier", "eve"]);
    ok(&e, &["group", "create", GROUP, "--identity", EVE]);
    ok(
        &a,
        &["identity", "create", "Alice", "--classifier", "alice"],
    );
    let info = dir.write(
        "alice.idinfo",
        ok(&a, &["identity", "xml", "Alice"]).as_bytes(),
    );
    let inv = ok(
        &e,
        &["invite", "--group", "Friends", "--identity-info", &info],
    );
    let inv = dir.write("alice.inv", inv.as_bytes());
    ok(&a, &["join", &inv]);
    (a, e, inv)
}

/// Asserts the output of a command shows `shown` and holds no raw control bytes.
fn assert_shows(what: &str, bytes: &[u8], shown: &[&str]) {
    assert_no_control_bytes(what, bytes);
    let text = String::from_utf8_lossy(bytes);
    for s in shown {
        assert!(text.contains(s), "{what} does not show {s:?}: {text}");
    }
}

#[test]
fn a_hostile_member_reaches_the_terminal_inert() {
    let dir = Dir::new();
    let (a, e, inv) = setup(&dir);
    // Eve publishes what only a record can carry (a newline); it reaches Alice in the chat
    // when Eve connects. Then Eve types a message and whispers.
    let data = dir.write("record.bin", RECORD);
    let attrs = dir.write("attrs.xml", ATTRIBUTES.as_bytes());
    let id = ok(
        &e,
        &[
            "record",
            "add",
            "--group",
            "Friends",
            "--type",
            CHAT_TYPE,
            "--data",
            &data,
            "--attributes",
            &attrs,
        ],
    );
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
    let mut eve = ChatProc::start("eve", &e, Some(&addr));
    eve.expect("present:");
    alice.expect(&format!("{EVE_SHOWN}: {RECORD_SHOWN}"));
    alice.expect("present:");
    eve.type_line(TYPED);
    alice.expect(&format!("{EVE_SHOWN}: {TYPED_SHOWN}"));
    let mut whisper = b"/w Alice ".to_vec();
    whisper.extend_from_slice(WHISPER);
    eve.type_line(&whisper);
    alice.expect(&format!("(whisper from {EVE_SHOWN}) {WHISPER_SHOWN}"));
    alice.type_line(b"/members");
    alice.expect(&format!("members present: Alice, {EVE_SHOWN}"));
    let eve_out = eve.quit();
    let out = alice.quit();
    assert_shows("Alice's chat", &out, &[]);
    // Nothing Eve wrote starts a line of its own: each line is a message (`[time] …`) or a
    // notice (`* …`), and every "Alice: …" is inside one of Eve's.
    let text = String::from_utf8_lossy(&out);
    for line in text.lines() {
        let time = line.get(..11).is_some_and(|t| {
            t.starts_with('[')
                && t.ends_with("] ")
                && t[1..9].bytes().all(|b| b == b':' || b.is_ascii_digit())
        });
        assert!(
            (time || line.starts_with("* ")) && !line.starts_with("Alice: "),
            "a spoofed line: {line:?}\nin:\n{text}"
        );
    }
    assert_shows("Eve's chat", &eve_out, &[]);

    // The record, now in Alice's replica too: one line each, escaped.
    let get = run(&a, &["record", "get", "--group", "Friends", &id]);
    assert!(
        get.status.success(),
        "{}",
        String::from_utf8_lossy(&get.stderr)
    );
    assert_shows("record get", &get.stdout, &[RECORD_SHOWN, ATTRIBUTES_SHOWN]);
    assert_eq!(
        get.stdout.iter().filter(|b| **b == b'\n').count(),
        3,
        "record get: the record, its attributes, its times: {}",
        String::from_utf8_lossy(&get.stdout)
    );
    let list = run(
        &a,
        &["record", "list", "--group", "Friends", "--type", CHAT_TYPE],
    );
    assert!(list.status.success());
    assert_shows("record list", &list.stdout, &[&id, RECORD_SHOWN]);
    let query = dir.write(
        "q.xml",
        br#"<peersearch><clause attrib="Note" type="string">one*</clause></peersearch>"#,
    );
    let search = run(&a, &["record", "search", "--group", "Friends", &query]);
    assert!(
        search.status.success(),
        "{}",
        String::from_utf8_lossy(&search.stderr)
    );
    assert_shows("record search", &search.stdout, &[&id, RECORD_SHOWN]);
    // JSON is for programs: serde escapes it, and it still carries every byte.
    let json = ok(&a, &["record", "get", "--group", "Friends", &id, "--json"]);
    assert!(json.contains(r"\u001b]0;pwned\u0007"), "{json}");

    // Names, wherever they are shown.
    for (home, args, shown) in [
        (&a, &["members", "--group", "Friends"][..], &[EVE_SHOWN][..]),
        (
            &a,
            &["group", "show", "Friends"][..],
            &[GROUP_SHOWN, EVE_SHOWN][..],
        ),
        (&a, &["group", "list"][..], &[GROUP_SHOWN][..]),
        (
            &a,
            &["invitation", "show", &inv][..],
            &[GROUP_SHOWN, EVE_SHOWN][..],
        ),
        (&e, &["identity", "list"][..], &[EVE_SHOWN][..]),
    ] {
        let out = run(home, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_shows(&format!("{args:?}"), &out.stdout, shown);
    }
}

#[test]
fn refusals_are_one_line_with_control_characters_escaped() {
    let dir = Dir::new();
    let home = dir.path("home");
    ok(&home, &["identity", "create", "Alice"]);
    // What the user typed, quoted in the reason.
    let out = run(&home, &["members", "--group", "no\x1b]0;t\x07\nsuch\r"]);
    let line = one_line_refusal(&out, "members of an unknown group");
    assert!(line.contains(r"no\u{1b}]0;t\u{7}\nsuch\r"), "{line}");
    // A file name.
    let missing = s(&dir.path("x\x1b[2J\ry.inv"));
    let out = run(&home, &["invitation", "show", &missing]);
    let line = one_line_refusal(&out, "a missing invitation");
    assert!(line.contains(r"x\u{1b}[2J\ry.inv"), "{line}");
    // Usage errors, which clap writes as a paragraph.
    for (args, reason) in [
        (
            &["identity", "create"][..],
            "<FRIENDLY_NAME>; Usage: peergroup identity create",
        ),
        (&["--bogus\x1b[2J"][..], r"--bogus\u{1b}[2J"),
        (
            &["record", "get", "--group", "Friends", "nope\x1b[H\n\r"][..],
            r"nope\u{1b}[H\n\r",
        ),
        (&["identity"][..], "subcommand"),
        (&[][..], "subcommand"),
    ] {
        let out = run(&home, args);
        let line = one_line_refusal(&out, &format!("{args:?}"));
        assert!(
            line.contains(reason) && line.ends_with(" (see --help)"),
            "{args:?}: {line}"
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: a usage error exits 2"
        );
    }
    // Help and the version are not errors.
    let out = run(&home, &["identity", "--help"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Usage"));
    let out = run(&home, &["--version"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("peergroup"));
}
