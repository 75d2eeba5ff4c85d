//! Five real processes form a group on loopback, flood, converge to identical database
//! digests; one is killed with SIGKILL, restarted on its database, and catches up.
//!
//! The processes are this test binary run again with `PEERGROUP_NODE` set: it then acts as
//! one member (see `node_process`), prints `LISTEN <addr>` and, twice a second,
//! `DIGEST <hex> <records> <app records>`, and leaves the group when its stdin closes.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::support::*;

const NODES: usize = 5;
const RECORDS_EACH: usize = 20;

/// The child side.
#[test]
#[ignore = "run by five_processes_converge_and_one_catches_up as a child process"]
fn node_process() {
    let Ok(spec) = std::env::var("PEERGROUP_NODE") else {
        return;
    };
    let mut parts = spec.split(',');
    let i: usize = parts.next().unwrap().parse().unwrap();
    let dir = std::path::PathBuf::from(parts.next().unwrap());
    let records: usize = parts.next().unwrap().parse().unwrap();
    let bind: std::net::SocketAddr = parts.next().unwrap().parse().unwrap();
    let connect: Vec<std::net::SocketAddr> = parts.map(|a| a.parse().unwrap()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let f = Fixture::new(5, NODES);
        let node = start_on(&f, i, &dir.join(format!("node{i}.sqlite")), Vec::new(), &connect, bind).await;
        println!("LISTEN {}", node.addr);
        // Publish once synchronised (or at once for the creator).
        let mut status = node.handle.status_watch();
        while !status.borrow().synchronized {
            if status.changed().await.is_err() {
                return;
            }
        }
        for k in 0..records {
            let new = peergroup_record_db::NewRecord {
                record_type: app_type(),
                attributes: String::new(),
                payload: format!("node {i} record {k} pid {}", std::process::id()).into_bytes(),
                expires: peergroup_identity::Timestamp::now().saturating_add(Duration::from_secs(3600)),
                autorefresh: false,
            };
            node.handle.create_record(new).await.unwrap();
        }
        // Commands on stdin: `PUBLISH n` publishes n more records; end of input leaves.
        let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Some(n) = line.trim().strip_prefix("PUBLISH ").and_then(|n| n.parse().ok()) {
                    let _ = cmd_tx.send(n);
                }
                line.clear();
            }
        });
        let mut published = records;
        loop {
            let (digest, count) = node.handle.digest().await.unwrap();
            let app = node.handle.records(app_type()).await.unwrap().len();
            println!("DIGEST {} {count} {app}", hex(&digest));
            tokio::select! {
                cmd = cmd_rx.recv() => match cmd {
                    Some(n) => {
                        for k in published..published + n {
                            let new = peergroup_record_db::NewRecord {
                                record_type: app_type(),
                                attributes: String::new(),
                                payload: format!("node {i} record {k} pid {}", std::process::id()).into_bytes(),
                                expires: peergroup_identity::Timestamp::now().saturating_add(Duration::from_secs(3600)),
                                autorefresh: false,
                            };
                            node.handle.create_record(new).await.unwrap();
                        }
                        published += n;
                    }
                    None => break,
                },
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        node.handle.close().await.unwrap();
    });
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) addr: std::net::SocketAddr,
}

impl Proc {
    /// Closes its input (it leaves the group) and waits for it to exit, killing it if it
    /// has not within [`WAIT`].
    pub(crate) fn leave(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("a node did not leave within {WAIT:?} of its input closing");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A failed test leaves no process behind.
impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().is_ok_and(|s| s.is_none()) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The latest digest line of each node, by index.
pub(crate) type Digests = std::sync::Arc<std::sync::Mutex<Vec<Option<(String, usize, usize)>>>>;

fn spawn(
    i: usize,
    dir: &std::path::Path,
    records: usize,
    connect: &[std::net::SocketAddr],
    digests: &Digests,
) -> Proc {
    let bind = "127.0.0.1:0".parse().unwrap();
    spawn_in(None, i, dir, records, bind, connect, digests)
}

/// Starts member `i` as a child process, inside network namespace `netns` if given.
pub(crate) fn spawn_in(
    netns: Option<&str>,
    i: usize,
    dir: &std::path::Path,
    records: usize,
    bind: std::net::SocketAddr,
    connect: &[std::net::SocketAddr],
    digests: &Digests,
) -> Proc {
    let mut spec = format!("{i},{},{records},{bind}", dir.display());
    for a in connect {
        spec.push_str(&format!(",{a}"));
    }
    let exe = std::env::current_exe().unwrap();
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let mut child = command
        .args([
            "--exact",
            "processes::node_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PEERGROUP_NODE", spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let digests = digests.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            // The test harness may print "test … ... " before our first line.
            if let Some((_, a)) = line.split_once("LISTEN ") {
                let _ = tx.send(a.parse::<std::net::SocketAddr>().unwrap());
            } else if let Some((_, d)) = line.split_once("DIGEST ") {
                let f: Vec<&str> = d.split(' ').collect();
                if let [h, n, app] = f[..] {
                    digests.lock().unwrap()[i] =
                        Some((h.to_owned(), n.parse().unwrap(), app.parse().unwrap()));
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("node {i} did not print LISTEN within {WAIT:?}"));
    Proc {
        stdin: child.stdin.take(),
        child,
        addr,
    }
}

pub(crate) fn wait_converged(
    digests: &Digests,
    live: &[usize],
    app_records: usize,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        {
            let d = digests.lock().unwrap();
            let seen: Vec<&(String, usize, usize)> =
                live.iter().filter_map(|i| d[*i].as_ref()).collect();
            if seen.len() == live.len()
                && seen.iter().all(|x| x.0 == seen[0].0 && x.2 >= app_records)
            {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "no convergence within {within:?}: {:?}",
                live.iter()
                    .map(|i| d[*i].as_ref().map(|x| (x.1, x.2)))
                    .collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn five_processes_converge_and_one_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let digests: Digests = std::sync::Arc::new(std::sync::Mutex::new(vec![None; NODES]));
    let mut procs: Vec<Proc> = Vec::new();
    procs.push(spawn(0, dir.path(), RECORDS_EACH, &[], &digests));
    for i in 1..NODES {
        let connect: Vec<_> = procs.iter().map(|p| p.addr).take(2).collect();
        procs.push(spawn(i, dir.path(), RECORDS_EACH, &connect, &digests));
    }
    let all: Vec<usize> = (0..NODES).collect();
    let took = wait_converged(
        &digests,
        &all,
        NODES * RECORDS_EACH,
        Duration::from_secs(120),
    );
    eprintln!("five processes converged in {took:?}");

    // Kill node 3 (SIGKILL), let the others publish more, restart it on its database.
    procs[3].child.kill().unwrap();
    procs[3].child.wait().unwrap();
    digests.lock().unwrap()[3] = None;
    let others: Vec<usize> = vec![0, 1, 2, 4];
    let extra = 15;
    for i in [0, 4] {
        writeln!(procs[i].stdin.as_mut().unwrap(), "PUBLISH {extra}").unwrap();
    }
    let target = NODES * RECORDS_EACH + 2 * extra;
    wait_converged(&digests, &others, target, Duration::from_secs(120));
    let connect = vec![procs[0].addr, procs[1].addr];
    procs[3] = spawn(3, dir.path(), 0, &connect, &digests);
    let took = wait_converged(&digests, &all, target, Duration::from_secs(120));
    eprintln!("the restarted node caught up in {took:?}");
    for p in &mut procs {
        drop(p.stdin.take());
    }
    for p in &mut procs {
        p.leave();
    }
}
