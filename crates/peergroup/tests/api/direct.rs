//! Direct connections: open (at once or waiting), data both ways with type filters, close,
//! listings, failures.

use bytes::Bytes;
use peergroup::{
    ConnectionChange, ConnectionId, DataType, ErrorKind, EventFilter, EventKind, GroupEvent,
    MAX_DATA, PeerName,
};

use crate::support::*;

fn whisper() -> DataType {
    "{f12dc4c7-0857-4ca0-93fc-b1bb19a3d8c2}".parse().unwrap()
}

fn file_chunk() -> DataType {
    "6c1f8c53-2b9d-4f3e-8a51-7d2e4b6c9a10".parse().unwrap()
}

/// The id of the next direct connection from `from` that comes up on `stream`.
async fn connected_from(stream: &mut peergroup::EventStream, from: &PeerName) -> ConnectionId {
    expect(stream, "a direct connection", |e| match e {
        GroupEvent::DirectConnection {
            id,
            peer: Some(p),
            change: ConnectionChange::Connected,
            ..
        } if p == from => Some(*id),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_data_both_ways_filtered_by_type() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob", "Carol"]).await;
        let (a, b, c) = (&net.groups[0], &net.groups[1], &net.groups[2]);
        let (alice, bob) = (&net.peers[0], &net.peers[1]);
        let mut bob_conns = b.events(EventFilter::kinds([EventKind::DirectConnection]));
        let mut bob_whispers =
            b.events(EventFilter::kinds([EventKind::IncomingData]).data_types([whisper()]));
        let mut alice_data = a.events(EventFilter::kinds([EventKind::IncomingData]));
        let mut carol_data = c.events(EventFilter::kinds([
            EventKind::IncomingData,
            EventKind::DirectConnection,
        ]));

        let at_alice = a.open_direct_wait(&bob.id).await.unwrap();
        let at_bob = connected_from(&mut bob_conns, &alice.id).await;

        // Alice → Bob; Bob's stream only takes whispers.
        a.send_data(at_alice, file_chunk(), Bytes::from_static(b"chunk"))
            .await
            .unwrap();
        a.send_data(at_alice, whisper(), Bytes::from_static(b"psst, Bob"))
            .await
            .unwrap();
        let (id, from, data) = expect(&mut bob_whispers, "the whisper", |e| match e {
            GroupEvent::IncomingData {
                id,
                peer,
                data_type,
                data,
            } => {
                assert_eq!(
                    *data_type,
                    whisper(),
                    "the filter lets only whispers through"
                );
                Some((*id, peer.clone(), data.clone()))
            }
            _ => None,
        })
        .await;
        assert_eq!(
            (id, &from, &data[..]),
            (at_bob, &alice.id, &b"psst, Bob"[..])
        );

        // Bob → Alice on the same connection.
        b.send_data(at_bob, file_chunk(), Bytes::from_static(b"hi back"))
            .await
            .unwrap();
        let got = expect(&mut alice_data, "Bob's answer", |e| match e {
            GroupEvent::IncomingData {
                id,
                peer,
                data_type,
                data,
            } if *id == at_alice => Some((peer.clone(), *data_type, data.clone())),
            _ => None,
        })
        .await;
        assert_eq!(
            got,
            (bob.id.clone(), file_chunk(), Bytes::from_static(b"hi back"))
        );

        // The listings.
        let direct = a.direct_connections();
        assert_eq!(direct.len(), 1);
        assert!(direct[0].direct && direct[0].id == at_alice && direct[0].peer == bob.id);
        assert_eq!(direct[0].addr, bob.addr());
        let direct = b.direct_connections();
        assert_eq!(direct.len(), 1);
        assert!(direct[0].direct && direct[0].id == at_bob && direct[0].peer == alice.id);
        let neighbors = a.neighbor_connections().await.unwrap();
        assert!(!neighbors.is_empty());
        assert!(neighbors.iter().all(|n| !n.direct && n.peer != alice.id));
        let all = a.connections().await.unwrap();
        assert_eq!(all.len(), neighbors.len() + 1);
        assert_eq!(all.iter().filter(|c| c.direct).count(), 1);

        // Too much at once is refused.
        assert_eq!(
            kind_of(
                a.send_data(at_alice, whisper(), Bytes::from(vec![0u8; MAX_DATA + 1]))
                    .await
            ),
            ErrorKind::InvalidArgument
        );

        // Alice closes: Bob hears, both listings empty, the id is dead.
        a.close_direct(at_alice).await.unwrap();
        expect(&mut bob_conns, "the close", |e| match e {
            GroupEvent::DirectConnection {
                id,
                change: ConnectionChange::Disconnected(_),
                ..
            } if *id == at_bob => Some(()),
            _ => None,
        })
        .await;
        assert!(a.direct_connections().is_empty());
        until("Bob's listing is empty", async || {
            match b.direct_connections().len() {
                0 => Ok(()),
                n => Err(format!("{n} direct connection(s) listed")),
            }
        })
        .await;
        assert_eq!(
            kind_of(
                a.send_data(at_alice, whisper(), Bytes::from_static(b"late"))
                    .await
            ),
            ErrorKind::Closed
        );
        assert_eq!(kind_of(a.close_direct(at_alice).await), ErrorKind::Closed);
        assert_eq!(
            kind_of(a.close_direct(ConnectionId(9_999)).await),
            ErrorKind::InvalidArgument
        );

        // Carol saw none of it.
        expect_none(&mut carol_data, "direct traffic at Carol", |_| true).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_direct_returns_at_once_and_reports_by_event() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob"]).await;
        let (a, b) = (&net.groups[0], &net.groups[1]);
        let (alice, bob) = (&net.peers[0], &net.peers[1]);
        let mut at_a = a.events(EventFilter::kinds([EventKind::DirectConnection]));
        let mut at_b = b.events(EventFilter::kinds([EventKind::DirectConnection]));
        let id = a.open_direct(&bob.id).await.unwrap();
        let (peer, addr) = expect(&mut at_a, "the connection up", |e| match e {
            GroupEvent::DirectConnection {
                id: i,
                peer,
                addr,
                change: ConnectionChange::Connected,
            } if *i == id => Some((peer.clone(), *addr)),
            _ => None,
        })
        .await;
        assert_eq!(peer.as_ref(), Some(&bob.id));
        assert_eq!(addr, Some(bob.addr()));
        let at_bob = connected_from(&mut at_b, &alice.id).await;
        // Bob may close it from his side too.
        b.close_direct(at_bob).await.unwrap();
        expect(&mut at_a, "the close at Alice", |e| match e {
            GroupEvent::DirectConnection {
                id: i,
                change: ConnectionChange::Disconnected(_),
                ..
            } if *i == id => Some(()),
            _ => None,
        })
        .await;
        // Nobody to connect to: ourselves, or a stranger.
        assert_eq!(
            kind_of(a.open_direct(&alice.id).await),
            ErrorKind::ConnectionFailed
        );
        let stranger = Peer::start("Stranger").await;
        assert_eq!(
            kind_of(a.open_direct_wait(&stranger.id).await),
            ErrorKind::ConnectionFailed
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_connection_to_a_crashed_member_fails() {
    bounded(async {
        let (alice, a) = creator("Alice", &peergroup::GroupSpec::new("Friends")).await;
        let mut crash = Crashable::join(&a, alice.addr()).await;
        until("Alice sees the member present", async || {
            a.members(true)
                .await
                .unwrap()
                .iter()
                .any(|m| m.peer == crash.id)
        })
        .await;
        let mut links = a.events(EventFilter::kinds([
            EventKind::NeighborConnection,
            EventKind::DirectConnection,
        ]));
        crash.crash();
        expect(&mut links, "the neighbor gone", |e| match e {
            GroupEvent::NeighborConnection {
                change: ConnectionChange::Disconnected(_),
                ..
            } => Some(()),
            _ => None,
        })
        .await;
        // Its neighbor saw its connection break without a goodbye: it is gone at once (its
        // presence record, which outlives it, no longer counts), and a direct connection to
        // it fails at once, saying why.
        assert!(
            !a.members(true)
                .await
                .unwrap()
                .iter()
                .any(|m| m.peer == crash.id)
        );
        let err = a.open_direct(&crash.id).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionFailed);
        assert!(err.to_string().contains("not present"), "{err}");
        assert_eq!(
            kind_of(a.open_direct_wait(&crash.id).await),
            ErrorKind::ConnectionFailed
        );
        assert!(a.direct_connections().is_empty());
        let _ = crash.addr;
    })
    .await;
}
