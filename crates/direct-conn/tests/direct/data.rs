//! Data: both ways with its type, a thousand in order, the size limit, unknown and closed ids,
//! backpressure, closing.

use std::time::Duration;

use bytes::Bytes;
use peergroup_direct_conn::{DirectConnId, DirectError, DirectEvent, Fault};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_flows_both_ways_with_its_type() {
    bounded(async {
        let f = Fixture::new();
        let (mut alice, mut bob, a_id, b_id) = pair(&f).await;
        let big = Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        alice
            .direct
            .send(a_id, chat(), Bytes::from_static(b"hi bob"))
            .await
            .unwrap();
        alice.direct.send(a_id, file(), Bytes::new()).await.unwrap();
        bob.direct.send(b_id, file(), big.clone()).await.unwrap();

        assert_eq!(
            bob.data(b_id).await,
            (chat(), Bytes::from_static(b"hi bob"))
        );
        assert_eq!(bob.data(b_id).await, (file(), Bytes::new()));
        assert_eq!(alice.data(a_id).await, (file(), big));
        match bob
            .direct
            .send(b_id, chat(), Bytes::from_static(b"hi"))
            .await
        {
            Ok(()) => {}
            Err(e) => panic!("{e}"),
        }
        match alice.next().await {
            DirectEvent::Data { id, peer, .. } => assert_eq!((id, peer), (a_id, bob.peer.clone())),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_arrive_in_order() {
    bounded(async {
        let f = Fixture::new();
        let (alice, mut bob, a_id, b_id) = pair(&f).await;
        let direct = alice.direct.clone();
        let sender = tokio::spawn(async move {
            for i in 0..1000u32 {
                direct
                    .send(a_id, chat(), Bytes::from(i.to_be_bytes().to_vec()))
                    .await
                    .unwrap();
            }
        });
        for i in 0..1000u32 {
            let (t, data) = bob.data(b_id).await;
            assert_eq!(t, chat());
            assert_eq!(&data[..], &i.to_be_bytes(), "message {i} out of order");
        }
        sender.await.unwrap();
        drop(alice);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_over_the_limit_is_refused_both_ways() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        // Alice takes at most 1,000 bytes; Bob a mebibyte. Each learns the other's limit.
        let mut alice = Node::with(&f.alice, &trust, config(), 1000).await;
        let mut bob = Node::start(&f.bob, &trust).await;
        let (a_id, b_id) = link(&mut alice, &mut bob).await;
        assert_eq!(alice.direct.max_data(), 1000);

        for (node, id) in [(&alice, a_id), (&bob, b_id)] {
            let err = node
                .direct
                .send(id, chat(), Bytes::from(vec![0; 1001]))
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    DirectError::TooLarge {
                        len: 1001,
                        max: 1000
                    }
                ),
                "{err:?}"
            );
            assert_eq!(err.fault(), Fault::Caller);
            node.direct
                .send(id, chat(), Bytes::from(vec![1; 1000]))
                .await
                .unwrap();
        }
        assert_eq!(bob.data(b_id).await.1.len(), 1000);
        assert_eq!(alice.data(a_id).await.1.len(), 1000);
        // Refusing did not close anything.
        assert_eq!(alice.direct.connections().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_closed_ids_are_refused() {
    bounded(async {
        let f = Fixture::new();
        let (mut alice, mut bob, a_id, b_id) = pair(&f).await;
        let err = alice
            .direct
            .send(DirectConnId(999), chat(), Bytes::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DirectError::UnknownConnection(DirectConnId(999))),
            "{err:?}"
        );
        assert_eq!(err.fault(), Fault::Caller);
        assert!(matches!(
            alice.direct.close(DirectConnId(999)),
            Err(DirectError::UnknownConnection(_))
        ));

        alice.direct.close(a_id).unwrap();
        let err = alice
            .direct
            .send(a_id, chat(), Bytes::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DirectError::Closed { id, .. } if id == a_id),
            "{err:?}"
        );
        assert_eq!(err.fault(), Fault::Closed);
        alice.disconnected(a_id).await;
        bob.disconnected(b_id).await;
        let err = bob
            .direct
            .send(b_id, chat(), Bytes::new())
            .await
            .unwrap_err();
        assert!(matches!(err, DirectError::Closed { .. }), "{err:?}");
        assert!(matches!(
            alice.direct.close(a_id),
            Err(DirectError::Closed { .. })
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reports_disconnected_on_both_sides() {
    bounded(async {
        let f = Fixture::new();
        let (mut alice, mut bob, a_id, b_id) = pair(&f).await;
        alice
            .direct
            .send(a_id, chat(), Bytes::from_static(b"bye"))
            .await
            .unwrap();
        alice.direct.close(a_id).unwrap();
        // What was sent before closing still arrives, then the goodbye.
        assert_eq!(bob.data(b_id).await.1, Bytes::from_static(b"bye"));
        let reason = bob.disconnected(b_id).await;
        assert!(reason.contains("closed by the peer"), "{reason}");
        let reason = alice.disconnected(a_id).await;
        assert!(reason.contains("closed locally"), "{reason}");
        assert!(alice.direct.connections().is_empty());
        assert!(bob.direct.connections().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_all_closes_every_connection() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let mut alice = Node::start(&f.alice, &trust).await;
        let mut bob = Node::start(&f.bob, &trust).await;
        let mut carol = Node::start(&f.carol, &trust).await;
        let (_, b_id) = link(&mut alice, &mut bob).await;
        let (c_id, _) = link(&mut carol, &mut alice).await;
        assert_eq!(alice.direct.connections().len(), 2);
        alice.direct.close_all();
        assert!(alice.direct.connections().is_empty());
        bob.disconnected(b_id).await;
        carol.disconnected(c_id).await;
        for _ in 0..2 {
            assert!(matches!(
                alice.next().await,
                DirectEvent::Disconnected { .. }
            ));
        }
        // Still usable afterwards.
        link(&mut alice, &mut bob).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_does_not_read_makes_the_sender_wait() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let mut small = config();
        small.send_queue = 2;
        small.recv_queue = 2;
        let mut alice = Node::with(&f.alice, &trust, small.clone(), 1 << 20).await;
        let mut bob = Node::with(&f.bob, &trust, small, 1 << 20).await;
        let (a_id, b_id) = link(&mut alice, &mut bob).await;

        // Bob reads nothing. Alice sends 256 KiB messages until one waits.
        let message = |i: u32| {
            let mut m = vec![0u8; 256 * 1024];
            m[..4].copy_from_slice(&i.to_be_bytes());
            Bytes::from(m)
        };
        // A send that stalls (see `unless_stalled`) is waiting for the receiver.
        let mut sent = 0u32;
        let mut pending = None;
        while sent < 1000 {
            let direct = alice.direct.clone();
            let data = message(sent);
            let mut send = Box::pin(async move { direct.send(a_id, chat(), data).await });
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
        let mut pending = pending.expect("send never waited for the receiver");
        assert!(sent > 2, "only {sent} sent before waiting");
        // Still waiting a while later: nothing gave way.
        let gave_way = tokio::time::timeout(Duration::from_millis(500), &mut pending).await;
        assert!(
            gave_way.is_err(),
            "the waiting send completed with Bob reading nothing: {gave_way:?}"
        );

        // Bob reads; the waiting send completes and everything arrives, in order.
        let reader = async {
            for i in 0..=sent {
                let (_, data) = bob.data(b_id).await;
                assert_eq!(&data[..4], &i.to_be_bytes());
            }
        };
        let (done, ()) = tokio::join!(
            within("the waiting send to resume once Bob reads", pending),
            reader
        );
        done.unwrap();
        assert_eq!(alice.direct.connections().len(), 1);
    })
    .await;
}
