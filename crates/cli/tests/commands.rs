//! The full command line: groups, records, members, connections, maintenance, password
//! groups and `peergroup run`, as a user would type them.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// The deadline of one wait for something that must happen over the network (a line from a
/// running member, a record reaching another member, a one-shot command getting in sync).
/// Quiet, these take milliseconds to a few seconds; the deadline is generous because a busy
/// machine is slow, not broken.
const WAIT: Duration = Duration::from_secs(45);
/// How long a member that must be refused tries to connect (`connections --wait`). Short on
/// purpose: load only makes the refusal more certain.
const REFUSED_WAIT: &str = "5s";
/// The bound on one command run to completion: above its own network waits ([`WAIT`]).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// [`WAIT`] as a `--wait` argument.
fn wait_arg() -> String {
    format!("{}s", WAIT.as_secs())
}

#[path = "common/bounded.rs"]
mod bounded;

/// Runs `cmd` to completion, killing it and panicking (with what it printed) if it has not
/// finished within [`COMMAND_TIMEOUT`].
fn output_within(cmd: Command, what: &str) -> Output {
    bounded::output_within(cmd, bounded::Stdin::Null, what, COMMAND_TIMEOUT).0
}

fn run(home: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("PEERGROUP_HOME");
    output_within(cmd, &format!("peergroup {args:?}"))
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "peergroup {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn fails(home: &Path, args: &[&str], reason: &str) {
    let out = run(home, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "peergroup {args:?} succeeded");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(reason), "expected {reason:?} in {err}");
}

const NOTES: &str = "5ca1ab1e-0000-4000-8000-00000000beef";

struct Member {
    child: Child,
    lines: Receiver<String>,
}

impl Member {
    /// `peergroup run` in the background; returns once it listens.
    fn start(home: &Path, extra: &[&str]) -> (Self, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_peergroup"))
            .arg("--home")
            .arg(home)
            .args([
                "run",
                "--group",
                "Friends",
                "--control",
                "--no-discovery",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
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
        let mut m = Member { child, lines: rx };
        let listening = m.expect("listening ");
        let addr = listening
            .trim_start_matches("listening ")
            .split(' ')
            .next()
            .unwrap()
            .to_owned();
        (m, addr)
    }

    /// The next line containing `needle`, within [`WAIT`].
    fn expect(&mut self, needle: &str) -> String {
        self.expect_line(&format!("containing {needle:?}"), |l| l.contains(needle))
    }

    /// The next line for which `want` holds; panics after [`WAIT`], or when the output ends,
    /// saying what it waited for, how long, and the lines it saw instead.
    fn expect_line(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        const KEEP: usize = 10;
        let start = Instant::now();
        let (mut count, mut last) = (0, VecDeque::new());
        loop {
            let left = WAIT.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(l) if want(&l) => return l,
                Ok(l) => {
                    count += 1;
                    if last.len() == KEEP {
                        last.pop_front();
                    }
                    last.push_back(l);
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "waited {:?} for a line {what}; saw {count} other line(s), the last: {last:#?}",
                    start.elapsed()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the member's output ended after {:?} without a line {what} (exit: {:?}); \
                     saw {count} other line(s), the last: {last:#?}",
                    start.elapsed(),
                    self.child.try_wait()
                ),
            }
        }
    }

    /// Sends a control command; returns its answer (the next line starting with `> `).
    fn ask(&mut self, cmd: &str) -> String {
        writeln!(self.child.stdin.as_mut().unwrap(), "{cmd}").unwrap();
        self.expect_line(&format!("answering {cmd:?}"), |l| l.starts_with("> "))
    }

    /// Ends it the way Ctrl-C would (closing input in control mode), cleanly.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        self.expect("closed");
        let status = self.child.wait().unwrap();
        assert!(status.success());
    }
}

impl Drop for Member {
    /// A test that fails midway does not leave its member running (after [`Member::stop`],
    /// the process has been waited for and this does nothing).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("alice"), dir.join("bob"));
    ok(
        &a,
        &["identity", "create", "Alice", "--classifier", "alice"],
    );
    ok(
        &a,
        &[
            "group",
            "create",
            "Friends",
            "--identity",
            "Alice",
            "--comment",
            "a test group",
        ],
    );
    ok(&b, &["identity", "create", "Bob"]);
    let info = dir.join("bob.idinfo");
    std::fs::write(&info, ok(&b, &["identity", "xml", "Bob"])).unwrap();
    let inv = dir.join("bob.inv");
    std::fs::write(
        &inv,
        ok(
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
    ok(&b, &["join", inv.to_str().unwrap()]);
    (a, b)
}

#[test]
fn records_members_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _b) = setup(dir.path());
    let attrs = dir.path().join("attrs.xml");
    std::fs::write(
        &attrs,
        r#"<attributes><attribute name="Topic" type="string">lunch</attribute></attributes>"#,
    )
    .unwrap();
    let data = dir.path().join("data.txt");
    std::fs::write(&data, "noon at the usual place").unwrap();
    let id = ok(
        &a,
        &[
            "record",
            "add",
            "--group",
            "Friends",
            "--type",
            NOTES,
            "--attributes",
            attrs.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--expires",
            "2h",
        ],
    );
    assert!(
        ok(&a, &["record", "get", "--group", "Friends", &id]).contains("noon at the usual place")
    );
    assert!(
        ok(&a, &["record", "get", "--group", "Friends", &id, "--json"])
            .contains("\"payload_text\": \"noon at the usual place\"")
    );
    assert!(
        ok(
            &a,
            &["record", "list", "--group", "Friends", "--type", NOTES]
        )
        .contains(&id)
    );
    // A record changed in place: a new version with the new data.
    let newer = dir.path().join("newer.txt");
    std::fs::write(&newer, "one o'clock instead").unwrap();
    let updated = ok(
        &a,
        &[
            "record",
            "update",
            "--group",
            "Friends",
            &id,
            "--data",
            newer.to_str().unwrap(),
        ],
    );
    assert_eq!(updated, format!("{id} v2"));
    assert!(ok(&a, &["record", "get", "--group", "Friends", &id]).contains("one o'clock instead"));
    fails(
        &a,
        &["record", "update", "--group", "Friends", &id],
        "nothing to change",
    );
    // The group's clock: the creator's is the reference.
    let peer_time = ok(&a, &["record", "peer-time", "--group", "Friends"]);
    assert!(
        peer_time.starts_with("peer time:") && peer_time.contains(" ms "),
        "{peer_time}"
    );
    let query = dir.path().join("q.xml");
    std::fs::write(
        &query,
        r#"<peersearch><clause attrib="Topic" type="string">lun*</clause></peersearch>"#,
    )
    .unwrap();
    assert!(
        ok(
            &a,
            &[
                "record",
                "search",
                "--group",
                "Friends",
                query.to_str().unwrap()
            ]
        )
        .contains(&id)
    );
    std::fs::write(&query, "<peersearch/>").unwrap();
    fails(
        &a,
        &[
            "record",
            "search",
            "--group",
            "Friends",
            query.to_str().unwrap(),
        ],
        "search",
    );
    ok(&a, &["record", "delete", "--group", "Friends", &id]);
    fails(
        &a,
        &["record", "get", "--group", "Friends", &id],
        "not found",
    );

    let shown = ok(&a, &["group", "show", "Friends"]);
    assert!(
        shown.contains("a test group") && shown.contains("Alice"),
        "{shown}"
    );
    assert!(
        ok(&a, &["group", "show", "Friends", "--json"]).contains("\"comment\": \"a test group\"")
    );
    ok(
        &a,
        &["group", "set", "Friends", "--comment", "renamed comment"],
    );
    assert!(ok(&a, &["group", "show", "Friends"]).contains("renamed comment"));
    fails(&a, &["group", "set", "Friends"], "nothing to change");
    // The bound on presences: new groups hold 1,024; `all` is every node's, and back.
    assert!(ok(&a, &["group", "show", "Friends"]).contains("presence of at most 1024 nodes"));
    ok(&a, &["group", "set", "Friends", "--max-presence", "all"]);
    assert!(ok(&a, &["group", "show", "Friends"]).contains("presence of every node"));
    assert!(ok(&a, &["group", "show", "Friends", "--json"]).contains("\"max_presence\": null"));
    ok(&a, &["group", "set", "Friends", "--max-presence", "64"]);
    assert!(ok(&a, &["group", "show", "Friends", "--json"]).contains("\"max_presence\": 64"));
    fails(
        &a,
        &["group", "set", "Friends", "--max-presence", "many"],
        "'many' is not a number of presences",
    );
    // A rename is the group's name from then on: listed, and found, by it.
    ok(&a, &["group", "set", "Friends", "--name", "Club2"]);
    let list = ok(&a, &["group", "list"]);
    assert!(
        list.contains("Club2") && !list.contains("Friends"),
        "{list}"
    );
    assert!(ok(&a, &["group", "show", "Club2"]).contains("Club2"));
    fails(&a, &["group", "show", "Friends"], "not found");
    ok(
        &a,
        &["group", "set", "--group", "Club2", "--name", "Friends"],
    );
    let members = ok(&a, &["members", "--group", "Friends"]);
    assert!(
        members.lines().next().unwrap().contains("Alice"),
        "the local member first: {members}"
    );
    assert!(ok(&a, &["members", "--group", "Friends", "--json"]).contains("\"local\": true"));
    assert!(ok(&a, &["group", "list", "--json"]).contains("\"owner\": true"));
    // One shape for one thing: roles are an array of names wherever they are shown.
    let json =
        |args: &[&str]| -> serde_json::Value { serde_json::from_str(&ok(&a, args)).unwrap() };
    let members = json(&["members", "--group", "Friends", "--json"]);
    let groups = json(&["group", "list", "--json"]);
    let shown = json(&["group", "show", "Friends", "--json"]);
    for roles in [
        &members[0]["roles"],
        &groups[0]["roles"],
        &shown["roles"],
        &shown["members"][0]["roles"],
    ] {
        assert_eq!(
            roles,
            &serde_json::json!(["admin"]),
            "{members} {groups} {shown}"
        );
    }
    let default = json(&["identity", "default", "--json"]);
    assert_eq!(default["friendly_name"], "Alice", "{default}");
    assert_eq!(default["is_default"], true, "{default}");

    // Database and configuration export and import.
    let export = dir.path().join("db.export");
    assert!(
        ok(
            &a,
            &[
                "db",
                "export",
                "--group",
                "Friends",
                export.to_str().unwrap()
            ]
        )
        .contains("exported")
    );
    assert!(
        ok(
            &a,
            &[
                "db",
                "import",
                "--group",
                "Friends",
                export.to_str().unwrap()
            ]
        )
        .contains("imported")
    );
    std::fs::write(&export, b"damaged").unwrap();
    fails(
        &a,
        &[
            "db",
            "import",
            "--group",
            "Friends",
            export.to_str().unwrap(),
        ],
        "export",
    );
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "config password\n").unwrap();
    let config = ok(
        &a,
        &[
            "config",
            "export",
            "--group",
            "Friends",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert!(config.contains("<PEERGROUPCONFIG") && config.contains("GROUPKEY"));
    let cfile = dir.path().join("config.xml");
    std::fs::write(&cfile, &config).unwrap();
    fails(
        &a,
        &[
            "config",
            "import",
            cfile.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ],
        "already",
    );
    ok(
        &a,
        &[
            "config",
            "import",
            cfile.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
            "--overwrite",
        ],
    );
    std::fs::write(&pw, "wrong\n").unwrap();
    fails(
        &a,
        &[
            "config",
            "import",
            cfile.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
            "--overwrite",
        ],
        "wrong password",
    );

    // Delete.
    fails(&a, &["identity", "delete", "Alice"], "still holds groups");
    ok(&a, &["group", "delete", "Friends"]);
    ok(&a, &["identity", "delete", "Alice"]);
}

#[test]
fn running_members_sync_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = setup(dir.path());
    let (mut alice, addr) = Member::start(&a, &[]);
    let (mut bob, _) = Member::start(&b, &["--connect", &addr]);
    bob.expect("synchronized=true");
    let added = alice.ask(&format!("add {NOTES} hello from alice"));
    assert!(added.starts_with("> ok "), "{added}");
    let id = added.trim_start_matches("> ok ").to_owned();
    let start = Instant::now();
    loop {
        let answer = bob.ask(&format!("get {id}"));
        if answer.contains("found") {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "waited {:?} for the record to reach Bob; he still answers {answer:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(bob.ask("members").contains("members 2/2"));
    bob.stop();
    // Bob has synchronised once: he may add a record offline (it travels on his next connect).
    let data = dir.path().join("offline.txt");
    std::fs::write(&data, "written offline").unwrap();
    let offline = ok(
        &b,
        &[
            "record",
            "add",
            "--group",
            "Friends",
            "--type",
            NOTES,
            "--data",
            data.to_str().unwrap(),
        ],
    );
    assert!(!offline.is_empty(), "record add printed nothing");
    // A one-shot invocation connects, waits until it is in sync, and lists its connections.
    let conns = ok(
        &b,
        &[
            "connections",
            "--group",
            "Friends",
            "--connect",
            &addr,
            "--wait",
            &wait_arg(),
        ],
    );
    assert!(
        conns.contains("neighbor") && conns.contains(&addr),
        "{conns}"
    );
    alice.stop();

    // Revocation, offline; it reaches Bob's replica on the next connect. Bob must be refused:
    // a negative check, so a short wait.
    ok(
        &a,
        &["revoke", "--group", "Friends", "Bob", "--reason", "test"],
    );
    let (alice, addr) = Member::start(&a, &[]);
    let out = run(
        &b,
        &[
            "connections",
            "--group",
            "Friends",
            "--connect",
            &addr,
            "--wait",
            REFUSED_WAIT,
        ],
    );
    assert!(
        !out.status.success(),
        "a revoked member still connects: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    alice.stop();
}

#[test]
fn one_node_per_home() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _b) = setup(dir.path());
    let (mut alice, _) = Member::start(&a, &[]);
    let pid = alice.child.id();
    // A second node on Alice's home is refused in one line naming the running one.
    let second = [
        "run",
        "--group",
        "Friends",
        "--no-discovery",
        "--listen",
        "127.0.0.1:0",
    ];
    fails(
        &a,
        &second,
        &format!("in use by another running node (process {pid})"),
    );
    assert!(
        alice.ask("members").contains("members"),
        "alice still serves"
    );
    // Killed with -9, the node leaves the lock file but not the lock.
    alice.child.kill().unwrap();
    alice.child.wait().unwrap();
    assert!(a.join(peergroup::LOCK_FILE).exists());
    let list = ok(&a, &["group", "list"]);
    assert!(list.contains("Friends"), "{list}");
}

/// Polls Alice's `members` answer until it is `want`, within [`WAIT`]; returns how long it took.
fn members_become(alice: &mut Member, want: &str) -> Duration {
    let start = Instant::now();
    loop {
        let answer = alice.ask("members");
        if answer == format!("> {want}") {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < WAIT,
            "waited {:?} for {want:?}; Alice answers {answer:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A member killed with -9 is shown gone as soon as its connection drops (not when its
/// presence expires, minutes later); one stopped with SIGTERM leaves cleanly, as with Ctrl-C.
#[test]
fn a_killed_member_is_gone_at_once_and_sigterm_leaves_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = setup(dir.path());
    let (mut alice, addr) = Member::start(&a, &[]);
    let (mut bob, _) = Member::start(&b, &["--connect", &addr]);
    bob.expect("synchronized=true");
    members_become(&mut alice, "members 2/2");
    bob.child.kill().unwrap();
    bob.child.wait().unwrap();
    let took = members_become(&mut alice, "members 1/2");
    eprintln!("a member killed with -9 was shown gone after {took:?}");

    let (mut bob, _) = Member::start(&b, &["--connect", &addr]);
    bob.expect("synchronized=true");
    members_become(&mut alice, "members 2/2");
    let pid = bob.child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    bob.expect("closed");
    let status = bob.child.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM did not end bob cleanly: {status:?}"
    );
    alice.expect("member Disconnected");
    members_become(&mut alice, "members 1/2");
    alice.stop();
}

/// `peergroup ARGS` on `home` from the directory `cwd`.
fn run_in(cwd: &Path, home: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
    cmd.current_dir(cwd)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("PEERGROUP_HOME");
    output_within(cmd, &format!("peergroup {args:?}"))
}

fn ok_in(cwd: &Path, home: &Path, args: &[&str]) -> String {
    let out = run_in(cwd, home, args);
    assert!(
        out.status.success(),
        "peergroup {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// While `run` serves a home, every other command on it is carried out by that node: what
/// it writes takes effect at once, what it reads is what the node sees now, and relative
/// paths are the caller's.
#[test]
fn commands_act_through_the_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = setup(dir.path());
    let (alice, addr) = Member::start(&a, &[]);
    let (mut bob, _) = Member::start(&b, &["--connect", &addr]);
    bob.expect("synchronized=true");
    let cwd = dir.path().join("work");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(cwd.join("note.txt"), "added while alice runs").unwrap();

    // A record added by a second process is flooded by the running node at once.
    let id = ok_in(
        &cwd,
        &a,
        &[
            "record", "add", "--group", "Friends", "--type", NOTES, "--data", "note.txt",
        ],
    );
    let start = Instant::now();
    while !bob.ask(&format!("get {id}")).contains("found") {
        assert!(start.elapsed() < WAIT, "the record never reached Bob");
        std::thread::sleep(Duration::from_millis(100));
    }
    // What the node sees now.
    let show = ok(&a, &["group", "show", "Friends"]);
    assert!(
        show.contains("running here: listening=true connections=true"),
        "{show}"
    );
    let members = ok(&a, &["members", "--group", "Friends"]);
    assert!(members.contains("Bob"), "{members}");
    // A rename by the running node reaches Bob, whose list shows it while his node runs.
    for (from, to) in [("Friends", "Club3"), ("Club3", "Friends")] {
        ok(&a, &["group", "set", from, "--name", to]);
        let start = Instant::now();
        while !ok(&b, &["group", "list"]).contains(to) {
            assert!(
                start.elapsed() < WAIT,
                "Bob never saw the group called {to}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // An invitation names where the node listens.
    let info = dir.path().join("carol.idinfo");
    let c = dir.path().join("carol");
    ok(&c, &["identity", "create", "Carol"]);
    std::fs::write(&info, ok(&c, &["identity", "xml", "Carol"])).unwrap();
    let port = addr.rsplit(':').next().unwrap();
    let inv = ok(
        &a,
        &[
            "invite",
            "--group",
            "Friends",
            "--identity-info",
            info.to_str().unwrap(),
        ],
    );
    let shown = {
        let f = cwd.join("carol.inv");
        std::fs::write(&f, &inv).unwrap();
        ok(&a, &["invitation", "show", f.to_str().unwrap()])
    };
    assert!(
        shown.contains(port),
        "the invitation does not name {addr}: {shown}"
    );
    // Relative output paths are the caller's too.
    ok_in(
        &cwd,
        &a,
        &["db", "export", "--group", "Friends", "friends.db"],
    );
    assert!(cwd.join("friends.db").exists());
    // What would pull the group from under the node is refused, in one line.
    fails(&a, &["group", "delete", "Friends"], "open");
    fails(
        &a,
        &[
            "db",
            "import",
            "--group",
            "Friends",
            cwd.join("friends.db").to_str().unwrap(),
        ],
        "open",
    );
    // Standard input is the caller's: refused rather than read from the node's.
    fails(
        &a,
        &[
            "record", "add", "--group", "Friends", "--type", NOTES, "--data", "-",
        ],
        "standard input",
    );
    // A role change: new credentials for Bob, published in the group.
    let cred = dir.path().join("bob.cred");
    let changed = ok(
        &a,
        &[
            "credentials",
            "--group",
            "Friends",
            "Bob",
            "--role",
            "inviting-member",
            "--output",
            cred.to_str().unwrap(),
        ],
    );
    assert!(
        changed.contains("as inviting-member published"),
        "{changed}"
    );
    assert!(
        std::fs::read_to_string(&cred)
            .unwrap()
            .contains("<PEERINVITATION")
    );
    let members: serde_json::Value =
        serde_json::from_str(&ok(&a, &["members", "--group", "Friends", "--json"])).unwrap();
    let listed = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["friendly_name"] == "Bob")
        .expect("Bob listed");
    assert_eq!(
        listed["roles"],
        serde_json::json!(["inviting-member"]),
        "{members}"
    );
    fails(
        &a,
        &["credentials", "--group", "Friends", "Zed"],
        "no member matches",
    );
    // Data over a direct connection, sent by the running node: Bob's node reports it.
    let sent = ok_in(
        &cwd,
        &a,
        &[
            "send", "--group", "Friends", "--to", "Bob", "--type", NOTES, "--data", "note.txt",
        ],
    );
    assert!(sent.starts_with("sent 22 bytes to "), "{sent}");
    let got = bob.expect("bytes from");
    assert!(
        got.starts_with("data ") && got.contains(" 22 bytes from "),
        "{got}"
    );
    // A revocation closes the revoked member's connections at once.
    let revoked = ok(
        &a,
        &["revoke", "--group", "Friends", "Bob", "--reason", "test"],
    );
    assert!(revoked.contains("connections are closed"), "{revoked}");
    let start = Instant::now();
    while bob.ask("connections") != "> connections 0" {
        assert!(
            start.elapsed() < WAIT,
            "Bob is still connected after his revocation"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    alice.stop();
    // With no node running, the socket is gone and commands run on the files again.
    assert!(!a.join("control.sock").exists());
    ok(&a, &["members", "--group", "Friends"]);
}

/// `run --json` prints every line as a JSON object.
#[test]
fn run_json_prints_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _b) = setup(dir.path());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
    cmd.arg("--home").arg(&a).args([
        "run",
        "--group",
        "Friends",
        "--json",
        "--control",
        "--no-discovery",
        "--listen",
        "127.0.0.1:0",
    ]);
    // Control mode with no input: it starts, and stops at once as at Ctrl-C.
    let out = output_within(cmd, "run --json");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    assert_eq!(
        events.first().map(|e| &e["event"]),
        Some(&serde_json::json!("listening")),
        "{text}"
    );
    assert_eq!(
        events.last().map(|e| &e["event"]),
        Some(&serde_json::json!("closed")),
        "{text}"
    );
}

#[test]
fn password_group_join() {
    let dir = tempfile::tempdir().unwrap();
    let (a, c) = (dir.path().join("alice"), dir.path().join("carol"));
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "open sesame\n").unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "open says me\n").unwrap();
    ok(
        &a,
        &["identity", "create", "Alice", "--classifier", "alice"],
    );
    ok(
        &a,
        &[
            "group",
            "create",
            "Friends",
            "--identity",
            "Alice",
            "--password-file",
            pw.to_str().unwrap(),
            "--password-role",
            "member",
        ],
    );
    // Setting the password again (what a member upgraded from SPAKE2 does) replaces the
    // registration; joins below use the new one.
    assert!(
        ok(
            &a,
            &[
                "group",
                "set-password",
                "Friends",
                "--password-file",
                pw.to_str().unwrap(),
            ],
        )
        .contains("takes password joins")
    );
    ok(&c, &["identity", "create", "Carol"]);
    let (alice, addr) = Member::start(&a, &[]);
    let inv = ok(
        &a,
        &[
            "invite",
            "--group",
            "Friends",
            "--password",
            "--address",
            &addr,
        ],
    );
    assert!(inv.contains("GROUPPEERNAME") && !inv.contains("open sesame"));
    let file = dir.path().join("pw.inv");
    std::fs::write(&file, inv).unwrap();
    assert!(ok(&c, &["invitation", "show", file.to_str().unwrap()]).contains("Password"));
    fails(&c, &["join", file.to_str().unwrap()], "password-file");
    fails(
        &c,
        &[
            "join",
            file.to_str().unwrap(),
            "--password-file",
            wrong.to_str().unwrap(),
        ],
        "wrong password",
    );
    let group = ok(
        &c,
        &[
            "join",
            file.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert!(ok(&c, &["group", "list"]).contains(&group));
    alice.stop();
}

/// A node process runs with two malloc arenas (`src/malloc.rs`): it started itself again with
/// `GLIBC_TUNABLES`, under the pid the caller knows, and still does its work.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_node_runs_with_two_malloc_arenas() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _b) = setup(dir.path());
    let (mut m, _) = Member::start(&a, &[]);
    let environ = std::fs::read(format!("/proc/{}/environ", m.child.id())).unwrap();
    let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    assert!(
        vars.contains(&&b"GLIBC_TUNABLES=glibc.malloc.arena_max=2"[..]),
        "the node's environment: {}",
        String::from_utf8_lossy(&environ).replace('\0', " ")
    );
    assert!(m.ask("members").contains("members "));
    m.stop();
}
