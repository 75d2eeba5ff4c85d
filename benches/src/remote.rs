//! A node in a process of its own, so that what it costs is its process's CPU time alone.
//!
//! The benchmark binary starts itself again with [`FLAG`], the fixture's file and a database
//! path; its `main` hands such a call to [`serve`]. The child runs the fixture's creator
//! (which listens at once) on a two-worker runtime, prints `listening <addr>`, then answers
//! one command a line on its standard input:
//!
//! - `digest` → `digest <hex> <records>`;
//! - `flood <n>` → `ready` at once, then `reached` when the node has learned `n` more
//!   records from its neighbors (its delivery counters, polled every millisecond), or
//!   `timeout` after two minutes;
//! - `idle <ms>` → polls its delivery counters as `flood` does for `ms` milliseconds, then
//!   `idled` (what the polling itself costs, to set beside a flood's CPU time);
//! - `close` (or the end of its input) → closes the node, `closed`, and exits.
//!
//! The parent side is [`Remote`]; it reads the child's CPU time from `/proc/<pid>/stat`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use peergroup_membership::driver::GroupHandle;

use crate::Fixture;
use crate::net::{self, Who};

/// The first argument that makes a benchmark binary a remote node.
pub const FLAG: &str = "--peergroup-remote-node";
/// How often the child polls its delivery counters while a flood is awaited.
const POLL: Duration = Duration::from_millis(1);
/// How long the child awaits a flood.
const FLOOD_WITHIN: Duration = Duration::from_secs(120);

/// The child's side: `args` are what followed [`FLAG`] (the fixture's file, the database).
pub fn serve(args: &[String]) {
    let [fixture, database] = args else {
        unreachable!("usage: {FLAG} FIXTURE DATABASE");
    };
    let f = Fixture::from_bytes(&std::fs::read(fixture).expect("the fixture's file"));
    let rt = net::runtime(2);
    let db = net::open_database(&f, Path::new(database));
    let node = rt.block_on(net::start(&f, Who::Admin, db, &[]));
    let mut out = std::io::stdout().lock();
    let mut say = |line: &str| {
        writeln!(out, "{line}").expect("stdout");
        out.flush().expect("stdout");
    };
    say(&format!("listening {}", node.addr));
    for line in std::io::stdin().lines() {
        let line = line.expect("stdin");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["digest"] => {
                let (digest, n) = rt.block_on(node.handle.digest()).expect("digest");
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                say(&format!("digest {hex} {n}"));
            }
            ["flood", n] => {
                let n: u64 = n.parse().expect("a record count");
                let target = rt.block_on(net::delivered(&node.handle)) + n;
                say("ready");
                let reached = poll(&rt, &node.handle, target, FLOOD_WITHIN);
                say(if reached { "reached" } else { "timeout" });
            }
            ["idle", ms] => {
                let ms = ms.parse().expect("milliseconds");
                poll(&rt, &node.handle, u64::MAX, Duration::from_millis(ms));
                say("idled");
            }
            ["close"] => break,
            _ => unreachable!("unknown command {line:?}"),
        }
    }
    rt.block_on(node.close());
    say("closed");
}

/// Polls `handle`'s delivery counters every [`POLL`] until they reach `target` (true) or
/// `within` has passed (false).
fn poll(rt: &tokio::runtime::Runtime, handle: &GroupHandle, target: u64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if rt.block_on(net::delivered(handle)) >= target {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// The parent's side: a node running in a child process.
pub struct Remote {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Remote {
    /// Starts the fixture's creator in a child process (this executable, started again; its
    /// `main` must hand [`FLAG`] to [`serve`]), with its SQLite file at `database` and the
    /// fixture written beside it.
    pub fn start(f: &Fixture, database: &Path) -> Self {
        let fixture = database.with_extension("fixture");
        std::fs::write(&fixture, f.to_bytes()).expect("writing the fixture");
        let mut child = Command::new(std::env::current_exe().expect("this executable"))
            .arg(FLAG)
            .arg(&fixture)
            .arg(database)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the remote node");
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        let mut remote = Remote {
            child,
            input,
            output,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let line = remote.read();
        remote.addr = line
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .expect("the remote node's address");
        remote
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the child has used so far, all its threads (to the 10 ms tick).
    pub fn cpu(&self) -> Duration {
        crate::cpu::process(self.pid())
    }

    /// Its digest and record count.
    pub fn digest(&mut self) -> ([u8; 32], usize) {
        self.send("digest");
        let line = self.read();
        let words: Vec<&str> = line.split_whitespace().collect();
        let ["digest", hex, n] = words.as_slice() else {
            unreachable!("not a digest: {line:?}");
        };
        let mut digest = [0u8; 32];
        for (i, b) in digest.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
        }
        (digest, n.parse().expect("a record count"))
    }

    /// Tells the child to await `n` more records; returns once it polls.
    pub fn expect_records(&mut self, n: usize) {
        self.send(&format!("flood {n}"));
        let line = self.read();
        assert_eq!(line, "ready", "the remote node did not start awaiting");
    }

    /// Waits until the child has learned the records of [`Remote::expect_records`].
    pub fn wait_records(&mut self) {
        let line = self.read();
        assert_eq!(line, "reached", "the flood did not arrive");
    }

    /// The child's CPU time while it polls its delivery counters for `span`, as it does
    /// while it awaits a flood, with nothing arriving.
    pub fn idle_cpu(&mut self, span: Duration) -> Duration {
        let before = self.cpu();
        self.send(&format!("idle {}", span.as_millis()));
        let line = self.read();
        assert_eq!(line, "idled", "the remote node did not poll");
        self.cpu() - before
    }

    /// Closes the node and waits for the process.
    pub fn close(mut self) {
        self.send("close");
        let line = self.read();
        assert_eq!(line, "closed", "the remote node did not close");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "the remote node failed: {status}");
    }

    fn send(&mut self, line: &str) {
        writeln!(self.input, "{line}").expect("the remote node's stdin");
        self.input.flush().expect("the remote node's stdin");
    }

    fn read(&mut self) -> String {
        let mut line = String::new();
        let n = self
            .output
            .read_line(&mut line)
            .expect("the remote node's stdout");
        assert!(n > 0, "the remote node exited");
        line.trim_end().to_owned()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Closed already, or a benchmark failing: the child must not outlive it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `local` and `remote` report the same digest with at least `min` records,
/// polling every `every` (`local` through `rt`); panics after `within`. Returns the count.
pub fn converge(
    rt: &tokio::runtime::Runtime,
    local: &GroupHandle,
    remote: &mut Remote,
    min: usize,
    every: Duration,
    within: Duration,
) -> usize {
    let start = Instant::now();
    loop {
        let mine = rt.block_on(local.digest()).expect("digest");
        let theirs = remote.digest();
        if mine == theirs && mine.1 >= min {
            return mine.1;
        }
        assert!(
            start.elapsed() < within,
            "no convergence within {within:?}: {} and {} records",
            mine.1,
            theirs.1
        );
        std::thread::sleep(every);
    }
}
