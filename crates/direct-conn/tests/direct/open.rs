//! Opening: events on both sides, enumeration, addresses in turn, the overall bound, the wrong
//! member, no address, cancelling, a member that refuses.

use std::time::{Duration, Instant};

use peergroup_direct_conn::{DirectConnInfo, DirectError, DirectEvent, Fault};
use peergroup_transport::Endpoint;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_reports_connected_on_both_sides_and_both_enumerate_it() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let mut alice = Node::start(&f.alice, &trust).await;
        let mut bob = Node::start(&f.bob, &trust).await;
        assert!(alice.direct.connections().is_empty());

        // `open` returns at once; the outcome is an event.
        let id = alice.direct.open(&bob.peer, vec![bob.addr], WAIT).unwrap();
        match alice.next().await {
            DirectEvent::Connected { id: i, peer, addr } => {
                assert_eq!((i, &peer, addr), (id, &bob.peer, bob.addr));
            }
            other => panic!("{other:?}"),
        }
        let (bob_id, alice_addr) = match bob.next().await {
            DirectEvent::Connected { id, peer, addr } => {
                assert_eq!(peer, alice.peer);
                (id, addr)
            }
            other => panic!("{other:?}"),
        };
        assert!(alice_addr.ip().is_loopback());

        assert_eq!(
            alice.direct.connections(),
            vec![DirectConnInfo {
                id,
                peer: bob.peer.clone(),
                addr: bob.addr,
                outbound: true
            }]
        );
        assert_eq!(
            bob.direct.connections(),
            vec![DirectConnInfo {
                id: bob_id,
                peer: alice.peer.clone(),
                addr: alice_addr,
                outbound: false
            }]
        );

        // A second connection to the same member is another connection.
        let (id2, bob_id2) = link(&mut alice, &mut bob).await;
        assert_ne!(id2, id);
        assert_ne!(bob_id2, bob_id);
        let ids: Vec<_> = alice.direct.connections().iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![id, id2]);
        assert_eq!(bob.direct.connections().len(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_to_an_unreachable_address_fails_within_the_timeout() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let mut alice = Node::start(&f.alice, &trust).await;
        let bob = f.bob.peer().clone();
        let dead = dead_addr();

        // The timeout is generous: a refused address fails at once, by itself, not by the
        // timeout (whose reason would say "timed out").
        let started = Instant::now();
        let id = alice.direct.open(&bob, vec![dead], WAIT).unwrap();
        match alice.next().await {
            DirectEvent::Failed {
                id: i,
                peer,
                addrs,
                reason,
            } => {
                assert_eq!((i, peer.as_ref(), addrs), (id, Some(&bob), vec![dead]));
                assert!(reason.contains(&dead.to_string()), "{reason}");
                assert!(!reason.contains("timed out"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let took = started.elapsed();
        assert!(took < WAIT, "failed after {took:?}");
        assert!(alice.direct.connections().is_empty());

        let err = alice
            .direct
            .open_wait(&bob, vec![dead], WAIT)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DirectError::Connect { addr, .. } if *addr == dead),
            "{err:?}"
        );
        assert_eq!(err.fault(), Fault::Transport);
        assert!(matches!(alice.next().await, DirectEvent::Failed { .. }));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_are_tried_in_turn() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let mut alice = Node::start(&f.alice, &trust).await;
        let mut bob = Node::start(&f.bob, &trust).await;
        let id = alice
            .direct
            .open_wait(&bob.peer, vec![dead_addr(), dead_addr(), bob.addr], WAIT)
            .await
            .unwrap_or_else(|e| panic!("opening past two dead addresses: {e:?}"));
        assert_eq!(alice.connected(&bob.peer).await, id);
        bob.connected(&alice.peer).await;
        assert_eq!(alice.direct.connections()[0].addr, bob.addr);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_attempt_is_bounded_by_the_timeout() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let mut alice = Node::start(&f.alice, &trust).await;
        // A listener that never accepts: TCP connects (the backlog), TLS never answers, and
        // the transport's own handshake timeout is `WAIT`, longer than `NO_HANG`: only the
        // attempt's own 400 ms bound can end it in time.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let started = Instant::now();
        let err = alice
            .direct
            .open_wait(f.bob.peer(), vec![addr, addr], Duration::from_millis(400))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(err, DirectError::Timeout { .. }),
            "{err:?} after {took:?}"
        );
        assert_eq!(err.fault(), Fault::Transport);
        assert!(
            took >= Duration::from_millis(400),
            "a 400 ms bound fired after {took:?}"
        );
        assert!(took < NO_HANG, "a 400 ms bound fired after {took:?}");
        match alice.next().await {
            DirectEvent::Failed { reason, .. } => assert!(reason.contains("timed out"), "{reason}"),
            other => panic!("{other:?}"),
        }
        drop(silent);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_to_the_wrong_member_fails() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let mut alice = Node::start(&f.alice, &trust).await;
        let mut carol = Node::start(&f.carol, &trust).await;
        // Bob's name, Carol's address.
        let err = alice
            .direct
            .open_wait(f.bob.peer(), vec![carol.addr], WAIT)
            .await
            .unwrap_err();
        match &err {
            DirectError::WrongPeer { expected, found } => {
                assert_eq!((expected, found), (f.bob.peer(), &carol.peer));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.fault(), Fault::Peer);
        match alice.next().await {
            DirectEvent::Failed { reason, .. } => {
                assert!(reason.contains(&carol.peer.to_string()), "{reason}");
                assert!(reason.contains(&carol.addr.to_string()), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Carol never saw a direct connection. (A check that nothing happens, after Alice's
        // failure: a moment for a wrong event to show up; load makes it pass more easily.)
        tokio::time::sleep(Duration::from_millis(300)).await;
        let event = carol.events.try_recv();
        assert!(event.is_none(), "Carol saw {event:?}");
        assert!(carol.direct.connections().is_empty());
        assert!(alice.direct.connections().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_address_is_the_callers_mistake() {
    bounded(async {
        let f = Fixture::new();
        let mut alice = Node::start(&f.alice, &f.trust()).await;
        let err = alice
            .direct
            .open_wait(f.bob.peer(), vec![], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, DirectError::NoAddress { .. }), "{err:?}");
        assert_eq!(err.fault(), Fault::Caller);
        let id = alice
            .direct
            .open(f.bob.peer(), vec![], Duration::from_secs(1))
            .unwrap();
        let mut failed = 0;
        for _ in 0..2 {
            if let DirectEvent::Failed { id: i, .. } = alice.next().await {
                failed += 1;
                assert!(i <= id);
            }
        }
        assert_eq!(failed, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_while_opening_cancels() {
    bounded(async {
        let f = Fixture::new();
        let mut alice = Node::start(&f.alice, &f.trust()).await;
        // A listener that takes the TCP connection and never says a word: the opening waits
        // in the TLS handshake until it is cancelled (its own bound is far beyond the test's).
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let id = alice
            .direct
            .open(f.bob.peer(), vec![addr], 2 * TEST_BOUND)
            .unwrap();
        let (_held, _) = within("the opening to reach the silent listener", silent.accept())
            .await
            .unwrap();
        // Still opening: sending is refused as such.
        let err = alice
            .direct
            .send(id, chat(), bytes::Bytes::from_static(b"early"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DirectError::StillOpening(i) if i == id),
            "{err:?}"
        );
        alice.direct.close(id).unwrap();
        match alice.next().await {
            DirectEvent::Failed { id: i, reason, .. } => {
                assert_eq!(i, id);
                assert!(reason.contains("cancelled"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        drop(silent);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_does_not_accept_direct_connections_refuses() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let alice = Node::start(&f.alice, &trust).await;
        // Bob listens, but hangs up on everything after the handshake.
        let bob = Endpoint::bind(&["127.0.0.1:0".parse().unwrap()], config())
            .await
            .unwrap();
        bob.add_group(f.bob.clone(), trust.clone()).unwrap();
        let addr = bob.local_addrs()[0];
        let server = tokio::spawn(async move {
            while let Some(conn) = bob.accept().await {
                conn.close("no direct connections here");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let err = alice
            .direct
            .open_wait(f.bob.peer(), vec![addr], WAIT)
            .await
            .unwrap_err();
        match &err {
            DirectError::Refused { reason, .. } => {
                assert!(reason.contains("no direct connections here"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.fault(), Fault::Peer);
        server.abort();
    })
    .await;
}
