//! Every file and stream the CLI reads is read through a limit and refused at once past it:
//! `/dev/zero`, an endless standard input, an endless FIFO, a 100 MB file.

use std::path::Path;

use crate::support::{Dir, Stdin, ok, one_line_refusal, output_within, peergroup, s};

const NOTES: &str = "5ca1ab1e-0000-4000-8000-00000000beef";

/// Runs a command that must be refused with a one-line reason holding `reason`; it must not
/// read its whole input (an endless one is refused once past the limit), which
/// [`output_within`] bounds at
/// [`COMMAND_TIMEOUT`](crate::support::COMMAND_TIMEOUT).
fn refused(home: &Path, args: &[&str], stdin: Stdin, reason: &str) {
    let what = format!("peergroup {args:?}");
    let (out, took) = output_within(peergroup(home, args), stdin, &what);
    let line = one_line_refusal(&out, &what);
    assert!(
        line.contains(reason),
        "{what}: expected {reason:?} in its refusal (after {took:?}): {line}"
    );
}

/// `record add` with `file` as its `--data` or `--attributes`.
fn add(what: &str, file: &str) -> Vec<String> {
    [
        "record", "add", "--group", "Friends", "--type", NOTES, what, file,
    ]
    .map(str::to_owned)
    .to_vec()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Alice with a group whose maximum record size is the default, 1 MiB.
fn setup(dir: &Dir) -> std::path::PathBuf {
    let home = dir.path("home");
    ok(&home, &["identity", "create", "Alice"]);
    ok(
        &home,
        &["group", "create", "Friends", "--identity", "Alice"],
    );
    home
}

#[test]
fn endless_and_oversized_files_are_refused_at_once() {
    let dir = Dir::new();
    let home = setup(&dir);
    let zero = "/dev/zero";
    let pw = dir.write("pw", b"a password\n");
    let data = add("--data", zero);
    refused(
        &home,
        &args(&data),
        Stdin::Null,
        "record data /dev/zero is larger than 1 MiB, the group's maximum record size",
    );
    let attributes = add("--attributes", zero);
    refused(
        &home,
        &args(&attributes),
        Stdin::Null,
        "attributes file /dev/zero is larger than 64 KiB",
    );
    // Standard input that never ends.
    let stdin = add("--data", "-");
    refused(
        &home,
        &args(&stdin),
        Stdin::Endless,
        "record data (standard input) is larger than 1 MiB",
    );
    // A 100 MB file (sparse: nothing is written) is refused without being read.
    let big = dir.path("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(100 * 1024 * 1024)
        .unwrap();
    let big_data = add("--data", &s(&big));
    refused(
        &home,
        &args(&big_data),
        Stdin::Null,
        "is larger than 1 MiB, the group's maximum record size",
    );
    refused(
        &home,
        &["record", "search", "--group", "Friends", zero],
        Stdin::Null,
        "search query /dev/zero is larger than 64 KiB",
    );
    refused(
        &home,
        &["group", "create", "Other", "--password-file", zero],
        Stdin::Null,
        "password file /dev/zero is larger than 4 KiB",
    );
    refused(
        &home,
        &["identity", "import", zero, "--password-file", &pw],
        Stdin::Null,
        "identity export /dev/zero is larger than 512 KiB",
    );
    for args in [&["invitation", "show", zero][..], &["join", zero][..]] {
        refused(
            &home,
            args,
            Stdin::Null,
            "/dev/zero is not a valid invitation: it is larger than 512 KiB",
        );
    }
    refused(
        &home,
        &["invite", "--group", "Friends", "--identity-info", zero],
        Stdin::Null,
        "identity info /dev/zero is larger than 512 KiB",
    );
    refused(
        &home,
        &["config", "import", zero, "--password-file", &pw],
        Stdin::Null,
        "group configuration /dev/zero is larger than 512 KiB",
    );
}

#[test]
fn record_data_is_bounded_by_the_groups_maximum() {
    let dir = Dir::new();
    let home = setup(&dir);
    ok(
        &home,
        &["group", "set", "Friends", "--max-record-size", "2048"],
    );
    let fits = dir.write("fits.bin", &[b'x'; 1024]);
    ok(
        &home,
        &[
            "record", "add", "--group", "Friends", "--type", NOTES, "--data", &fits,
        ],
    );
    let over = dir.write("over.bin", &[b'x'; 4096]);
    refused(
        &home,
        &[
            "record", "add", "--group", "Friends", "--type", NOTES, "--data", &over,
        ],
        Stdin::Null,
        "is larger than 2 KiB, the group's maximum record size",
    );
}

/// A FIFO whose writer never stops is refused once the limit is passed.
#[cfg(unix)]
#[test]
fn an_endless_fifo_is_refused() {
    use std::io::Write as _;

    let dir = Dir::new();
    let home = setup(&dir);
    let fifo = dir.path("endless");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", fifo.display());
    let path = fifo.clone();
    // Opening blocks until the command opens the other end; writing fails (EPIPE, SIGPIPE
    // being ignored) once it has closed it.
    std::thread::spawn(move || {
        let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&path) else {
            return;
        };
        let zeros = vec![0u8; 64 * 1024];
        while w.write_all(&zeros).is_ok() {}
    });
    refused(
        &home,
        &[
            "record",
            "add",
            "--group",
            "Friends",
            "--type",
            NOTES,
            "--data",
            &s(&fifo),
        ],
        Stdin::Null,
        "is larger than 1 MiB, the group's maximum record size",
    );
}
