//! Invitations and joining: certificate invitations (good, tampered, foreign, expired, role
//! escalation), password invitations (right, wrong, rate limited).

use std::time::Duration;

use peergroup::{
    ErrorKind, EventFilter, EventKind, GroupEvent, GroupSpec, Invitation, MemberChange, Role,
};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_join_connect_and_sync() {
    bounded(async {
        let (alice, a) = creator("Alice", &GroupSpec::new("Friends")).await;
        let bob = Peer::start("Bob").await;
        let mut joined = a.events(EventFilter::kinds([EventKind::MemberChanged]));
        let before = a
            .add_record(note_type(), "", b"written before Bob came".to_vec(), HOUR)
            .await
            .unwrap();

        let invitation = a
            .create_invitation(&bob.info_xml().await, Role::Member, DAY)
            .await
            .unwrap();
        // The invitation says what it is for and where to go.
        let parsed = Invitation::parse(&invitation).unwrap();
        assert_eq!(parsed.group(), a.peer_name());
        assert_eq!(parsed.addresses().as_slice(), &[alice.addr()]);
        let info = parsed.info();
        assert_eq!(info.group_friendly_name, "Friends");
        assert_eq!(info.subject_peer_name.as_ref(), Some(&bob.id));
        assert_eq!(info.issuer_peer_name.as_ref(), Some(&alice.id));
        assert_eq!(info.roles, peergroup::Roles::one(Role::Member));

        let group = bob.infra.join(&bob.id, &invitation).await.unwrap();
        assert_eq!(&group, a.peer_name());
        // Joining twice is refused.
        assert_eq!(
            kind_of(bob.infra.join(&bob.id, &invitation).await),
            ErrorKind::AlreadyExists
        );
        let b = bob.open(&group).await;
        assert_eq!(b.roles(), peergroup::Roles::one(Role::Member));
        // The addresses in the invitation are enough: plain connect.
        b.connect().await.unwrap();
        let status = b.wait_ready(WAIT).await.unwrap();
        assert!(status.synchronized && status.has_connections);
        // Bob has what was there before him.
        let got = b.record(before.id).await.unwrap();
        assert_eq!(got.payload, b"written before Bob came");
        // Alice sees him join.
        expect(&mut joined, "Bob joined", |e| match e {
            GroupEvent::MemberChanged {
                peer,
                change: MemberChange::Joined,
            } if *peer == bob.id => Some(()),
            _ => None,
        })
        .await;
        let (da, db) = (a.digest().await.unwrap(), b.digest().await.unwrap());
        until("the replicas converge", async || {
            let (da, db) = (a.digest().await.unwrap(), b.digest().await.unwrap());
            if da == db {
                Ok(())
            } else {
                Err(format!(
                    "{} records at Alice, {} at Bob, digests differ",
                    da.1, db.1
                ))
            }
        })
        .await;
        assert!(da.1 > 0 && db.1 > 0);
    })
    .await;
}

/// `invitation` with one bit of the leaf certificate's signature flipped, written back into
/// the XML as it is (building it through the API would refuse the bad signature).
fn tampered(invitation: &str) -> String {
    use base64::Engine as _;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let parsed = Invitation::parse(invitation).unwrap();
    let pkcs7 = parsed.chain().unwrap().to_pkcs7();
    let original = b64.encode(&pkcs7);
    assert!(invitation.contains(&original));
    // The PKCS#7 ends with the leaf's signature and an empty SET (0x31 0x00).
    let mut bad = pkcs7.clone();
    let at = bad.len() - 3;
    bad[at] ^= 0x01;
    invitation.replace(&original, &b64.encode(&bad))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_foreign_and_expired_invitations_are_refused() {
    bounded(async {
        let (_alice, a) = creator("Alice", &GroupSpec::new("Friends")).await;
        let bob = Peer::start("Bob").await;
        let carol = Peer::start("Carol").await;
        let for_bob = a
            .create_invitation(&bob.info_xml().await, Role::Member, DAY)
            .await
            .unwrap();

        // Tampered: the signature no longer verifies.
        assert_eq!(
            kind_of(bob.infra.join(&bob.id, &tampered(&for_bob)).await),
            ErrorKind::InvitationNotTrusted
        );
        // Garbage is not an invitation either.
        assert_eq!(
            kind_of(
                bob.infra
                    .join(&bob.id, "<PEERINVITATION VERSION=\"1.0\"/>")
                    .await
            ),
            ErrorKind::InvitationNotTrusted
        );
        // Foreign: issued to Bob, used by Carol.
        assert_eq!(
            kind_of(carol.infra.join(&carol.id, &for_bob).await),
            ErrorKind::InvitationNotTrusted
        );
        // Expired: a one-second invitation used three seconds later. A sleep for a wall-clock
        // expiry: its end is at most 1 s after the creation (truncated to the second), so the
        // margin is 2 s, and load only makes the sleep longer.
        let short = a
            .create_invitation(
                &carol.info_xml().await,
                Role::Member,
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            kind_of(carol.infra.join(&carol.id, &short).await),
            ErrorKind::InvalidTimePeriod
        );
        // Nothing was stored for any of them.
        assert!(bob.infra.groups(&bob.id).await.unwrap().is_empty());
        assert!(carol.infra.groups(&carol.id).await.unwrap().is_empty());
        // The genuine one still works.
        bob.infra.join(&bob.id, &for_bob).await.unwrap();
        assert_eq!(bob.infra.groups(&bob.id).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_cannot_escalate_roles() {
    bounded(async {
        let net = Net::form(
            &["Alice", "Bob", "Carol"],
            &[Role::InvitingMember, Role::Member],
        )
        .await;
        let (b, c) = (&net.groups[1], &net.groups[2]);
        let dave = Peer::start("Dave").await;
        let info = dave.info_xml().await;
        // An inviting member may invite members and inviting members, not admins.
        assert_eq!(
            kind_of(b.create_invitation(&info, Role::Admin, DAY).await),
            ErrorKind::NotAuthorized
        );
        let invitation = b.create_invitation(&info, Role::Member, DAY).await.unwrap();
        // A member may not invite at all.
        assert_eq!(
            kind_of(c.create_invitation(&info, Role::Member, DAY).await),
            ErrorKind::NotAuthorized
        );
        // A bad identity info is refused.
        assert!(
            b.create_invitation("<PEERIDENTITYINFO/>", Role::Member, DAY)
                .await
                .is_err()
        );
        // Dave joins with Bob's invitation and gets in.
        let group = dave.infra.join(&dave.id, &invitation).await.unwrap();
        let d = dave.open(&group).await;
        d.connect_to(vec![net.peers[1].addr()]).await.unwrap();
        d.wait_ready(WAIT).await.unwrap();
        assert_eq!(d.roles(), peergroup::Roles::one(Role::Member));
    })
    .await;
}

fn password_spec(password: &[u8]) -> GroupSpec {
    let mut spec = GroupSpec::new("Club");
    spec.password = Some((password.to_vec(), Role::Member));
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_join_right_and_wrong() {
    bounded(async {
        let (_alice, a) = creator("Alice", &password_spec(b"open sesame")).await;
        let bob = Peer::start("Bob").await;
        let mut failures = a.events(EventFilter::kinds([EventKind::AuthenticationFailed]));
        let invitation = a.create_password_invitation().await.unwrap();
        // No secret inside.
        assert!(!invitation.contains("open sesame"));
        let parsed = Invitation::parse(&invitation).unwrap();
        assert!(parsed.chain().is_none());
        assert_eq!(parsed.group(), a.peer_name());

        // A certificate join of a password invitation is refused, and the other way round.
        assert_eq!(
            kind_of(bob.infra.join(&bob.id, &invitation).await),
            ErrorKind::InvalidArgument
        );

        assert_eq!(
            kind_of(
                bob.infra
                    .password_join(&bob.id, &invitation, b"open says me")
                    .await
            ),
            ErrorKind::WrongPassword
        );
        // Alice hears about the failed attempt.
        let reason = expect(&mut failures, "an authentication failure", |e| match e {
            GroupEvent::AuthenticationFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await;
        assert!(!reason.is_empty());
        assert!(bob.infra.groups(&bob.id).await.unwrap().is_empty());

        let group = bob
            .infra
            .password_join(&bob.id, &invitation, b"open sesame")
            .await
            .unwrap();
        assert_eq!(&group, a.peer_name());
        let b = bob.open(&group).await;
        assert_eq!(b.roles(), peergroup::Roles::one(Role::Member));
        b.connect().await.unwrap();
        b.wait_ready(WAIT).await.unwrap();
        let r = a
            .add_record(note_type(), "", b"welcome".to_vec(), HOUR)
            .await
            .unwrap();
        until("Bob has Alice's record", async || {
            b.record(r.id).await.is_ok()
        })
        .await;

        // A group without a password has no password invitation.
        let (_carol, c) = creator("Carol", &GroupSpec::new("Plain")).await;
        assert_eq!(
            kind_of(c.create_password_invitation().await),
            ErrorKind::InvalidArgument
        );
        let cert_invitation = c
            .create_invitation(&bob.info_xml().await, Role::Member, DAY)
            .await
            .unwrap();
        assert_eq!(
            kind_of(
                bob.infra
                    .password_join(&bob.id, &cert_invitation, b"open sesame")
                    .await
            ),
            ErrorKind::InvalidArgument
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guesses_are_rate_limited() {
    bounded(async {
        let (_alice, a) = creator("Alice", &password_spec(b"open sesame")).await;
        let invitation = a.create_password_invitation().await.unwrap();
        let mallory = Peer::start("Mallory").await;
        for guess in 0..5 {
            let pw = format!("guess {guess}");
            assert_eq!(
                kind_of(
                    mallory
                        .infra
                        .password_join(&mallory.id, &invitation, pw.as_bytes())
                        .await
                ),
                ErrorKind::WrongPassword,
                "attempt {guess}"
            );
        }
        // The sixth attempt within the minute is refused before any proof, even with the
        // right password.
        assert_eq!(
            kind_of(
                mallory
                    .infra
                    .password_join(&mallory.id, &invitation, b"open sesame")
                    .await
            ),
            ErrorKind::RateLimited
        );
        assert!(mallory.infra.groups(&mallory.id).await.unwrap().is_empty());
    })
    .await;
}

/// The `password` field of `peer`'s credentials file for `group` (base64), and its path.
fn stored_password(
    peer: &Peer,
    group: &peergroup::PeerName,
) -> (Option<String>, std::path::PathBuf) {
    let path = peergroup_identity::IdentityStore::open(peer.infra.identities().root())
        .unwrap()
        .groups_dir(&peer.id)
        .join(group.to_string())
        .join("credentials.json");
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let password = file["password"].as_str().map(str::to_owned);
    (password, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spake2_era_password_secret_is_reported_until_the_password_is_set_again() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    bounded(async {
        let alice = Peer::start("Alice").await;
        let group = alice
            .infra
            .create_group(&alice.id, &password_spec(b"open sesame"))
            .await
            .unwrap();
        // What a version before OPAQUE stored: the Argon2id cost (3 × u32 LE) and 32 bytes of
        // password-equivalent Argon2id output.
        let legacy: Vec<u8> = [64u32, 1, 1]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .chain([7u8; 32])
            .collect();
        let legacy = b64.encode(legacy);
        let (record, path) = stored_password(&alice, &group);
        assert!(record.is_some());
        let mut file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        file["password"] = serde_json::Value::String(legacy.clone());
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();

        // The group opens and connects; it takes no password joins, and says why where a
        // password invitation is made.
        let a = alice.open(&group).await;
        a.connect().await.unwrap();
        a.wait_ready(WAIT).await.unwrap();
        let err = a.create_password_invitation().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PasswordNotRegistered, "{err}");
        assert!(err.to_string().contains("set-password"), "{err}");
        // Nothing stored was lost or overwritten.
        assert_eq!(stored_password(&alice, &group).0, Some(legacy.clone()));

        // Only issuers of a password group set it; then joins work again.
        assert_eq!(
            kind_of(a.set_password(b"").await),
            ErrorKind::InvalidArgument
        );
        a.set_password(b"open sesame").await.unwrap();
        let stored = stored_password(&alice, &group).0.unwrap();
        assert_ne!(stored, legacy);
        let bytes = b64.decode(&stored).unwrap();
        assert!(!bytes.windows(11).any(|w| w == b"open sesame"));
        let invitation = a.create_password_invitation().await.unwrap();
        let bob = Peer::start("Bob").await;
        let joined = bob
            .infra
            .password_join(&bob.id, &invitation, b"open sesame")
            .await
            .unwrap();
        assert_eq!(&joined, a.peer_name());

        // A group without a password has none to set.
        let (_carol, c) = creator("Carol", &GroupSpec::new("Plain")).await;
        assert_eq!(
            kind_of(c.set_password(b"pw").await),
            ErrorKind::InvalidArgument
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_names_the_members_its_inviter_reached() {
    bounded(async {
        let (alice, a) = creator("Alice", &GroupSpec::new("Friends")).await;
        a.add_record(note_type(), "", b"Alice's".to_vec(), HOUR)
            .await
            .unwrap();
        let bob = Peer::start("Bob").await;
        let b = invite_and_connect(&a, alice.addr(), &bob, Role::InvitingMember).await;
        until("Bob is linked to Alice", async || {
            !b.neighbor_connections().await.unwrap().is_empty()
        })
        .await;
        let carol = Peer::start("Carol").await;
        let xml = b
            .create_invitation(&carol.info_xml().await, Role::Member, DAY)
            .await
            .unwrap();
        let named = Invitation::parse(&xml)
            .unwrap()
            .addresses()
            .as_slice()
            .to_vec();
        assert_eq!(
            named.first(),
            Some(&bob.addr()),
            "the inviter first: {named:?}"
        );
        assert!(
            named.contains(&alice.addr()),
            "and Alice, whom Bob dialed: {named:?}"
        );
        // Bob goes away: Carol, given nothing but the invitation, joins through Alice.
        b.close().await.unwrap();
        bob.infra.shutdown().await;
        let group = carol.infra.join(&carol.id, &xml).await.unwrap();
        let c = carol.open(&group).await;
        c.connect().await.unwrap();
        c.wait_ready(WAIT).await.unwrap();
        until("Carol holds Alice's record", async || {
            c.records(note_type())
                .await
                .unwrap()
                .iter()
                .any(|r| r.payload == b"Alice's")
        })
        .await;
    })
    .await;
}
