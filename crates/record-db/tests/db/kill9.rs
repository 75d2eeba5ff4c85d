//! Crash safety: a writer process is killed with SIGKILL at random moments; every record it
//! acknowledged must be there when the database is opened again, and the file must open.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peergroup_credential_roles::CertChain;
use peergroup_record_db::store::SqliteStore;
use peergroup_record_db::{Database, RecordId};

use crate::support::*;

const TRIALS: usize = 20;

/// The child: writes records forever, printing each id once its commit has returned (one
/// commit per record, or eight per commit with `create_each` on odd trials).
#[test]
#[ignore = "run by kill9_acknowledged_records_survive as a child process"]
fn kill9_writer_child() {
    let Ok(path) = std::env::var("PEERGROUP_KILL9_DB") else {
        return;
    };
    let g = Group::new();
    let chain = CertChain::from_pkcs7(&std::fs::read(format!("{path}.chain")).unwrap()).unwrap();
    let bob = Member {
        key: peergroup_identity::KeyPair::from_test_seed(2),
        chain,
    };
    let mut db = Database::open(
        SqliteStore::open(std::path::Path::new(&path)).unwrap(),
        &g.alice.chain,
    )
    .unwrap();
    let now = t0().saturating_add(HOUR);
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    if std::env::var_os("PEERGROUP_KILL9_GROUP_COMMIT").is_some() {
        // Group commit: eight records per durable commit, each acknowledged once its
        // answer is back.
        for round in 0u64.. {
            let news = (0..8u64)
                .map(|j| {
                    let i = round * 8 + j;
                    let id = RecordId::derive(bob.chain.leaf().subject_peer(), i.to_be_bytes());
                    (
                        id,
                        new_record(&i.to_le_bytes().repeat(64), now.saturating_add(DAY)),
                    )
                })
                .collect();
            for answer in db.create_each(bob.signer(), news, now) {
                writeln!(out, "ack {}", answer.unwrap().record.id).unwrap();
            }
            out.flush().unwrap();
        }
    }
    for i in 0u64.. {
        let r = db
            .create(
                bob.signer(),
                new_record(&i.to_le_bytes().repeat(64), now.saturating_add(DAY)),
                now,
            )
            .unwrap();
        writeln!(out, "ack {}", r.record.id).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill9_acknowledged_records_survive() {
    let g = Group::new();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut total = 0;
    for trial in 0..TRIALS {
        let path = dir.path().join(format!("trial{trial}.sqlite"));
        std::fs::write(format!("{}.chain", path.display()), g.bob.chain.to_pkcs7()).unwrap();
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill9::kill9_writer_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PEERGROUP_KILL9_DB", &path)
            .envs((trial % 2 == 1).then_some(("PEERGROUP_KILL9_GROUP_COMMIT", "1")))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Kill after a pseudo-random number of acknowledgements (0 to ~60), or a deadline;
        // odd trials write with group commit.
        let kill_after = (trial * 7919 + 13) % 61;
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("ack ")
                    && tx.send(id.parse::<RecordId>().unwrap()).is_err()
                {
                    break;
                }
            }
        });
        let mut acked = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while acked.len() < kill_after && Instant::now() < deadline {
            if let Ok(id) = rx.recv_timeout(Duration::from_millis(50)) {
                acked.push(id);
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        acked.extend(rx.try_iter());
        let db = Database::open(SqliteStore::open(&path).unwrap(), g.root.chain()).unwrap();
        for id in &acked {
            assert!(
                db.get(*id).unwrap().is_some(),
                "trial {trial}: acknowledged record {id} lost"
            );
        }
        assert!(db.len() >= acked.len());
        total += acked.len();
    }
    assert!(
        total > TRIALS,
        "the writer acknowledged almost nothing ({total})"
    );
}
