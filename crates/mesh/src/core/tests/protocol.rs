//! The protocol on virtual time, a few cores at a time: broadcast, prune, loss and repair
//! (by a pull and by anti-entropy), partition and heal, refusal.

use std::net::SocketAddr;
use std::time::Duration;

use peergroup_record_db::NewRecord;

use super::harness::{Net, address};
use crate::MeshConfig;
use crate::core::ANNOUNCE_AGAIN_AFTER;
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

/// Links formed one after another make a tree: a node on it takes a new link lazily, and a
/// node on none takes it eagerly and grafts, so both ends push. A link made eager while the
/// tree already joins its ends (repairs racing each other) closes a cycle: a record then
/// arrives twice somewhere, the duplicate prunes the link from both ends, and from then on a
/// record costs one payload per member.
#[test]
fn a_duplicate_prunes_a_link_and_pushes_become_a_tree() {
    let mut net = Net::new(3);
    net.link(0, 1);
    net.link(1, 2);
    let (c0, c2) = net.link(0, 2);
    net.run_for(Duration::from_secs(2));
    let key = publish(&mut net, 0);
    net.run_for(Duration::from_secs(1));
    assert_eq!(
        floods_and_prunes(&mut net, 3, key),
        (2, 0),
        "a tree from the start: one payload per member, nothing to prune"
    );
    // Both ends of the third link graft it eagerly.
    for (node, conn) in [(0, c0), (2, c2)] {
        let graft = MeshMessage::Graft {
            keys: Vec::new(),
            eager: true,
        };
        net.deliver(node, conn, graft);
    }
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

/// Prunes in the sent logs since the last call.
fn prunes_sent(net: &mut Net, i: usize) -> usize {
    net.sent(i)
        .iter()
        .filter(|(_, m)| matches!(m, MeshMessage::Prune))
        .count()
}

/// A duplicate prunes its link only when it races a push: not when it comes a graft timeout
/// after the first copy (its sender was late, reached by a repair), nor after a first copy
/// we had to pull. On 50 real nodes, pruning on those cut the links repairs had just made
/// eager, and half of all deliveries waited for a pull.
#[test]
fn only_a_duplicate_racing_a_push_prunes() {
    let mut net = Net::new(3);
    net.link(0, 1);
    let (_, at_2) = net.link(1, 2);
    net.run_for(Duration::from_secs(2));
    let copy = |net: &Net, key: u64| {
        MeshMessage::Flood(net.core(0).db.record_by_key(key).unwrap().unwrap())
    };
    for i in 0..3 {
        net.sent(i);
    }

    // Late: node 1 pushes again a graft timeout after node 2 had the record.
    let late = publish(&mut net, 0);
    net.run_for(Duration::from_millis(100));
    assert!(net.has(2, late));
    net.run_for(MeshConfig::default().graft_timeout);
    let again = copy(&net, late);
    net.deliver(2, at_2, again);
    assert_eq!(prunes_sent(&mut net, 2), 0, "a late duplicate pruned");
    assert!(net.core(2).broadcast.is_eager(at_2));

    // After a pull: node 2 asked for the record, and a push of it comes after the answer.
    net.lose(1, "flood", 1);
    let pulled = publish(&mut net, 0);
    net.deliver(2, at_2, MeshMessage::IHave(vec![pulled]));
    net.run_for(MeshConfig::default().graft_timeout + Duration::from_millis(100));
    assert!(net.has(2, pulled), "node 2 did not pull the record");
    let again = copy(&net, pulled);
    net.deliver(2, at_2, again);
    assert_eq!(
        prunes_sent(&mut net, 2),
        0,
        "a duplicate of a pulled record pruned"
    );

    // A repush racing the push: a copy pushed on from a pull upstream crosses the tree's
    // own push without any cycle of eager links, and prunes nothing.
    let repushed = publish(&mut net, 0);
    net.run_for(Duration::from_millis(10));
    assert!(net.has(2, repushed));
    let again = MeshMessage::Repush(net.core(0).db.record_by_key(repushed).unwrap().unwrap());
    net.deliver(2, at_2, again);
    assert_eq!(prunes_sent(&mut net, 2), 0, "a racing repush pruned");
    assert!(net.core(2).broadcast.is_eager(at_2));

    // Racing: a second push right after the first one is a cycle, and prunes.
    let raced = publish(&mut net, 0);
    net.run_for(Duration::from_millis(10));
    assert!(net.has(2, raced));
    let again = copy(&net, raced);
    net.deliver(2, at_2, again);
    assert_eq!(
        prunes_sent(&mut net, 2),
        1,
        "a racing duplicate did not prune"
    );
    assert!(!net.core(2).broadcast.is_eager(at_2));
}

/// A node that pulled a record pushes it on as a repush, and so does every node downstream
/// of it: the tree's own push of the record, late, meets those copies somewhere, and
/// pruning there cut the tree (the first pull grafts lazily, so no cycle was closed).
#[test]
fn a_pulled_record_is_pushed_on_as_a_repush_all_the_way_down() {
    let mut net = Net::new(5);
    net.link(0, 1);
    let (_, at_2) = net.link(1, 2);
    net.link(2, 3);
    net.link(3, 4);
    net.run_for(Duration::from_secs(2));
    for i in 0..5 {
        net.sent(i);
    }
    let pushes = |net: &mut Net, i: usize, key: u64| {
        let (mut floods, mut repushes) = (0, 0);
        for (_, m) in net.sent(i) {
            match m {
                MeshMessage::Flood(r) if r.item_key() == key => floods += 1,
                MeshMessage::Repush(r) if r.item_key() == key => {
                    assert!(MeshMessage::is_flood(&MeshMessage::Repush(r).encode()));
                    repushes += 1;
                }
                _ => {}
            }
        }
        (floods, repushes)
    };
    // Pushed along the tree: floods.
    let pushed = publish(&mut net, 0);
    net.run_for(Duration::from_millis(500));
    assert!(net.has(4, pushed));
    assert_eq!(pushes(&mut net, 2, pushed), (1, 0));
    assert_eq!(pushes(&mut net, 3, pushed), (1, 0));

    // Node 1's push to node 2 is lost; node 2 pulls it from node 1's announcement.
    net.lose(1, "flood", 1);
    let pulled = publish(&mut net, 0);
    net.run_for(Duration::from_millis(50));
    assert!(!net.has(2, pulled), "the lost push arrived");
    net.deliver(2, at_2, MeshMessage::IHave(vec![pulled]));
    net.run_for(MeshConfig::default().graft_timeout + Duration::from_millis(500));
    assert!(net.has(4, pulled), "node 4 lacks the pulled record");
    assert_eq!(
        pushes(&mut net, 2, pulled),
        (0, 1),
        "node 2 pushed on a pulled record"
    );
    // Node 3 got it as a repush, and pushes it on as one.
    assert_eq!(
        pushes(&mut net, 3, pulled),
        (0, 1),
        "node 3 pushed on a repush"
    );
}

#[test]
fn a_lost_message_is_repaired_by_anti_entropy() {
    let mut net = Net::new(3);
    net.link(0, 1);
    net.link(1, 2);
    net.run_for(Duration::from_secs(2));
    // Whether node 1's link to node 2 pushes or announces, nothing of it arrives: neither
    // the first message nor the two announcements after it.
    net.lose(1, "flood", 1);
    net.lose(1, "ihave", 3);
    let key = publish(&mut net, 0);
    assert!(net.has(1, key));
    net.run_for(ANNOUNCE_AGAIN_AFTER * 3 + MeshConfig::default().graft_timeout * 2);
    assert!(!net.has(2, key), "the lost message arrived");
    net.run_for(MeshConfig::default().anti_entropy_interval * 3);
    assert!(net.has(2, key), "anti-entropy did not bring the record");
}

/// A push and an announcement lost (a connection that died with them queued) are repaired by
/// the announcements that follow, a second after the first and two after that, long before
/// anti-entropy.
#[test]
fn lost_messages_are_repaired_by_the_next_announcements() {
    for lost in [1u32, 2] {
        let mut net = Net::new(3);
        net.link(0, 1);
        net.link(1, 2);
        net.run_for(Duration::from_secs(2));
        net.lose(1, "flood", 1);
        net.lose(1, "ihave", lost as usize);
        let by_sync = net.core(2).stats().delivered_by_sync;
        let key = publish(&mut net, 0);
        net.run_for(ANNOUNCE_AGAIN_AFTER / 2);
        assert!(!net.has(2, key), "the lost message arrived");
        net.run_for(ANNOUNCE_AGAIN_AFTER * (2 * lost - 1) + MeshConfig::default().graft_timeout);
        assert!(
            net.has(2, key),
            "{lost} announcement(s) lost: the next one did not bring the record"
        );
        assert_eq!(
            net.core(2).stats().delivered_by_sync,
            by_sync,
            "it came by sync"
        );
    }
}

/// A key whose only announcer's link drops before the payload comes is asked of the other
/// neighbors (that link's queued messages died with it), not left to anti-entropy.
#[test]
fn a_key_whose_announcer_left_is_asked_of_the_other_neighbors() {
    let mut net = Net::new(4);
    net.link(0, 1);
    net.link(1, 2);
    let (at_2, at_3) = net.link(2, 3);
    net.run_for(Duration::from_secs(2));
    net.lose(1, "flood", 1);
    net.lose(1, "ihave", 1);
    let key = publish(&mut net, 0);
    assert!(net.has(1, key) && !net.has(2, key));
    // Node 3 announces it, and its link goes before node 2 asks.
    net.deliver(2, at_2, MeshMessage::IHave(vec![key]));
    net.act(2, |core, now| core.handle_disconnected(at_2, now));
    net.act(3, |core, now| core.handle_disconnected(at_3, now));
    net.sent(2);
    // Before node 1 announces it again.
    net.run_for(ANNOUNCE_AGAIN_AFTER - Duration::from_millis(100));
    assert!(net.has(2, key), "node 2 gave the key up with its announcer");
    assert!(
        net.sent(2)
            .iter()
            .any(|(_, m)| matches!(m, MeshMessage::Graft { keys, .. } if keys == &vec![key])),
        "node 2 did not ask its other neighbor"
    );
}

/// The wait before pulling an announced payload follows how late pushes come here: the
/// handshake's round trip is its first guess, pushes 900 ms behind their announcements take
/// it up to the 500 ms ceiling and, since every pull was followed by its push, the ceiling up
/// to twice that; pushes 5 ms behind bring it down to tens of milliseconds, and then a lost
/// push is pulled at once.
#[test]
fn the_graft_timeout_follows_how_late_pushes_come() {
    let mut net = Net::new(3);
    net.link(0, 1);
    let (_, at_2) = net.link(1, 2);
    net.run_for(Duration::from_secs(2));
    let ceiling = MeshConfig::default().graft_timeout;
    // Node 2 accepted node 1's link: the dialer's first message answered its welcome.
    assert!(net.core(2).graft_timeout() < ceiling, "no first guess");
    let announced_then_pushed = |net: &mut Net, lag: Duration| {
        net.lose(1, "flood", 1);
        let key = publish(net, 0);
        net.deliver(2, at_2, MeshMessage::IHave(vec![key]));
        net.run_for(lag);
        let record = net.core(0).db.record_by_key(key).unwrap().unwrap();
        net.deliver(2, at_2, MeshMessage::Flood(record));
    };
    for _ in 0..32 {
        announced_then_pushed(&mut net, Duration::from_millis(900));
    }
    // Every pull was followed by its push (late, not lost): the ceiling rose (as far as
    // twice), and the wait now covers the pushes' lag, so they come before it ends.
    let raised = net.core(2).graft_timeout();
    assert!(
        raised > Duration::from_millis(900)
            && raised <= ceiling * crate::limits::MAX_GRAFT_CEILING_FACTOR,
        "{raised:?}"
    );
    let pulls = net.core(2).stats().grafts_sent;
    for _ in 0..4 {
        announced_then_pushed(&mut net, Duration::from_millis(900));
    }
    assert_eq!(
        net.core(2).stats().grafts_sent,
        pulls,
        "a late push was pulled"
    );
    for _ in 0..48 {
        announced_then_pushed(&mut net, Duration::from_millis(5));
    }
    let learned = net.core(2).graft_timeout();
    assert!(learned < Duration::from_millis(40), "{learned:?}");
    // A push that never comes is pulled after the learned wait, not the ceiling.
    net.lose(1, "flood", 1);
    let key = publish(&mut net, 0);
    net.deliver(2, at_2, MeshMessage::IHave(vec![key]));
    net.run_for(learned + Duration::from_millis(5));
    assert!(net.has(2, key), "not pulled after the learned wait");
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

/// Over its ideal neighbor count a node drops its least useful link, and a lazy one before
/// an eager one: an eager link is a branch of the tree, and dropping it cut off whatever hung
/// below it until pulls found the way again (1,000 nodes, random senders: RMR 0.19).
#[test]
fn a_node_over_its_ideal_drops_a_lazy_link_before_an_eager_one() {
    // No presence: no record flows, so every link is as useful as the next.
    let mut net = Net::with_max_presence(5, 0);
    let (eager, _) = net.link(0, 1);
    net.link(1, 2);
    // Both ends are on the tree already: the link joins lazily at both.
    let (lazy, _) = net.link(0, 2);
    net.link(0, 3);
    net.link(0, 4);
    net.run_for(Duration::from_secs(1));
    assert!(net.core(0).broadcast.is_eager(eager));
    assert!(!net.core(0).broadcast.is_eager(lazy));
    assert_eq!(net.core(0).neighbors.established_count(), 4);
    net.run_for(Duration::from_secs(120));
    let core = net.core(0);
    assert_eq!(
        core.neighbors.established_count(),
        MeshConfig::default().ideal_neighbors
    );
    assert!(core.neighbors.contains(eager), "the eager link was dropped");
    assert!(!core.neighbors.contains(lazy), "the lazy link was kept");
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
fn a_refused_dialer_tries_the_referrals_at_once_and_the_full_node_later() {
    let max = MeshConfig::default().max_neighbors;
    let mut net = Net::new(max + 2);
    for i in 1..=max {
        net.link(i, 0);
    }
    let joiner = max + 1;
    // The joiner knows the full node's address (its invitation's).
    net.act(joiner, |core, _| core.add_candidates(&[address(0)]));
    net.run_for(Duration::from_secs(1));
    net.dialed(joiner);
    let refused_at = net.now().mono;
    net.link(joiner, 0);
    net.run_for(Duration::from_millis(100));
    let dialed = net.dialed(joiner);
    let full = address(0);
    let referred: Vec<SocketAddr> = dialed.iter().map(|(a, _)| *a).collect();
    assert!(
        !referred.is_empty() && !referred.contains(&full),
        "the refused node should dial the referrals at once, not the full node: {dialed:?}"
    );
    assert!(
        dialed
            .iter()
            .all(|(_, at)| at.duration_since(refused_at) < Duration::from_millis(100)),
        "{dialed:?}"
    );
    // The full node only after a backoff (it may be dialed again later: not at once).
    net.run_for(MeshConfig::default().retry_backoff);
    assert!(
        !net.dialed(joiner).iter().any(|(a, _)| *a == full),
        "the full node was dialed again within the backoff"
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

/// A tree split in two parts, each pushing inside itself: the node at the split pulls the
/// other part's records, and pushes from its own part do not make it count itself repaired.
/// A second pull in a row of one maker's records turns the link that answered eager from
/// both ends, and that maker's next record arrives by push.
#[test]
fn pulling_one_makers_records_twice_regrafts_the_link() {
    let mut net = Net::new(4);
    net.link(0, 1);
    let (c1, c2) = net.link(1, 2);
    net.link(2, 3);
    net.run_for(Duration::from_secs(2));
    // The split: the 1-2 link turns lazy at both ends.
    net.deliver(1, c1, MeshMessage::Prune);
    net.deliver(2, c2, MeshMessage::Prune);
    assert!(!net.core(1).broadcast.is_eager(c1) && !net.core(2).broadcast.is_eager(c2));
    net.sent(1);
    let pulls = |net: &mut Net| {
        net.sent(2)
            .iter()
            .filter(|(_, m)| matches!(m, MeshMessage::Graft { keys, .. } if !keys.is_empty()))
            .count()
    };
    for round in 0..2 {
        // Node 0's record reaches node 2 only by a pull; node 3's by push. (Node 0's comes
        // first: node 1 pulls node 3's records over the split too, and its second pull in a
        // row regrafts the link from its side, which would push node 0's.)
        let theirs = publish(&mut net, 0);
        net.run_for(MeshConfig::default().graft_timeout + Duration::from_millis(500));
        assert!(
            net.has(2, theirs),
            "round {round}: node 2 lacks node 0's record"
        );
        assert_eq!(pulls(&mut net), 1, "round {round}: one pull");
        let mine = publish(&mut net, 3);
        net.run_for(Duration::from_millis(100));
        assert!(net.has(2, mine));
        net.sent(2);
    }
    assert!(
        net.core(2).broadcast.is_eager(c2) && net.core(1).broadcast.is_eager(c1),
        "the second pull in a row of node 0's records regrafts the link from both ends"
    );
    let pushed = publish(&mut net, 0);
    net.run_for(Duration::from_millis(100));
    assert!(net.has(2, pushed), "node 0's next record arrives by push");
    assert_eq!(pulls(&mut net), 0);
}

/// A sync whose records take longer to send than `sync_stall_timeout` is not given up by
/// the side sending them, which hears nothing from its peer meanwhile: each burst the
/// connection takes is progress. (Before, a fresh member's sync of 1M records was abandoned
/// every 10 s and restarted from a new reconciliation.)
#[test]
fn a_sync_longer_than_the_stall_timeout_goes_on_while_it_sends() {
    let mut net = Net::new(2);
    // Records over half a sync message's byte bound: one per message, so the records take
    // more than one burst of `sync_burst` messages.
    let config = MeshConfig::default();
    let count = config.sync_burst * 7;
    let keys: Vec<u64> = (0..count)
        .map(|k| {
            net.act(1, |core, now| {
                core.create_record(
                    NewRecord {
                        record_type: "7e57da7a-0000-4000-8000-00000000000b".parse().unwrap(),
                        attributes: String::new(),
                        payload: vec![k as u8; 530 * 1024],
                        expires: now.wall.saturating_add(Duration::from_secs(3600)),
                        autorefresh: false,
                    },
                    now,
                )
                .unwrap()
                .item_key()
            })
        })
        .collect();
    let (_, c1) = net.link(0, 1);
    // The driver lets the sync go on each time the connection has room: here every 60% of
    // the stall timeout, until node 1 has sent everything.
    let step = config.sync_stall_timeout.mul_f64(0.6);
    let mut steps = 0u32;
    while !net.core(1).sync_backlog().is_empty() {
        assert!(steps < 20, "node 1 is still sending after {steps} steps");
        net.run_for(step);
        net.act(1, |core, now| core.continue_sync(c1, now));
        steps += 1;
    }
    assert!(
        step * steps > config.sync_stall_timeout,
        "the records took {steps} steps of {step:?}: not longer than the stall timeout"
    );
    for (i, key) in keys.iter().enumerate() {
        assert!(net.has(0, *key), "node 0 lacks record {i} of {count}");
    }
    for i in 0..2 {
        assert_eq!(
            net.core(i).stats().syncs_abandoned,
            0,
            "node {i} abandoned the sync"
        );
    }
}
