//! `Infrastructure`: start and shutdown, identities, addresses, creating, listing, opening and
//! deleting groups, configuration export and import.

use peergroup::{
    ErrorKind, EventFilter, EventKind, GroupEvent, GroupSpec, Infrastructure, InfrastructureConfig,
    MemberChange, Role,
};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_listens_on_loopback_and_manages_identities() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let infra = Infrastructure::start(config(dir.path().join("data")))
            .await
            .unwrap();
        let addrs = infra.local_addrs();
        assert_eq!(addrs.len(), 1, "{addrs:?}");
        assert!(addrs[0].ip().is_loopback() && addrs[0].port() != 0);
        // Something really listens there.
        tokio::net::TcpStream::connect(addrs[0]).await.unwrap();

        let ids = infra.identities();
        let alice = ids.create("Alice", None).await.unwrap();
        let bob = ids.create("Bob", Some("laptop")).await.unwrap();
        let listed: Vec<_> = ids.list().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            ids.get(alice.peer_name()).await.unwrap().friendly_name(),
            "Alice"
        );
        assert_eq!(ids.find("Bob").await.unwrap().peer_name(), bob.peer_name());
        assert!(infra.groups(alice.peer_name()).await.unwrap().is_empty());
        // The identities speak the facade's one error type.
        let missing: peergroup::Error = ids.find("Nobody").await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::IdentityNotFound, "{missing}");
        let exported = ids.export(bob.peer_name(), b"pw").await.unwrap();
        let wrong: peergroup::Error = ids
            .import(Some(bob.peer_name()), &exported, b"not pw")
            .await
            .unwrap_err();
        assert_eq!(wrong.kind(), ErrorKind::WrongPassword, "{wrong}");

        // A second infrastructure on the same directory sees the same identities.
        infra.shutdown().await;
        let again = Infrastructure::start(InfrastructureConfig::offline(dir.path().join("data")))
            .await
            .unwrap();
        assert!(
            again.local_addrs().is_empty(),
            "an offline infrastructure does not listen"
        );
        assert_eq!(again.identities().list().await.unwrap().len(), 2);
        again.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_listening_and_closes_open_groups() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob"]).await;
        let (alice, bob) = (&net.peers[0], &net.peers[1]);
        let mut seen = net.groups[0].events(EventFilter::kinds([EventKind::MemberChanged]));
        let bob_addr = bob.addr();
        bob.infra.clone().shutdown().await;
        // Bob's group was closed: his presence went away, cleanly.
        expect(&mut seen, "Bob disconnected", |e| match e {
            GroupEvent::MemberChanged {
                peer,
                change: MemberChange::Disconnected,
            } if *peer == bob.id => Some(()),
            _ => None,
        })
        .await;
        let present = net.groups[0].members(true).await.unwrap();
        assert_eq!(present.len(), 1, "{present:?}");
        assert_eq!(present[0].peer, alice.id);
        // And nothing listens at his address any more.
        until("Bob's endpoint refuses connections", async || {
            tokio::net::TcpStream::connect(bob_addr).await.is_err()
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_group_and_list_groups() {
    bounded(async {
        let alice = Peer::start("Alice").await;
        let bob = Peer::start("Bob").await;
        let mut spec = GroupSpec::new("Friends");
        spec.comment = "weekend plans".into();
        let friends = alice.infra.create_group(&alice.id, &spec).await.unwrap();
        let mut secret = GroupSpec::new("Club");
        secret.password = Some((b"open sesame".to_vec(), Role::Member));
        let club = alice.infra.create_group(&alice.id, &secret).await.unwrap();
        assert_ne!(friends, club);

        let listed = alice.infra.groups(&alice.id).await.unwrap();
        assert_eq!(listed.len(), 2);
        // Sorted by friendly name.
        assert_eq!(listed[0].friendly_name, "Club");
        assert_eq!(listed[1].friendly_name, "Friends");
        for g in &listed {
            assert!(g.owner, "the creator holds the group key");
            assert_eq!(g.identity, alice.id);
            assert_eq!(g.roles.len(), 1);
        }

        // The properties are as specified.
        let g = alice.open(&friends).await;
        let props = g.properties().await.unwrap();
        assert_eq!(props.friendly_name, "Friends");
        assert_eq!(props.comment, "weekend plans");
        assert_eq!(props.creator, alice.id);
        assert!(!props.password_auth);
        let c = alice.open(&club).await;
        let props = c.properties().await.unwrap();
        assert!(props.password_auth);
        assert_eq!(props.password_role, Some(Role::Member));

        // A joined member lists it too, without ownership.
        g.connect().await.unwrap();
        let invitation = g
            .create_invitation(&bob.info_xml().await, Role::Member, DAY)
            .await
            .unwrap();
        bob.infra.join(&bob.id, &invitation).await.unwrap();
        let bobs = bob.infra.groups(&bob.id).await.unwrap();
        assert_eq!(bobs.len(), 1);
        assert_eq!(bobs[0].group, friends);
        assert!(!bobs[0].owner);
        assert_eq!(bobs[0].friendly_name, "Friends");

        // Unknown identities are refused.
        assert_eq!(
            kind_of(alice.infra.groups(&bob.id).await),
            ErrorKind::IdentityNotFound
        );
        assert_eq!(
            kind_of(alice.infra.create_group(&bob.id, &spec).await),
            ErrorKind::IdentityNotFound
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_group_twice_is_in_use_until_closed() {
    bounded(async {
        let alice = Peer::start("Alice").await;
        let bob = Peer::start("Bob").await;
        let group = alice
            .infra
            .create_group(&alice.id, &GroupSpec::new("Friends"))
            .await
            .unwrap();
        let g = alice.open(&group).await;
        assert_eq!(
            kind_of(alice.infra.open_group(&alice.id, &group).await),
            ErrorKind::GroupInUse
        );
        g.close().await.unwrap();
        let again = alice.open(&group).await;
        assert_eq!(again.peer_name(), &group);
        assert_eq!(again.identity(), &alice.id);
        // Someone who is not a member cannot open it.
        assert_eq!(
            kind_of(bob.infra.open_group(&bob.id, &group).await),
            ErrorKind::GroupNotFound
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_group_is_refused_while_open() {
    bounded(async {
        let alice = Peer::start("Alice").await;
        let group = alice
            .infra
            .create_group(&alice.id, &GroupSpec::new("Friends"))
            .await
            .unwrap();
        let g = alice.open(&group).await;
        g.connect().await.unwrap();
        assert_eq!(
            kind_of(alice.infra.delete_group(&alice.id, &group).await),
            ErrorKind::GroupInUse
        );
        assert_eq!(alice.infra.groups(&alice.id).await.unwrap().len(), 1);
        g.close().await.unwrap();
        alice.infra.delete_group(&alice.id, &group).await.unwrap();
        assert!(alice.infra.groups(&alice.id).await.unwrap().is_empty());
        assert_eq!(
            kind_of(alice.infra.delete_group(&alice.id, &group).await),
            ErrorKind::GroupNotFound
        );
        assert_eq!(
            kind_of(alice.infra.open_group(&alice.id, &group).await),
            ErrorKind::GroupNotFound
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_config_with_a_password() {
    bounded(async {
        let alice = Peer::start("Alice").await;
        let group = alice
            .infra
            .create_group(&alice.id, &GroupSpec::new("Friends"))
            .await
            .unwrap();
        let config_xml = alice
            .infra
            .export_config(&alice.id, &group, b"correct horse")
            .await
            .unwrap();
        assert!(config_xml.contains("PEERGROUPCONFIG"), "{config_xml}");

        // Alice's second machine: no identity yet.
        let laptop = Peer::start("Laptop").await;
        assert_eq!(
            kind_of(
                laptop
                    .infra
                    .import_config(&config_xml, b"correct horse", false)
                    .await
            ),
            ErrorKind::IdentityNotFound
        );
        // The identity travels separately, sealed under its own password.
        let sealed = alice
            .infra
            .identities()
            .export(&alice.id, b"identity pw")
            .await
            .unwrap();
        laptop
            .infra
            .identities()
            .import(Some(&alice.id), &sealed, b"identity pw")
            .await
            .unwrap();
        // The wrong password does not open the group key, and nothing is stored.
        assert_eq!(
            kind_of(
                laptop
                    .infra
                    .import_config(&config_xml, b"wrong", false)
                    .await
            ),
            ErrorKind::WrongPassword
        );
        assert!(laptop.infra.groups(&alice.id).await.unwrap().is_empty());
        // The right one does.
        let (identity, imported) = laptop
            .infra
            .import_config(&config_xml, b"correct horse", false)
            .await
            .unwrap();
        assert_eq!(
            (identity.clone(), imported.clone()),
            (alice.id.clone(), group.clone())
        );
        let listed = laptop.infra.groups(&alice.id).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].owner, "the group key came along");
        assert_eq!(listed[0].friendly_name, "Friends");
        // Importing again needs `overwrite`.
        assert_eq!(
            kind_of(
                laptop
                    .infra
                    .import_config(&config_xml, b"correct horse", false)
                    .await
            ),
            ErrorKind::AlreadyExists
        );
        laptop
            .infra
            .import_config(&config_xml, b"correct horse", true)
            .await
            .unwrap();
        // Not while the group is open there.
        let g = laptop.infra.open_group(&alice.id, &group).await.unwrap();
        assert_eq!(
            kind_of(
                laptop
                    .infra
                    .import_config(&config_xml, b"correct horse", true)
                    .await
            ),
            ErrorKind::GroupInUse
        );
        g.close().await.unwrap();
        // A damaged configuration is refused: its chain, or its sealed group key.
        let tag = "dt:dt=\"bin.base64\">";
        assert_eq!(config_xml.matches(tag).count(), 2, "{config_xml}");
        let damaged_chain = config_xml.replacen(tag, &format!("{tag}AAAA"), 1);
        assert_eq!(
            kind_of(
                laptop
                    .infra
                    .import_config(&damaged_chain, b"correct horse", true)
                    .await
            ),
            ErrorKind::InvitationNotTrusted
        );
        let key_at = config_xml.rfind(tag).unwrap() + tag.len();
        let flip = |at: usize| {
            let mut xml = config_xml.clone();
            let c = if &xml[at..=at] == "A" { "B" } else { "A" };
            xml.replace_range(at..=at, c);
            xml
        };
        // The seal's header (its magic) …
        assert_eq!(
            kind_of(
                laptop
                    .infra
                    .import_config(&flip(key_at + 2), b"correct horse", true)
                    .await
            ),
            ErrorKind::Corrupt
        );
        // … or its ciphertext: an authenticated seal cannot tell that from a wrong password.
        assert_eq!(
            kind_of(
                laptop
                    .infra
                    .import_config(&flip(key_at + 84), b"correct horse", true)
                    .await
            ),
            ErrorKind::WrongPassword
        );
    })
    .await;
}

/// One node per data directory: a second infrastructure on a directory in use is refused
/// (the lock is the OS's, so this holds across processes too; the CLI's tests show that),
/// and the directory is free again once the first is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_serves_one_node_at_a_time() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = Infrastructure::start(config(data.clone())).await.unwrap();
        let second = Infrastructure::start(config(data.clone())).await;
        let err = second.expect_err("a second node on the directory must be refused");
        assert_eq!(err.kind(), ErrorKind::DirectoryInUse, "{err}");
        assert!(
            err.to_string().contains("in use by another running node"),
            "{err}"
        );
        // Offline tools are nodes too: they would write under the running one's feet.
        let offline = Infrastructure::start(InfrastructureConfig::offline(&data)).await;
        assert_eq!(
            offline.err().map(|e| e.kind()),
            Some(ErrorKind::DirectoryInUse)
        );
        first.shutdown().await;
        Infrastructure::start(config(data))
            .await
            .expect("free once the first is gone");
    })
    .await;
}

/// A taken port: by default the node listens on a free one of the same address; with
/// `port_fallback` off it fails, naming the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_falls_back_to_a_free_one_unless_told_not_to() {
    bounded(async {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path().join("a"));
        cfg.listen = vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))];
        let infra = Infrastructure::start(cfg.clone()).await.unwrap();
        let addrs = infra.local_addrs();
        assert!(
            addrs.len() == 1 && addrs[0].port() != port && addrs[0].port() != 0,
            "{addrs:?}"
        );
        infra.shutdown().await;
        cfg.port_fallback = false;
        let err = Infrastructure::start(cfg)
            .await
            .expect_err("the port is taken");
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.to_string().contains(&port.to_string()), "{err}");
    })
    .await;
}

/// An identity's PEERIDENTITYINFO in one call, with the facade's error for an unknown one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_info_xml_in_one_call() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let infra = Infrastructure::start(config(dir.path().join("data")))
            .await
            .unwrap();
        let alice = infra.identities().create("Alice", None).await.unwrap();
        let xml = infra.identity_info_xml(alice.peer_name()).await.unwrap();
        let info = peergroup::IdentityInfo::parse(&xml).unwrap();
        assert_eq!(info.friendly_name(), "Alice");
        let bob = infra.identities().create("Bob", None).await.unwrap();
        infra.identities().delete(bob.peer_name()).await.unwrap();
        let err = infra.identity_info_xml(bob.peer_name()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IdentityNotFound);
    })
    .await;
}
