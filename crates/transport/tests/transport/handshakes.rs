//! Bounds on pending handshakes, pushed past with small limits over real loopback sockets:
//! per source address, in total (the oldest silent one gives way, a talking one stays), the
//! first-byte timeout, newcomers refused at once when every pending one has finished, and
//! password joins counted too. The thousands-of-sockets attacks are in `tests/slowloris`.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use peergroup_identity::{IdentityCertificate, KdfParams};
use peergroup_transport::{
    Endpoint, HandshakeStats, Issuer, JoinPolicy, PasswordRecord, RefusalKind, TransportConfig,
    password_join,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::support::*;

/// A configuration whose timeouts cannot close anything during a test (so every close seen
/// comes from a bound), with these handshake bounds.
fn limits(total: usize, per_address: usize) -> TransportConfig {
    let mut c = config();
    c.handshake_timeout = 4 * WAIT;
    c.first_byte_timeout = 4 * WAIT;
    c.max_handshakes = total;
    c.max_handshakes_per_address = per_address;
    c
}

/// A TCP connection to `to` from `from` (bound before connecting), sending nothing.
async fn silent_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    within(
        format!("a TCP connection from {from} to {to}"),
        socket.connect(to),
    )
    .await
    .unwrap_or_else(|e| panic!("TCP connect from {from} to {to}: {e}"))
}

/// Like [`silent_from`], but the endpoint may close the connection so soon that `connect`
/// itself sees the reset: then `None`.
async fn silent_or_reset(from: IpAddr, to: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    match within(
        format!("a TCP connection from {from} to {to}"),
        socket.connect(to),
    )
    .await
    {
        Ok(tcp) => Some(tcp),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => None,
        Err(e) => panic!("TCP connect from {from} to {to}: {e}"),
    }
}

/// Whether the endpoint closed `tcp` (an end of stream or a reset is waiting), looking once
/// without waiting.
fn closed_by_server(tcp: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tcp.try_read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Waits until `ep` has closed `tcp` (`what`, for the message); how long it took.
async fn wait_closed(ep: &Endpoint, tcp: &TcpStream, what: &str) -> Duration {
    let started = Instant::now();
    let mut byte = [0u8; 1];
    loop {
        match tokio::time::timeout(WAIT, tcp.readable()).await {
            Err(_) => panic!(
                "waited {WAIT:?} for the endpoint to close {what}; it is still open (the \
                 endpoint's counters: {:?})",
                ep.handshake_stats()
            ),
            Ok(r) => r.unwrap(),
        }
        match tcp.try_read(&mut byte) {
            Ok(0) => return started.elapsed(),
            Ok(_) => panic!("{what}: the endpoint sent a byte to a silent client"),
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(_) => return started.elapsed(),
        }
    }
}

/// Waits until the endpoint's counters satisfy `done` (`what`, for the message).
async fn stats_until(
    ep: &Endpoint,
    what: &str,
    done: impl Fn(&HandshakeStats) -> bool,
) -> HandshakeStats {
    let started = Instant::now();
    loop {
        let stats = ep.handshake_stats();
        if done(&stats) {
            return stats;
        }
        if started.elapsed() > WAIT {
            panic!("waited {WAIT:?} for {what}; the endpoint's counters say {stats:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_per_address_bound_the_oldest_silent_socket_gives_way() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, limits(100, 4)).await;
        let attacker = loopback(3);
        let mut held = Vec::new();
        for n in 0..4 {
            held.push(silent_from(attacker, addr).await);
            stats_until(&ep, &format!("{} pending handshakes", n + 1), |s| {
                s.pending == n + 1
            })
            .await;
        }
        // Ten more from the same address: each takes the place of the oldest.
        for n in 0..10 {
            held.push(silent_from(attacker, addr).await);
            let took =
                wait_closed(&ep, &held[n], &format!("silent socket {n} of {attacker}")).await;
            assert!(
                took < NO_HANG,
                "socket {n} was closed {took:?} after its replacement came"
            );
        }
        let stats = stats_until(&ep, "ten evictions", |s| s.evicted == 10).await;
        assert_eq!(stats.pending, 4, "{stats:?}");
        assert_eq!(stats.peak_per_address, 4, "{stats:?}");
        assert!(stats.peak_open_sockets <= 4 + 1, "{stats:?}");
        assert_eq!(stats.silent_timeouts, 0, "{stats:?}");
        // The four newest are still open.
        for (n, tcp) in held.iter().enumerate().skip(10) {
            assert!(
                !closed_by_server(tcp),
                "socket {n}, among the newest four, was closed"
            );
        }
        // A member from another address is not affected.
        let mut bob = connect(addr, &f.bob, &trust).await;
        let mut at_server = accept(&ep).await;
        bob.send("hello".into()).await.unwrap();
        assert_eq!(recv(&mut at_server, "Bob's hello").await, &b"hello"[..]);
        at_server.send("hi".into()).await.unwrap();
        assert_eq!(recv(&mut bob, "the server's reply").await, &b"hi"[..]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_total_bound_silent_sockets_give_way_before_a_talking_one() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, limits(4, 100)).await;
        // The oldest pending handshake has sent the first byte of a TLS record, no more.
        let mut talking = silent_from(loopback(10), addr).await;
        talking.write_all(&[22]).await.unwrap();
        stats_until(&ep, "the talking socket to be pending, not silent", |s| {
            s.pending == 1 && s.silent == 0
        })
        .await;
        let mut silent = Vec::new();
        for n in 0..3u8 {
            silent.push(silent_from(loopback(11 + n), addr).await);
        }
        stats_until(&ep, "4 pending handshakes", |s| s.pending == 4).await;
        // Six more from six other addresses: the silent ones give way, oldest first.
        for n in 0..6u8 {
            silent.push(silent_from(loopback(20 + n), addr).await);
            wait_closed(&ep, &silent[usize::from(n)], &format!("silent socket {n}")).await;
        }
        let stats = stats_until(&ep, "six evictions", |s| s.evicted == 6).await;
        assert_eq!(
            (stats.pending, stats.peak_pending),
            (4, 4),
            "the total bound did not hold: {stats:?}"
        );
        assert!(
            !closed_by_server(&talking),
            "the talking socket was evicted before silent ones"
        );
        // A member gets in (taking a silent one's place) while the bound is reached.
        let bob = connect(addr, &f.bob, &trust).await;
        let mut at_server = accept(&ep).await;
        bob.send("hello".into()).await.unwrap();
        assert_eq!(recv(&mut at_server, "Bob's hello").await, &b"hello"[..]);
        assert!(!closed_by_server(&talking));
        let stats = ep.handshake_stats();
        assert!(stats.peak_pending <= 4, "{stats:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_pending_handshake_has_finished_newcomers_are_closed_at_once() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let mut cfg = limits(3, 100);
        cfg.accept_queue = 1;
        let (ep, addr) = server(&f.alice.creds, &trust, cfg).await;
        // Nobody calls `accept`: one connection waits in the accept queue (no longer
        // pending), three more wait to get in, finished and pending.
        let mut members = Vec::new();
        for n in 0..4 {
            members.push(connect(addr, &f.bob, &trust).await);
            stats_until(&ep, &format!("{n} finished handshakes pending"), |s| {
                s.pending == n
            })
            .await;
        }
        let took = match silent_or_reset(loopback(30), addr).await {
            Some(newcomer) => {
                wait_closed(
                    &ep,
                    &newcomer,
                    "a newcomer while every pending one has finished",
                )
                .await
            }
            // Closed before our `connect` returned.
            None => Duration::ZERO,
        };
        assert!(took < NO_HANG, "the newcomer was closed after {took:?}");
        let stats = ep.handshake_stats();
        assert_eq!(
            (stats.pending, stats.refused, stats.evicted),
            (3, 1, 0),
            "{stats:?}"
        );
        // Once the application accepts, there is room again.
        let mut accepted = Vec::new();
        for _ in 0..4 {
            accepted.push(accept(&ep).await);
        }
        for member in &members {
            member.send("in".into()).await.unwrap();
        }
        for (n, conn) in accepted.iter_mut().enumerate() {
            assert_eq!(recv(conn, &format!("frame {n}")).await, &b"in"[..]);
        }
        let _carol = connect(addr, &f.carol, &trust).await;
        accept(&ep).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_socket_is_closed_after_the_first_byte_timeout_a_talking_one_is_not() {
    bounded(async {
        let f = Fixture::new();
        let mut cfg = config();
        cfg.first_byte_timeout = Duration::from_millis(300);
        cfg.handshake_timeout = 4 * WAIT;
        let (ep, addr) = server(&f.alice.creds, &f.trust_a(), cfg).await;
        let mut failures = ep.auth_failures();
        let mut talking = TcpStream::connect(addr).await.unwrap();
        talking.write_all(&[22, 3, 1]).await.unwrap();
        stats_until(&ep, "the talking socket to be pending, not silent", |s| {
            s.pending == 1 && s.silent == 0
        })
        .await;
        let started = Instant::now();
        let silent = TcpStream::connect(addr).await.unwrap();
        let failure = expect_failure(&mut failures, RefusalKind::HandshakeTimeout).await;
        assert_eq!(failure.addr, silent.local_addr().unwrap());
        assert!(
            failure.reason.detail.contains("sent nothing"),
            "{failure:?}"
        );
        wait_closed(&ep, &silent, "the silent socket").await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < NO_HANG,
            "a 300 ms first-byte timeout closed the socket after {took:?}"
        );
        // The one that sent three bytes is left to the (long) handshake timeout.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(!closed_by_server(&talking), "a talking socket was closed");
        let stats = ep.handshake_stats();
        assert_eq!((stats.silent_timeouts, stats.pending), (1, 1), "{stats:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_joins_are_pending_handshakes_and_outlast_silent_ones() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, limits(2, 100)).await;
        // The issuer waits for the test's word, so the join stays pending meanwhile.
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = std::sync::Mutex::new(go_rx);
        let calls = Arc::new(AtomicUsize::new(0));
        let chain = f.alice.creds.chain.clone();
        let key = f.alice.creds.key.clone();
        let counted = calls.clone();
        let issuer: Issuer = Arc::new(move |idc: &IdentityCertificate| {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = go_rx.lock().unwrap().recv_timeout(WAIT);
            let request = peergroup_credential_roles::MemberRequest {
                subject_key: *idc.public_key(),
                subject_peer: idc.peer_name().clone(),
                subject_friendly_name: "eve".into(),
                roles: peergroup_credential_roles::Roles::one(
                    peergroup_credential_roles::Role::Member,
                ),
                classifiers: vec![],
                not_before: t0(),
                not_after: t0().saturating_add(365 * DAY),
            };
            chain.issue(&key, &request).map_err(|e| e.to_string())
        });
        let secret =
            PasswordRecord::register(b"pw", f.a.group(), KdfParams::INSECURE_FAST).unwrap();
        ep.set_join_policy(f.a.group(), JoinPolicy::new(secret, issuer))
            .unwrap();
        let idc = IdentityCertificate::from_der(&f.eve_idc).unwrap();
        let joiner = tokio::spawn({
            let (group, key, trust) = (f.a.group().clone(), f.eve_key.clone(), trust.clone());
            async move { password_join(addr, &group, key, &idc, b"pw", &trust, &config()).await }
        });
        within("the issuer to be called", async {
            while calls.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert_eq!(ep.handshake_stats().pending, 1, "the join is not counted");
        // Silent newcomers fill the other place and take each other's, never the join's.
        let mut silent = Vec::new();
        for n in 0..4u8 {
            silent.push(silent_from(loopback(40 + n), addr).await);
            stats_until(&ep, "2 pending handshakes", |s| s.pending == 2).await;
        }
        for (n, tcp) in silent.iter().take(3).enumerate() {
            wait_closed(&ep, tcp, &format!("silent socket {n}")).await;
        }
        let stats = ep.handshake_stats();
        assert_eq!((stats.peak_pending, stats.evicted), (2, 3), "{stats:?}");
        go_tx.send(()).unwrap();
        let chain = within("the join to finish", joiner).await.unwrap();
        assert!(chain.is_ok(), "the pending join was disturbed: {chain:?}");
        stats_until(&ep, "only the last silent socket pending", |s| {
            s.pending == 1
        })
        .await;
    })
    .await;
}
