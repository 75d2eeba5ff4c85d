//! A peer breaking the protocol, a hello for someone else, revocation, shutting down.

use std::time::Duration;

use bytes::Bytes;
use peergroup_credential_roles::RevocationTarget;
use peergroup_direct_conn::DirectError;
use peergroup_direct_conn::wire::{self, DirectFrame, DirectHello};
use peergroup_transport::{CloseReason, Connection, Endpoint, GroupCredentials};

use crate::support::*;

/// A hand-driven opener: the transport connection and the hello, up to the welcome.
async fn raw_open(node: &Node, creds: &GroupCredentials, target: &Node) -> Connection {
    let mut conn = Endpoint::connect(target.addr, creds, &node.trust, &config())
        .await
        .unwrap_or_else(|e| panic!("{} connecting to {}: {e:?}", node.peer, target.peer));
    let hello = wire::encode_hello(&DirectHello {
        target: target.peer.clone(),
        max_data: 1 << 20,
    });
    conn.send(hello).await.unwrap();
    let welcome = within("the welcome", conn.recv()).await;
    let welcome = welcome.unwrap_or_else(|| {
        panic!(
            "waited for the welcome; the connection closed instead: {:?}",
            conn.close_reason()
        )
    });
    assert!(matches!(
        wire::decode(&welcome),
        Ok(DirectFrame::Welcome(_))
    ));
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_closes_only_that_connection() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let mut alice = Node::start(&f.alice, &trust).await;
        let mut carol = Node::start(&f.carol, &trust).await;
        let (c_id, a_from_carol) = link(&mut carol, &mut alice).await;

        // Bob, driven by hand, opens to Alice, then sends an unknown version.
        let bob = Node::start(&f.bob, &trust).await;
        let conn = raw_open(&bob, &f.bob, &alice).await;
        let a_from_bob = alice.connected(&bob.peer).await;
        conn.send(Bytes::from_static(&[wire::DIRECT_MAGIC, 9, 2, 0]))
            .await
            .unwrap();
        let reason = alice.disconnected(a_from_bob).await;
        assert!(
            reason.contains("protocol") && reason.contains("version 9"),
            "{reason}"
        );
        match within("Bob's connection to close", conn.closed()).await {
            CloseReason::Peer(r) => assert!(r.contains("version 9"), "{r}"),
            other => panic!("{other:?}"),
        }

        // Carol's connection to Alice is unaffected.
        carol
            .direct
            .send(c_id, chat(), Bytes::from_static(b"still here"))
            .await
            .unwrap();
        assert_eq!(
            alice.data(a_from_carol).await,
            (chat(), Bytes::from_static(b"still here"))
        );
        assert_eq!(alice.direct.connections().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_out_of_place_and_oversized_data_close_the_connection() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let mut alice = Node::with(&f.alice, &trust, config(), 100).await;
        let bob = Node::start(&f.bob, &trust).await;
        let bad = [
            (
                wire::encode_hello(&DirectHello {
                    target: alice.peer.clone(),
                    max_data: 5,
                }),
                "second hello",
            ),
            (
                wire::encode_data(chat(), &[0; 101]),
                "exceed the announced limit of 100",
            ),
            (
                Bytes::from_static(&[1, 0, 0]),
                "not a direct-connection frame",
            ),
        ];
        for (frame, expected) in bad {
            let conn = raw_open(&bob, &f.bob, &alice).await;
            let id = alice.connected(&bob.peer).await;
            conn.send(frame).await.unwrap();
            let reason = alice.disconnected(id).await;
            assert!(reason.contains(expected), "{reason}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_for_another_member_or_garbage_is_refused() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust();
        let mut alice = Node::start(&f.alice, &trust).await;
        let frames = [
            wire::encode_hello(&DirectHello {
                target: f.carol.peer().clone(),
                max_data: 5,
            }),
            Bytes::from_static(&[wire::DIRECT_MAGIC, wire::DIRECT_VERSION, 7]),
        ];
        for (frame, expected) in frames.into_iter().zip(["hello is for", "undecodable"]) {
            let mut conn = Endpoint::connect(alice.addr, &f.bob, &trust, &config())
                .await
                .unwrap_or_else(|e| panic!("Bob connecting to Alice: {e:?}"));
            conn.send(frame).await.unwrap();
            let answer = within(
                format!("Alice to hang up on a hello that should get {expected:?}"),
                conn.recv(),
            )
            .await;
            assert!(answer.is_none(), "Alice answered {answer:?}");
            match within("the connection to close", conn.closed()).await {
                CloseReason::Peer(r) => assert!(r.contains(expected), "{r}"),
                other => panic!("{other:?}"),
            }
        }
        // A check that nothing happens, after both refusals: a moment for a wrong event to
        // show up; load makes it pass more easily.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let event = alice.events.try_recv();
        assert!(event.is_none(), "no event for a refused hello: {event:?}");
        assert!(alice.direct.connections().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_refuses_a_connection_of_another_group() {
    bounded(async {
        let f = Fixture::new();
        let other = Fixture::group_b();
        let trust = f.trust();
        let alice = Node::start(&f.alice, &trust).await;
        // A connection of group B handed to group A's direct connections.
        let b_trust = other.trust();
        let b_ep = Endpoint::bind(&["127.0.0.1:0".parse().unwrap()], config())
            .await
            .unwrap();
        b_ep.add_group(other.alice.clone(), b_trust.clone())
            .unwrap();
        let conn = Endpoint::connect(b_ep.local_addrs()[0], &other.bob, &b_trust, &config())
            .await
            .unwrap_or_else(|e| panic!("Bob of group B connecting to Alice of group B: {e:?}"));
        let err = alice
            .direct
            .accept(conn, &[wire::DIRECT_MAGIC])
            .unwrap_err();
        assert!(matches!(err, DirectError::WrongGroup { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_peer_disconnects_it() {
    bounded(async {
        let f = Fixture::new();
        let (mut alice, mut bob, a_id, b_id) = pair(&f).await;
        // The two nodes share one trust, like two groups fed by one record database.
        alice
            .trust
            .revoke(RevocationTarget::Peer(bob.peer.clone()), t0());
        let reason = alice.disconnected(a_id).await;
        assert!(reason.contains("revoked"), "{reason}");
        let reason = bob.disconnected(b_id).await;
        assert!(reason.contains("revoked"), "{reason}");
        assert!(alice.direct.connections().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_direct_connections_closes_them() {
    bounded(async {
        let f = Fixture::new();
        let (alice, mut bob, _, b_id) = pair(&f).await;
        drop(alice);
        let reason = bob.disconnected(b_id).await;
        assert!(reason.contains("closed by the peer"), "{reason}");
        match bob.direct.send(b_id, chat(), Bytes::new()).await {
            Err(DirectError::Closed { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(bob.events.try_recv().is_none());
        assert!(bob.direct.connections().is_empty());
    })
    .await;
}
