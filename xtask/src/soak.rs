//! `cargo xtask soak --minutes N [--peers P] [--seed S]`: P real `peergroup run` processes on
//! loopback, with churn (kill -9 and restart at random) and random records, updates, deletes
//! and chat from all of them. At the end every live replica must have the same digest, no
//! record a call acknowledged may be missing (nor a deleted one present), and no process's
//! resident memory may have grown beyond a bound. Prints those figures.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

use crate::util::{self, cargo, peergroup as pg, step};

/// How much a peer's resident memory may grow over the run (in KiB), from its first sample to
/// its largest: far above what a healthy process does, far below a leak that keeps growing
/// with the operations of a long run.
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;
/// How long a peer may take to answer one command: generous, for a loaded machine (an answer
/// takes milliseconds on a quiet one).
const ANSWER_WAIT: Duration = Duration::from_secs(60);
/// How long the peers may take to come up and see each other, and to converge at the end.
const GROUP_WAIT: Duration = Duration::from_secs(180);
const NOTES: &str = "5ca1ab1e-0000-4000-8000-00000000beef";
const CHAT: &str = "4c8e2f10-7d3b-4a61-9b5e-2a6c0d9e1f37";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

struct Peer {
    home: PathBuf,
    port: u16,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    answers: Option<Receiver<String>>,
    /// Commands whose answer did not come in time: their answers, when they come, are
    /// skipped, so that each answer is matched with its own command.
    unanswered: usize,
    down_until: Option<Instant>,
    rss_start_kib: Option<u64>,
    rss_max_kib: u64,
    restarts: u32,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

impl Peer {
    fn start(&mut self, exe: &Path, anchor: u16) -> Result<()> {
        let mut cmd = Command::new(exe);
        cmd.arg("--home").arg(&self.home).args([
            "run",
            "--group",
            "Soak",
            "--control",
            "--no-discovery",
        ]);
        cmd.arg("--listen").arg(format!("127.0.0.1:{}", self.port));
        if anchor != self.port {
            cmd.arg("--connect").arg(format!("127.0.0.1:{anchor}"));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(answer) = line.strip_prefix("> ")
                    && tx.send(answer.to_owned()).is_err()
                {
                    return;
                }
            }
        });
        self.stdin = child.stdin.take();
        self.child = Some(child);
        self.answers = Some(rx);
        self.unanswered = 0;
        self.down_until = None;
        Ok(())
    }

    fn alive(&self) -> bool {
        self.child.is_some()
    }

    /// Sends a command and waits for its answer (`None`: the peer is down, or did not answer
    /// within [`ANSWER_WAIT`]).
    fn ask(&mut self, line: &str) -> Option<String> {
        let stdin = self.stdin.as_mut()?;
        writeln!(stdin, "{line}").ok()?;
        let answers = self.answers.as_ref()?;
        // Answers come in order, one per command: first those of commands given up on.
        while self.unanswered > 0 {
            answers.recv_timeout(ANSWER_WAIT).ok()?;
            self.unanswered -= 1;
        }
        match answers.recv_timeout(ANSWER_WAIT) {
            Ok(a) => Some(a),
            Err(_) => {
                self.unanswered += 1;
                None
            }
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
        self.stdin = None;
        self.answers = None;
    }

    fn sample_rss(&mut self) {
        if let Some(pid) = self.child.as_ref().map(Child::id)
            && let Some(kib) = rss_kib(pid)
        {
            self.rss_start_kib.get_or_insert(kib);
            self.rss_max_kib = self.rss_max_kib.max(kib);
        }
    }
}

/// A record some peer acknowledged: who made it, and whether it was deleted since.
struct Acked {
    owner: usize,
    deleted: bool,
}

pub(crate) fn run(minutes: f64, peers: usize, seed: u64) -> Result<()> {
    step(&format!(
        "soak: {peers} peers for {minutes} minute(s), seed {seed}"
    ));
    ensure!(peers >= 3, "--peers must be at least 3");
    util::run(cargo().args(["build", "-q", "-p", "peergroup-cli"]))?;
    let exe = util::root().join("target/debug/peergroup");
    let dir = tempfile::tempdir()?;
    let mut rng = Rng(seed);

    // Set up: peer 0 creates the group and invites the others.
    let mut all = Vec::new();
    for i in 0..peers {
        let home = dir.path().join(format!("peer{i}"));
        pg(
            &exe,
            &home,
            &[
                "identity",
                "create",
                &format!("Peer{i}"),
                "--classifier",
                &format!("peer{i}"),
            ],
        )?;
        all.push(Peer {
            home,
            port: free_port()?,
            child: None,
            stdin: None,
            answers: None,
            unanswered: 0,
            down_until: None,
            rss_start_kib: None,
            rss_max_kib: 0,
            restarts: 0,
        });
    }
    pg(&exe, &all[0].home, &["group", "create", "Soak"])?;
    for i in 1..peers {
        let info = dir.path().join(format!("peer{i}.idinfo"));
        std::fs::write(
            &info,
            pg(
                &exe,
                &all[i].home,
                &["identity", "xml", &format!("Peer{i}")],
            )?,
        )?;
        let inv = pg(
            &exe,
            &all[0].home,
            &[
                "invite",
                "--group",
                "Soak",
                "--identity-info",
                &info.to_string_lossy(),
            ],
        )?;
        let inv_path = dir.path().join(format!("peer{i}.inv"));
        std::fs::write(&inv_path, inv)?;
        pg(&exe, &all[i].home, &["join", &inv_path.to_string_lossy()])?;
    }
    let anchor = all[0].port;
    for p in &mut all {
        p.start(&exe, anchor)?;
    }
    // Until every peer sees every other present (their answers say so).
    let up_start = Instant::now();
    let mut seen: Vec<String>;
    loop {
        seen = all
            .iter_mut()
            .map(|p| p.ask("members").unwrap_or_default())
            .collect();
        let want = format!("members {peers}/");
        if seen.iter().all(|s| s.starts_with(&want)) {
            break;
        }
        ensure!(
            up_start.elapsed() < GROUP_WAIT,
            "the peers did not all see each other within {GROUP_WAIT:?}; they answered {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The run.
    let deadline = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let mut acked: BTreeMap<String, Acked> = BTreeMap::new();
    let (mut ops, mut failed_ops, mut kills) = (0u64, 0u64, 0u64);
    let mut last_sample = Instant::now();
    while Instant::now() < deadline {
        // Churn: at most two peers down at a time; back after 2–8 s on the same database.
        for p in all.iter_mut() {
            if p.down_until.is_some_and(|t| Instant::now() >= t) {
                p.start(&exe, anchor)?;
                p.restarts += 1;
            }
        }
        let down = all.iter().filter(|p| !p.alive()).count();
        if down < 2 && rng.below(40) == 0 {
            let victim = rng.below(peers as u64) as usize;
            if all[victim].alive() {
                all[victim].kill();
                all[victim].down_until =
                    Some(Instant::now() + Duration::from_millis(2000 + rng.below(6000)));
                kills += 1;
            }
        }
        // An operation on a random live peer.
        let i = rng.below(peers as u64) as usize;
        if all[i].alive() {
            let mine: Vec<String> = acked
                .iter()
                .filter(|(_, a)| a.owner == i && !a.deleted)
                .map(|(id, _)| id.clone())
                .collect();
            let op = rng.below(10);
            let line = match op {
                0..=3 => format!("add {NOTES} note {ops} from peer {i}"),
                4..=5 => format!("add {CHAT} chat message {ops} from peer {i}"),
                6..=7 if !mine.is_empty() => format!(
                    "update {} updated {ops}",
                    mine[rng.below(mine.len() as u64) as usize]
                ),
                8 if !mine.is_empty() => {
                    format!("delete {}", mine[rng.below(mine.len() as u64) as usize])
                }
                _ => format!("add {NOTES} note {ops} from peer {i}"),
            };
            ops += 1;
            match all[i].ask(&line) {
                Some(answer) if answer.starts_with("ok ") => {
                    let id = answer[3..].trim().to_owned();
                    if line.starts_with("delete") {
                        if let Some(a) = acked.get_mut(&id) {
                            a.deleted = true;
                        }
                    } else {
                        acked.entry(id).or_insert(Acked {
                            owner: i,
                            deleted: false,
                        });
                    }
                }
                _ => failed_ops += 1,
            }
        }
        if last_sample.elapsed() > Duration::from_secs(1) {
            for p in &mut all {
                p.sample_rss();
            }
            last_sample = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // Everyone back up; wait for convergence.
    for p in &mut all {
        if !p.alive() {
            p.start(&exe, anchor)?;
            p.restarts += 1;
        }
    }
    let converge_start = Instant::now();
    let mut digests: Vec<String>;
    let converged = loop {
        digests = all
            .iter_mut()
            .map(|p| p.ask("digest").unwrap_or_default())
            .collect();
        if !digests.is_empty()
            && digests
                .iter()
                .all(|d| d.starts_with("digest ") && *d == digests[0])
        {
            break true;
        }
        if converge_start.elapsed() > GROUP_WAIT {
            break false;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let converge_time = converge_start.elapsed();
    // Every acknowledged record is there (or gone, if deleted), on every peer.
    let mut missing = 0u64;
    let mut resurrected = 0u64;
    let mut unanswered = 0u64;
    for p in &mut all {
        for (id, a) in &acked {
            match p.ask(&format!("get {id}")) {
                Some(ans) if ans.starts_with("found ") && a.deleted => resurrected += 1,
                Some(ans) if ans.starts_with("found ") => {}
                Some(ans) if ans.starts_with("missing ") && a.deleted => {}
                Some(_) => missing += 1,
                None => unanswered += 1,
            }
        }
        p.sample_rss();
    }
    // Each leaves when its input closes; one that has not within a while is killed.
    for p in &mut all {
        drop(p.stdin.take());
    }
    let leave_start = Instant::now();
    for p in &mut all {
        while let Some(c) = p.child.as_mut()
            && c.try_wait().ok().flatten().is_none()
            && leave_start.elapsed() < ANSWER_WAIT
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        p.kill();
    }

    let records = acked.len();
    let deleted = acked.values().filter(|a| a.deleted).count();
    println!("soak results");
    println!("  peers, minutes, seed:     {peers}, {minutes}, {seed}");
    println!(
        "  operations:               {ops} ({failed_ops} not acknowledged: peer down or busy)"
    );
    println!("  records acknowledged:     {records} ({deleted} deleted since)");
    println!(
        "  kill -9 and restarts:     {kills} kills, {} restarts",
        all.iter().map(|p| p.restarts).sum::<u32>()
    );
    println!(
        "  convergence after churn:  {} in {converge_time:.1?}",
        if converged {
            "all digests equal"
        } else {
            "NOT converged"
        }
    );
    println!(
        "  acknowledged but missing: {missing}; deleted but present: {resurrected}; \
         lookups unanswered within {ANSWER_WAIT:?}: {unanswered}"
    );
    for (i, p) in all.iter().enumerate() {
        println!(
            "  peer {i} RSS:               first {} MiB, max {} MiB (growth bound {} MiB)",
            p.rss_start_kib.unwrap_or(0) / 1024,
            p.rss_max_kib / 1024,
            RSS_GROWTH_BOUND_KIB / 1024
        );
    }
    let rss_ok = all.iter().all(|p| {
        p.rss_max_kib.saturating_sub(p.rss_start_kib.unwrap_or(0)) <= RSS_GROWTH_BOUND_KIB
    });
    if !converged || missing > 0 || resurrected > 0 || unanswered > 0 || !rss_ok {
        bail!(
            "soak failed: converged={converged} (waited {converge_time:.1?}) missing={missing} \
             resurrected={resurrected} unanswered={unanswered} rss_within_bound={rss_ok}; \
             digests {digests:?}"
        );
    }
    println!("soak: passed");
    let _ = dir;
    Ok(())
}
