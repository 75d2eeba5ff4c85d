//! Memory probe for issue 15 item 7: the resident set of a peer holding `N` records of 200
//! bytes (default 1,000,000) after a restart, and while it serves a fresh member's sync.
//!
//! `cargo run --release -p peergroup-benches --example rss [N]`. One child process fills a
//! SQLite record database; a second opens it and reads every record (the database alone);
//! a third runs it as a whole node (the group's creator: the driver on a two-worker tokio
//! runtime, a TLS endpoint on 127.0.0.1) while a fresh member in this process, with an empty
//! database, joins it and synchronises every record. Each child prints its RSS and its peak
//! (`VmHWM`, from `/proc/self/status`); the verdict is on the serving node's peak, against
//! 256 MiB. `RSS_SERVE_WRAPPER=heaptrack` runs the serving node under that command (to see
//! where its memory goes).

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peergroup_benches::Fixture;
use peergroup_benches::net::{self, Who};
use peergroup_identity::Timestamp;

/// Records signed and applied at a time while filling.
const BATCH: usize = 10_000;
/// Issue 15's bound for a peer holding 1M records (KiB).
const GOAL_KIB: u64 = 256 * 1024;
/// How long the fresh member may take to hold every record.
const SYNC_WITHIN: Duration = Duration::from_secs(600);
/// How often the fresh member's progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("fill") => fill(&args[2], &args[3], args[4].parse().expect("N")),
        Some("open") => open(&args[2], &args[3]),
        Some("serve") => serve(&args[2], &args[3]),
        _ => {
            let n: usize = args.get(1).map_or(1_000_000, |a| a.parse().expect("N"));
            probe(n);
        }
    }
}

fn probe(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rss.sqlite");
    let path = path.to_str().expect("utf-8 path");
    // One group for every process: certificates valid now (the transport checks them).
    let f = Fixture::starting(
        Timestamp::now()
            .truncate_to_secs()
            .saturating_sub(Duration::from_secs(3600)),
    );
    let fixture = dir.path().join("fixture.bin");
    std::fs::write(&fixture, f.to_bytes()).expect("the fixture's file");
    let fixture = fixture.to_str().expect("utf-8 path");
    let me = std::env::current_exe().expect("exe");
    for step in [
        vec!["fill", fixture, path, &n.to_string()],
        vec!["open", fixture, path],
    ] {
        let ok = Command::new(&me)
            .args(&step)
            .status()
            .expect("child")
            .success();
        assert!(ok, "{} failed", step[0]);
    }
    let peak = serve_a_fresh_member(&me, &f, fixture, path, &dir.path().join("fresh.sqlite"), n);
    println!(
        "a node holding {n} records serving a fresh member's sync: peak RSS {:.1} MiB (goal \
         for 1M records ≤ {} MiB: {})",
        mib(peak),
        GOAL_KIB / 1024,
        if peak <= GOAL_KIB { "met" } else { "NOT met" }
    );
}

/// Starts the serving node in a child, syncs a fresh member in this process from it, and
/// returns the child's peak RSS (KiB).
fn serve_a_fresh_member(
    me: &std::path::Path,
    f: &Fixture,
    fixture: &str,
    path: &str,
    fresh: &std::path::Path,
    n: usize,
) -> u64 {
    // RSS_SERVE_WRAPPER (say, `heaptrack`) runs the serving node under that command.
    let mut child = match std::env::var("RSS_SERVE_WRAPPER") {
        Ok(wrapper) => {
            let mut cmd = Command::new(wrapper);
            cmd.arg(me);
            cmd
        }
        Err(_) => Command::new(me),
    };
    let mut child = child
        .args(["serve", fixture, path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the serving node");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || {
        lines
            .next()
            .expect("a line from the serving node")
            .expect("stdout")
    };
    // The node's records (the memberships too) before it listens, then its address.
    let mut records = n;
    let addr = loop {
        let line = next();
        println!("{line}");
        if let Some(len) = line.strip_prefix("records ") {
            records = len.parse().expect("a record count");
        }
        if let Some(addr) = line.strip_prefix("listening ") {
            break addr.parse().expect("an address");
        }
    };
    let rt = net::runtime(2);
    let start = Instant::now();
    let (held, stats) = rt.block_on(async {
        let member = net::start(f, Who::Member, net::open_database(f, fresh), &[addr]).await;
        let mut said = Instant::now();
        loop {
            // The delivery counters, not the digest: a digest of 1M records sorts their keys
            // on the member's driver (~0.1 s each), and polling it every 50 ms took a quarter
            // of the driver's time from the sync it measured (47.8 s for 1M records).
            let learned = net::delivered(&member.handle).await as usize;
            if learned >= records {
                let (_, held) = member.handle.digest().await.expect("digest");
                let stats = member.handle.stats().await.expect("stats");
                member.close().await;
                break (held, stats);
            }
            if said.elapsed() >= PROGRESS_EVERY {
                said = Instant::now();
                println!(
                    "fresh member: {learned} records after {:.0} s",
                    start.elapsed().as_secs_f64()
                );
            }
            assert!(
                start.elapsed() < SYNC_WITHIN,
                "the fresh member learned {learned} of {records} records in {SYNC_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    println!(
        "fresh member: {held} records in {:.1} s ({} by sync; syncs: {} completed, {} abandoned)",
        start.elapsed().as_secs_f64(),
        stats.delivered_by_sync,
        stats.syncs,
        stats.syncs_abandoned
    );
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "done").expect("the serving node's input");
    drop(stdin);
    let peak = loop {
        let line = next();
        println!("{line}");
        if let Some(kib) = line.strip_prefix("peak ") {
            break kib.parse().expect("KiB");
        }
    };
    assert!(
        child.wait().expect("wait").success(),
        "the serving node failed"
    );
    peak
}

fn fill(fixture: &str, path: &str, n: usize) {
    let f = Fixture::from_bytes(&std::fs::read(fixture).expect("the fixture's file"));
    let now = Timestamp::now();
    let mut db = net::open_database(&f, path.as_ref());
    for batch in 0..n.div_ceil(BATCH) {
        let records = f.sign_records(batch as u32, BATCH.min(n - batch * BATCH), 200, now);
        let report = db.apply(records, now).expect("apply");
        assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
    }
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "filled: {n} records of 200 B, file {:.1} MiB, filler's peak RSS {:.1} MiB",
        bytes as f64 / 1048576.0,
        mib(status("VmHWM:"))
    );
}

fn open(fixture: &str, path: &str) {
    let before = status("VmRSS:");
    let f = Fixture::from_bytes(&std::fs::read(fixture).expect("the fixture's file"));
    let db = net::open_database(&f, path.as_ref());
    println!(
        "database after restart: RSS {:.1} MiB (peak {:.1} MiB; {:.1} MiB before opening)",
        mib(status("VmRSS:")),
        mib(status("VmHWM:")),
        mib(before)
    );
    let mut served = 0usize;
    let mut bytes = 0usize;
    db.for_each(&mut |r| {
        served += 1;
        bytes += r.payload.len();
    })
    .expect("read");
    assert_eq!(served, db.len());
    println!(
        "database after reading all {served} records ({:.0} MiB of payload): RSS {:.1} MiB \
         (peak {:.1} MiB)",
        bytes as f64 / 1048576.0,
        mib(status("VmRSS:")),
        mib(status("VmHWM:"))
    );
}

/// The serving node: prints `listening <addr>`, serves until a line on its input, then
/// prints its RSS and `peak <KiB>`.
fn serve(fixture: &str, path: &str) {
    let f = Fixture::from_bytes(&std::fs::read(fixture).expect("the fixture's file"));
    let rt = net::runtime(2);
    let db = net::open_database(&f, path.as_ref());
    println!("records {}", db.len());
    let node = rt.block_on(net::start(&f, Who::Admin, db, &[]));
    println!(
        "node after restart: RSS {:.1} MiB (peak {:.1} MiB)",
        mib(status("VmRSS:")),
        mib(status("VmHWM:"))
    );
    println!("listening {}", node.addr);
    std::io::stdout().flush().expect("stdout");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    println!(
        "node after serving the sync: RSS {:.1} MiB (peak {:.1} MiB)",
        mib(status("VmRSS:")),
        mib(status("VmHWM:"))
    );
    let peak = status("VmHWM:");
    rt.block_on(node.close());
    println!("peak {peak}");
}
