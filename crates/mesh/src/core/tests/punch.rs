//! Hole punching through a common neighbor: the exchange, the simultaneous dials, and the
//! bounds a hostile member meets.

use std::time::Duration;

use super::harness::{Net, address};
use crate::core::ConnId;
use crate::core::{
    AUTO_PUNCH_BACKOFF, AUTO_PUNCH_GRACE, MAX_AUTO_PUNCH_MEMORY, MAX_PUNCH_CANDIDATES,
    MAX_PUNCH_OFFERS, MAX_PUNCH_RELAYS_PER_MINUTE, MAX_PUNCH_TRIES, MAX_PUNCHES, PUNCH_SETTLE,
    PUNCH_TIMEOUT, PunchStep,
};
use crate::message::MeshMessage;

/// Nodes 0 and 2 each linked to node 1 only, all listening at their addresses. Also returns
/// the relay's end of its link to node 0 and node 2's end of its link to the relay.
fn line_with_links() -> (Net, ConnId, ConnId) {
    let mut net = Net::new(3);
    // These tests ask for each punch themselves.
    for i in 0..3 {
        net.act(i, |core, _| core.config.auto_punch = false);
    }
    let (_, relay_from_0) = net.link(0, 1);
    let (two_to_relay, _) = net.link(2, 1);
    net.run_for(Duration::from_secs(2));
    for i in 0..3 {
        net.act(i, |core, now| core.set_listen_addrs(vec![address(i)], now))
            .unwrap();
    }
    (net, relay_from_0, two_to_relay)
}

fn line() -> Net {
    line_with_links().0
}

#[test]
fn two_members_with_a_common_neighbor_dial_each_other_at_once() {
    let mut net = line();
    let target = net.peer(2);
    net.act(0, |core, now| core.punch(&target, now)).unwrap();
    net.run_for(Duration::from_secs(1));
    let (a, c) = (net.punched(0), net.punched(2));
    assert_eq!(a.iter().map(|(x, _)| *x).collect::<Vec<_>>(), [address(2)]);
    assert_eq!(c.iter().map(|(x, _)| *x).collect::<Vec<_>>(), [address(0)]);
    // No latency here: half a round trip of zero, so the same instant.
    assert_eq!(a[0].1, c[0].1, "both sides dial at the same moment");
    assert_eq!(
        net.core(1).stats().punches_relayed,
        3,
        "request, answer, sync"
    );
    assert_eq!(
        (net.core(0).stats().punches, net.core(2).stats().punches),
        (1, 1)
    );
    // The link forms (the test's to make here): the attempt ends without another try.
    net.link(0, 2);
    net.run_for(Duration::from_secs(60));
    assert_eq!(net.core(0).punches.running(), 0);
    assert!(net.punched(0).is_empty() && net.punched(2).is_empty());
}

#[test]
fn without_a_link_after_the_dials_the_exchange_runs_again_later() {
    let mut net = line();
    let target = net.peer(2);
    net.act(0, |core, now| core.punch(&target, now)).unwrap();
    // Nothing links the dialed addresses here: every try fails.
    net.run_for(Duration::from_secs(120));
    let tries: Vec<_> = net.punched(0).into_iter().map(|(_, at)| at).collect();
    assert_eq!(tries.len(), MAX_PUNCH_TRIES as usize, "{tries:?}");
    assert_eq!(tries[1].duration_since(tries[0]), PUNCH_SETTLE);
    assert_eq!(
        tries[2].duration_since(tries[1]),
        PUNCH_SETTLE * 2,
        "backing off"
    );
    assert_eq!(
        net.punched(2).len(),
        MAX_PUNCH_TRIES as usize,
        "the target dials each time"
    );
    assert_eq!(net.core(0).punches.running(), 0, "then it gives up");
}

#[test]
fn punch_is_refused_where_it_cannot_help() {
    let mut net = line();
    let (me, neighbor) = (net.peer(0), net.peer(1));
    assert!(net.act(0, |core, now| core.punch(&me, now)).is_err());
    assert!(net.act(0, |core, now| core.punch(&neighbor, now)).is_err());
    let mut lone = Net::new(2);
    let other = lone.peer(1);
    assert!(
        lone.act(0, |core, now| core.punch(&other, now)).is_err(),
        "no neighbor"
    );
    // At most MAX_PUNCHES at once (the target never answers: its answers are lost).
    net.lose(2, "punch-via", usize::MAX);
    let target = net.peer(2);
    for _ in 0..MAX_PUNCHES {
        net.act(0, |core, now| core.punch(&target, now)).unwrap();
    }
    assert!(net.act(0, |core, now| core.punch(&target, now)).is_err());
    // Unanswered attempts end after PUNCH_TIMEOUT; nothing was dialed.
    net.run_for(PUNCH_TIMEOUT + Duration::from_secs(1));
    assert_eq!(net.core(0).punches.running(), 0);
    assert!(net.punched(0).is_empty() && net.punched(2).is_empty());
}

#[test]
fn a_relay_without_a_link_to_the_target_says_so() {
    let mut net = Net::new(3);
    net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    let target = net.peer(2);
    net.act(0, |core, now| core.punch(&target, now)).unwrap();
    net.settle();
    assert_eq!(
        net.core(0).punches.running(),
        0,
        "the attempt ended at once"
    );
    let told = net.sent(1).into_iter().any(|(_, m)| {
        matches!(
            m,
            MeshMessage::PunchFrom {
                step: PunchStep::Unreachable,
                ..
            }
        )
    });
    assert!(told);
}

#[test]
fn a_relay_forwards_a_bounded_number_per_link_and_minute() {
    let (mut net, relay_from_0, _) = line_with_links();
    let target = net.peer(2);
    for id in 0..(MAX_PUNCH_RELAYS_PER_MINUTE as u64 + 10) {
        net.deliver(
            1,
            relay_from_0,
            MeshMessage::PunchVia {
                to: target.clone(),
                id,
                step: PunchStep::Request,
                candidates: vec![address(0)],
            },
        );
    }
    // Node 0's link carried MAX requests through; each came back as an answer on node 2's
    // link, which has a budget of its own.
    let stats = net.core(1).stats().clone();
    assert_eq!(
        stats.punches_relayed,
        2 * u64::from(MAX_PUNCH_RELAYS_PER_MINUTE)
    );
    assert_eq!(stats.punches_refused, 10);
    // A minute later the link may relay again.
    net.run_for(Duration::from_secs(61));
    net.deliver(
        1,
        relay_from_0,
        MeshMessage::PunchVia {
            to: target,
            id: 999,
            step: PunchStep::Request,
            candidates: vec![],
        },
    );
    assert_eq!(
        net.core(1).stats().punches_relayed,
        2 * u64::from(MAX_PUNCH_RELAYS_PER_MINUTE) + 2
    );
}

#[test]
fn answered_requests_are_bounded_and_forgotten() {
    let (mut net, _, two_to_relay) = line_with_links();
    let from = net.peer(0);
    for id in 0..(MAX_PUNCH_OFFERS as u64 + 20) {
        net.deliver(
            2,
            two_to_relay,
            MeshMessage::PunchFrom {
                from: from.clone(),
                id,
                step: PunchStep::Request,
                candidates: vec![address(0); crate::message::MAX_ADDRESSES],
            },
        );
    }
    assert_eq!(net.core(2).punches.offers(), MAX_PUNCH_OFFERS);
    assert_eq!(net.core(2).stats().punches_refused, 20);
    net.run_for(PUNCH_TIMEOUT + Duration::from_secs(1));
    assert!(net.core(2).punches.offers() == 0);
}

#[test]
fn the_relay_tells_each_side_where_it_sees_the_other() {
    let mut net = Net::new(3);
    for i in 0..3 {
        net.act(i, |core, _| core.config.auto_punch = false);
    }
    // Both dialed the relay over UDP from behind NATs: the relay sees their mappings.
    let (nat0, nat2) = (
        "203.0.113.9:4000".parse().unwrap(),
        "198.51.100.7:5000".parse().unwrap(),
    );
    net.link_from_nat(0, 1, nat0);
    net.link_from_nat(2, 1, nat2);
    net.run_for(Duration::from_secs(2));
    let target = net.peer(2);
    net.act(0, |core, now| core.punch(&target, now)).unwrap();
    net.run_for(Duration::from_secs(1));
    let dialed =
        |net: &mut Net, i| -> Vec<_> { net.punched(i).into_iter().map(|(a, _)| a).collect() };
    assert_eq!(dialed(&mut net, 0), [nat2, address(2)], "the mapping first");
    assert_eq!(dialed(&mut net, 2), [nat0, address(0)]);
}

#[test]
fn the_relay_adds_its_address_within_the_candidate_bound() {
    let mut net = Net::new(3);
    for i in 0..3 {
        net.act(i, |core, _| core.config.auto_punch = false);
    }
    let nat0: std::net::SocketAddr = "203.0.113.9:4000".parse().unwrap();
    let (_, relay_from_0) = net.link_from_nat(0, 1, nat0);
    net.link(2, 1);
    net.run_for(Duration::from_secs(2));
    let many: Vec<std::net::SocketAddr> = (0..MAX_PUNCH_CANDIDATES as u16 + 4)
        .map(|p| std::net::SocketAddr::from(([192, 0, 2, 1], 1000 + p)))
        .collect();
    net.deliver(
        1,
        relay_from_0,
        MeshMessage::PunchVia {
            to: net.peer(2),
            id: 1,
            step: PunchStep::Request,
            candidates: many.clone(),
        },
    );
    let forwarded = net
        .sent(1)
        .into_iter()
        .find_map(|(_, m)| match m {
            MeshMessage::PunchFrom { candidates, .. } => Some(candidates),
            _ => None,
        })
        .unwrap();
    assert_eq!(forwarded.len(), MAX_PUNCH_CANDIDATES);
    assert_eq!(forwarded[0], nat0);
    assert_eq!(forwarded[1..], many[..MAX_PUNCH_CANDIDATES - 1]);
}

#[test]
fn members_short_of_neighbors_punch_to_a_member_that_comes_online() {
    let mut net = Net::new(3);
    net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    assert!(net.punched(0).is_empty() && net.punched(2).is_empty());
    // Node 2 comes online through node 1: its presence reaches node 0, which has one
    // neighbor of the three it wants.
    net.link(2, 1);
    net.run_for(AUTO_PUNCH_GRACE + Duration::from_millis(500));
    let dialed: Vec<_> = net.punched(0).into_iter().map(|(a, _)| a).collect();
    assert!(dialed.contains(&address(2)), "{dialed:?}");
    let dialed: Vec<_> = net.punched(2).into_iter().map(|(a, _)| a).collect();
    assert!(dialed.contains(&address(0)), "{dialed:?}");
    // The link forms: no more punching.
    net.link(0, 2);
    net.run_for(Duration::from_secs(300));
    assert!(net.punched(0).is_empty() && net.punched(2).is_empty());
}

#[test]
fn an_automatic_punch_goes_to_a_member_once_per_backoff() {
    let mut net = Net::new(3);
    // Only node 0 punches by itself; nothing links the dialed addresses.
    for i in 1..3 {
        net.act(i, |core, _| core.config.auto_punch = false);
    }
    net.link(0, 1);
    net.link(2, 1);
    net.run_for(Duration::from_secs(200));
    let at: Vec<_> = net.punched(0).into_iter().map(|(_, at)| at).collect();
    assert!(at.len() >= 2 * MAX_PUNCH_TRIES as usize, "{at:?}");
    // Attempts of three tries each; a new attempt no sooner than the backoff after the last.
    let starts: Vec<_> = at.chunks(MAX_PUNCH_TRIES as usize).map(|c| c[0]).collect();
    for w in starts.windows(2) {
        assert!(w[1].duration_since(w[0]) >= AUTO_PUNCH_BACKOFF, "{at:?}");
    }
    assert_eq!(net.core(0).punches.auto_remembered(), 1);
}

#[test]
fn the_memory_of_automatic_punches_is_bounded() {
    let mut net = Net::new(3);
    net.link(0, 1);
    net.run_for(Duration::from_secs(2));
    // Full of members punched to lately (long ago made up), then a real one comes online.
    let made_up = (0..MAX_AUTO_PUNCH_MEMORY as u64).map(|i| {
        peergroup_identity::PeerName::new(
            &peergroup_identity::KeyPair::from_test_seed(90_000 + i).public(),
            peergroup_identity::Classifier::new("madeup").unwrap(),
        )
    });
    let until = net.now().mono.saturating_add(Duration::from_secs(3600));
    net.act(0, |core, _| core.punches.remember_auto(made_up, until));
    net.link(2, 1);
    net.run_for(AUTO_PUNCH_GRACE + Duration::from_millis(500));
    assert!(net.punched(0).iter().any(|(a, _)| *a == address(2)));
    assert_eq!(
        net.core(0).punches.auto_remembered(),
        MAX_AUTO_PUNCH_MEMORY,
        "the oldest made room"
    );
}

#[test]
fn dials_that_cross_leave_one_link_the_same_at_both_ends() {
    for (a, b) in [(0, 2), (2, 0)] {
        let mut net = Net::new(3);
        for i in 0..3 {
            net.act(i, |core, _| core.config.auto_punch = false);
        }
        let [(a1, b1), (a2, b2)] = net.link_crossed(a, b);
        net.run_for(Duration::from_secs(1));
        let links = |net: &Net, i: usize| -> Vec<ConnId> {
            net.core(i)
                .neighbors
                .established()
                .map(|(c, _)| c)
                .collect()
        };
        let (at_a, at_b) = (links(&net, a), links(&net, b));
        assert_eq!(at_a.len(), 1, "{at_a:?}");
        assert_eq!(at_b.len(), 1, "{at_b:?}");
        // The link the smaller node dialed (node ids are 100 + index here).
        let expected = if a < b { [(a1, b1)] } else { [(a2, b2)] };
        assert_eq!([(at_a[0], at_b[0])], expected, "the same link at both ends");
    }
}

#[test]
fn over_tcp_the_relay_guesses_the_listening_port_and_the_smaller_member_serves() {
    let mut net = Net::new(3);
    for i in 0..3 {
        net.act(i, |core, now| {
            core.config.auto_punch = false;
            core.set_listen_addrs(vec![address(i)], now)
        })
        .unwrap();
    }
    // Both dialed the relay over TCP from behind NATs, from ports nobody can dial.
    let (nat0, nat2): (std::net::SocketAddr, std::net::SocketAddr) = (
        "203.0.113.9:40000".parse().unwrap(),
        "198.51.100.7:50000".parse().unwrap(),
    );
    net.link_from_nat_tcp(0, 1, nat0);
    net.link_from_nat_tcp(2, 1, nat2);
    net.run_for(Duration::from_secs(2));
    let target = net.peer(2);
    net.act(0, |core, now| core.punch(&target, now)).unwrap();
    net.run_for(Duration::from_secs(1));
    // The NAT's address with the listening port (a NAT that keeps ports maps it there).
    let guess = |nat: std::net::SocketAddr, i: usize| {
        std::net::SocketAddr::new(nat.ip(), address(i).port())
    };
    let (a, c) = (net.punched_roles(0), net.punched_roles(2));
    assert_eq!(
        a.iter().map(|(x, _)| *x).collect::<Vec<_>>(),
        [guess(nat2, 2), address(2)]
    );
    assert_eq!(
        c.iter().map(|(x, _)| *x).collect::<Vec<_>>(),
        [guess(nat0, 0), address(0)]
    );
    // Exactly one of the two takes TLS's server part: the smaller peer name.
    let zero_serves = net.peer(0) < net.peer(2);
    assert!(a.iter().all(|(_, s)| *s == zero_serves));
    assert!(c.iter().all(|(_, s)| *s != zero_serves));
}
