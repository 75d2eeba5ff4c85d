//! Bounds a hostile member cannot push past: direct connections per member and in all,
//! opening ones included, and the owner's event queue in bytes.

use bytes::Bytes;
use peergroup_direct_conn::{
    ConnectionCap, DEFAULT_EVENT_QUEUE_BYTES, DEFAULT_EVENT_QUEUE_LEN, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PER_MEMBER, DirectError, DirectEvent, DirectLimits, Fault,
};

use crate::support::*;

/// A member that does not hold itself to any bound of ours (it may open as many as it likes).
fn unbounded() -> DirectLimits {
    DirectLimits::new(1 << 20)
        .max_per_member(1000)
        .max_connections(1000)
}

/// The refusal an opener gets when the acceptor is over a bound: the goodbye names it.
fn assert_refused_over(err: &DirectError, what: &str) {
    match err {
        DirectError::Refused { reason, .. } => {
            assert!(
                reason.contains("too many direct connections") && reason.contains(what),
                "the goodbye should say which bound ({what}): {reason}"
            );
        }
        other => panic!("expected a refusal naming the bound ({what}), got {other:?}"),
    }
    assert_eq!(err.fault(), Fault::Peer);
}

#[test]
fn the_default_bounds() {
    assert_eq!(DEFAULT_MAX_PER_MEMBER, 8);
    assert_eq!(DEFAULT_MAX_CONNECTIONS, 256);
    assert_eq!(DEFAULT_EVENT_QUEUE_LEN, 64);
    assert_eq!(DEFAULT_EVENT_QUEUE_BYTES, 8 << 20);
    let d = DirectLimits::new(1000);
    assert_eq!(
        (d.max_per_member, d.max_connections),
        (DEFAULT_MAX_PER_MEMBER, DEFAULT_MAX_CONNECTIONS)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_gets_at_most_the_per_member_bound() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        // Alice keeps the default bounds; Bob ignores his.
        let mut alice = Node::start(&f.alice, &trust).await;
        let mut bob = Node::with_limits(&f.bob, &trust, config(), &unbounded()).await;
        let mut carol = Node::start(&f.carol, &trust).await;
        let mut ids = Vec::new();
        for _ in 0..DEFAULT_MAX_PER_MEMBER {
            ids.push(link(&mut bob, &mut alice).await);
        }
        assert_eq!(alice.direct.counted(), DEFAULT_MAX_PER_MEMBER);

        // One more from Bob is refused by Alice, and Bob is told why.
        for attempt in 0..3 {
            let err = bob
                .direct
                .open_wait(&alice.peer, vec![alice.addr], WAIT)
                .await
                .expect_err("Alice took a connection over the per-member bound");
            assert_refused_over(
                &err,
                &format!("at most {DEFAULT_MAX_PER_MEMBER} per member"),
            );
            match bob.next().await {
                DirectEvent::Failed { reason, .. } => {
                    assert!(reason.contains("too many direct connections"), "{reason}");
                }
                other => panic!("attempt {attempt}: expected Bob's Failed, got {other:?}"),
            }
        }
        assert_eq!(
            alice.direct.connections().len(),
            DEFAULT_MAX_PER_MEMBER,
            "the refused ones were never listed"
        );
        assert_eq!(alice.direct.counted(), DEFAULT_MAX_PER_MEMBER);

        // Alice's own open to Bob counts against the same bound: refused at once, hers.
        let err = alice
            .direct
            .open(&bob.peer, vec![bob.addr], WAIT)
            .expect_err("Alice opened past her per-member bound");
        match &err {
            DirectError::TooManyConnections {
                peer,
                cap: ConnectionCap::PerMember,
                limit,
                inbound: false,
            } => assert_eq!((peer, *limit), (&bob.peer, DEFAULT_MAX_PER_MEMBER)),
            other => panic!("{other:?}"),
        }
        assert_eq!(err.fault(), Fault::Caller);

        // Other members are not affected.
        link(&mut carol, &mut alice).await;

        // Closing one makes room for one.
        let (b_id, a_id) = ids[0];
        bob.direct.close(b_id).unwrap();
        bob.disconnected(b_id).await;
        alice.disconnected(a_id).await;
        link(&mut bob, &mut alice).await;
        assert_eq!(alice.direct.counted(), DEFAULT_MAX_PER_MEMBER + 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_bound_counts_every_member_and_every_direction() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        const TOTAL: usize = 4;
        let mut alice = Node::with_limits(
            &f.alice,
            &trust,
            config(),
            &DirectLimits::new(1 << 20).max_connections(TOTAL),
        )
        .await;
        let mut bob = Node::with_limits(&f.bob, &trust, config(), &unbounded()).await;
        let mut carol = Node::with_limits(&f.carol, &trust, config(), &unbounded()).await;
        for _ in 0..TOTAL - 2 {
            link(&mut bob, &mut alice).await;
        }
        link(&mut carol, &mut alice).await;
        link(&mut alice, &mut carol).await;
        assert_eq!(alice.direct.counted(), TOTAL);

        // Past it: the others' opens are refused with the reason...
        for (opener, name) in [(&mut carol, "Carol"), (&mut bob, "Bob")] {
            let err = opener
                .direct
                .open_wait(&alice.peer, vec![alice.addr], WAIT)
                .await
                .expect_err("Alice took a connection over her bound in all");
            assert_refused_over(&err, &format!("at most {TOTAL} in all"));
            assert!(
                matches!(opener.next().await, DirectEvent::Failed { .. }),
                "{name} hears of the failure"
            );
        }
        // ...and Alice's own are refused at once, the caller's mistake.
        let err = alice
            .direct
            .open(&bob.peer, vec![bob.addr], WAIT)
            .expect_err("Alice opened past her bound in all");
        assert!(
            matches!(
                err,
                DirectError::TooManyConnections {
                    cap: ConnectionCap::Total,
                    limit: TOTAL,
                    inbound: false,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.fault(), Fault::Caller);
        assert_eq!(alice.direct.counted(), TOTAL);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openings_in_progress_count_against_the_bounds() {
    bounded(async {
        let f = Fixture::new();
        let limits = DirectLimits::new(1 << 20)
            .max_connections(2)
            .max_per_member(1);
        let mut alice = Node::with_limits(&f.alice, &f.trust(), config(), &limits).await;
        // A listener that takes TCP connections and never says a word: the openings stay
        // opening until cancelled.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let to_bob = alice
            .direct
            .open(f.bob.peer(), vec![addr], 2 * TEST_BOUND)
            .unwrap();
        let err = alice
            .direct
            .open(f.bob.peer(), vec![addr], 2 * TEST_BOUND)
            .expect_err("a second opening to Bob went past the per-member bound of 1");
        assert!(
            matches!(
                err,
                DirectError::TooManyConnections {
                    cap: ConnectionCap::PerMember,
                    ..
                }
            ),
            "{err:?}"
        );
        let to_carol = alice
            .direct
            .open(f.carol.peer(), vec![addr], 2 * TEST_BOUND)
            .unwrap();
        let dave = Fixture::group_b().carol.peer().clone();
        let err = alice
            .direct
            .open_wait(&dave, vec![addr], 2 * TEST_BOUND)
            .await
            .expect_err("a third opening went past the bound of 2 in all");
        assert!(
            matches!(
                err,
                DirectError::TooManyConnections {
                    cap: ConnectionCap::Total,
                    limit: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(alice.direct.counted(), 2);
        // Cancelling frees the places.
        for id in [to_bob, to_carol] {
            alice.direct.close(id).unwrap();
            match alice.next().await {
                DirectEvent::Failed { id: i, .. } => assert!(i == to_bob || i == to_carol),
                other => panic!("expected a cancelled opening's Failed, got {other:?}"),
            }
        }
        assert_eq!(alice.direct.counted(), 0);
        let again = alice.direct.open(f.bob.peer(), vec![addr], 2 * TEST_BOUND);
        assert!(again.is_ok(), "{again:?}");
        drop(silent);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_does_not_read_bounds_the_queue_in_bytes() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        // Alice's event queue: 64 events or 1 MiB, whichever is first; messages of 256 KiB.
        const QUEUE_BYTES: usize = 1 << 20;
        const MESSAGE: usize = 256 * 1024;
        let limits = DirectLimits::new(1 << 20).event_queue(64, QUEUE_BYTES);
        let mut alice = Node::with_limits(&f.alice, &trust, config(), &limits).await;
        let mut bob = Node::start(&f.bob, &trust).await;
        let (a_id, b_id) = link(&mut alice, &mut bob).await;

        // Alice reads nothing; Bob sends until a send waits.
        let mut sent = 0usize;
        let mut pending = None;
        while sent < 2000 {
            let direct = bob.direct.clone();
            let data = Bytes::from(vec![sent as u8; MESSAGE]);
            let mut send = Box::pin(async move { direct.send(b_id, chat(), data).await });
            match unless_stalled(&mut send).await {
                Some(r) => {
                    r.unwrap();
                    sent += 1;
                }
                None => {
                    pending = Some(send);
                    break;
                }
            }
        }
        let pending = pending.unwrap_or_else(|| {
            panic!("Bob sent {sent} messages of {MESSAGE} bytes and none waited for Alice")
        });
        let queued = alice.events.queued_bytes();
        assert!(
            queued <= QUEUE_BYTES,
            "Alice's queue holds {queued} bytes, over its bound of {QUEUE_BYTES}"
        );
        eprintln!(
            "backpressure: Bob's send #{sent} waits; Alice's event queue holds {} events, \
             {queued} bytes (bound {QUEUE_BYTES})",
            alice.events.queued()
        );
        // Alice reads; everything arrives in order and the waiting send completes.
        let reader = async {
            for i in 0..=sent {
                let (_, data) = alice.data(a_id).await;
                assert_eq!((data.len(), data[0]), (MESSAGE, i as u8), "message {i}");
            }
        };
        let (done, ()) = tokio::join!(
            within("Bob's waiting send to resume once Alice reads", pending),
            reader
        );
        done.unwrap();
    })
    .await;
}
