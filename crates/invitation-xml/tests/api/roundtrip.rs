//! Every blob survives writing and parsing, awkward strings and address lists included; what
//! an invitation says is derived from its chain.

use std::net::SocketAddr;

use peergroup_credential_roles::{RevocationSet, Role};
use peergroup_identity::{
    Classifier, IdentityCertificate, IdentityStore, KdfParams, KeyPair, PeerName,
};
use peergroup_invitation_xml::{
    Addresses, AuthScheme, Cloud, CloudName, FriendlyName, GroupConfig, IdentityExport,
    IdentityInfo, Invitation, MAX_ADDRESSES, Scope, XML_DECLARATION,
};
use proptest::prelude::*;

use crate::support::{addresses, fixture, fixture_named, identity, request, t0};

/// Friendly names with XML specials, unicode and surrounding white space.
fn awkward_name() -> impl Strategy<Value = String> {
    "[ <>&\"']{0,3}\\PC{1,30}[ <>&\"']{0,3}"
        .prop_filter("a friendly name", |s| FriendlyName::new(s).is_ok())
}

fn cloud() -> impl Strategy<Value = Cloud> {
    (
        "[ <>&\"']{0,2}\\PC{0,40}[ ]{0,2}",
        prop_oneof![
            Just(Scope::Global),
            Just(Scope::SiteLocal),
            Just(Scope::LinkLocal)
        ],
        any::<u32>(),
    )
        .prop_filter_map("a cloud name", |(name, scope, flags)| {
            Some(Cloud {
                name: CloudName::new(&name).ok()?,
                scope,
                flags,
            })
        })
}

fn address_list() -> impl Strategy<Value = Addresses> {
    prop::collection::vec(any::<SocketAddr>(), 0..=MAX_ADDRESSES)
        .prop_map(|a| Addresses::new(a).unwrap())
}

fn peer_name() -> impl Strategy<Value = PeerName> {
    (any::<[u8; 20]>(), "[A-Za-z0-9_-]{1,149}")
        .prop_map(|(a, c)| format!("{}.{c}", hex::encode(a)).parse().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn identity_info_round_trips(name in awkward_name(), seed in 1u64..1000) {
        let key = KeyPair::from_test_seed(seed);
        let peer = PeerName::new(&key.public(), Classifier::new("me").unwrap());
        let idc = IdentityCertificate::create(&key, &peer, &name, t0()).unwrap();
        let info = IdentityInfo::new(idc);
        let xml = info.to_xml();
        prop_assert!(xml.starts_with(XML_DECLARATION));
        let parsed = IdentityInfo::parse(&xml).unwrap();
        prop_assert_eq!(parsed.friendly_name(), name.as_str());
        prop_assert_eq!(&parsed, &info);
        prop_assert_eq!(IdentityInfo::parse_bytes(xml.as_bytes()).unwrap(), info);
    }

    #[test]
    fn certificate_invitation_round_trips(
        group_name in awkward_name(),
        alice_name in awkward_name(),
        bob_name in awkward_name(),
        cloud in cloud(),
        addresses in address_list(),
    ) {
        let f = fixture_named(&group_name, &alice_name, &bob_name);
        let invitation =
            Invitation::new_certificate(f.bob_chain.clone(), cloud, addresses).unwrap();
        let xml = invitation.to_xml();
        let parsed = Invitation::parse(&xml).unwrap();
        prop_assert_eq!(&parsed, &invitation);
        let info = parsed.info();
        prop_assert_eq!(info.group_friendly_name, group_name);
        prop_assert_eq!(info.issuer_friendly_name, Some(alice_name));
        prop_assert_eq!(info.subject_friendly_name, Some(bob_name));
        prop_assert_eq!(info.addresses, invitation.addresses().as_slice().to_vec());
    }

    #[test]
    fn password_invitation_round_trips(
        group in peer_name(),
        name in awkward_name(),
        cloud in cloud(),
        addresses in address_list(),
    ) {
        let invitation = Invitation::new_password(
            group.clone(),
            FriendlyName::new(&name).unwrap(),
            cloud.clone(),
            addresses.clone(),
        );
        let parsed = Invitation::parse(&invitation.to_xml()).unwrap();
        prop_assert_eq!(&parsed, &invitation);
        let info = parsed.info();
        prop_assert_eq!(info.group_peer_name, group);
        prop_assert_eq!(info.group_friendly_name, name);
        prop_assert_eq!(info.cloud_name, cloud.name.as_str());
        prop_assert_eq!(info.scope, cloud.scope);
        prop_assert_eq!(info.cloud_flags, cloud.flags);
        prop_assert_eq!(info.addresses, addresses.as_slice().to_vec());
    }

    #[test]
    fn identity_export_round_trips(
        peer_name in peer_name(),
        data in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let export = IdentityExport { peer_name, data };
        let parsed = IdentityExport::parse(&export.to_xml()).unwrap();
        prop_assert_eq!(parsed, export);
    }

    #[test]
    fn group_config_round_trips(
        cloud in cloud(),
        key in prop::option::of(prop::collection::vec(any::<u8>(), 0..512)),
        owner in any::<bool>(),
    ) {
        let f = fixture();
        let chain = if owner { f.alice_chain } else { f.bob_chain };
        let config = GroupConfig::new(chain, cloud, key).unwrap();
        let parsed = GroupConfig::parse(&config.to_xml()).unwrap();
        prop_assert_eq!(parsed, config);
    }
}

#[test]
fn certificate_invitation_info_comes_from_the_chain() {
    let f = fixture();
    let invitation =
        Invitation::new_certificate(f.bob_chain.clone(), Cloud::global(), addresses()).unwrap();
    let parsed = Invitation::parse(&invitation.to_xml()).unwrap();
    assert_eq!(parsed.auth_scheme(), AuthScheme::Certificate);
    assert_eq!(parsed.chain(), Some(&f.bob_chain));
    let info = parsed.info();
    assert_eq!(info.auth_scheme, AuthScheme::Certificate);
    assert_eq!(info.cloud_name, "Global_");
    assert_eq!(info.scope, Scope::Global);
    assert_eq!(info.cloud_flags, 0);
    assert_eq!(&info.group_peer_name, f.root.group());
    assert_eq!(info.group_friendly_name, "Friends");
    assert_eq!(info.issuer_peer_name.as_ref(), Some(f.alice.peer_name()));
    assert_eq!(info.issuer_friendly_name.as_deref(), Some("Alice"));
    assert_eq!(info.subject_peer_name.as_ref(), Some(f.bob.peer_name()));
    assert_eq!(info.subject_friendly_name.as_deref(), Some("Bob"));
    assert_eq!(info.validity_start, Some(t0()));
    assert_eq!(
        info.validity_end,
        Some(t0().saturating_add(std::time::Duration::from_secs(30 * 86_400)))
    );
    assert_eq!(info.roles.iter().collect::<Vec<_>>(), vec![Role::Member]);
    assert_eq!(
        info.classifiers
            .iter()
            .map(Classifier::as_str)
            .collect::<Vec<_>>(),
        vec!["participant"]
    );
    assert_eq!(info.subject_public_key, Some(f.bob.key().public()));
    assert_eq!(info.addresses, addresses().as_slice().to_vec());

    // The chain is not checked against time while parsing; the caller validates it.
    parsed
        .chain()
        .unwrap()
        .validate(
            f.root.group(),
            t0(),
            &RevocationSet::new(),
            Some(&f.bob.key().public()),
        )
        .unwrap();
}

#[test]
fn invitation_info_as_json() {
    let f = fixture();
    let invitation =
        Invitation::new_certificate(f.bob_chain, Cloud::global(), addresses()).unwrap();
    let json = serde_json::to_value(invitation.info()).unwrap();
    assert_eq!(json["auth_scheme"], "certificate");
    assert_eq!(json["scope"], "GLOBAL");
    assert_eq!(json["roles"], serde_json::json!(["member"]));
    assert_eq!(json["classifiers"], serde_json::json!(["participant"]));
    assert_eq!(json["validity_start"], t0().to_rfc3339());
    assert_eq!(
        json["subject_public_key"],
        hex::encode(f.bob.key().public().as_bytes())
    );
    assert_eq!(json["subject_peer_name"], f.bob.peer_name().to_string());
    assert_eq!(
        json["addresses"],
        serde_json::json!([
            "192.0.2.1:3587",
            "[2001:db8::1]:3587",
            "[fe80::b424:f131:8bcc:b134%12]:3587"
        ])
    );
}

#[test]
fn issuer_is_the_certificate_before_the_leaf() {
    let f = fixture();
    let carol = identity(3, "carol", "Carol");
    let dave = identity(4, "dave", "Dave");
    let carol_chain = f
        .alice_chain
        .issue(f.alice.key(), &request(&carol, Role::InvitingMember))
        .unwrap();
    let dave_chain = carol_chain
        .issue(carol.key(), &request(&dave, Role::Member))
        .unwrap();
    let invitation =
        Invitation::new_certificate(dave_chain, Cloud::global(), Addresses::empty()).unwrap();
    let info = Invitation::parse(&invitation.to_xml()).unwrap().info();
    assert_eq!(info.issuer_peer_name.as_ref(), Some(carol.peer_name()));
    assert_eq!(info.issuer_friendly_name.as_deref(), Some("Carol"));
    assert_eq!(info.subject_peer_name.as_ref(), Some(dave.peer_name()));
    assert!(!invitation.to_xml().contains("ADDRESSES"));
}

#[test]
fn identity_export_carries_a_real_sealed_identity() {
    let dir = tempfile::tempdir().unwrap();
    let from = IdentityStore::open(dir.path().join("from"))
        .unwrap()
        .with_kdf_params(KdfParams::INSECURE_FAST);
    let to = IdentityStore::open(dir.path().join("to"))
        .unwrap()
        .with_kdf_params(KdfParams::INSECURE_FAST);
    let bob = from.create("Bob & <co>", None).unwrap();
    let export = IdentityExport {
        peer_name: bob.peer_name().clone(),
        data: from.export(bob.peer_name(), b"pw").unwrap(),
    };
    let parsed = IdentityExport::parse(&export.to_xml()).unwrap();
    let imported = to
        .import(Some(&parsed.peer_name), &parsed.data, b"pw")
        .unwrap();
    assert_eq!(imported.peer_name(), bob.peer_name());
    assert_eq!(imported.friendly_name(), "Bob & <co>");
}

#[test]
fn group_config_names_come_from_the_chain() {
    let f = fixture();
    let config =
        GroupConfig::new(f.alice_chain.clone(), Cloud::global(), Some(vec![1, 2, 3])).unwrap();
    assert_eq!(&config.identity, f.alice.peer_name());
    assert_eq!(&config.group, f.root.group());
    let xml = config.to_xml();
    assert!(xml.contains("<GROUPKEY xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.base64\">AQID</GROUPKEY>"));
    assert_eq!(GroupConfig::parse(&xml).unwrap(), config);
    let member = GroupConfig::new(f.bob_chain, Cloud::global(), None).unwrap();
    assert!(!member.to_xml().contains("GROUPKEY"));
}

#[test]
fn pretty_printed_blobs_parse_the_same() {
    let s = crate::support::samples();
    let pretty = crate::support::pretty;
    assert_eq!(
        Invitation::parse(&pretty(&s.certificate_invitation.to_xml())).unwrap(),
        s.certificate_invitation
    );
    assert_eq!(
        Invitation::parse(&pretty(&s.password_invitation.to_xml())).unwrap(),
        s.password_invitation
    );
    assert_eq!(
        IdentityInfo::parse(&pretty(&s.identity_info.to_xml())).unwrap(),
        s.identity_info
    );
    assert_eq!(
        IdentityExport::parse(&pretty(&s.identity_export.to_xml())).unwrap(),
        s.identity_export
    );
    assert_eq!(
        GroupConfig::parse(&pretty(&s.group_config.to_xml())).unwrap(),
        s.group_config
    );
}
