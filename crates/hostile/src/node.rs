//! The node under attack: a `peergroup run --control` process, its control channel, and what
//! `/proc` says about it (resident memory, open files, CPU time).

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::waits::{ANSWER_WAIT, NODE_START_WAIT, NODE_STOP_WAIT};

/// Lines of a node's output kept for error messages.
const TAIL_LINES: usize = 40;

/// Children started by the suite, killed by the watchdog if the suite overruns its time.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Remembers a child so the watchdog can kill it.
pub(crate) fn register_child(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pid);
}

/// Forgets a child that was waited for.
pub(crate) fn forget_child(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|p| *p != pid);
}

/// Kills every child still running (the watchdog's last act).
pub(crate) fn kill_all_children() {
    let pids = std::mem::take(&mut *CHILDREN.lock().unwrap_or_else(PoisonError::into_inner));
    for pid in pids {
        if let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Kills and reaps a child; used by every guard's `Drop`.
pub(crate) fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
    forget_child(child.id());
}

/// What the terminal must never receive raw from a process's output: control characters
/// (C0 but the line feed ending a line, DEL, C1) and the invisible or reordering format
/// characters a hostile text could use (bidi overrides and isolates, line and paragraph
/// separators, zero-width characters).
pub(crate) fn is_raw_hazard(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Raw hazards seen in a stream of lines.
#[derive(Clone, Debug, Default)]
pub(crate) struct Hazards {
    /// Lines holding at least one.
    pub(crate) lines: usize,
    /// The first such line, with its hazards made visible.
    pub(crate) example: Option<String>,
}

impl Hazards {
    fn scan(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        if text.chars().any(is_raw_hazard) {
            self.lines += 1;
            if self.example.is_none() {
                self.example = Some(text.escape_debug().to_string());
            }
        }
    }
}

/// What a reader thread gathered from one output stream.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// The last lines (lossy text), for error messages.
    pub(crate) tail: VecDeque<String>,
    /// Raw hazards seen.
    pub(crate) hazards: Hazards,
    /// Markers watched for: the marker, lines containing it, lines starting with it.
    pub(crate) marked: Vec<(String, usize, usize)>,
    /// Lines read.
    pub(crate) lines: usize,
}

impl Output {
    /// An output watched for `markers`.
    pub(crate) fn watching(markers: &[String]) -> Self {
        Output {
            marked: markers.iter().map(|m| (m.clone(), 0, 0)).collect(),
            ..Output::default()
        }
    }

    /// Lines containing `marker`, and lines starting with it.
    pub(crate) fn marker(&self, marker: &str) -> (usize, usize) {
        self.marked
            .iter()
            .find(|(m, _, _)| m == marker)
            .map_or((0, 0), |(_, c, s)| (*c, *s))
    }

    fn take_line(&mut self, line: &[u8]) {
        self.lines += 1;
        self.hazards.scan(line);
        let text = String::from_utf8_lossy(line).into_owned();
        for (marker, contains, starts) in &mut self.marked {
            if text.contains(marker.as_str()) {
                *contains += 1;
            }
            if text.trim_start().starts_with(marker.as_str()) {
                *starts += 1;
            }
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(text);
    }

    /// The last lines, one per line, for an error message.
    pub(crate) fn tail_text(&self) -> String {
        self.tail.iter().cloned().collect::<Vec<_>>().join("\n  ")
    }
}

/// Shared view of an output stream being read.
pub(crate) type SharedOutput = Arc<Mutex<Output>>;

/// Locks a shared output.
pub(crate) fn lock(o: &SharedOutput) -> std::sync::MutexGuard<'_, Output> {
    o.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads `stream` line by line (raw bytes, any length) into `out`; lines starting with
/// `> ` also go to `answers`, a line starting with `listening ` to `listening`.
pub(crate) fn spawn_reader(
    stream: impl Read + Send + 'static,
    out: SharedOutput,
    answers: Option<Sender<String>>,
    listening: Option<Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            lock(&out).take_line(&line);
            let text = String::from_utf8_lossy(&line);
            if let (Some(tx), Some(answer)) = (&answers, text.strip_prefix("> ")) {
                let _ = tx.send(answer.to_owned());
            }
            if let (Some(tx), Some(addrs)) = (&listening, text.strip_prefix("listening ")) {
                let _ = tx.send(addrs.to_owned());
            }
        }
    });
}

/// A running `peergroup run --control` process. Killed when dropped.
pub(crate) struct NodeProc {
    /// What the suite calls it in messages.
    pub(crate) name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    answers: Receiver<String>,
    /// Commands whose answer did not come in time (their answers are skipped when they come).
    unanswered: usize,
    /// Standard output, read by a thread.
    pub(crate) stdout: SharedOutput,
    /// Standard error, read by a thread.
    pub(crate) stderr: SharedOutput,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

impl NodeProc {
    /// Starts `exe --home home run --group group --listen 127.0.0.1:port --control
    /// --no-discovery extra…` and waits until it says it listens.
    pub(crate) fn start(
        name: &str,
        exe: &Path,
        home: &Path,
        group: &str,
        port: u16,
        extra: &[String],
        markers: &[String],
    ) -> Result<NodeProc> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cmd = Command::new(exe);
        cmd.arg("--home")
            .arg(home)
            .args(["run", "--group", group, "--control", "--no-discovery"])
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} ({})", name, exe.display()))?;
        register_child(child.id());
        let stdout = Arc::new(Mutex::new(Output::watching(markers)));
        let stderr = Arc::new(Mutex::new(Output::watching(markers)));
        let (answers_tx, answers) = channel();
        let (listening_tx, listening) = channel();
        let (Some(out_stream), Some(err_stream)) = (child.stdout.take(), child.stderr.take())
        else {
            kill_child(&mut child);
            bail!("{name}: no pipes to the process");
        };
        spawn_reader(
            out_stream,
            stdout.clone(),
            Some(answers_tx),
            Some(listening_tx),
        );
        spawn_reader(err_stream, stderr.clone(), None, None);
        let stdin = child.stdin.take();
        let mut node = NodeProc {
            name: name.to_owned(),
            child,
            stdin,
            answers,
            unanswered: 0,
            stdout,
            stderr,
            addr,
        };
        match listening.recv_timeout(NODE_START_WAIT) {
            Ok(addrs) if addrs.split(' ').any(|a| a == addr.to_string()) => Ok(node),
            Ok(addrs) => bail!("{name} listens on {addrs:?}, not on {addr} as asked"),
            Err(_) => {
                let status = node.child.try_wait().ok().flatten();
                bail!(
                    "{name} did not say 'listening' within {NODE_START_WAIT:?} (exit status \
                     {status:?}); its stderr ends with:\n  {}",
                    lock(&node.stderr).tail_text()
                )
            }
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited, and how.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends one control command and returns its answer (without the `> `).
    pub(crate) fn ask(&mut self, command: &str) -> Result<String> {
        if let Some(status) = self.exited() {
            bail!(
                "{} exited ({status}) before the command `{command}`; its stderr ends with:\n  {}",
                self.name,
                lock(&self.stderr).tail_text()
            );
        }
        let stdin = self
            .stdin
            .as_mut()
            .with_context(|| format!("{}: its standard input is closed", self.name))?;
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("{}: writing the command `{command}`", self.name))?;
        let deadline = Instant::now() + ANSWER_WAIT;
        while self.unanswered > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            self.answers.recv_timeout(left).map_err(|_| {
                anyhow::anyhow!(
                    "{}: no answer to earlier commands within {ANSWER_WAIT:?}",
                    self.name
                )
            })?;
            self.unanswered -= 1;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.answers.recv_timeout(left) {
            Ok(a) => Ok(a),
            Err(RecvTimeoutError::Timeout) => {
                self.unanswered += 1;
                bail!(
                    "{} did not answer `{command}` within {ANSWER_WAIT:?}",
                    self.name
                )
            }
            Err(RecvTimeoutError::Disconnected) => bail!(
                "{}'s output ended before it answered `{command}`; its stderr ends with:\n  {}",
                self.name,
                lock(&self.stderr).tail_text()
            ),
        }
    }

    /// `add <type> <text>`: the new record's id.
    pub(crate) fn add(&mut self, record_type: &str, text: &str) -> Result<String> {
        let answer = self.ask(&format!("add {record_type} {text}"))?;
        match answer.strip_prefix("ok ") {
            Some(id) => Ok(id.trim().to_owned()),
            None => bail!(
                "{}: `add` answered {answer:?}, expected 'ok <record id>'",
                self.name
            ),
        }
    }

    /// `get <id>`: whether the record is held.
    pub(crate) fn has(&mut self, id: &str) -> Result<bool> {
        let answer = self.ask(&format!("get {id}"))?;
        if answer.starts_with(&format!("found {id} ")) {
            Ok(true)
        } else if answer == format!("missing {id}") {
            Ok(false)
        } else {
            bail!(
                "{}: `get {id}` answered {answer:?}, expected 'found {id} v<version>' or \
                 'missing {id}'",
                self.name
            )
        }
    }

    /// `digest`: the number of records.
    pub(crate) fn record_count(&mut self) -> Result<usize> {
        let answer = self.ask("digest")?;
        let count = answer
            .strip_prefix("digest ")
            .and_then(|rest| rest.split(' ').nth(1))
            .and_then(|n| n.parse().ok());
        count.with_context(|| {
            format!(
                "{}: `digest` answered {answer:?}, expected 'digest <hex> <count>'",
                self.name
            )
        })
    }

    /// Closes its input (it leaves the group cleanly) and waits for it to exit; kills it
    /// after [`NODE_STOP_WAIT`]. Returns a complaint if it did not exit cleanly by itself.
    pub(crate) fn stop(mut self) -> Option<String> {
        drop(self.stdin.take());
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return None,
                Ok(Some(status)) => {
                    return Some(format!(
                        "{} exited with {status} when asked to leave; its stderr ends with:\n  {}",
                        self.name,
                        lock(&self.stderr).tail_text()
                    ));
                }
                Ok(None) if started.elapsed() < NODE_STOP_WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    return Some(format!(
                        "{} did not exit within {NODE_STOP_WAIT:?} of its input closing; killed",
                        self.name
                    ));
                }
            }
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// A process's resident memory in KiB (`VmRSS` of `/proc/<pid>/status`).
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// A process's open file descriptors.
pub(crate) fn open_fds(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(Iterator::count)
}

/// A process's CPU time so far (user + system), from `/proc/<pid>/stat`, assuming the usual
/// 100 clock ticks per second.
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime) are the 12th and 13th after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Samples a process's memory and open files every [`SAMPLE_EVERY`] until stopped.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<Samples>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the sampler looks.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// What the sampler saw.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Samples {
    /// Samples taken.
    pub(crate) count: u64,
    /// Largest resident memory (KiB).
    pub(crate) peak_rss_kib: u64,
    /// Most open file descriptors.
    pub(crate) peak_fds: usize,
    /// Resident memory at the last sample (KiB).
    pub(crate) last_rss_kib: u64,
}

impl Sampler {
    /// Starts sampling `pid`.
    pub(crate) fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(Samples::default()));
        let thread = {
            let (stop, state) = (stop.clone(), state.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let rss = rss_kib(pid);
                    let fds = open_fds(pid);
                    {
                        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
                        if let Some(rss) = rss {
                            s.count += 1;
                            s.peak_rss_kib = s.peak_rss_kib.max(rss);
                            s.last_rss_kib = rss;
                        }
                        if let Some(fds) = fds {
                            s.peak_fds = s.peak_fds.max(fds);
                        }
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        };
        Sampler {
            stop,
            state,
            thread: Some(thread),
        }
    }

    /// What it saw so far.
    pub(crate) fn samples(&self) -> Samples {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops sampling; what it saw.
    pub(crate) fn finish(mut self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.samples()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
