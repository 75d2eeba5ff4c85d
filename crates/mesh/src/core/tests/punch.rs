//! Hole punching through a common neighbor: the exchange, the simultaneous dials, and the
//! bounds a hostile member meets.

use std::time::Duration;

use super::harness::{Net, address};
use crate::core::ConnId;
use crate::core::{
    MAX_PUNCH_OFFERS, MAX_PUNCH_RELAYS_PER_MINUTE, MAX_PUNCH_TRIES, MAX_PUNCHES, PUNCH_SETTLE,
    PUNCH_TIMEOUT, PunchStep,
};
use crate::message::MeshMessage;

/// Nodes 0 and 2 each linked to node 1 only, all listening at their addresses. Also returns
/// the relay's end of its link to node 0 and node 2's end of its link to the relay.
fn line_with_links() -> (Net, ConnId, ConnId) {
    let mut net = Net::new(3);
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
