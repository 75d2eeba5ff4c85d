//! The `peergroup` binary driven as a user would: every command of the walkthrough, and
//! every refusal with its one-line reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The bound on one command run to completion. These commands are local (no network); quiet,
/// each takes well under a second. A command that reaches it hangs.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

#[path = "common/bounded.rs"]
mod bounded;

/// Runs `cmd` to completion, killing it and panicking (with what it printed) if it has not
/// finished within [`COMMAND_TIMEOUT`].
fn output_within(cmd: Command, what: &str) -> Output {
    bounded::output_within(cmd, bounded::Stdin::Null, what, COMMAND_TIMEOUT).0
}

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
        cmd.arg("--home")
            .arg(self.path("home"))
            .args(args)
            .env_remove("PEERGROUP_HOME");
        output_within(cmd, &format!("peergroup {args:?}"))
    }

    /// Runs a command that must succeed; returns its trimmed standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "peergroup {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Runs a command that must fail with a one-line reason containing `reason`.
    fn fails(&self, args: &[&str], reason: &str) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "peergroup {args:?} succeeded");
        assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(reason), "expected {reason:?} in {stderr}");
    }

    fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.path(name), text).unwrap();
        self.path(name).to_string_lossy().into_owned()
    }
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Alice creates a group; Bob and Carol have identities and identity-info files.
fn setup() -> (Home, String, String) {
    let h = Home::new();
    h.ok(&["identity", "create", "Alice", "--classifier", "alice"]);
    let bob = h.ok(&["identity", "create", "Bob", "--classifier", "bob"]);
    h.ok(&["identity", "create", "Carol"]);
    let group = h.ok(&["group", "create", "Friends", "--identity", "Alice"]);
    let info = h.ok(&["identity", "xml", "Bob"]);
    h.write("bob.xml", &info);
    let info = h.ok(&["identity", "xml", "Carol"]);
    h.write("carol.xml", &info);
    (h, bob, group)
}

#[test]
fn walkthrough() {
    let (h, bob, group) = setup();
    assert!(bob.ends_with(".bob"));
    assert!(h.ok(&["identity", "list"]).contains("Alice"));
    assert!(
        h.ok(&["identity", "list", "--json"])
            .contains("\"friendly_name\": \"Bob\"")
    );
    let inv = h.ok(&[
        "invite",
        "--group",
        "Friends",
        "--identity-info",
        &s(&h.path("bob.xml")),
        "--expires",
        "15d",
    ]);
    assert!(inv.starts_with("<?xml") && inv.contains("<PEERINVITATION"));
    let inv = h.write("bob.inv", &inv);
    let shown = h.ok(&["invitation", "show", &inv]);
    assert!(shown.contains("Bob") && shown.contains("member") && shown.contains(&group));
    let json = h.ok(&["invitation", "show", &inv, "--json"]);
    assert!(json.contains("\"subject_friendly_name\": \"Bob\""));
    assert_eq!(h.ok(&["join", &inv, "--identity", "Bob"]), group);
    let groups = h.ok(&["group", "list"]);
    assert_eq!(groups.lines().count(), 2, "{groups}");
    assert!(
        h.ok(&["group", "list", "--identity", "Bob", "--json"])
            .contains("\"member\"")
    );
    h.fails(&["join", &inv, "--identity", "Bob"], "already a member");
    // Names are how commands find things: a second of one name is refused.
    h.fails(
        &["identity", "create", "Alice"],
        "an identity called \"Alice\" exists already",
    );
    h.fails(
        &["group", "create", "Friends", "--identity", "Alice"],
        "belongs to a group called \"Friends\" already",
    );
    // The group is named positionally or with --group, as elsewhere.
    let positional = h.ok(&["group", "show", "Friends", "--identity", "Alice"]);
    let flagged = h.ok(&["group", "show", "--group", "Friends", "--identity", "Alice"]);
    // (Each opening publishes a presence, so the record counts differ: the group line is it.)
    assert_eq!(positional.lines().next(), flagged.lines().next());
    assert!(positional.starts_with("group:") && positional.contains("(Friends)"));
    h.fails(&["group", "show"], "GROUP");
}

#[test]
fn every_command_has_help() {
    let h = Home::new();
    for args in [
        &["--help"][..],
        &["identity", "--help"],
        &["identity", "create", "--help"],
        &["identity", "list", "--help"],
        &["identity", "xml", "--help"],
        &["identity", "export", "--help"],
        &["identity", "import", "--help"],
        &["identity", "delete", "--help"],
        &["group", "create", "--help"],
        &["group", "list", "--help"],
        &["invite", "--help"],
        &["invitation", "show", "--help"],
        &["join", "--help"],
    ] {
        let out = h.run(args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn member_and_escalation_refused() {
    let (h, _bob, _group) = setup();
    let inv = h.ok(&[
        "invite",
        "--group",
        "Friends",
        "--identity-info",
        &s(&h.path("bob.xml")),
        "--role",
        "inviting-member",
    ]);
    let inv = h.write("bob.inv", &inv);
    h.ok(&["join", &inv, "--identity", "Bob"]);
    // Bob may invite members and inviting members, but not admins.
    h.fails(
        &[
            "invite",
            "--group",
            "Friends",
            "--identity",
            "Bob",
            "--identity-info",
            &s(&h.path("carol.xml")),
            "--role",
            "admin",
        ],
        "may not invite with the admin role",
    );
    let carol_inv = h.ok(&[
        "invite",
        "--group",
        "Friends",
        "--identity",
        "Bob",
        "--identity-info",
        &s(&h.path("carol.xml")),
    ]);
    let carol_inv = h.write("carol.inv", &carol_inv);
    h.ok(&["join", &carol_inv, "--identity", "Carol"]);
    // Carol is a plain member: she may not invite at all.
    h.write("alice.xml", &h.ok(&["identity", "xml", "Alice"]));
    h.fails(
        &[
            "invite",
            "--group",
            "Friends",
            "--identity",
            "Carol",
            "--identity-info",
            &s(&h.path("alice.xml")),
        ],
        "may not invite",
    );
}

#[test]
fn foreign_tampered_and_expired_invitations_refused() {
    let (h, _bob, _group) = setup();
    let inv = h.ok(&[
        "invite",
        "--group",
        "Friends",
        "--identity-info",
        &s(&h.path("bob.xml")),
    ]);
    // Issued to Bob, presented by Carol.
    let path = h.write("bob.inv", &inv);
    h.fails(&["join", &path, "--identity", "Carol"], "was issued to");
    // One base64 character of the chain changed.
    let start = inv.find("bin.base64\">").unwrap() + 400;
    let mut tampered = inv.clone().into_bytes();
    tampered[start] = if tampered[start] == b'A' { b'B' } else { b'A' };
    let path = h.write("tampered.inv", std::str::from_utf8(&tampered).unwrap());
    let out = h.run(&["join", &path, "--identity", "Bob"]);
    assert!(!out.status.success(), "tampered invitation accepted");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
    // Cut short.
    let path = h.write("truncated.inv", &inv[..inv.len() / 2]);
    h.fails(
        &["join", &path, "--identity", "Bob"],
        "not a valid invitation",
    );
    // Expired.
    let inv = h.ok(&[
        "invite",
        "--group",
        "Friends",
        "--identity-info",
        &s(&h.path("bob.xml")),
        "--expires",
        "1s",
    ]);
    let path = h.write("short.inv", &inv);
    // A sleep for a wall-clock expiry: the invitation ends at most 1 s after it was made
    // (truncated to the second), so this leaves a margin of 1.1 s, and load only makes the
    // sleep longer.
    std::thread::sleep(Duration::from_millis(2100));
    h.fails(&["join", &path, "--identity", "Bob"], "expired");
}

#[test]
fn export_import_and_delete() {
    let (h, bob, _group) = setup();
    let pw = h.write("pw", "correct horse battery staple\n");
    let wrong = h.write("wrong", "Correct horse\n");
    let export = h.ok(&["identity", "export", "Bob", "--password-file", &pw]);
    assert!(export.contains("<PEERIDENTITYEXPORT"));
    let file = h.write("bob.export", &export);
    h.fails(
        &["identity", "import", &file, "--password-file", &pw],
        "already exists",
    );
    let other = Home::new();
    let out = other.run(&["identity", "import", &file, "--password-file", &wrong]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
    let imported = other.ok(&["identity", "import", &file, "--password-file", &pw]);
    assert_eq!(imported, bob);
    // Alice holds a group: refused. Carol holds none: deleted.
    h.fails(&["identity", "delete", "Alice"], "still holds groups");
    assert!(h.ok(&["identity", "delete", "Carol"]).contains("deleted"));
    h.fails(&["identity", "xml", "Carol"], "not found");
}

#[test]
fn bad_input_is_one_line() {
    let h = Home::new();
    h.fails(&["identity", "create", ""], "invalid friendly name");
    h.fails(
        &["identity", "create", "X", "--classifier", "bad classifier"],
        "invalid classifier",
    );
    h.fails(&["group", "list", "--identity", "nobody"], "not found");
    let junk = h.write(
        "junk.xml",
        "<PEERINVITATION VERSION=\"1.0\"><!DOCTYPE x></PEERINVITATION>",
    );
    h.fails(&["invitation", "show", &junk], "not a valid invitation");
    let big = h.write("big.xml", &"x".repeat(2 * 1024 * 1024));
    h.fails(&["invitation", "show", &big], "not a valid invitation");
    h.fails(
        &["invitation", "show", &s(&h.path("missing.xml"))],
        "reading",
    );
    h.fails(
        &["record", "list", "--group", "G", "--type", "hello"],
        "\"hello\" is not a record type: a GUID like",
    );
    h.fails(
        &["record", "get", "--group", "G", "hello"],
        "\"hello\" is not a record id: a GUID like",
    );
    // A mistyped home is not made: it is named.
    let typo = h.path("hme");
    let out = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
        cmd.arg("--home").arg(&typo).args(["group", "list"]);
        output_within(cmd, "group list on a missing home")
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no peergroup data directory at"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!typo.exists(), "a mistyped home was made");
}

/// `peergroup … | head -1`: when the reader closes the pipe, the command stops quietly and
/// successfully (no panic, no "Broken pipe" error), as Unix tools do.
#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    let (h, _, _) = setup();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
    cmd.arg("--home")
        .arg(h.path("home"))
        .args(["identity", "list"])
        .env_remove("PEERGROUP_HOME")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Closed before the command, still starting, writes a byte.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}
