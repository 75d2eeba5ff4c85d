//! Credentials and revocation: an admin changes a member's role through stored credentials;
//! an admin revokes a member, end to end; non-admins may do neither.

use peergroup::{
    ConnectionChange, ErrorKind, EventFilter, EventKind, GroupEvent, Invitation, MemberChange,
    RecordType, RevocationTarget, Role, Roles,
};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_credentials_change_a_members_role_at_its_next_connect() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob", "Carol"]).await;
        let (a, b) = (&net.groups[0], &net.groups[1]);
        let (bob, carol) = (&net.peers[1], &net.peers[2]);
        assert_eq!(b.roles(), Roles::one(Role::Member));
        // A member may neither invite nor issue.
        assert_eq!(
            kind_of(
                b.create_invitation(&carol.info_xml().await, Role::Member, DAY)
                    .await
            ),
            ErrorKind::NotAuthorized
        );
        assert_eq!(
            kind_of(
                b.issue_credentials(&carol.id, Some(Roles::one(Role::Admin)), None, false)
                    .await
            ),
            ErrorKind::NotAuthorized
        );
        // Nobody can issue for a stranger.
        let stranger = Peer::start("Stranger").await;
        assert_eq!(
            kind_of(a.issue_credentials(&stranger.id, None, None, false).await),
            ErrorKind::IdentityNotFound
        );

        // Alice makes Bob an inviting member and stores it in the group.
        let xml = a
            .issue_credentials(
                &bob.id,
                Some(Roles::one(Role::InvitingMember)),
                Some(DAY),
                true,
            )
            .await
            .unwrap();
        let issued = Invitation::parse(&xml).unwrap();
        let chain = issued.chain().unwrap();
        assert_eq!(chain.leaf().subject_peer(), &bob.id);
        assert_eq!(chain.leaf().roles(), Roles::one(Role::InvitingMember));
        // The new certificate reaches Bob's copy of the database.
        until("Bob's copy holds his new certificate", async || {
            b.records(RecordType::MEMBERSHIP)
                .await
                .unwrap()
                .iter()
                .any(|r| {
                    peergroup_record_db::reserved::MembershipPayload::chain_from_payload(&r.payload)
                        .is_ok_and(|c| {
                            c.leaf().subject_peer() == &bob.id
                                && c.leaf().roles().contains(Role::InvitingMember)
                        })
                })
        })
        .await;
        // Still a member until he reconnects.
        assert_eq!(b.roles(), Roles::one(Role::Member));
        b.close().await.unwrap();
        let b = bob.open(&net.name()).await;
        b.connect().await.unwrap();
        b.wait_ready(WAIT).await.unwrap();
        assert_eq!(b.roles(), Roles::one(Role::InvitingMember));
        assert_eq!(
            bob.infra.groups(&bob.id).await.unwrap()[0].roles,
            vec!["inviting-member".to_owned()],
            "the stored credentials changed too"
        );
        // The others see the new role.
        until("Alice lists Bob as an inviting member", async || {
            let listed = a.members(false).await.unwrap();
            match listed.iter().find(|m| m.peer == bob.id) {
                Some(m) if m.roles.contains(Role::InvitingMember) => Ok(()),
                Some(m) => Err(format!("Bob listed with roles {:?}", m.roles)),
                None => Err(format!("Bob not listed among {} members", listed.len())),
            }
        })
        .await;
        // And he may now invite.
        let dave = Peer::start("Dave").await;
        b.create_invitation(&dave.info_xml().await, Role::Member, DAY)
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_end_to_end() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob", "Dave"]).await;
        let (a, b, d) = (&net.groups[0], &net.groups[1], &net.groups[2]);
        let (alice, dave) = (&net.peers[0], &net.peers[2]);
        let old = d
            .add_record(note_type(), "", b"said before".to_vec(), HOUR)
            .await
            .unwrap();
        until("Bob has Dave's note", async || {
            b.record(old.id).await.is_ok()
        })
        .await;

        // Only admins revoke.
        assert_eq!(
            kind_of(
                b.revoke(RevocationTarget::Peer(dave.id.clone()), "no")
                    .await
            ),
            ErrorKind::NotAuthorized
        );

        let mut bob_members = b.events(EventFilter::kinds([EventKind::MemberChanged]));
        let mut dave_links = d.events(EventFilter::kinds([EventKind::NeighborConnection]));
        let mut alice_auth = a.events(EventFilter::kinds([EventKind::AuthenticationFailed]));
        let mut alice_notes =
            a.events(EventFilter::kinds([EventKind::RecordChanged]).record_types([note_type()]));
        let revocation = a
            .revoke(RevocationTarget::Peer(dave.id.clone()), "spam")
            .await
            .unwrap();
        assert_eq!(revocation.record_type, RecordType::REVOCATION);

        // Everyone sees Dave leave; his live connections are closed.
        expect(&mut bob_members, "Dave left", |e| match e {
            GroupEvent::MemberChanged {
                peer,
                change: MemberChange::Left,
            } if *peer == dave.id => Some(()),
            _ => None,
        })
        .await;
        expect(&mut dave_links, "Dave's connections closed", |e| match e {
            GroupEvent::NeighborConnection {
                change: ConnectionChange::Disconnected(_),
                ..
            } => Some(()),
            _ => None,
        })
        .await;
        until("Dave has no connections", async || {
            !d.status().has_connections
        })
        .await;
        let listed = a.members(false).await.unwrap();
        assert!(
            listed.iter().any(|m| m.peer == dave.id && m.revoked)
                || !listed.iter().any(|m| m.peer == dave.id),
            "{listed:?}"
        );

        // His old records stay.
        for g in [a, b] {
            assert_eq!(g.record(old.id).await.unwrap().payload, b"said before");
        }
        // His new ones do not get in: refused by his own copy if it knows, and by everyone
        // else's validation if it does not.
        if let Ok(new) = d
            .add_record(note_type(), "", b"still here?".to_vec(), HOUR)
            .await
        {
            let file = dave.dir.path().join("dave.pgdb");
            d.export_database(&file).await.unwrap();
            b.close().await.unwrap();
            let bob = &net.peers[1];
            bob.infra
                .import_database(
                    &bob.id,
                    &net.name(),
                    &file,
                    peergroup_record_db::export::ImportMode::Partial,
                )
                .await
                .unwrap();
            let b = bob.open(&net.name()).await;
            assert_eq!(
                kind_of(b.record(new.id).await),
                ErrorKind::RecordNotFound,
                "Bob's copy refuses Dave's new record"
            );
            assert!(b.record(old.id).await.is_ok());
        }
        // Nothing of his reaches Alice (a negative check: a short watch, which load only
        // makes easier to pass).
        expect_none(
            &mut alice_notes,
            "note from the revoked Dave at Alice",
            |e| match e {
                GroupEvent::RecordChanged { record, .. } => {
                    record.creator == dave.id && record.id != old.id
                }
                _ => false,
            },
        )
        .await;
        assert_eq!(a.records(note_type()).await.unwrap().len(), 1);

        // Dave reconnects: refused at the handshake, and Alice hears of it.
        d.close().await.unwrap();
        let d = dave.open(&net.name()).await;
        d.connect_to(vec![alice.addr()]).await.unwrap();
        let reason = expect(&mut alice_auth, "Dave refused", |e| match e {
            GroupEvent::AuthenticationFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await;
        assert!(!reason.is_empty());
        // Refused: he must not get ready (a negative check, so a short watch).
        assert_eq!(
            kind_of(d.wait_ready(QUIET).await),
            ErrorKind::ConnectionFailed
        );
        assert!(!d.status().has_connections);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_one_certificate_by_serial() {
    bounded(async {
        let net = Net::form(&["Alice", "Bob", "Carol"], &[Role::Admin, Role::Member]).await;
        let (b, c) = (&net.groups[1], &net.groups[2]);
        let carol = &net.peers[2];
        // Another admin revokes Carol's certificate by its serial number.
        let serial = chain_of(carol, &net.name()).await.leaf().serial().to_vec();
        b.revoke(RevocationTarget::Serial(serial), "lost laptop")
            .await
            .unwrap();
        until("Carol is cut off", async || !c.status().has_connections).await;
        // She cannot come back with it.
        c.close().await.unwrap();
        let c = carol.open(&net.name()).await;
        c.connect_to(vec![net.peers[0].addr()]).await.unwrap();
        // Refused: she must not get ready (a negative check, so a short watch).
        assert_eq!(
            kind_of(c.wait_ready(QUIET).await),
            ErrorKind::ConnectionFailed
        );
    })
    .await;
}
