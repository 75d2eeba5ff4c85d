//! `peergroup db import` of an export holding a tampered record: the refused record is named
//! with its reason, the command fails and imports nothing unless `--partial`, and nothing
//! already stored is lost. Files are bounded before they are read.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use peergroup_record_db::{Record, RecordId, codec, export::read_export};

/// The bound on one command run to completion (they are all local; this is for a busy
/// machine, not a slow protocol).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

const NOTES: &str = "5ca1ab1e-0000-4000-8000-00000000beef";

#[path = "common/bounded.rs"]
mod bounded;

/// Runs `peergroup --home HOME ARGS…`, killed (and the test failed with what it printed)
/// past [`COMMAND_TIMEOUT`].
fn run(home: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("PEERGROUP_HOME");
    let what = format!("peergroup {args:?}");
    bounded::output_within(cmd, bounded::Stdin::Null, &what, COMMAND_TIMEOUT).0
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "peergroup {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs a command that must fail; returns (stdout, stderr).
fn fails(home: &Path, args: &[&str]) -> (String, String) {
    let out = run(home, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        !out.status.success(),
        "peergroup {args:?} succeeded: {stdout}"
    );
    (stdout, stderr)
}

fn add_note(home: &Path, dir: &Path, text: &str) -> RecordId {
    let data = dir.join("note.txt");
    std::fs::write(&data, text).unwrap();
    let id = ok(
        home,
        &[
            "record",
            "add",
            "--group",
            "Friends",
            "--type",
            NOTES,
            "--data",
            data.to_str().unwrap(),
            "--expires",
            "2h",
        ],
    );
    id.parse().unwrap()
}

fn has_record(home: &Path, id: &RecordId) -> bool {
    run(
        home,
        &["record", "get", "--group", "Friends", &id.to_string()],
    )
    .status
    .success()
}

/// The export's group name (from its header), its records, and a writer of a well-formed
/// export (valid checksum) of other records.
fn read(path: &Path) -> (String, Vec<Record>) {
    let bytes = std::fs::read(path).unwrap();
    let len = usize::from(u16::from_le_bytes([bytes[9], bytes[10]]));
    let group = String::from_utf8(bytes[11..11 + len].to_vec()).unwrap();
    let records = read_export(path, &group).unwrap();
    (group, records)
}

fn write(path: &Path, group: &str, records: &[Record]) {
    let mut out = b"PGDBEXP\0".to_vec();
    out.push(1);
    out.extend_from_slice(&(group.len() as u16).to_le_bytes());
    out.extend_from_slice(group.as_bytes());
    out.extend_from_slice(&(records.len() as u64).to_le_bytes());
    for r in records {
        let bytes = codec::encode(r);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    let digest = peergroup_identity::sha256(&out);
    out.extend_from_slice(&digest);
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_tampered_export_is_refused_by_name_unless_partial() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (a, b) = (dir.join("alice"), dir.join("bob"));
    ok(
        &a,
        &["identity", "create", "Alice", "--classifier", "alice"],
    );
    ok(&a, &["group", "create", "Friends", "--identity", "Alice"]);
    ok(&b, &["identity", "create", "Bob"]);
    let info = dir.join("bob.idinfo");
    std::fs::write(&info, ok(&b, &["identity", "xml", "Bob"])).unwrap();
    let inv = dir.join("bob.inv");
    let invitation = ok(
        &a,
        &[
            "invite",
            "--group",
            "Friends",
            "--identity-info",
            info.to_str().unwrap(),
        ],
    );
    std::fs::write(&inv, invitation).unwrap();
    ok(&b, &["join", inv.to_str().unwrap()]);

    // Bob first imports an export holding one note: what he already stores.
    let first = add_note(&a, dir, "first");
    let early = dir.join("early.pgdb");
    ok(
        &a,
        &[
            "db",
            "export",
            "--group",
            "Friends",
            early.to_str().unwrap(),
        ],
    );
    let out = ok(
        &b,
        &[
            "db",
            "import",
            "--group",
            "Friends",
            early.to_str().unwrap(),
        ],
    );
    assert!(out.starts_with("imported "), "{out}");
    assert!(has_record(&b, &first));

    let notes: Vec<RecordId> = (0..3)
        .map(|i| add_note(&a, dir, &format!("note {i}")))
        .collect();
    let export = dir.join("friends.pgdb");
    ok(
        &a,
        &[
            "db",
            "export",
            "--group",
            "Friends",
            export.to_str().unwrap(),
        ],
    );

    // One of Alice's notes altered after she signed it, the file's checksum made good.
    let (group, mut records) = read(&export);
    let total = records.len();
    let tampered = notes[1];
    records
        .iter_mut()
        .find(|r| r.id == tampered)
        .unwrap()
        .payload = b"altered".to_vec();
    let file = dir.join("tampered.pgdb");
    write(&file, &group, &records);
    let file = file.to_str().unwrap();
    let held: std::collections::HashSet<u64> =
        read(&early).1.iter().map(Record::item_key).collect();
    let new = records
        .iter()
        .filter(|r| r.id != tampered && !held.contains(&r.item_key()))
        .count();
    assert!(
        new >= 2,
        "the other two notes, and what opening the group republished"
    );

    let (stdout, stderr) = fails(&b, &["db", "import", "--group", "Friends", file]);
    assert!(
        stdout.contains(&format!("refused {tampered}: bad record signature")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the tampered record: {stdout}"
    );
    // The reason on one line, last (log lines of the refusal may come before).
    let reason = stderr.trim().lines().last().unwrap_or_default();
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(
        reason.starts_with("error: ")
            && reason.contains(&format!("1 of {total} records"))
            && reason.contains("nothing was imported")
            && reason.contains("--partial"),
        "{stderr}"
    );
    assert!(has_record(&b, &first), "what Bob stored is kept");
    for id in &notes {
        assert!(!has_record(&b, id), "nothing was imported");
    }

    let stdout = ok(
        &b,
        &["db", "import", "--group", "Friends", "--partial", file],
    );
    assert!(
        stdout.contains(&format!("refused {tampered}: bad record signature")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "imported {new} records from {file}, {} already held, 1 refused",
            total - new - 1
        )),
        "{stdout}"
    );
    assert!(has_record(&b, &first), "what Bob stored is kept");
    assert!(has_record(&b, &notes[0]) && has_record(&b, &notes[2]));
    assert!(!has_record(&b, &tampered));
}

#[test]
fn huge_files_and_devices_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let a = dir.join("alice");
    ok(
        &a,
        &["identity", "create", "Alice", "--classifier", "alice"],
    );
    ok(&a, &["group", "create", "Friends", "--identity", "Alice"]);
    let huge = dir.join("huge.pgdb");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(peergroup_record_db::export::MAX_EXPORT_FILE_BYTES + 1)
        .unwrap();
    // Another kind of file (here an identity info, long enough to be an export) is named as
    // such, not as a damaged export.
    let xml = dir.join("alice.idinfo");
    std::fs::write(&xml, ok(&a, &["identity", "xml", "Alice"])).unwrap();
    for (file, why) in [
        (
            huge.to_str().unwrap(),
            "an export is at most 1073741824 bytes",
        ),
        ("/dev/zero", "not a regular file"),
        (
            xml.to_str().unwrap(),
            "not a peergroup database export (it is XML",
        ),
    ] {
        let (_, stderr) = fails(&a, &["db", "import", "--group", "Friends", file]);
        assert!(stderr.contains(why), "{file}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}
