//! Members: the list (local first, present only) and the member events (joined, connected,
//! updated, disconnected; left is in `credentials`).

use peergroup::{EventFilter, EventKind, GroupEvent, MemberChange, PeerName, Role};

use crate::support::*;

fn member_event(who: &PeerName, what: MemberChange) -> impl FnMut(&GroupEvent) -> Option<()> + '_ {
    move |e| match e {
        GroupEvent::MemberChanged { peer, change } if peer == who && *change == what => Some(()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_list_local_first_and_present_only() {
    bounded(async {
        let net = Net::form(
            &["Alice", "Bob", "Carol"],
            &[Role::InvitingMember, Role::Member],
        )
        .await;
        for (i, g) in net.groups.iter().enumerate() {
            let all = g.members(false).await.unwrap();
            assert_eq!(all.len(), 3, "{all:?}");
            assert!(all[0].local, "the local member comes first: {all:?}");
            assert_eq!(all[0].peer, net.peers[i].id);
            assert_eq!(all.iter().filter(|m| m.local).count(), 1);
            assert!(all.iter().all(|m| m.present && !m.revoked));
        }
        // What the others know about Bob.
        let at_carol = net.groups[2].members(true).await.unwrap();
        let bob = at_carol.iter().find(|m| m.peer == net.peers[1].id).unwrap();
        assert_eq!(bob.friendly_name, "Bob");
        assert!(bob.roles.contains(Role::InvitingMember));
        assert_eq!(bob.nodes.len(), 1, "{bob:?}");
        let (node, addrs) = &bob.nodes[0];
        assert_eq!(
            node.0,
            net.groups[1].node_id(),
            "the node of Bob's open group"
        );
        assert_eq!(addrs, &vec![net.peers[1].addr()]);
        let alice = at_carol.iter().find(|m| m.peer == net.peers[0].id).unwrap();
        assert!(alice.roles.contains(Role::Admin));

        // Carol leaves: still a member, no longer present.
        net.groups[2].close().await.unwrap();
        until("Alice no longer sees Carol present", async || {
            match net.groups[0].members(true).await.unwrap().len() {
                2 => Ok(()),
                n => Err(format!("{n} members present")),
            }
        })
        .await;
        let all = net.groups[0].members(false).await.unwrap();
        let carol = all.iter().find(|m| m.peer == net.peers[2].id).unwrap();
        assert!(!carol.present && carol.nodes.is_empty(), "{carol:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_events_joined_connected_updated_disconnected() {
    bounded(async {
        let (alice, a) = creator("Alice", &peergroup::GroupSpec::new("Friends")).await;
        let mut seen = a.events(EventFilter::kinds([EventKind::MemberChanged]));
        let bob = Peer::start("Bob").await;
        let b = invite_and_connect(&a, alice.addr(), &bob, Role::Member).await;
        expect(
            &mut seen,
            "Bob joined",
            member_event(&bob.id, MemberChange::Joined),
        )
        .await;
        expect(
            &mut seen,
            "Bob connected",
            member_event(&bob.id, MemberChange::Connected),
        )
        .await;

        // Presence attributes: an update, visible in the member list.
        b.set_presence_attributes("status=away").await.unwrap();
        expect(
            &mut seen,
            "Bob updated",
            member_event(&bob.id, MemberChange::Updated),
        )
        .await;
        let listed = a.members(true).await.unwrap();
        let entry = listed.iter().find(|m| m.peer == bob.id).unwrap();
        assert_eq!(entry.attributes, "status=away");
        // Oversized attributes are refused.
        assert!(b.set_presence_attributes(&"x".repeat(5000)).await.is_err());

        b.close().await.unwrap();
        expect(
            &mut seen,
            "Bob disconnected",
            member_event(&bob.id, MemberChange::Disconnected),
        )
        .await;
        // Back again: connected, not joined a second time.
        let b = bob.open(a.peer_name()).await;
        b.connect().await.unwrap();
        b.wait_ready(WAIT).await.unwrap();
        let mut changes = Vec::new();
        expect(&mut seen, "Bob back", |e| match e {
            GroupEvent::MemberChanged { peer, change } if *peer == bob.id => {
                changes.push(*change);
                (*change == MemberChange::Connected).then_some(())
            }
            _ => None,
        })
        .await;
        assert!(!changes.contains(&MemberChange::Joined), "{changes:?}");
    })
    .await;
}
