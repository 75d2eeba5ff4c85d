//! Unit tests of the core, driven by [`harness::Net`]: a few cores wired to each other on a
//! virtual clock, every message encoded and decoded as on the wire.

mod harness;

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
    assert!(!net.core(1).links[&c1].eager, "the link should be lazy");
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
