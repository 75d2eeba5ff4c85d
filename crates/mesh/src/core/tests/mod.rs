//! Unit tests of the core, driven by [`harness::Net`]: a few cores wired to each other on a
//! virtual clock, every message encoded and decoded as on the wire.

pub(crate) mod harness;
mod presence;
mod protocol;
mod punch;
mod relay;

use std::time::Duration;

use harness::Net;

use super::{Event, MemberChange};
use crate::message::MeshMessage;

#[test]
fn two_members_meet_and_see_each_other_present() {
    let mut net = Net::new(2);
    net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    for (me, other) in [(0, 1), (1, 0)] {
        let members = net.core(me).members(true);
        assert!(
            members.iter().any(|m| m.peer == net.peer(other)),
            "node {me} should see node {other} present; it lists {members:?}"
        );
    }
}

/// A member leaving pushes its presence withdrawal over every link, lazy ones too: after
/// its goodbye nobody can pull the withdrawal from it, so an `IHave` would leave the others
/// showing it present until the presence expired.
#[test]
fn a_leaving_member_pushes_its_withdrawal_over_lazy_links() {
    let mut net = Net::new(2);
    let (_, c1) = net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    assert!(
        net.core(0)
            .members(true)
            .iter()
            .any(|m| m.peer == net.peer(1))
    );
    // Node 0 has pruned the link: node 1's side is lazy and would only announce.
    net.deliver(1, c1, MeshMessage::Prune);
    assert!(
        !net.core(1).broadcast.is_eager(c1),
        "the link should be lazy"
    );
    net.events(0);
    net.act(1, |core, now| core.close(now)).unwrap();
    net.run_for(Duration::from_secs(2));
    let events = net.events(0);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Member { peer, change: MemberChange::Disconnected } if *peer == net.peer(1)
        )),
        "node 0 should see node 1 go offline at once; it saw {events:#?}"
    );
    assert!(
        !net.core(0)
            .members(true)
            .iter()
            .any(|m| m.peer == net.peer(1)),
        "node 1 should no longer be listed present"
    );
}

/// A neighbor announcing endless made-up keys makes the node wait for at most its share, and
/// the node forgets them once they cannot be had.
#[test]
fn an_ihave_flood_is_bounded_and_forgotten() {
    let mut net = Net::new(2);
    let (c0, _) = net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    for round in 0..5u64 {
        let keys: Vec<u64> = (0..crate::message::MAX_KEYS as u64)
            .map(|k| (round << 32) | k | (1 << 63))
            .collect();
        net.deliver(0, c0, MeshMessage::IHave(keys));
        assert!(
            net.core(0).broadcast.missing.on_link(c0) <= super::MAX_PENDING_PER_LINK,
            "round {round}: {} keys waiting on the link",
            net.core(0).broadcast.missing.on_link(c0)
        );
    }
    assert!(net.core(0).stats().announcements_ignored > 0);
    // The announcer never delivers: after the graft rounds the keys are given up.
    net.run_for(Duration::from_secs(10));
    assert_eq!(net.core(0).broadcast.missing.on_link(c0), 0);
    assert_eq!(net.core(0).broadcast.missing.next_deadline(), None);
}

/// A member may hold only a few links to a node, in any phase.
#[test]
fn links_per_member_are_capped() {
    let mut net = Net::new(2);
    let now = net.now();
    let peer = net.peer(1);
    let chain = net.core(1).me.chain.clone();
    for k in 0..20u64 {
        net.act(0, |core, _| {
            core.handle_connected(
                super::ConnId(1000 + k),
                super::PeerInfo {
                    peer: peer.clone(),
                    addr: "10.9.9.9:1".parse().unwrap(),
                    outbound: false,
                    chain: Some(chain.clone()),
                    udp: false,
                    relayed: false,
                },
                now,
            )
        });
    }
    let held = net
        .core(0)
        .neighbors
        .iter()
        .filter(|(_, l)| l.info.peer == peer)
        .count();
    assert_eq!(held, super::MAX_LINKS_PER_MEMBER);
    assert_eq!(
        net.core(0).stats().links_refused,
        20 - super::MAX_LINKS_PER_MEMBER as u64
    );
}

/// A neighbor may start sync sessions only at a bounded rate (each costs a key snapshot).
#[test]
fn sync_sessions_per_link_are_rate_limited() {
    let mut net = Net::new(2);
    let (_, c1) = net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    // Node 1 accepted the link: node 0 dialed, so node 0 is the one that may start sessions.
    let before = net.core(1).stats().syncs_refused;
    let attempts = 3 * super::SYNC_SESSION_BURST as u64;
    for k in 0..attempts {
        let mut session = peergroup_record_db::sync::SyncSession::initiator();
        let message = session.poll_transmit(net.core(0).db()).unwrap().unwrap();
        net.deliver(
            1,
            c1,
            MeshMessage::Sync {
                session: 1_000 + k as u32,
                message,
            },
        );
    }
    let refused = net.core(1).stats().syncs_refused - before;
    assert!(
        refused >= attempts - u64::from(super::SYNC_SESSION_BURST),
        "only {refused} of {attempts} back-to-back sessions refused"
    );
    // Later, at the allowed rate, a new session is taken again.
    net.run_for(super::SYNC_SESSION_INTERVAL * 2);
    let mut session = peergroup_record_db::sync::SyncSession::initiator();
    let message = session.poll_transmit(net.core(0).db()).unwrap().unwrap();
    let refused_before = net.core(1).stats().syncs_refused;
    net.deliver(
        1,
        c1,
        MeshMessage::Sync {
            session: 5_000,
            message,
        },
    );
    assert_eq!(net.core(1).stats().syncs_refused, refused_before);
}

/// Rights end on time: the link to a member closes when its certificate expires, and
/// nothing is sent to it after.
#[test]
fn a_link_closes_when_the_members_certificate_expires() {
    let lifetime = Duration::from_secs(20);
    let mut net = Net::with_lifetimes(2, |i| {
        if i == 1 {
            lifetime
        } else {
            Duration::from_secs(365 * 86_400)
        }
    });
    let (c0, _) = net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    assert!(net.core(0).neighbors.contains(c0));
    net.events(0);
    net.run_for(Duration::from_secs(19));
    assert!(
        !net.core(0).neighbors.contains(c0),
        "the link outlived the certificate"
    );
    let events = net.events(0);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Neighbor {
                conn,
                change: super::NeighborChange::Disconnected(super::LinkEnd::CertificateExpired),
                ..
            } if *conn == c0
        )),
        "{events:#?}"
    );
    // Whatever node 0 publishes now does not go to node 1.
    net.sent(0);
    let now = net.now();
    net.act(0, |core, _| {
        core.create_record(
            peergroup_record_db::NewRecord {
                record_type: "7e57da7a-0000-4000-8000-000000000009".parse().unwrap(),
                attributes: String::new(),
                payload: b"after the expiry".to_vec(),
                expires: now.wall.saturating_add(Duration::from_secs(3600)),
                autorefresh: false,
            },
            now,
        )
        .unwrap()
    });
    assert!(net.sent(0).iter().all(|(c, _)| *c != c0));
    // Its presence stopped being refreshed at its certificate's end, without errors.
    assert!(net.timer_errors.is_empty(), "{:?}", net.timer_errors);
}

/// The record database and the transport agree on what a frame carries: the largest record a
/// group may allow, flooded, fits in a frame, and the mesh's own frame limit for it too.
#[test]
fn the_largest_record_fits_in_a_frame() {
    use peergroup_record_db::reserved::{FRAME_LIMIT, MAX_RECORD_SIZE_LIMIT};
    assert_eq!(FRAME_LIMIT, peergroup_transport::DEFAULT_MAX_FRAME);
    let mut net = Net::new(1);
    let mut record = net.act(0, |core, now| {
        core.create_record(
            peergroup_record_db::NewRecord {
                record_type: "7e57da7a-0000-4000-8000-00000000000a".parse().unwrap(),
                attributes: String::new(),
                payload: b"x".to_vec(),
                expires: now.wall.saturating_add(Duration::from_secs(3600)),
                autorefresh: false,
            },
            now,
        )
        .unwrap()
    });
    record.payload = vec![0xa5; MAX_RECORD_SIZE_LIMIT as usize];
    let encoded = MeshMessage::Flood(record).encode().len();
    let limit = crate::message::mesh_frame_limit(MAX_RECORD_SIZE_LIMIT);
    assert!(
        encoded <= limit && limit <= peergroup_transport::DEFAULT_MAX_FRAME,
        "a flood of the largest record is {encoded} bytes; the mesh's limit {limit}, a frame's {}",
        peergroup_transport::DEFAULT_MAX_FRAME
    );
    // The default group: the limit is the floor the sync needs.
    let default = peergroup_record_db::reserved::GroupProperties::DEFAULT_MAX_RECORD_SIZE;
    assert_eq!(
        crate::message::mesh_frame_limit(default),
        crate::message::MIN_MESH_FRAME
    );
}

/// Protocol timers run on the monotonic clock: a wall clock stepped back an hour (an NTP
/// correction) neither stalls anti-entropy nor the pulls of announced payloads.
#[test]
fn a_wall_clock_stepped_back_stalls_no_timer() {
    let mut net = Net::new(2);
    let (c0, _) = net.link(0, 1);
    net.run_for(Duration::from_secs(60));
    let syncs = net.core(0).stats().syncs + net.core(1).stats().syncs;
    net.step_wall_back(Duration::from_secs(3600));
    net.run_for(Duration::from_secs(120));
    let after = net.core(0).stats().syncs + net.core(1).stats().syncs;
    assert!(
        after >= syncs + 2,
        "anti-entropy stalled after the wall clock stepped back: {syncs} syncs before, {after} after"
    );
    // An announced payload that does not come is asked for after the graft timeout.
    net.sent(0);
    net.deliver(0, c0, MeshMessage::IHave(vec![0xdead_beef]));
    net.run_for(Duration::from_secs(2));
    assert!(
        net.sent(0).iter().any(|(c, m)| *c == c0
            && matches!(m, MeshMessage::Graft { keys, .. } if keys.contains(&0xdead_beef))),
        "no graft for the announced key"
    );
}

/// A flood is told from its first bytes, so a reader can judge an oversized frame before
/// decoding it.
#[test]
fn a_flood_is_known_by_its_first_bytes() {
    let mut net = Net::new(1);
    let record = net.act(0, |core, now| {
        core.create_record(
            peergroup_record_db::NewRecord {
                record_type: "7e57da7a-0000-4000-8000-00000000000b".parse().unwrap(),
                attributes: String::new(),
                payload: b"x".to_vec(),
                expires: now.wall.saturating_add(Duration::from_secs(3600)),
                autorefresh: false,
            },
            now,
        )
        .unwrap()
    });
    assert!(MeshMessage::is_flood(&MeshMessage::Flood(record).encode()));
    for other in [
        MeshMessage::Prune,
        MeshMessage::SyncRequest,
        MeshMessage::IHave(vec![1, 2]),
    ] {
        assert!(!MeshMessage::is_flood(&other.encode()), "{other:?}");
    }
    assert!(!MeshMessage::is_flood(&[]));
}

fn member_events(events: &[Event], peer: &peergroup_identity::PeerName) -> Vec<MemberChange> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Member { peer: p, change } if p == peer => Some(*change),
            _ => None,
        })
        .collect()
}

fn lists_present(net: &Net, me: usize, other: usize) -> bool {
    net.core(me)
        .members(true)
        .iter()
        .any(|m| m.peer == net.peer(other))
}

/// A neighbor whose connection breaks without a goodbye (killed, crashed, cut off) is shown
/// gone at once, not when its presence expires minutes later; it is back when it is a
/// neighbor again.
#[test]
fn a_neighbor_lost_without_a_goodbye_is_gone_at_once_and_back_when_it_returns() {
    let mut net = Net::new(2);
    let (c0, c1) = net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    assert!(lists_present(&net, 0, 1));
    net.events(0);
    // The connection breaks: both ends see it closed.
    net.act(0, |core, now| core.handle_disconnected(c0, now));
    net.act(1, |core, now| core.handle_disconnected(c1, now));
    let events = net.events(0);
    assert_eq!(
        member_events(&events, &net.peer(1)),
        vec![MemberChange::Disconnected],
        "{events:#?}"
    );
    assert!(
        !lists_present(&net, 0, 1),
        "a lost node still counts as present"
    );
    let all = net.core(0).members(false);
    let m = all
        .iter()
        .find(|m| m.peer == net.peer(1))
        .expect("still a member");
    assert!(m.nodes.is_empty(), "a lost node is listed: {m:?}");
    // A goodbye-less loss is not a departure: back as a neighbor, back as present.
    net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    let events = net.events(0);
    assert_eq!(
        member_events(&events, &net.peer(1)),
        vec![MemberChange::Connected],
        "{events:#?}"
    );
    assert!(lists_present(&net, 0, 1));
}

/// A lost node that is alive elsewhere counts again as soon as a newer presence of it
/// arrives (here through a third member).
#[test]
fn a_lost_node_counts_again_when_a_newer_presence_arrives() {
    let mut net = Net::new(3);
    let (c0, _) = net.link(0, 1);
    net.link(1, 2);
    net.link(2, 0);
    net.run_for(Duration::from_secs(3));
    assert!(lists_present(&net, 0, 1));
    net.act(0, |core, now| core.handle_disconnected(c0, now));
    assert!(!lists_present(&net, 0, 1));
    net.events(0);
    net.act(1, |core, now| {
        core.set_presence_attributes("still here", now)
    })
    .unwrap();
    net.run_for(Duration::from_secs(3));
    assert!(
        lists_present(&net, 0, 1),
        "the newer presence did not count"
    );
    let events = net.events(0);
    assert!(
        member_events(&events, &net.peer(1)).contains(&MemberChange::Connected),
        "{events:#?}"
    );
}

/// The version of node `of`'s presence record as node `at` holds it.
fn presence_version(net: &Net, at: usize, of: usize) -> Option<u32> {
    let node = net.core(of).node();
    let id = crate::presence::Presence::record_id(&net.peer(of), node);
    net.core(at).db().get(id).unwrap().map(|r| r.version)
}

/// A crash is known beyond the crashed node's neighbors at once: the neighbor that lost it
/// tells the others, who are not linked to it and would otherwise list it present until its
/// presence expired (minutes).
#[test]
fn a_crash_is_known_beyond_the_crashed_nodes_neighbors() {
    let mut net = Net::new(4);
    net.link(0, 1);
    net.link(1, 3);
    let (c2, _) = net.link(0, 2);
    net.run_for(Duration::from_secs(3));
    assert!(lists_present(&net, 3, 2) && lists_present(&net, 1, 2));
    net.events(3);
    // Node 2 crashes: its one neighbor sees the connection close, and it says nothing more.
    net.act(0, |core, now| core.handle_disconnected(c2, now));
    net.settle();
    for at in [0, 1, 3] {
        assert!(
            !lists_present(&net, at, 2),
            "node {at} still lists the crashed member"
        );
    }
    let events = net.events(3);
    assert_eq!(
        member_events(&events, &net.peer(2)),
        vec![MemberChange::Disconnected],
        "{events:#?}"
    );
    // Each node passed the report on once: 0 to 1, 1 to 3, and 3 to nobody.
    let lost = |net: &mut Net, i| {
        net.sent(i)
            .iter()
            .filter(|(_, m)| matches!(m, MeshMessage::Lost { .. }))
            .count()
    };
    assert_eq!(
        (lost(&mut net, 0), lost(&mut net, 1), lost(&mut net, 3)),
        (1, 1, 0)
    );
}

/// A report of a node that is alive (its link to one neighbor broke, not the node) is undone:
/// a neighbor still linked to it passes the report to it, and it publishes its presence
/// again, which counts it back in everywhere. A member that repeats false reports gets one
/// presence update per [`LOST_REFRESH_INTERVAL`](crate::core::LOST_REFRESH_INTERVAL), no more.
#[test]
fn a_node_reported_lost_while_alive_is_counted_back_in() {
    let mut net = Net::new(4);
    let (c0, c1) = net.link(0, 1);
    net.link(1, 2);
    net.link(0, 2);
    let (c03, _) = net.link(0, 3);
    net.run_for(Duration::from_secs(3));
    let before = presence_version(&net, 3, 1).expect("3 has 1's presence");
    // Only the link 0–1 breaks; 1 is alive and linked to 2.
    net.act(0, |core, now| core.handle_disconnected(c0, now));
    net.act(1, |core, now| core.handle_disconnected(c1, now));
    net.run_for(Duration::from_secs(1));
    for at in [0, 2, 3] {
        assert!(lists_present(&net, at, 1), "node {at} lists 1 as gone");
    }
    let after = presence_version(&net, 3, 1).expect("3 has 1's presence");
    assert!(after > before, "1 did not publish its presence again");
    // False reports again and again (as 3 might send them to 0, who hands them on to 2, who
    // is linked to 1 and hands them to it).
    for _ in 0..10 {
        let (peer, node) = (net.peer(1), net.core(1).node());
        net.deliver(0, c03, MeshMessage::Lost { peer, node });
    }
    net.run_for(Duration::from_secs(1));
    let repeated = presence_version(&net, 3, 1).expect("3 has 1's presence");
    assert_eq!(
        repeated, after,
        "a report within the interval was answered at once"
    );
    // Once the interval is over, one more presence answers them all and 1 counts again.
    net.run_for(crate::core::LOST_REFRESH_INTERVAL);
    let answered = presence_version(&net, 3, 1).expect("3 has 1's presence");
    assert_eq!(answered, after + 1, "ten reports, one answer");
    assert!(lists_present(&net, 3, 1));
}

/// A neighbor that leaves, or a link the mesh drops on purpose, is not a lost node.
#[test]
fn a_link_dropped_on_purpose_does_not_hide_the_member() {
    let mut net = Net::new(3);
    let (c0, _) = net.link(0, 1);
    net.link(1, 2);
    net.link(2, 0);
    net.run_for(Duration::from_secs(3));
    net.act(0, |core, now| {
        core.handle_violation(c0, crate::core::PeerFault::Unexpected("test"), now)
    });
    assert!(
        lists_present(&net, 0, 1),
        "a link we closed is no sign the member is gone"
    );
}

/// An address one member says it saw us at is not published; once a second member says the
/// same, the presence carries it (beside the listen addresses) to the others.
#[test]
fn an_observed_address_is_published_once_two_members_saw_it() {
    let mut net = Net::new(3);
    net.link(0, 1);
    net.link(0, 2);
    net.link(1, 2);
    net.run_for(Duration::from_secs(2));
    let observed: std::net::SocketAddr = "198.51.100.20:40123".parse().unwrap();
    let addresses_of_0_at = |net: &Net, at: usize| -> Vec<std::net::SocketAddr> {
        net.core(at)
            .members(true)
            .into_iter()
            .filter(|m| m.peer == net.peer(0))
            .flat_map(|m| m.nodes.into_iter().flat_map(|(_, a)| a))
            .collect()
    };
    let (p1, p2) = (net.peer(1), net.peer(2));
    net.act(0, |core, now| core.note_observed_addr(observed, &p1, now))
        .unwrap();
    net.run_for(Duration::from_secs(2));
    assert!(
        !addresses_of_0_at(&net, 2).contains(&observed),
        "one member's word"
    );
    net.act(0, |core, now| core.note_observed_addr(observed, &p2, now))
        .unwrap();
    net.run_for(Duration::from_secs(2));
    for at in [1, 2] {
        assert!(
            addresses_of_0_at(&net, at).contains(&observed),
            "node {at} sees {:?}",
            addresses_of_0_at(&net, at)
        );
    }
}
