//! Presence maintenance in a group that bounds its presences (`max_presence`).

use std::time::Duration;

use peergroup_record_db::reserved::GroupProperties;
use peergroup_record_db::store::MemoryStore;
use peergroup_record_db::{Change, LocalSigner, NewRecord, RecordType};

use super::harness::Net;
use crate::core::Core;
use crate::core::{MAX_COUNTED_PRESENCES_PER_MEMBER, PRESENCE_MAINTENANCE_MAX, PRESENCE_SLACK};
use crate::message::NodeId;
use crate::presence::Presence;
use crate::time::Now;

/// Nodes `0..n`, each linked to the two before it (so that any one node can leave without
/// cutting the others apart), joining one after another.
fn formed(n: usize, max: u32) -> Net {
    let mut net = Net::with_max_presence(n, max);
    for i in 1..n {
        net.link(i, i - 1);
        if i >= 2 {
            net.link(i, i - 2);
        }
        net.run_for(Duration::from_secs(2));
    }
    net
}

fn publishers(net: &Net, live: impl Iterator<Item = usize>) -> Vec<usize> {
    live.filter(|i| net.core(*i).publishes_presence()).collect()
}

/// Every live node holds the presence of every publisher but itself.
fn assert_everyone_sees(net: &Net, live: &[usize], publishers: &[usize]) {
    for i in live {
        let own = usize::from(publishers.contains(i));
        assert_eq!(
            net.core(*i).presences_held(),
            publishers.len() - own,
            "node {i} does not hold every publisher's presence ({publishers:?})"
        );
    }
}

/// `n` maintenance rounds, each the longest timer and a refresh round for its flood. (A node
/// acts on its timer by chance, so a gap may take more than one round to close.)
fn maintenance_rounds(n: u32) -> Duration {
    (PRESENCE_MAINTENANCE_MAX + Duration::from_secs(20)) * n
}

#[test]
fn joiners_publish_until_the_bound_and_a_leaver_is_replaced() {
    let n = 12;
    let mut net = formed(n, 4);
    // Each joiner decided once synchronised, seeing those before it: the first four publish.
    let all: Vec<usize> = (0..n).collect();
    assert_eq!(publishers(&net, 0..n), [0, 1, 2, 3]);
    assert_everyone_sees(&net, &all, &[0, 1, 2, 3]);
    // A publisher leaves: the others hold three, and exactly one node takes its place (each
    // looks again when its timer fires, after the first one's flood reached it).
    net.act(2, |core, now| core.close(now)).unwrap();
    net.run_for(Duration::from_secs(2));
    let live: Vec<usize> = (0..n).filter(|i| *i != 2).collect();
    assert_eq!(net.core(5).presences_held(), 3);
    net.run_for(maintenance_rounds(4));
    let now = publishers(&net, live.iter().copied());
    assert_eq!(now.len(), 4, "publishers after the leave: {now:?}");
    assert_everyone_sees(&net, &live, &now);
}

#[test]
fn a_lowered_bound_withdraws_presences_and_a_lifted_one_brings_them_back() {
    let n = 20;
    let mut net = formed(n, GroupProperties::ALL_PRESENCE);
    let all: Vec<usize> = (0..n).collect();
    assert_eq!(publishers(&net, 0..n).len(), n);
    // The creator bounds the group to 4: publishers withdraw one at a time, each looking
    // again when its timer fires, until the count is within the slack above the bound.
    let mut props = net.core(0).db().properties();
    props.max_presence = 4;
    net.act(0, |core, now| core.set_properties(&props, now))
        .unwrap();
    net.run_for(maintenance_rounds(4));
    let now = publishers(&net, 0..n);
    assert_eq!(now.len(), 4 + PRESENCE_SLACK, "publishers: {now:?}");
    assert_everyone_sees(&net, &all, &now);
    // Every node publishing again: those that withdrew publish their presence anew (the
    // version after its tombstone).
    props.max_presence = GroupProperties::ALL_PRESENCE;
    net.act(0, |core, now| core.set_properties(&props, now))
        .unwrap();
    net.run_for(Duration::from_secs(20));
    assert_eq!(publishers(&net, 0..n).len(), n);
    assert_everyone_sees(&net, &all, &all);
}

#[test]
fn an_application_forces_its_presence_past_the_bound() {
    // A bound of 0: only forced presences.
    let mut net = formed(4, 0);
    assert!(publishers(&net, 0..4).is_empty());
    net.act(1, |core, now| core.set_presence_attributes("busy", now))
        .unwrap();
    net.run_for(maintenance_rounds(4));
    assert_eq!(publishers(&net, 0..4), [1]);
    assert_everyone_sees(&net, &[0, 1, 2, 3], &[1]);
    let member = net
        .core(0)
        .members(true)
        .into_iter()
        .find(|m| m.peer == net.peer(1))
        .expect("node 1 is present at node 0");
    assert_eq!(member.attributes, "busy");
}

/// Stores a presence of this core's member under `node` (not this core's own), as another
/// node of the member (or an earlier run of it) would have published it.
fn store_presence_of(core: &mut Core<MemoryStore>, node: NodeId, now: Now) -> Change {
    let presence = Presence {
        node,
        addresses: Vec::new(),
        attributes: String::new(),
    };
    let signer = LocalSigner {
        key: &core.me.key,
        chain: &core.me.chain,
    };
    let id = Presence::record_id(core.me.chain.leaf().subject_peer(), node);
    core.db
        .create_with_id(
            signer,
            id,
            NewRecord {
                record_type: RecordType::PRESENCE,
                attributes: String::new(),
                payload: presence.to_payload(),
                expires: now.wall.saturating_add(Duration::from_secs(300)),
                autorefresh: true,
            },
            now.wall,
        )
        .unwrap()
}

/// Member 1 publishes presence under `n` more node ids, flooded to the others.
fn publish_many_presences(net: &mut Net, n: u64) {
    net.act(1, |core, now| {
        for k in 0..n {
            let change = store_presence_of(core, NodeId(10_000 + k), now);
            core.commit(change, now);
        }
    });
}

/// A member publishing presence under many node ids counts as at most
/// MAX_COUNTED_PRESENCES_PER_MEMBER nodes: it cannot make the others withdraw theirs.
#[test]
fn a_member_with_many_presences_cannot_crowd_the_others_out() {
    let mut net = formed(3, 8);
    assert_eq!(publishers(&net, 0..3), [0, 1, 2]);
    publish_many_presences(&mut net, 40);
    net.run_for(Duration::from_secs(2));
    // Node 2 holds 41 presences of member 1 and node 0's: it counts 4 + 1.
    assert_eq!(
        net.core(2).presences_held(),
        MAX_COUNTED_PRESENCES_PER_MEMBER + 1
    );
    net.run_for(maintenance_rounds(4));
    assert_eq!(
        publishers(&net, 0..3),
        [0, 1, 2],
        "a presence was withdrawn"
    );
}

/// A crash leaves the member's presence under the crashed run's node id; the next run (a new
/// node id, the same database) refreshes its own presence only, so the old one expires.
#[test]
fn a_node_does_not_keep_an_earlier_runs_presence_alive() {
    let mut net = Net::new(2);
    net.link(1, 0);
    net.run_for(Duration::from_secs(2));
    let ghost = NodeId(999);
    let peer = net.peer(1);
    let id = Presence::record_id(&peer, ghost);
    net.act(1, |core, now| store_presence_of(core, ghost, now));
    let own = Presence::record_id(&peer, net.core(1).node);
    net.run_for(Duration::from_secs(400));
    assert!(net.core(1).db().get(own).unwrap().is_some(), "own presence");
    assert!(
        net.core(1).db().get(id).unwrap().is_none(),
        "the earlier run's presence was refreshed"
    );
}

/// Nodes started in the same instant do not keep refreshing in the same instant: each round
/// comes 7.5–12.5 s after the last, drawn anew, so their presences do not flood in bursts.
#[test]
fn refresh_rounds_of_nodes_started_together_drift_apart() {
    let n = 6;
    let mut net = Net::new(n);
    for i in 1..n {
        net.link(i, 0);
    }
    let start = net.now().mono;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..12 {
        net.run_for(Duration::from_secs(5));
        let now = net.now().mono;
        for i in 0..n {
            let next = net.core(i).presence.next_refresh;
            assert!(
                next.duration_since(now) <= Duration::from_millis(12_500),
                "node {i}'s next round is {:?} away",
                next.duration_since(now)
            );
            seen.insert((i, next));
        }
    }
    assert!(net.now().mono.duration_since(start) >= Duration::from_secs(60));
    // Every node's rounds at its own instants: at the end, no two nodes share one.
    let last: std::collections::BTreeSet<_> =
        (0..n).map(|i| net.core(i).presence.next_refresh).collect();
    assert_eq!(last.len(), n, "refresh rounds in step: {last:?}");
    assert!(seen.len() > 2 * n, "rounds did not move: {seen:?}");
}
