//! The protocol on virtual time, a few cores at a time: broadcast, prune, loss and repair
//! (by a pull and by anti-entropy), partition and heal, refusal.

use std::time::Duration;

use peergroup_record_db::NewRecord;

use super::harness::Net;
use crate::MeshConfig;
use crate::message::{MeshMessage, Reason};

/// Node `i` publishes an application record; returns its item key.
fn publish(net: &mut Net, i: usize) -> u64 {
    net.act(i, |core, now| {
        core.create_record(
            NewRecord {
                record_type: "7e57da7a-0000-4000-8000-00000000000b".parse().unwrap(),
                attributes: String::new(),
                payload: b"hello".to_vec(),
                expires: now.wall.saturating_add(Duration::from_secs(3600)),
                autorefresh: false,
            },
            now,
        )
        .unwrap()
        .item_key()
    })
}

/// Floods of the record with item `key` in what the nodes sent, and every prune, since the
/// last call (which drains the logs).
fn floods_and_prunes(net: &mut Net, n: usize, key: u64) -> (usize, usize) {
    let (mut floods, mut prunes) = (0, 0);
    for i in 0..n {
        for (_, m) in net.sent(i) {
            match m {
                MeshMessage::Flood(r) if r.item_key() == key => floods += 1,
                MeshMessage::Prune => prunes += 1,
                _ => {}
            }
        }
    }
    (floods, prunes)
}

#[test]
fn a_record_floods_along_a_line_to_every_member() {
    let mut net = Net::new(4);
    net.link(0, 1);
    net.link(1, 2);
    net.link(2, 3);
    net.run_for(Duration::from_secs(2));
    let key = publish(&mut net, 0);
    // Pushed over eager links at once, pulled over lazy ones (a link the presence records'
    // duplicates pruned) once the announcement's graft timeout passes.
    net.run_for(MeshConfig::default().graft_timeout + Duration::from_secs(1));
    for i in 0..4 {
        assert!(net.has(i, key), "node {i} lacks the record");
    }
    // One payload per link, never back to where it came from.
    assert_eq!(floods_and_prunes(&mut net, 4, key).0, 3);
}

/// In a triangle every record first arrives twice somewhere; the duplicate prunes the link
/// from both ends, and from then on a record costs one payload per member.
#[test]
fn a_duplicate_prunes_a_link_and_pushes_become_a_tree() {
    let mut net = Net::new(3);
    net.link(0, 1);
    net.link(1, 2);
    net.link(0, 2);
    net.run_for(Duration::from_secs(2));
    let mut prunes = floods_and_prunes(&mut net, 3, 0).1;
    let mut floods = Vec::new();
    for _ in 0..4 {
        let key = publish(&mut net, 0);
        net.run_for(MeshConfig::default().graft_timeout + Duration::from_secs(1));
        for i in 0..3 {
            assert!(net.has(i, key), "node {i} lacks the record");
        }
        let (f, p) = floods_and_prunes(&mut net, 3, key);
        floods.push(f);
        prunes += p;
    }
    assert!(prunes >= 1, "no link was pruned");
    assert_eq!(floods.last(), Some(&2), "payloads per record: {floods:?}");
}

#[test]
fn a_lost_message_is_repaired_by_anti_entropy() {
    let mut net = Net::new(3);
    net.link(0, 1);
    net.link(1, 2);
    net.run_for(Duration::from_secs(2));
    // Whether node 1's link to node 2 pushes or announces, nothing of it arrives.
    net.lose(1, "flood", 1);
    net.lose(1, "ihave", 1);
    let key = publish(&mut net, 0);
    assert!(net.has(1, key));
    net.run_for(MeshConfig::default().graft_timeout * 2);
    assert!(!net.has(2, key), "the lost message arrived");
    net.run_for(MeshConfig::default().anti_entropy_interval * 3);
    assert!(net.has(2, key), "anti-entropy did not bring the record");
}

#[test]
fn an_announced_payload_that_does_not_come_is_pulled() {
    let mut net = Net::new(3);
    net.link(0, 1);
    let (_, at_2) = net.link(1, 2);
    net.run_for(Duration::from_secs(2));
    net.lose(1, "flood", 1);
    let key = publish(&mut net, 0);
    assert!(!net.has(2, key));
    net.sent(2);
    // Node 1 announces it (as over a lazy link); the push never comes, so node 2 asks.
    net.deliver(2, at_2, MeshMessage::IHave(vec![key]));
    net.run_for(MeshConfig::default().graft_timeout + Duration::from_millis(500));
    let grafted = net.sent(2).into_iter().any(|(conn, m)| {
        conn == at_2 && matches!(m, MeshMessage::Graft { keys, .. } if keys.contains(&key))
    });
    assert!(grafted, "node 2 did not ask for the announced payload");
    assert!(net.has(2, key), "the pulled payload did not arrive");
}

#[test]
fn a_partition_heals_when_a_link_crosses_it() {
    let mut net = Net::new(4);
    net.link(0, 1);
    net.link(2, 3);
    net.run_for(Duration::from_secs(2));
    let left = publish(&mut net, 0);
    let right = publish(&mut net, 3);
    assert!(!net.has(2, left) && !net.has(3, left));
    assert!(!net.has(0, right) && !net.has(1, right));
    // The link syncs both ends at once; the others catch up by anti-entropy.
    net.link(1, 2);
    for i in [1, 2] {
        assert!(
            net.has(i, left) && net.has(i, right),
            "node {i} did not sync"
        );
    }
    net.run_for(MeshConfig::default().anti_entropy_interval * 3);
    for i in 0..4 {
        assert!(
            net.has(i, left) && net.has(i, right),
            "node {i} is still cut off"
        );
    }
}

#[test]
fn a_full_node_refuses_with_referrals() {
    let max = MeshConfig::default().max_neighbors;
    let mut net = Net::new(max + 2);
    for i in 1..=max {
        net.link(i, 0);
    }
    net.sent(0);
    let (at_dialer, _) = net.link(max + 1, 0);
    let refusal = net.sent(0).into_iter().find_map(|(_, m)| match m {
        MeshMessage::Refuse { reason, referrals } => Some((reason, referrals)),
        _ => None,
    });
    let Some((reason, referrals)) = refusal else {
        panic!("node 0 took more than {max} neighbors");
    };
    assert_eq!(reason, Reason::Busy);
    assert!(!referrals.is_empty(), "a refusal should name other members");
    let events = net.events(max + 1);
    assert!(
        !events.iter().any(|e| matches!(
            e,
            crate::core::Event::Neighbor { conn, change: crate::core::NeighborChange::Connected, .. }
                if *conn == at_dialer
        )),
        "the refused link became a neighbor: {events:#?}"
    );
}

#[test]
fn a_fresh_record_its_maker_gave_by_sync_reaches_the_others_without_anti_entropy() {
    let mut net = Net::new(3);
    net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    // Made by node 2 before it has any link: it reaches node 1 by their first sync, not
    // by a flood, and node 1 must pass it on.
    let key = publish(&mut net, 2);
    net.link(2, 1);
    net.run_for(MeshConfig::default().graft_timeout + Duration::from_secs(1));
    assert!(net.has(1, key));
    assert!(
        net.has(0, key),
        "node 0 must not wait for anti-entropy ({:?})",
        MeshConfig::default().anti_entropy_interval
    );
}
