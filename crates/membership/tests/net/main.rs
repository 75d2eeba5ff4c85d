//! Real members over real TLS on loopback: sync, flooding, revocation, processes.

mod nat;
mod netns;
mod processes;
mod support;

use std::time::Duration;

use peergroup_credential_roles::RevocationTarget;
use peergroup_membership::{Event, MemberChange};
use peergroup_record_db::NewRecord;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_sync_ten_thousand_records() {
    let f = Fixture::new(1, 2);
    let dir = tempfile::tempdir().unwrap();
    let records = f.records(0, 10_000, 200);
    let a = start(&f, 0, &dir.path().join("a.sqlite"), records, &[]).await;
    assert!(a.handle.status().listening, "the creator listens at once");
    let started = std::time::Instant::now();
    let b = start(&f, 1, &dir.path().join("b.sqlite"), Vec::new(), &[a.addr]).await;
    // Watch the sync's progress while it runs: what a progress bar would show.
    let watch = b.handle.clone();
    let watcher = tokio::spawn(async move {
        let mut most = peergroup_membership::SyncProgress::default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while tokio::time::Instant::now() < deadline {
            let p = watch.sync_progress().await.unwrap();
            assert!(p.received <= p.expected, "{p:?}");
            most.expected = most.expected.max(p.expected);
            most.received = most.received.max(p.received);
            // A first session may end after the few security records; wait for the big one.
            if p.running == 0 && most.received > 0 && most.expected >= 10_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        most
    });
    let took = converge(&[&a.handle, &b.handle], 10_000, Duration::from_secs(120)).await;
    let most = watcher.await.unwrap();
    assert!(
        most.expected >= 10_000 && most.received > 0,
        "progress seen: {most:?}"
    );
    eprintln!(
        "a fresh member synced 10,000 records in {:?} (since start {:?})",
        took,
        started.elapsed()
    );
    assert!(b.handle.status().synchronized && b.handle.status().listening);
    // Each sees the other present.
    let members = b.handle.members(true).await.unwrap();
    assert!(
        members
            .iter()
            .any(|m| m.peer == *f.chains[0].leaf().subject_peer()),
        "{members:?}"
    );
    assert!(members[0].local, "the local member comes first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_flood_and_members_come_and_go() {
    let f = Fixture::new(2, 3);
    let dir = tempfile::tempdir().unwrap();
    let a = start(&f, 0, &dir.path().join("a.sqlite"), Vec::new(), &[]).await;
    let b = start(&f, 1, &dir.path().join("b.sqlite"), Vec::new(), &[a.addr]).await;
    let c = start(&f, 2, &dir.path().join("c.sqlite"), Vec::new(), &[b.addr]).await;
    converge(&[&a.handle, &b.handle, &c.handle], 3, WAIT).await;
    let mut events = a.handle.events();
    let new = NewRecord {
        record_type: app_type(),
        attributes: String::new(),
        payload: b"hello from c".to_vec(),
        expires: peergroup_identity::Timestamp::now().saturating_add(Duration::from_secs(3600)),
        autorefresh: false,
    };
    let r = c.handle.create_record(new).await.unwrap();
    let mut seen = Vec::new();
    let got = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(Event::Record(change)) if change.record.id == r.id => return change,
                other => seen.push(format!("{other:?}")),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the record did not reach a within {WAIT:?}; a saw {seen:#?}"));
    assert_eq!(got.record.payload, b"hello from c");
    // Revoking c closes its connections and everyone sees it leave.
    let mut b_events = b.handle.events();
    a.handle
        .revoke(
            RevocationTarget::Peer(f.chains[2].leaf().subject_peer().clone()),
            "test".into(),
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            match b_events.recv().await {
                Ok(Event::Member {
                    peer,
                    change: MemberChange::Left,
                }) if peer == *f.chains[2].leaf().subject_peer() => return,
                Ok(Event::Member { peer, change }) => seen.push(format!("{peer}: {change:?}")),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("b did not see c leave within {WAIT:?}; its member events: {seen:#?}")
    });
    let mut left = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            left = c.handle.neighbors().await.unwrap();
            if left.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the revoked member kept its connections for {WAIT:?}: {left:?}"));
    // c's new records are refused everywhere.
    let late = NewRecord {
        record_type: app_type(),
        attributes: String::new(),
        payload: b"after revocation".to_vec(),
        expires: peergroup_identity::Timestamp::now().saturating_add(Duration::from_secs(3600)),
        autorefresh: false,
    };
    let _ = c.handle.create_record(late).await;
    // Nothing must arrive (c has no connection left): a second is ample, and load only makes
    // this pass more easily.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let on_b = b.handle.records(app_type()).await.unwrap();
    assert_eq!(on_b.len(), 1, "only the record made before the revocation");
    a.handle.close().await.unwrap();
    drop((a.endpoint, b.endpoint, c.endpoint));
}

/// Members a and c linked only to b (they want one neighbor and never add one at random),
/// and how long that took to form.
async fn apart_but_for_b(f: &Fixture, dir: &std::path::Path) -> (Node, Node, Node, Duration) {
    // a and c want one neighbor and never add one at random: they stay apart.
    let quiet = peergroup_membership::MeshConfig {
        min_neighbors: 1,
        ideal_neighbors: 1,
        max_neighbors: 3,
        shuffle_probability: 0.0,
        maintenance_interval: Duration::from_secs(5),
        ..peergroup_membership::MeshConfig::default()
    };
    let loopback: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let b = start(f, 0, &dir.join("b.sqlite"), Vec::new(), &[]).await;
    let a = start_with(
        f,
        1,
        &dir.join("a.sqlite"),
        Vec::new(),
        &[b.addr],
        loopback,
        quiet.clone(),
    )
    .await;
    let c = start_with(
        f,
        2,
        &dir.join("c.sqlite"),
        Vec::new(),
        &[b.addr],
        loopback,
        quiet,
    )
    .await;
    // Both linked to b.
    let started = std::time::Instant::now();
    tokio::time::timeout(WAIT, async {
        while b.handle.neighbors().await.unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a and c did not both link to b within {WAIT:?}"));
    (a, b, c, started.elapsed())
}

/// Two members linked only to a common neighbor punch a hole through it: the candidates go
/// through the neighbor, both dial each other over QUIC at once, and they become neighbors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hole_punch_through_a_common_neighbor_links_two_members() {
    let f = Fixture::new(5, 3);
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, formed) = apart_but_for_b(&f, dir.path()).await;
    let c_peer = f.chains[2].leaf().subject_peer().clone();
    let linked = |neighbors: &[(
        peergroup_membership::ConnId,
        peergroup_identity::PeerName,
        std::net::SocketAddr,
    )]| { neighbors.iter().any(|(_, p, _)| *p == c_peer) };
    assert!(
        !linked(&a.handle.neighbors().await.unwrap()),
        "a and c met before the punch"
    );

    let punched = std::time::Instant::now();
    a.handle.punch(c_peer.clone()).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while !linked(&a.handle.neighbors().await.unwrap()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a and c were not neighbors {WAIT:?} after the punch"));
    eprintln!(
        "both linked to b in {formed:?}; a and c neighbors {:?} after the punch",
        punched.elapsed()
    );
    assert_eq!(a.handle.stats().await.unwrap().punches, 1, "a dialed");
    assert_eq!(c.handle.stats().await.unwrap().punches, 1, "c dialed");
    assert!(
        b.handle.stats().await.unwrap().punches_relayed >= 3,
        "through b"
    );
}

/// Two members linked only to a common neighbor get a link it relays: the member TLS
/// handshake runs inside the relayed stream, records flow over it, and the relay carried
/// bytes it cannot read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_common_neighbor_relays_a_link_between_two_members() {
    let f = Fixture::new(5, 3);
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, _) = apart_but_for_b(&f, dir.path()).await;
    let c_peer = f.chains[2].leaf().subject_peer().clone();
    let relayed_to_c = |neighbors: &[(
        peergroup_membership::ConnId,
        peergroup_identity::PeerName,
        std::net::SocketAddr,
    )]| {
        neighbors
            .iter()
            .any(|(_, p, addr)| *p == c_peer && *addr == b.addr)
    };
    a.handle.relay(c_peer.clone()).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while !relayed_to_c(&a.handle.neighbors().await.unwrap()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a and c had no relayed link {WAIT:?} after asking"));
    let relay = b.handle.stats().await.unwrap();
    assert_eq!(relay.relays_served, 1);
    assert!(
        relay.relayed_bytes > 1000,
        "the handshake and the link's sync went through b: {} bytes",
        relay.relayed_bytes
    );
    assert_eq!(a.handle.stats().await.unwrap().relayed_streams, 1);
    assert_eq!(c.handle.stats().await.unwrap().relayed_streams, 1);
    // Records made at a reach c (over the relayed link or through b: both are links now).
    let mut events = c.handle.events();
    let new = NewRecord {
        record_type: app_type(),
        attributes: String::new(),
        payload: b"through the relay".to_vec(),
        expires: peergroup_identity::Timestamp::now().saturating_add(Duration::from_secs(3600)),
        autorefresh: false,
    };
    let r = a.handle.create_record(new).await.unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::Record(change)) = events.recv().await
                && change.record.id == r.id
            {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a's record did not reach c within {WAIT:?}"));
    // The relay ends: so does the relayed link, at both ends.
    b.handle.close().await.unwrap();
    tokio::time::timeout(WAIT, async {
        while relayed_to_c(&a.handle.neighbors().await.unwrap()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the relayed link outlived its relay by {WAIT:?}"));
}
