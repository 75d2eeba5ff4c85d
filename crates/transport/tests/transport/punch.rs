//! TCP hole punching: two endpoints dial each other from their listening ports at once
//! (`Endpoint::punch_tcp`), and the listening port stays their own.

use std::time::Duration;

use bytes::Bytes;
use peergroup_transport::{Endpoint, Transport};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_dialing_each_other_from_their_listening_ports_link() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let mut cfg = config();
        // A side that ends up a TLS server on both ends gives up soon.
        cfg.handshake_timeout = Duration::from_secs(3);
        let (alice_ep, alice_addr) = server(&f.alice.creds, &trust, cfg.clone()).await;
        let (bob_ep, bob_addr) = server(&f.bob.creds, &trust, cfg).await;
        let alice_serves = f.alice.creds.peer() < f.bob.creds.peer();
        let (at_alice, at_bob) = tokio::join!(
            alice_ep.punch_tcp(bob_addr, &f.alice.creds, &trust, alice_serves),
            bob_ep.punch_tcp(alice_addr, &f.bob.creds, &trust, !alice_serves),
        );
        // One connection forms, from the listening ports: both dialing sockets joined (a
        // simultaneous open), or one side's SYN reached the other's listener first (then
        // that side's own dial finds the connection taken, and its listener has it).
        let end = |r: Result<(_, bool), _>, ep| async move {
            match r {
                Ok((c, served)) => (c, Some(served)),
                Err(_) => (accept(ep).await, None),
            }
        };
        let (mut a, a_served) = end(at_alice, &alice_ep).await;
        let (mut b, b_served) = end(at_bob, &bob_ep).await;
        for (conn, port, other) in [
            (&a, alice_addr.port(), f.bob.creds.peer()),
            (&b, bob_addr.port(), f.alice.creds.peer()),
        ] {
            assert_eq!(conn.peer().transport, Transport::Tcp);
            assert_eq!(conn.peer().local_addr.port(), port, "the listening port");
            assert_eq!(&conn.peer().peer, other);
        }
        // The larger name never serves; on a simultaneous open the smaller one does.
        let larger_served = if alice_serves { b_served } else { a_served };
        assert_ne!(larger_served, Some(true));
        if let (Some(x), Some(y)) = (a_served, b_served) {
            assert_ne!(x, y, "one server, one client");
        }
        a.send(Bytes::from_static(b"from Alice")).await.unwrap();
        assert_eq!(recv(&mut b, "Alice's frame").await, &b"from Alice"[..]);
        b.send(Bytes::from_static(b"from Bob")).await.unwrap();
        assert_eq!(recv(&mut a, "Bob's frame").await, &b"from Bob"[..]);
    })
    .await;
}

#[tokio::test]
async fn a_listening_port_is_not_shared_with_another_endpoint() {
    let first = Endpoint::bind(&["127.0.0.1:0".parse().unwrap()], config())
        .await
        .unwrap();
    let port = first.local_addrs()[0];
    let second = Endpoint::bind(&[port], config()).await;
    let err = second.expect_err("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
}
