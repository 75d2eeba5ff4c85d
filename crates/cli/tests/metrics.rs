//! `peergroup run --metrics`: a real node serves OpenMetrics text over HTTP on loopback.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

#[path = "common/bounded.rs"]
mod bounded;

const WAIT: Duration = Duration::from_secs(45);

fn ok(home: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peergroup"));
    cmd.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("PEERGROUP_HOME");
    let out = bounded::output_within(cmd, bounded::Stdin::Null, "peergroup", WAIT).0;
    assert!(
        out.status.success(),
        "peergroup {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// One HTTP/1.1 request; the status line, headers and body.
fn request(addr: SocketAddr, method: &str, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_owned(), headers.to_lowercase(), body.to_owned())
}

#[test]
fn a_running_node_serves_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("alice");
    ok(&home, &["identity", "create", "Alice"]);
    let group = ok(
        &home,
        &["group", "create", "Friends", "--identity", "Alice"],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_peergroup"))
        .arg("--home")
        .arg(&home)
        .args([
            "run",
            "--group",
            "Friends",
            "--control",
            "--no-discovery",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .env_remove("PEERGROUP_HOME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let url = loop {
        let line = rx.recv_timeout(WAIT).expect("a \"metrics URL\" line");
        if let Some(url) = line.strip_prefix("metrics ") {
            break url.to_owned();
        }
    };
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{url}");

    let (status, headers, body) = request(addr, "GET", "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        headers.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{headers}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    // The group's peer name labels its metrics; a lone creator has no links yet.
    let group_id = group
        .split_whitespace()
        .find(|w| w.contains('.'))
        .unwrap_or(&group)
        .to_owned();
    assert!(
        body.contains(&format!("peergroup_neighbors{{group=\"{group_id}\"}} 0")),
        "{group}\n{body}"
    );
    for family in [
        "# TYPE peergroup_floods counter",
        "# TYPE peergroup_refusals counter",
        "# TYPE peergroup_handshakes_pending gauge",
        "# TYPE peergroup_receive_queue_bytes gauge",
    ] {
        assert!(body.contains(family), "{family} in\n{body}");
    }
    let (status, _, _) = request(addr, "GET", "/other");
    assert!(status.contains(" 404 "), "{status}");
    let (status, _, _) = request(addr, "POST", "/metrics");
    assert!(status.contains(" 405 "), "{status}");

    drop(child.stdin.take());
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "run did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}
