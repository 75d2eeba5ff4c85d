//! Slow-loris attacks over real loopback sockets: thousands of idle TCP connections held
//! against an endpoint with its default bounds, reopened by the attacker as soon as the
//! endpoint closes them, while a real member connects, shakes hands and exchanges a frame.
//!
//! A test binary of its own: each attack holds up to 10,000 sockets and keeps both cores busy
//! reopening them, which would disturb the timing of the other transport tests (cargo runs
//! test binaries one after the other; the two attacks here take turns too).
//!
//! The process raises its own open-file limit (soft to hard) and fails saying so when the
//! hard limit is too low. Sources 127.0.0.2 and up are bound before connecting: on Linux the
//! whole 127.0.0.0/8 is the loopback interface, no set-up needed.

#[allow(
    dead_code,
    reason = "shared with the transport tests; not every helper is used here"
)]
#[path = "../transport/support.rs"]
mod support;

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use peergroup_transport::{EVICTED_UNCLOSED_SLACK, Endpoint, HandshakeStats, TransportConfig};
use tokio::net::TcpSocket;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;

use support::*;

/// The goal: a real member connects, is accepted and exchanges a frame within this, during
/// an attack.
const MEMBER_GOAL: Duration = Duration::from_secs(2);

/// Member round trips measured during each attack.
const MEMBER_TRIES: usize = 5;

/// Between two member round trips.
const MEMBER_EVERY: Duration = Duration::from_millis(700);

/// Attack connections in flight at once: below the listen backlog (1024), so that the
/// kernel never drops a SYN, the member's included, because the attacker's own flood
/// overflowed it.
const CONNECTS_IN_FLIGHT: usize = 256;

/// The attacker looks for sockets the endpoint closed, and reopens them, this often.
const REOPEN_EVERY: Duration = Duration::from_millis(500);

/// A connect that takes longer is counted as failed (the kernel dropped its SYN).
const CONNECT_BOUND: Duration = Duration::from_secs(5);

/// The whole attack (opening, member tries, closing) must fit well inside this.
const ATTACK_BOUND: Duration = Duration::from_secs(60);

/// Files the test process may need besides the attack's sockets (the endpoint's, the
/// runtime's, the members').
const FD_HEADROOM: u64 = 2048;

/// The two attacks take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Raises the soft open-file limit to the hard limit; fails clearly if that does not allow
/// `needed` files.
fn raise_file_limit(needed: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum;
    if limit.current.is_some_and(|soft| soft < needed) {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: hard,
                maximum: hard,
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "this test needs {needed} open files; raising the soft limit {:?} to the hard \
                 limit {hard:?} failed: {e}",
                limit.current
            )
        });
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        now >= needed,
        "this test needs {needed} open files; RLIMIT_NOFILE allows {now} (hard limit {hard:?}): \
         raise the hard limit (ulimit -Hn) to run it"
    );
    now
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// The attacker: `per_source` idle sockets from each source address, each slot reopened
/// when the endpoint closes it.
struct Attack {
    target: SocketAddr,
    sources: Vec<IpAddr>,
    per_source: usize,
    /// Slot `i` is from `sources[i / per_source]`; `None` when closed.
    sockets: Vec<Option<std::net::TcpStream>>,
    connects: u64,
    /// Connects that failed (timed out, or an error other than a reset).
    failed: u64,
    /// Connects reset by the endpoint before they returned.
    reset: u64,
    /// Why connects failed, and how often.
    failures: std::collections::BTreeMap<String, u64>,
    passes: u64,
    /// The most descriptors the endpoint's side held, seen after each pass.
    peak_endpoint_fds: usize,
    /// Descriptors of the process before the attack.
    baseline_fds: usize,
}

impl Attack {
    fn new(target: SocketAddr, sources: Vec<IpAddr>, per_source: usize) -> Self {
        let n = sources.len() * per_source;
        Attack {
            target,
            sources,
            per_source,
            sockets: (0..n).map(|_| None).collect(),
            connects: 0,
            failed: 0,
            reset: 0,
            failures: std::collections::BTreeMap::new(),
            passes: 0,
            peak_endpoint_fds: 0,
            baseline_fds: open_fds(),
        }
    }

    fn held(&self) -> usize {
        self.sockets.iter().filter(|s| s.is_some()).count()
    }

    /// Forgets the sockets the endpoint closed (an end of stream or a reset waiting); how
    /// many.
    fn reap(&mut self) -> usize {
        let mut closed = 0;
        for slot in &mut self.sockets {
            let Some(sock) = slot else { continue };
            let mut byte = [0u8; 1];
            let gone = match sock.read(&mut byte) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            };
            if gone {
                *slot = None;
                closed += 1;
            }
        }
        closed
    }

    /// Opens every empty slot, [`CONNECTS_IN_FLIGHT`] at a time.
    async fn fill(&mut self) {
        let empty: Vec<usize> = (0..self.sockets.len())
            .filter(|i| self.sockets.get(*i).is_some_and(Option::is_none))
            .collect();
        for batch in empty.chunks(CONNECTS_IN_FLIGHT) {
            let mut set = JoinSet::new();
            for &i in batch {
                let from = self.sources[i / self.per_source];
                let to = self.target;
                set.spawn(async move { (i, open_idle(from, to).await) });
            }
            while let Some(done) = set.join_next().await {
                let (i, result) = done.unwrap();
                self.connects += 1;
                match result {
                    Ok(sock) => self.sockets[i] = Some(sock),
                    Err(e) if e.raw_os_error() == Some(24) => panic!(
                        "out of file descriptors with {} attack sockets open ({} in the \
                         process): {e}",
                        self.held(),
                        open_fds()
                    ),
                    // Connected, and already closed by the endpoint before the connect
                    // returned: closed at once, as it should be; reopened next pass.
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => self.reset += 1,
                    Err(e) => {
                        self.failed += 1;
                        *self.failures.entry(e.to_string()).or_default() += 1;
                    }
                }
            }
        }
        self.passes += 1;
        // What the endpoint's side holds: everything but the attacker's sockets and what
        // was open before.
        let endpoint_fds = open_fds().saturating_sub(self.held() + self.baseline_fds);
        self.peak_endpoint_fds = self.peak_endpoint_fds.max(endpoint_fds);
    }

    /// Keeps the attack up until `stop` says so: reopen what was closed, wait, again.
    async fn run(mut self, mut stop: watch::Receiver<bool>, opened: watch::Sender<bool>) -> Self {
        loop {
            self.reap();
            self.fill().await;
            opened.send_replace(true);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return self,
                () = tokio::time::sleep(REOPEN_EVERY) => {}
            }
        }
    }
}

/// One idle connection from `from` to `to`, held as a plain non-blocking socket (not
/// registered with the runtime).
async fn open_idle(from: IpAddr, to: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let stream = tokio::time::timeout(CONNECT_BOUND, socket.connect(to))
        .await
        .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "connect timed out"))??;
    let std = stream.into_std()?;
    std.set_nonblocking(true)?;
    Ok(std)
}

/// A member connects, is accepted, and a frame goes each way; how long it took.
async fn member_round_trip(ep: &Endpoint, addr: SocketAddr, f: &Fixture, n: usize) -> Duration {
    let trust = f.trust_a();
    let started = Instant::now();
    let mut client = Endpoint::connect(addr, &f.bob.creds, &trust, &config())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "member round trip {n}: Bob could not connect during the attack after {:?}: \
                 {e:?} (the endpoint's counters: {:?})",
                started.elapsed(),
                ep.handshake_stats()
            )
        });
    let mut at_server = accept(ep).await;
    client.send(Bytes::from_static(b"ping")).await.unwrap();
    assert_eq!(recv(&mut at_server, "Bob's ping").await, &b"ping"[..]);
    at_server.send(Bytes::from_static(b"pong")).await.unwrap();
    assert_eq!(recv(&mut client, "the server's pong").await, &b"pong"[..]);
    started.elapsed()
}

/// Runs an attack of `per_source` idle sockets from each of `sources` against an endpoint
/// with the default bounds, measures member round trips meanwhile, and checks every bound.
async fn attack(name: &str, sources: Vec<IpAddr>, per_source: usize) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let sockets = sources.len() * per_source;
    raise_file_limit(sockets as u64 + FD_HEADROOM);
    let f = Fixture::new();
    let cfg = config();
    let defaults = TransportConfig::default();
    assert_eq!(
        (
            cfg.max_handshakes,
            cfg.max_handshakes_per_address,
            cfg.first_byte_timeout
        ),
        (
            defaults.max_handshakes,
            defaults.max_handshakes_per_address,
            defaults.first_byte_timeout
        ),
        "the attack runs against the default bounds"
    );
    let (ep, addr) = server(&f.alice.creds, &f.trust_a(), cfg.clone()).await;
    let started = Instant::now();
    let attacker = Attack::new(addr, sources, per_source);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (opened_tx, mut opened_rx) = watch::channel(false);
    let attacker = tokio::spawn(attacker.run(stop_rx, opened_tx));
    within(
        format!("the attacker to open its {sockets} sockets"),
        opened_rx.wait_for(|o| *o),
    )
    .await
    .unwrap();
    let opened_in = started.elapsed();

    let mut times = Vec::new();
    for n in 0..MEMBER_TRIES {
        times.push(member_round_trip(&ep, addr, &f, n).await);
        tokio::time::sleep(MEMBER_EVERY).await;
    }
    stop_tx.send_replace(true);
    let mut attacker = within("the attacker to stop", attacker).await.unwrap();
    attacker.reap();
    let stats = ep.handshake_stats();
    let took = started.elapsed();

    let mut sorted = times.clone();
    sorted.sort();
    eprintln!(
        "{name}: {sockets} idle sockets opened in {opened_in:?}; {} passes, {} connects \
         ({} reset by the endpoint at once, {} failed: {:?}), {} held at the end; member round trips {times:?} (median {:?}, max \
         {:?}); endpoint: {stats:?}; endpoint descriptors at most {} (bound {}); whole attack \
         {took:?}",
        attacker.passes,
        attacker.connects,
        attacker.reset,
        attacker.failed,
        attacker.failures,
        attacker.held(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1],
        attacker.peak_endpoint_fds,
        cfg.max_handshakes + EVICTED_UNCLOSED_SLACK,
    );
    for (n, t) in times.iter().enumerate() {
        assert!(
            *t < MEMBER_GOAL,
            "{name}: member round trip {n} took {t:?}, over the {MEMBER_GOAL:?} goal (all: \
             {times:?}; endpoint: {stats:?})"
        );
    }
    check_bounds(name, &stats, &cfg, sockets);
    assert!(
        attacker.peak_endpoint_fds <= cfg.max_handshakes + EVICTED_UNCLOSED_SLACK + 16,
        "{name}: the endpoint's side held up to {} descriptors",
        attacker.peak_endpoint_fds
    );
    assert!(
        attacker.failed * 10 <= attacker.connects,
        "{name}: {} of {} attack connects failed: the attack did not hold its sockets",
        attacker.failed,
        attacker.connects
    );
    assert!(took < ATTACK_BOUND, "{name}: the attack took {took:?}");

    // The attacker leaves: nothing stays pending.
    drop(attacker);
    let calm = Instant::now();
    loop {
        let stats = ep.handshake_stats();
        if stats.pending == 0 && stats.open_sockets == 0 {
            break;
        }
        assert!(
            calm.elapsed() < WAIT,
            "{name}: {WAIT:?} after the attack, the endpoint still counts {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every bound held, and the endpoint closed the surplus at once (by refusal or eviction),
/// not by waiting for the first-byte timeout.
fn check_bounds(name: &str, stats: &HandshakeStats, cfg: &TransportConfig, sockets: usize) {
    assert!(
        stats.peak_pending <= cfg.max_handshakes,
        "{name}: {} pending handshakes, over the bound of {}: {stats:?}",
        stats.peak_pending,
        cfg.max_handshakes
    );
    assert!(
        stats.peak_per_address <= cfg.max_handshakes_per_address,
        "{name}: {} pending handshakes from one address, over the bound of {}: {stats:?}",
        stats.peak_per_address,
        cfg.max_handshakes_per_address
    );
    assert!(
        stats.peak_open_sockets <= cfg.max_handshakes + EVICTED_UNCLOSED_SLACK,
        "{name}: {} incoming sockets held: {stats:?}",
        stats.peak_open_sockets
    );
    let closed_at_once = stats.evicted + stats.refused;
    assert!(
        closed_at_once + cfg.max_handshakes as u64 >= sockets as u64,
        "{name}: only {closed_at_once} of {sockets} surplus sockets were closed at once: \
         {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_connects_while_ten_thousand_idle_sockets_come_from_one_address() {
    bounded(attack(
        "10,000 sockets from 127.0.0.2",
        vec![IpAddr::from([127, 0, 0, 2])],
        10_000,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_connects_while_two_thousand_idle_sockets_come_from_two_hundred_addresses() {
    let sources = (2..=201u8).map(|n| IpAddr::from([127, 0, 0, n])).collect();
    bounded(attack("2,000 sockets from 127.0.0.2-201", sources, 10)).await;
}
