//! An open group's life: connect, connect_to, wait_ready, status and its events,
//! is_connected, close, failed connections, peer time.

use std::time::{Duration, Instant};

use peergroup::{
    ErrorKind, EventFilter, EventKind, GroupEvent, GroupSpec, MemberChange, Role, Timestamp,
};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_status_and_close() {
    bounded(async {
        let alice = Peer::start("Alice").await;
        let name = alice
            .infra
            .create_group(&alice.id, &GroupSpec::new("Friends"))
            .await
            .unwrap();
        let a = alice.open(&name).await;
        assert!(!a.is_connected());
        let s = a.status();
        assert!(!s.listening && !s.has_connections, "{s:?}");
        let mut status = a.events(EventFilter::kinds([EventKind::StatusChanged]));
        a.connect().await.unwrap();
        assert!(a.is_connected());
        // The creator is ready alone.
        let ready = a.wait_ready(WAIT).await.unwrap();
        assert!(ready.listening && ready.synchronized && !ready.has_connections);
        expect(&mut status, "the creator listening", |e| match e {
            GroupEvent::StatusChanged(s) if s.listening => Some(()),
            _ => None,
        })
        .await;

        // Bob joins: both see has_connections come up.
        let bob = Peer::start("Bob").await;
        let b = invite_and_connect(&a, alice.addr(), &bob, Role::Member).await;
        let s = b.status();
        assert!(s.listening && s.has_connections && s.synchronized, "{s:?}");
        expect(&mut status, "Alice has a connection", |e| match e {
            GroupEvent::StatusChanged(s) if s.has_connections => Some(()),
            _ => None,
        })
        .await;

        // Bob closes: he is offline, Alice sees him go and loses her only connection.
        let mut members = a.events(EventFilter::kinds([EventKind::MemberChanged]));
        b.close().await.unwrap();
        assert!(!b.is_connected());
        expect(&mut members, "Bob disconnected", |e| match e {
            GroupEvent::MemberChanged {
                peer,
                change: MemberChange::Disconnected,
            } if *peer == bob.id => Some(()),
            _ => None,
        })
        .await;
        expect(&mut status, "Alice without connections", |e| match e {
            GroupEvent::StatusChanged(s) if !s.has_connections => Some(()),
            _ => None,
        })
        .await;
        // A closed group refuses work, saying it is closed.
        fn kind<T>(r: peergroup::Result<T>) -> ErrorKind {
            r.map(|_| ()).unwrap_err().kind()
        }
        assert_eq!(kind(b.records(note_type()).await), ErrorKind::Closed);
        let add = b.add_record(note_type(), "", b"late".to_vec(), HOUR).await;
        assert_eq!(kind(add), ErrorKind::Closed);
        assert_eq!(kind(b.connect().await), ErrorKind::Closed);
        // Closing it again is harmless.
        b.close().await.unwrap();
        // The closed group can be opened again; it remembers what it had, and that it has
        // synchronised: Bob may publish offline.
        let b = bob.open(&name).await;
        assert!(!b.is_connected());
        let s = b.status();
        assert!(!s.synchronized && s.ever_synchronized, "{s:?}");
        b.add_record(note_type(), "", b"written offline".to_vec(), HOUR)
            .await
            .expect("a member that synchronised once publishes offline");
        b.connect().await.unwrap();
        b.wait_ready(WAIT).await.unwrap();
        a.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_dead_address_fails_with_an_event() {
    bounded(async {
        let (_alice, a) = creator("Alice", &GroupSpec::new("Friends")).await;
        let mut failed = a.events(EventFilter::kinds([EventKind::ConnectionFailed]));
        let dead = dead_addr();
        a.connect_to(vec![dead]).await.unwrap();
        let reason = expect(&mut failed, "a failed connection", |e| match e {
            GroupEvent::ConnectionFailed { addr, reason } if *addr == Some(dead) => {
                Some(reason.clone())
            }
            _ => None,
        })
        .await;
        assert!(!reason.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_alone_is_not_ready() {
    bounded(async {
        let (alice, a) = creator("Alice", &GroupSpec::new("Friends")).await;
        let bob = Peer::start("Bob").await;
        let invitation = a
            .create_invitation(&bob.info_xml().await, Role::Member, DAY)
            .await
            .unwrap();
        let name = bob.infra.join(&bob.id, &invitation).await.unwrap();
        // Alice goes away: nobody Bob can reach.
        a.close().await.unwrap();
        alice.infra.clone().shutdown().await;
        let b = bob.open(&name).await;
        // Before the first synchronisation, publishing is refused.
        assert_eq!(
            kind_of(b.add_record(note_type(), "", b"x".to_vec(), HOUR).await),
            ErrorKind::GroupNotReady
        );
        assert_eq!(
            kind_of(
                b.add_refreshed_record(note_type(), "", b"x".to_vec(), HOUR)
                    .await
            ),
            ErrorKind::GroupNotReady
        );
        b.connect().await.unwrap();
        // Nobody to sync with: not ready (a negative check, so a short watch).
        assert_eq!(
            kind_of(b.wait_ready(QUIET).await),
            ErrorKind::ConnectionFailed
        );
        assert!(!b.status().synchronized);
        // Direct connections need a present member.
        assert_eq!(
            kind_of(b.open_direct(&alice.id).await),
            ErrorKind::ConnectionFailed
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_time_round_trips() {
    bounded(async {
        let started = Instant::now();
        let net = Net::members(&["Alice", "Bob"]).await;
        // A joiner's estimate is off by at most half the round trip of its hello and the
        // welcome, which took place while the group formed: on a quiet machine milliseconds,
        // on a busy one possibly seconds.
        let round_trip_bound = started.elapsed();
        for g in &net.groups {
            let now = Timestamp::now();
            let peer = g.to_peer_time(now).await.unwrap();
            // On one machine the group's time is the local clock, give or take.
            let skew = if peer > now {
                peer.duration_since(now)
            } else {
                now.duration_since(peer)
            };
            assert!(
                skew < Duration::from_secs(2).max(round_trip_bound),
                "skew {skew:?} (the group formed in {round_trip_bound:?})"
            );
            assert_eq!(g.from_peer_time(peer).await.unwrap(), now);
        }
    })
    .await;
}
