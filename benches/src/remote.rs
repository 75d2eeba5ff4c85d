//! A node in a process of its own, so that what it costs is its process's CPU time alone.
//!
//! The benchmark binary starts itself again with [`FLAG`], the fixture's file and a database
//! path; its `main` hands such a call to [`serve`]. The child runs the fixture's creator
//! (which listens at once) on a two-worker runtime (or one thread, see [`RUNTIME_VAR`]),
//! prints `listening <addr>`, then answers one command a line on its standard input:
//!
//! - `digest` → `digest <hex> <records>`;
//! - `flood <n>` → `ready` at once, then `reached <polls>` when the node has learned `n` more
//!   records from its neighbors (its delivery counters, polled as [`poll_gap`] says: rarely
//!   while many records are still to come, every millisecond near the end), or `timeout`
//!   after two minutes;
//! - `idle <ms>` → polls its delivery counters every millisecond for `ms` milliseconds, then
//!   `idled <polls>` (what one poll costs, to set a flood's polls beside its CPU time);
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
/// Set to `current` in the benchmark's environment (the child inherits it), the remote node
/// runs on a current-thread runtime, its heavy work inline, instead of two workers (`multi`,
/// the default): what one thread for the whole receive path would save (docs/architecture.md,
/// flow step 6).
pub const RUNTIME_VAR: &str = "PEERGROUP_BENCH_RECEIVER_RUNTIME";
/// The shortest wait between two polls of the child's delivery counters.
const POLL: Duration = Duration::from_millis(1);
/// The longest wait between two polls while a flood is awaited.
const POLL_MAX: Duration = Duration::from_millis(50);
/// Records per second no receiver here can exceed (its floor alone, signature checks and
/// durable commits, is ~50k/s): a poll waits for the records still to come at this rate, so
/// it never oversleeps the last record by more than [`POLL`]. Polling every millisecond all
/// along cost the receiver ~1.4 µs a record (~45 ms of CPU a second), polling this way a
/// few dozen polls a flood.
const FASTEST: f64 = 250_000.0;
/// How long the child awaits a flood.
const FLOOD_WITHIN: Duration = Duration::from_secs(120);

/// The child's side: `args` are what followed [`FLAG`] (the fixture's file, the database).
pub fn serve(args: &[String]) {
    let [fixture, database] = args else {
        unreachable!("usage: {FLAG} FIXTURE DATABASE");
    };
    let f = Fixture::from_bytes(&std::fs::read(fixture).expect("the fixture's file"));
    // The runtime that drives the node: a multi-thread one, or (see [`RUNTIME_VAR`]) a
    // current-thread one on a thread of its own, so that the node runs while this thread
    // waits between polls.
    let current = match std::env::var(RUNTIME_VAR).as_deref() {
        Ok("current") => true,
        Ok("multi") | Err(std::env::VarError::NotPresent) => false,
        other => {
            let value = match other {
                Ok(v) => v.to_owned(),
                Err(e) => e.to_string(),
            };
            eprintln!("{RUNTIME_VAR}={value:?}: expected current or multi");
            std::process::exit(2);
        }
    };
    let (_multi, rt) = if current {
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let handle = current.handle().clone();
        std::thread::spawn(move || current.block_on(std::future::pending::<()>()));
        (None, handle)
    } else {
        let multi = net::runtime(2);
        let handle = multi.handle().clone();
        (Some(multi), handle)
    };
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
                match poll(&rt, &node.handle, target, FLOOD_WITHIN, poll_gap) {
                    Ok(polls) => say(&format!("reached {polls}")),
                    Err(_) => say("timeout"),
                }
            }
            ["idle", ms] => {
                let ms = ms.parse().expect("milliseconds");
                let every = |_| POLL;
                let polls = poll(
                    &rt,
                    &node.handle,
                    u64::MAX,
                    Duration::from_millis(ms),
                    every,
                );
                say(&format!("idled {}", polls.unwrap_or_else(|n| n)));
            }
            ["close"] => break,
            _ => unreachable!("unknown command {line:?}"),
        }
    }
    rt.block_on(node.close());
    say("closed");
}

/// Polls `handle`'s delivery counters until they reach `target` (`Ok`) or `within` has
/// passed (`Err`), waiting `gap(records still to come)` between polls; either way with the
/// number of polls.
fn poll(
    rt: &tokio::runtime::Handle,
    handle: &GroupHandle,
    target: u64,
    within: Duration,
    gap: impl Fn(u64) -> Duration,
) -> Result<u32, u32> {
    let deadline = Instant::now() + within;
    let mut polls = 0u32;
    loop {
        polls += 1;
        let delivered = rt.block_on(net::delivered(handle));
        if delivered >= target {
            return Ok(polls);
        }
        if Instant::now() > deadline {
            return Err(polls);
        }
        std::thread::sleep(gap(target - delivered));
    }
}

/// How long to wait before polling again with `left` records still to come: as long as
/// they would take at [`FASTEST`], within [`POLL`]..=[`POLL_MAX`].
fn poll_gap(left: u64) -> Duration {
    Duration::from_secs_f64(left as f64 / FASTEST).clamp(POLL, POLL_MAX)
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

    /// Waits until the child has learned the records of [`Remote::expect_records`]; returns
    /// how many times it polled its delivery counters meanwhile.
    pub fn wait_records(&mut self) -> u32 {
        let line = self.read();
        assert!(
            line.starts_with("reached "),
            "the flood did not arrive: {line:?}"
        );
        line["reached ".len()..].parse().expect("a count of polls")
    }

    /// The child's CPU time for one poll of its delivery counters (as it polls while it
    /// awaits a flood), from polling every millisecond for `span` with nothing arriving.
    pub fn poll_cpu(&mut self, span: Duration) -> Duration {
        let before = self.cpu();
        self.send(&format!("idle {}", span.as_millis()));
        let line = self.read();
        assert!(
            line.starts_with("idled "),
            "the remote node did not poll: {line:?}"
        );
        let polls: u32 = line["idled ".len()..].parse().expect("a count of polls");
        (self.cpu() - before) / polls.max(1)
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
