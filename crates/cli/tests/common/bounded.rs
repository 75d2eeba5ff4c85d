//! Running a command with a bound on its time: shared by the CLI's test binaries (each
//! includes this file as a module).

#![allow(dead_code, reason = "each test binary uses the parts it needs")]

use std::io::{Read, Write as _};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What a command reads on standard input.
pub(crate) enum Stdin {
    /// Nothing (closed).
    Null,
    /// Zero bytes for ever, until the command stops reading.
    Endless,
}

/// Runs `cmd` to completion like [`Command::output`], but kills it and panics (with what it
/// printed) if it has not finished within `timeout`. Returns its output and how long it took.
pub(crate) fn output_within(
    mut cmd: Command,
    stdin: Stdin,
    what: &str,
    timeout: Duration,
) -> (Output, Duration) {
    let mut child = cmd
        .stdin(match stdin {
            Stdin::Null => Stdio::null(),
            Stdin::Endless => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(mut input) = child.stdin.take() {
        // Ends when the command exits or closes its input (the write fails: the test binary,
        // like every Rust program, ignores SIGPIPE).
        std::thread::spawn(move || {
            let zeros = vec![0u8; 64 * 1024];
            while input.write_all(&zeros).is_ok() {}
        });
    }
    let collect = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "waited {:?} for {what} to finish; it printed: {}{}",
                start.elapsed(),
                String::from_utf8_lossy(&stdout.join().unwrap()),
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let out = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    (out, elapsed)
}
