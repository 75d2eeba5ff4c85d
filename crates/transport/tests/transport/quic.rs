//! What QUIC adds beside TCP: a connection that survives an address change, and dialing
//! QUIC first with TCP as the fallback. (The handshake and its refusals run on both
//! transports in `auth`; revocation in `liveness`.)

use std::time::{Duration, Instant};

use bytes::Bytes;
use peergroup_transport::{Dial, Endpoint, TCP_FALLBACK_DELAY, Transport};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_connection_survives_an_address_change() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, config()).await;
        // Bob dials from an endpoint of his own, whose UDP socket will move.
        let bob_ep = Endpoint::bind(&["127.0.0.1:0".parse().unwrap()], config_over(Dial::Quic))
            .await
            .unwrap();
        let mut bob = bob_ep.connect_to(addr, &f.bob.creds, &trust).await.unwrap();
        let mut at_alice = accept(&ep).await;
        assert_eq!(bob.peer().transport, Transport::Quic);
        let before = bob_ep.quic_addrs()[0];
        assert_eq!(at_alice.peer().addr, before, "Alice sees Bob's QUIC socket");
        bob.send(Bytes::from_static(b"from the old address"))
            .await
            .unwrap();
        assert_eq!(
            recv(&mut at_alice, "Bob's first frame").await,
            &b"from the old address"[..]
        );

        // The address changes: a new socket, a new port.
        let after = bob_ep.rebind_quic("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(after.port(), before.port());
        assert_eq!(bob_ep.quic_addrs(), vec![after]);

        // The same connection carries on, both ways.
        bob.send(Bytes::from_static(b"from the new address"))
            .await
            .unwrap();
        assert_eq!(
            recv(&mut at_alice, "Bob's frame after the move").await,
            &b"from the new address"[..]
        );
        at_alice
            .send(Bytes::from_static(b"heard you"))
            .await
            .unwrap();
        assert_eq!(recv(&mut bob, "Alice's answer").await, &b"heard you"[..]);
        assert!(bob.close_reason().is_none() && at_alice.close_reason().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_first_connects_over_quic_where_it_is_served() {
    bounded(async {
        let f = Fixture::new();
        let (ep, addr) = server(&f.alice.creds, &f.trust_a(), config()).await;
        let bob = connect_over(Dial::QuicThenTcp, addr, &f.bob, &f.trust_a()).await;
        let at_alice = accept(&ep).await;
        assert_eq!(bob.peer().transport, Transport::Quic);
        assert_eq!(at_alice.peer().transport, Transport::Quic);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_first_falls_back_to_tcp_where_quic_is_not_served() {
    bounded(async {
        let f = Fixture::new();
        let mut tcp_only = config();
        tcp_only.quic = false;
        let (ep, addr) = server(&f.alice.creds, &f.trust_a(), tcp_only).await;
        assert!(ep.quic_addrs().is_empty(), "{:?}", ep.quic_addrs());
        let started = Instant::now();
        let mut bob = connect_over(Dial::QuicThenTcp, addr, &f.bob, &f.trust_a()).await;
        let took = started.elapsed();
        let mut at_alice = accept(&ep).await;
        assert_eq!(bob.peer().transport, Transport::Tcp);
        assert!(took >= TCP_FALLBACK_DELAY, "TCP went first after {took:?}");
        bob.send(Bytes::from_static(b"over tcp")).await.unwrap();
        assert_eq!(recv(&mut at_alice, "Bob's frame").await, &b"over tcp"[..]);
        at_alice.send(Bytes::from_static(b"ok")).await.unwrap();
        assert_eq!(recv(&mut bob, "Alice's frame").await, &b"ok"[..]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_handshake_against_a_silent_server_times_out() {
    bounded(async {
        let f = Fixture::new();
        // A UDP socket that reads nothing and answers nothing.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let mut cfg = config_over(Dial::Quic);
        cfg.handshake_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let err = Endpoint::connect(addr, &f.bob.creds, &f.trust_a(), &cfg)
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(err, peergroup_transport::ConnectError::Timeout(_)),
            "{err:?} after {took:?}"
        );
        assert!(took >= cfg.handshake_timeout && took < NO_HANG, "{took:?}");
    })
    .await;
}
