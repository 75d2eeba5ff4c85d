//! Three hosts in network namespaces this test creates, each pair joined by its own link:
//!
//! ```text
//!        h1
//!  .12  /  \  .13
//!      h2 -- h3
//!         .23
//! ```
//!
//! A member runs on each host. Cutting the h1–h2 link must not stop records from converging
//! (they travel through h3); cutting both of h3's links isolates it, and when they come back
//! it must find the others and catch up by itself. Needs root (`ip netns`); run with
//! `cargo xtask netns`.

use std::process::Command;
use std::time::Duration;

use super::processes::{Digests, spawn_in, wait_converged};

const PORT: u16 = 47_311;

struct Namespaces {
    tag: String,
}

impl Namespaces {
    fn ns(&self, h: usize) -> String {
        format!("pg{}h{h}", self.tag)
    }

    fn link(&self, a: usize, b: usize) -> String {
        format!("pg{}l{a}{b}", self.tag)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for h in 1..=3 {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(h)])
                .status();
        }
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {}", args.join(" "));
}

fn addr(a: usize, b: usize, host: usize) -> std::net::SocketAddr {
    format!("10.{}{}.0.{host}:{PORT}", a, b).parse().unwrap()
}

fn set_link(n: &Namespaces, a: usize, b: usize, up: bool) {
    let state = if up { "up" } else { "down" };
    ip(&[
        "-n",
        &n.ns(a),
        "link",
        "set",
        &format!("{}a", n.link(a, b)),
        state,
    ]);
    ip(&[
        "-n",
        &n.ns(b),
        "link",
        "set",
        &format!("{}b", n.link(a, b)),
        state,
    ]);
}

/// Creates the three hosts and their links. A machine that cannot (not root, no iproute2)
/// fails the test: it is run on purpose (`cargo xtask netns`, CI as root), and passing
/// without running would say something untrue.
fn setup() -> Namespaces {
    let tag = format!("{:x}", std::process::id() % 0xffff);
    let probe = format!("pg{tag}probe");
    let made = Command::new("ip").args(["netns", "add", &probe]).output();
    match made {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "cannot create network namespaces (needs root): ip netns add: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("cannot run `ip` (install iproute2): {e}"),
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    let n = Namespaces { tag };
    for h in 1..=3 {
        ip(&["netns", "add", &n.ns(h)]);
        ip(&["-n", &n.ns(h), "link", "set", "lo", "up"]);
    }
    for (a, b) in [(1, 2), (1, 3), (2, 3)] {
        let (la, lb) = (format!("{}a", n.link(a, b)), format!("{}b", n.link(a, b)));
        ip(&["link", "add", &la, "type", "veth", "peer", "name", &lb]);
        ip(&["link", "set", &la, "netns", &n.ns(a)]);
        ip(&["link", "set", &lb, "netns", &n.ns(b)]);
        ip(&[
            "-n",
            &n.ns(a),
            "addr",
            "add",
            &format!("10.{a}{b}.0.{a}/24"),
            "dev",
            &la,
        ]);
        ip(&[
            "-n",
            &n.ns(b),
            "addr",
            "add",
            &format!("10.{a}{b}.0.{b}/24"),
            "dev",
            &lb,
        ]);
        set_link(&n, a, b, true);
    }
    n
}

#[test]
#[ignore = "needs root and ip netns: cargo xtask netns"]
fn three_hosts_survive_a_cut_and_heal_an_isolation() {
    let n = setup();
    let dir = tempfile::tempdir().unwrap();
    let digests: Digests = std::sync::Arc::new(std::sync::Mutex::new(vec![None; 3]));
    // Each host listens on all its addresses and knows every address of the others.
    let known = |h: usize| -> Vec<std::net::SocketAddr> {
        [(1, 2), (1, 3), (2, 3)]
            .into_iter()
            .flat_map(|(a, b)| [(a, b, a), (a, b, b)])
            .filter(|(_, _, host)| *host != h)
            .map(|(a, b, host)| addr(a, b, host))
            .collect()
    };
    let bind: std::net::SocketAddr = format!("0.0.0.0:{PORT}").parse().unwrap();
    let mut procs = Vec::new();
    for h in 1..=3 {
        // Member h-1 of the fixture runs on host h (member 0, the creator, on h1).
        procs.push(spawn_in(
            Some(&n.ns(h)),
            h - 1,
            dir.path(),
            10,
            bind,
            &known(h),
            &digests,
        ));
    }
    let all = [0, 1, 2];
    wait_converged(&digests, &all, 30, Duration::from_secs(90));

    // Cut h1–h2: records from h1 and h2 must still reach everyone (through h3).
    set_link(&n, 1, 2, false);
    for p in [0, 1] {
        use std::io::Write as _;
        writeln!(procs[p].stdin.as_mut().unwrap(), "PUBLISH 10").unwrap();
    }
    let took = wait_converged(&digests, &all, 50, Duration::from_secs(120));
    eprintln!("with h1–h2 cut, records converged through h3 in {took:?}");

    // Isolate h3, publish on both sides, heal: h3 must come back by itself.
    set_link(&n, 1, 3, false);
    set_link(&n, 2, 3, false);
    for p in [0, 2] {
        use std::io::Write as _;
        writeln!(procs[p].stdin.as_mut().unwrap(), "PUBLISH 10").unwrap();
    }
    // Longer than the transport's idle timeout (45 s): the connections to h3 die and must be
    // made again once the links return.
    std::thread::sleep(Duration::from_secs(50));
    set_link(&n, 1, 3, true);
    set_link(&n, 2, 3, true);
    let took = wait_converged(&digests, &all, 70, Duration::from_secs(180));
    eprintln!("after h3 was isolated and the links came back, it caught up in {took:?}");
    for p in &mut procs {
        p.leave();
    }
}
