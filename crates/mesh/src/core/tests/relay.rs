//! Relayed streams through a common neighbor: bytes both ways end to end, credit-based
//! flow control, and the limits a relay enforces on hostile or greedy members.

use std::time::Duration;

use super::harness::Net;
use crate::core::{CircuitId, ConnId, MAX_RELAY_CHUNK, MAX_RELAYED_ENDS, Output, RELAY_WINDOW};
use crate::message::MeshMessage;

/// Nodes 0 and 2 each linked to node 1 only. Returns the net, node 0's link to the relay and
/// the relay's end of it.
fn line() -> (Net, ConnId, ConnId) {
    let mut net = Net::new(3);
    for i in 0..3 {
        net.act(i, |core, _| core.config.auto_punch = false);
    }
    let (zero_to_relay, relay_from_0) = net.link(0, 1);
    net.link(2, 1);
    net.run_for(Duration::from_secs(2));
    (net, zero_to_relay, relay_from_0)
}

/// The circuit node `i` was told of by its last `RelayStream` output.
fn stream_of(out: &[Output]) -> Option<(CircuitId, bool)> {
    out.iter().rev().find_map(|o| match o {
        Output::RelayStream {
            circuit, initiator, ..
        } => Some((*circuit, *initiator)),
        _ => None,
    })
}

fn data_of(out: &[Output]) -> Vec<u8> {
    out.iter()
        .flat_map(|o| match o {
            Output::RelayData { data, .. } => data.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn a_relay_carries_a_stream_both_ways_within_the_credit() {
    let (mut net, _, _) = line();
    let target = net.peer(2);
    let a = net.act(0, |core, _| core.relay(&target, None)).unwrap();
    net.run_for(Duration::from_millis(10));
    assert_eq!(stream_of(&net.relay_out(0)), Some((a, true)));
    let (c, initiator) = stream_of(&net.relay_out(2)).expect("the target was reached");
    assert!(!initiator);
    assert_eq!(net.core(1).stats().relays_served, 1);
    // Bytes go through, both ways.
    net.act(0, |core, _| core.relay_send(a, b"client hello".to_vec()))
        .unwrap();
    net.act(2, |core, _| core.relay_send(c, b"server hello".to_vec()))
        .unwrap();
    net.run_for(Duration::from_millis(10));
    assert_eq!(data_of(&net.relay_out(2)), b"client hello");
    assert_eq!(data_of(&net.relay_out(0)), b"server hello");
    // Credit: a sender cannot go past the window until the receiver took what it sent.
    let chunk = vec![7u8; MAX_RELAY_CHUNK];
    let mut sent = 12usize;
    while sent + MAX_RELAY_CHUNK <= RELAY_WINDOW as usize {
        net.act(0, |core, _| core.relay_send(a, chunk.clone()))
            .unwrap();
        sent += MAX_RELAY_CHUNK;
    }
    assert!(
        net.act(0, |core, _| core.relay_send(a, chunk.clone()))
            .is_err(),
        "sending past the credit is refused"
    );
    net.run_for(Duration::from_millis(10));
    assert_eq!(data_of(&net.relay_out(2)).len(), sent - 12);
    net.act(2, |core, _| core.relay_consumed(c, sent as u32));
    net.run_for(Duration::from_millis(10));
    let credit: u32 = net
        .relay_out(0)
        .iter()
        .map(|o| match o {
            Output::RelayCredit { bytes, .. } => *bytes,
            _ => 0,
        })
        .sum();
    assert_eq!(
        credit as usize, sent,
        "the credit comes back as the data is taken"
    );
    net.act(0, |core, _| core.relay_send(a, chunk.clone()))
        .unwrap();
    // Closing one end closes the other, and the relay forgets the circuit.
    net.act(0, |core, _| core.relay_close(a));
    net.run_for(Duration::from_millis(10));
    assert!(
        net.relay_out(2)
            .iter()
            .any(|o| matches!(o, Output::RelayClosed { circuit } if *circuit == c))
    );
    assert_eq!(net.core(1).relays.relayed(), 0);
    assert_eq!(net.core(2).relays.ends(), 0);
}

#[test]
fn a_sender_that_ignores_its_credit_loses_the_circuit() {
    let (mut net, zero_to_relay, relay_from_0) = line();
    let target = net.peer(2);
    let a = net.act(0, |core, _| core.relay(&target, None)).unwrap();
    net.run_for(Duration::from_millis(10));
    assert_eq!(a.conn, zero_to_relay);
    // A hostile node 0 pushes past the window without waiting for credit (raw messages,
    // past its own core's check).
    let chunks = RELAY_WINDOW as usize / MAX_RELAY_CHUNK + 1;
    for _ in 0..chunks {
        net.deliver(
            1,
            relay_from_0,
            MeshMessage::RelayData {
                circuit: a.id,
                data: vec![0; MAX_RELAY_CHUNK],
            },
        );
    }
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.core(1).relays.relayed(), 0, "the relay cut the circuit");
    assert_eq!(net.core(1).stats().relays_cut, 1);
    assert!(
        net.relay_out(2)
            .iter()
            .any(|o| matches!(o, Output::RelayClosed { .. }))
    );
    // What reached the target stayed within the window.
    assert!(data_of(&net.relay_out(2)).len() <= RELAY_WINDOW as usize);
}

#[test]
fn a_relay_enforces_its_limits() {
    let (mut net, _, relay_from_0) = line();
    let target = net.peer(2);
    // Per member: node 0 may hold only so many circuits through the relay (one here; the
    // target, for its part, takes one stream per member).
    net.act(1, |core, _| core.config.relay.max_circuits_per_member = 1);
    for id in 0..3 {
        net.deliver(
            1,
            relay_from_0,
            MeshMessage::RelayOpen {
                circuit: 1000 + id,
                to: target.clone(),
            },
        );
    }
    net.run_for(Duration::from_millis(10));
    assert_eq!(net.core(1).stats().relays_served, 1);
    assert_eq!(net.core(1).stats().relays_refused, 2, "over the limit");
    assert_eq!(net.core(1).relays.relayed(), 1);
    assert_eq!(net.core(2).relays.ends(), 1);
    assert!(net.core(2).relays.ends() <= MAX_RELAYED_ENDS);
    // Duration: the relay closes circuits at their time limit.
    let max = net.core(1).config.relay.max_duration;
    net.run_for(max + Duration::from_secs(1));
    assert_eq!(net.core(1).relays.relayed(), 0);
    assert_eq!(net.core(1).stats().relays_cut, 1);
    assert_eq!(net.core(2).relays.ends(), 0, "the target was told");
    // Bytes: a circuit is cut past its byte limit.
    net.act(1, |core, _| {
        core.config.relay.max_bytes = 3 * MAX_RELAY_CHUNK as u64
    });
    let a = net.act(0, |core, _| core.relay(&target, None)).unwrap();
    net.run_for(Duration::from_millis(10));
    let (c, _) = stream_of(&net.relay_out(2)).unwrap();
    for _ in 0..4 {
        net.act(0, |core, _| core.relay_send(a, vec![1; MAX_RELAY_CHUNK]))
            .ok();
        net.run_for(Duration::from_millis(10));
        net.act(2, |core, _| core.relay_consumed(c, MAX_RELAY_CHUNK as u32));
        net.run_for(Duration::from_millis(10));
    }
    assert_eq!(net.core(1).relays.relayed(), 0, "cut at its byte limit");
    assert!(data_of(&net.relay_out(2)).len() <= 3 * MAX_RELAY_CHUNK);
    // A relay that does not serve refuses.
    net.act(1, |core, _| core.config.relay.serve = false);
    net.act(0, |core, _| core.relay(&target, None)).ok();
    net.run_for(Duration::from_millis(10));
    assert!(
        net.relay_out(0)
            .iter()
            .any(|o| matches!(o, Output::RelayClosed { .. }))
    );
    assert_eq!(net.core(1).relays.relayed(), 0);
}

#[test]
fn an_oversized_relay_chunk_is_a_protocol_error() {
    let m = MeshMessage::RelayData {
        circuit: 1,
        data: vec![0; MAX_RELAY_CHUNK + 1],
    };
    assert!(MeshMessage::decode(&m.encode()).is_err());
}

#[test]
fn a_direct_link_replaces_a_relayed_one_whoever_dials() {
    for direct_dialer in [0, 2] {
        let (mut net, _, _) = line();
        let (relayed_0, relayed_2) = net.link_relayed(0, 2);
        net.run_for(Duration::from_secs(1));
        let linked = |net: &Net, i: usize, conn: ConnId| {
            net.core(i).neighbors().iter().any(|(c, _, _)| *c == conn)
        };
        assert!(linked(&net, 0, relayed_0) && linked(&net, 2, relayed_2));
        // A punch succeeds later: a direct link comes up, from either side.
        let (d_dialer, d_acceptor) = net.link(direct_dialer, 2 - direct_dialer);
        net.run_for(Duration::from_secs(1));
        let (d0, d2) = if direct_dialer == 0 {
            (d_dialer, d_acceptor)
        } else {
            (d_acceptor, d_dialer)
        };
        assert!(
            linked(&net, 0, d0) && linked(&net, 2, d2),
            "the direct link stays"
        );
        assert!(
            !linked(&net, 0, relayed_0) && !linked(&net, 2, relayed_2),
            "the relayed link is gone at both ends"
        );
        let peer_2 = net.peer(2);
        let to_2 = net
            .core(0)
            .neighbors()
            .iter()
            .filter(|(_, p, _)| *p == peer_2)
            .count();
        assert_eq!(to_2, 1);
    }
}

#[test]
fn when_every_punch_fails_the_common_neighbor_relays() {
    let (mut net, zero_to_relay, _) = line();
    for i in 0..3 {
        net.act(i, |core, now| {
            core.set_listen_addrs(vec![super::harness::address(i)], now)
        })
        .unwrap();
    }
    let target = net.peer(2);
    net.act(0, |core, now| core.punch(&target, now)).unwrap();
    // Nothing links the dialed addresses here: the relay opens soon after the first dials,
    // long before that try's settle time ends.
    net.run_for(crate::core::PUNCH_RELAY_AFTER + Duration::from_millis(500));
    assert!(
        crate::core::PUNCH_RELAY_AFTER + Duration::from_millis(500) < crate::core::PUNCH_SETTLE
    );
    assert_eq!(net.core(0).stats().punches, 1, "one try so far");
    let (a, initiator) = stream_of(&net.relay_out(0)).expect("a relayed stream was asked for");
    assert!(initiator);
    assert_eq!(a.conn, zero_to_relay, "through the neighbor that answered");
    assert!(stream_of(&net.relay_out(2)).is_some_and(|(_, i)| !i));
    assert_eq!(net.core(1).relays.relayed(), 1);
    // The tries go on (a direct link may still replace the relayed one), without asking for
    // another relay.
    net.run_for(Duration::from_secs(60));
    assert_eq!(
        net.core(0).stats().punches,
        u64::from(crate::core::MAX_PUNCH_TRIES)
    );
    assert_eq!(
        net.core(1).relays.relayed(),
        1,
        "still the one relayed stream"
    );
}

#[test]
fn a_member_reached_through_a_relay_is_punched_to_again_later() {
    let (mut net, _, _) = line();
    for i in 0..3 {
        net.act(i, |core, now| {
            core.config.auto_punch = true;
            core.set_listen_addrs(vec![super::harness::address(i)], now)
        })
        .unwrap();
    }
    net.link_relayed(0, 2);
    // Maintenance finds the relayed link and punches to replace it.
    net.run_for(Duration::from_secs(40));
    let dialed: Vec<_> = net.punched(0).into_iter().map(|(a, _)| a).collect();
    assert!(
        dialed.contains(&super::harness::address(2)),
        "no punch to the member reached through a relay: {dialed:?}"
    );
}

#[test]
fn two_streams_asked_for_at_once_leave_the_smaller_members() {
    let (mut net, zero_to_relay, _) = line();
    let (p0, p2) = (net.peer(0), net.peer(2));
    let mine = net.act(0, |core, _| core.relay(&p2, None)).unwrap();
    net.relay_out(0);
    // Node 2 asked at the same moment: its stream reaches node 0 after node 0 asked.
    net.deliver(
        0,
        zero_to_relay,
        MeshMessage::RelayIncoming {
            circuit: 77,
            from: p2.clone(),
        },
    );
    let out = net.relay_out(0);
    let closed_mine = out
        .iter()
        .any(|o| matches!(o, Output::RelayClosed { circuit } if *circuit == mine));
    let took_theirs = stream_of(&out).is_some_and(|(c, initiator)| c.id == 77 && !initiator);
    if p0 < p2 {
        assert!(
            !closed_mine && !took_theirs,
            "the smaller member keeps its own"
        );
    } else {
        assert!(
            closed_mine && took_theirs,
            "the larger member takes the other's"
        );
    }
    assert_eq!(net.core(0).relays.ends(), 1);
}

#[test]
fn an_invitation_names_the_members_we_reached_at_their_listen_addresses() {
    use super::harness::address;
    let mut net = Net::new(4);
    let public: std::net::SocketAddr = "11.18.0.10:3587".parse().unwrap();
    for i in 0..4 {
        net.act(i, |core, now| {
            core.config.auto_punch = false;
            let mut listen = vec![address(i)];
            if i == 1 {
                listen.push(public);
            }
            core.set_listen_addrs(listen, now)
        })
        .unwrap();
    }
    // 0 dials 1 (at a listen address of 1's), 3 dials 0, and 2 is relayed to 0.
    net.link(0, 1);
    net.link(3, 0);
    net.link_relayed(0, 2);
    net.run_for(Duration::from_secs(2));
    assert_eq!(
        net.core(0).bootstrap_addrs(64),
        vec![address(0), address(1)],
        "ours, then 1 (dialed and reached); not 3 (it dialed us) nor 2 (relayed)"
    );
    assert_eq!(
        net.core(3).bootstrap_addrs(64),
        vec![address(3), address(0)]
    );
    // Ours take at most half the room when there is a member to name.
    net.act(0, |core, now| {
        core.set_listen_addrs((0..6).map(|k| address(10 + k)).collect(), now)
    })
    .unwrap();
    assert_eq!(
        net.core(0).bootstrap_addrs(4),
        vec![address(10), address(11), address(1)]
    );
    assert_eq!(net.core(0).bootstrap_addrs(1), vec![address(10)]);
    // Public addresses go before private ones.
    assert!(crate::core::local::is_public(public.ip()));
    for private in [
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "100.64.0.1",
        "127.0.0.1",
        "fe80::1",
        "fd00::1",
        "::1",
    ] {
        assert!(
            !crate::core::local::is_public(private.parse().unwrap()),
            "{private}"
        );
    }
}
