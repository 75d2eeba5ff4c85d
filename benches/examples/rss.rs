//! Memory probe for issue 15 item 7: the resident set of a process that opens a SQLite
//! record database of `N` records of 200 bytes (default 1,000,000) after a restart, and
//! after it has served every record once (what a fresh member's sync reads).
//!
//! `cargo run --release -p peergroup-benches --example rss [N]`. The database is filled by
//! one child process and opened by another, so the figure is the opened database's alone:
//! the record database's part of the goal (≤ 256 MiB with 1M records), not a whole node
//! serving a sync over the network.

use std::process::Command;
use std::time::Duration;

use peergroup_benches::Fixture;
use peergroup_identity::Timestamp;
use peergroup_record_db::store::SqliteStore;

const BATCH: usize = 10_000;

/// Issue 15's bound for a peer holding 1M records (KiB).
const GOAL_KIB: u64 = 256 * 1024;

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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("fill") => fill(&args[2], args[3].parse().expect("N"), &args[4]),
        Some("open") => open(&args[2], &args[3]),
        _ => {
            let n: usize = args.get(1).map_or(1_000_000, |a| a.parse().expect("N"));
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("rss.sqlite");
            let path = path.to_str().expect("utf-8 path");
            let start = Timestamp::now().as_secs().to_string();
            let me = std::env::current_exe().expect("exe");
            for step in [
                vec!["fill", path, &n.to_string(), &start],
                vec!["open", path, &start],
            ] {
                let ok = Command::new(&me)
                    .args(&step)
                    .status()
                    .expect("child")
                    .success();
                assert!(ok, "{} failed", step[0]);
            }
        }
    }
}

fn fixture(start: &str) -> (Fixture, Timestamp) {
    let start = Timestamp::from_secs(start.parse().expect("start"));
    (
        Fixture::starting(start),
        start.saturating_add(Duration::from_secs(60)),
    )
}

fn fill(path: &str, n: usize, start: &str) {
    let (f, now) = fixture(start);
    let mut db = f.database(SqliteStore::open(path.as_ref()).expect("sqlite"));
    for batch in 0..n.div_ceil(BATCH) {
        let records = f.sign_records(batch as u32, BATCH.min(n - batch * BATCH), 200, now);
        let report = db.apply(records, now).expect("apply");
        assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
    }
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "filled: {n} records of 200 B, file {:.1} MiB, filler's peak RSS {:.1} MiB",
        bytes as f64 / 1048576.0,
        status("VmHWM:") as f64 / 1024.0
    );
}

fn open(path: &str, start: &str) {
    let before = status("VmRSS:");
    let (f, _) = fixture(start);
    let db = f.database(SqliteStore::open(path.as_ref()).expect("sqlite"));
    println!(
        "after restart: RSS {:.1} MiB (peak {:.1} MiB; {:.1} MiB before opening)",
        status("VmRSS:") as f64 / 1024.0,
        status("VmHWM:") as f64 / 1024.0,
        before as f64 / 1024.0
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
        "after reading all {served} records ({:.0} MiB of payload): RSS {:.1} MiB (peak {:.1} MiB)",
        bytes as f64 / 1048576.0,
        status("VmRSS:") as f64 / 1024.0,
        status("VmHWM:") as f64 / 1024.0
    );
    let peak = status("VmHWM:");
    println!(
        "database of {served} records, peak RSS {:.1} MiB (goal for 1M records ≤ {} MiB: {})",
        peak as f64 / 1024.0,
        GOAL_KIB / 1024,
        if peak <= GOAL_KIB { "met" } else { "NOT met" }
    );
}
