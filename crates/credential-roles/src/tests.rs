//! Chain validation and authorization: one test per rule, with chains forged by hand where
//! the public API would refuse to make them.

use std::time::Duration;

use peergroup_identity::x509::{Extension, Name, Template};
use peergroup_identity::{Classifier, Identity, KeyPair, PeerName, Timestamp};

use crate::cert::{GroupCertificate, MemberRequest, member_template};
use crate::ext::{self, CertType};
use crate::*;

const DAY: Duration = Duration::from_secs(86_400);

fn t0() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

fn ident(n: u64, name: &str) -> Identity {
    let key = KeyPair::from_test_seed(n);
    let peer = PeerName::new(&key.public(), Classifier::new(name).unwrap());
    let idc = peergroup_identity::IdentityCertificate::create(&key, &peer, name, t0()).unwrap();
    Identity::from_parts(key, idc).unwrap()
}

fn request(who: &Identity, roles: Roles) -> MemberRequest {
    MemberRequest {
        subject_key: who.key().public(),
        subject_peer: who.peer_name().clone(),
        subject_friendly_name: who.friendly_name().to_owned(),
        roles,
        classifiers: vec![],
        not_before: t0(),
        not_after: t0().saturating_add(30 * DAY),
    }
}

struct Fixture {
    root: GroupRoot,
    alice: Identity,
    alice_chain: CertChain,
    bob: Identity,
}

fn fixture() -> Fixture {
    let alice = ident(1, "alice");
    let root = GroupRoot::with_key(
        KeyPair::from_test_seed(100),
        "Friends",
        Classifier::new("friends").unwrap(),
        alice.peer_name(),
        t0(),
    )
    .unwrap();
    let alice_chain = root
        .issue(&request(&alice, Roles::one(Role::Admin)))
        .unwrap();
    Fixture {
        root,
        alice,
        alice_chain,
        bob: ident(2, "bob"),
    }
}

fn validate(f: &Fixture, chain: &CertChain, now: Timestamp) -> Result<ValidatedChain, ChainError> {
    chain.validate(f.root.group(), now, &RevocationSet::new(), None)
}

/// Signs an arbitrary member certificate under `issuer`, bypassing issuance checks.
fn forge(
    issuer: &GroupCertificate,
    issuer_key: &KeyPair,
    req: &MemberRequest,
    edit: impl FnOnce(&mut Template),
) -> Vec<u8> {
    let mut t = member_template(issuer, req, Template::random_serial().unwrap()).unwrap();
    edit(&mut t);
    t.sign(issuer_key)
}

fn append(chain: &CertChain, der: Vec<u8>) -> CertChain {
    let mut ders: Vec<Vec<u8>> = chain
        .certificates()
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
    ders.push(der);
    CertChain::from_ders(&ders).unwrap()
}

#[test]
fn valid_chain_and_its_facts() {
    let f = fixture();
    let bob = f
        .alice_chain
        .issue(f.alice.key(), &request(&f.bob, Roles::one(Role::Member)))
        .unwrap();
    let v = validate(&f, &bob, t0().plus(1)).unwrap();
    assert_eq!(v.peer(), f.bob.peer_name());
    assert_eq!(v.key(), &f.bob.key().public());
    assert_eq!(v.roles(), Roles::one(Role::Member));
    assert_eq!(v.creator(), Some(f.alice.peer_name()));
    assert_eq!(
        bob.leaf().classifiers()[0].as_str(),
        DEFAULT_MEMBER_CLASSIFIER
    );
    assert_eq!(bob.leaf().issuer_friendly_name(), "alice");
    assert!(!bob.leaf().certificate().is_ca());
    assert!(f.alice_chain.leaf().certificate().is_ca());
    bob.validate(
        f.root.group(),
        t0().plus(1),
        &RevocationSet::new(),
        Some(&f.bob.key().public()),
    )
    .unwrap();
}

trait PlusSecs {
    fn plus(self, s: u64) -> Timestamp;
}
impl PlusSecs for Timestamp {
    fn plus(self, s: u64) -> Timestamp {
        self.saturating_add(Duration::from_secs(s))
    }
}

#[test]
fn expired_and_not_yet_valid() {
    let f = fixture();
    let mut short = request(&f.bob, Roles::one(Role::Member));
    short.not_after = t0().saturating_add(20 * DAY);
    let bob = f.alice_chain.issue(f.alice.key(), &short).unwrap();
    let end = bob.leaf().not_after();
    assert!(matches!(
        validate(&f, &bob, end.plus(1)),
        Err(ChainError::Expired { index: 2, .. })
    ));
    validate(&f, &bob, end).unwrap();
    let mut later = request(&f.bob, Roles::one(Role::Member));
    later.not_before = t0().saturating_add(DAY);
    let bob = f.alice_chain.issue(f.alice.key(), &later).unwrap();
    assert!(matches!(
        validate(&f, &bob, t0().plus(5)),
        Err(ChainError::NotYetValid { index: 2, .. })
    ));
}

#[test]
fn validity_is_clipped_to_the_issuer() {
    let f = fixture();
    let mut long = request(&f.bob, Roles::one(Role::Member));
    long.not_after = t0().saturating_add(3650 * DAY);
    let bob = f.alice_chain.issue(f.alice.key(), &long).unwrap();
    assert_eq!(bob.leaf().not_after(), f.alice_chain.leaf().not_after());
    let mut empty = request(&f.bob, Roles::one(Role::Member));
    empty.not_before = t0().saturating_add(100 * DAY);
    empty.not_after = t0().saturating_add(200 * DAY);
    assert!(matches!(
        f.alice_chain.issue(f.alice.key(), &empty),
        Err(Error::InvalidTimePeriod(_))
    ));
}

#[test]
fn validity_not_nested_is_refused() {
    let f = fixture();
    let der = forge(
        f.alice_chain.leaf(),
        f.alice.key(),
        &request(&f.bob, Roles::one(Role::Member)),
        |t| {
            t.not_after = t0().saturating_add(365 * DAY);
        },
    );
    let chain = append(&f.alice_chain, der);
    assert_eq!(
        validate(&f, &chain, t0().plus(1)),
        Err(ChainError::ValidityNotNested(2))
    );
}

#[test]
fn wrong_group() {
    let f = fixture();
    let other = GroupRoot::with_key(
        KeyPair::from_test_seed(200),
        "Other",
        Classifier::new("other").unwrap(),
        f.alice.peer_name(),
        t0(),
    )
    .unwrap();
    let chain = other
        .issue(&request(&f.bob, Roles::one(Role::Member)))
        .unwrap();
    assert!(matches!(
        validate(&f, &chain, t0().plus(1)),
        Err(ChainError::WrongGroup { index: 0, .. })
    ));
    // A GMC naming another group under the right root.
    let der = forge(
        f.alice_chain.leaf(),
        f.alice.key(),
        &request(&f.bob, Roles::one(Role::Member)),
        |t| {
            t.extensions
                .retain(|e| e.oid != ext::oid(ext::GROUP_PEER_NAME));
            t.extensions
                .push(ext::text(ext::GROUP_PEER_NAME, &other.group().to_string()));
        },
    );
    let chain = append(&f.alice_chain, der);
    assert!(matches!(
        validate(&f, &chain, t0().plus(1)),
        Err(ChainError::WrongGroup { index: 2, .. })
    ));
}

#[test]
fn member_may_not_issue() {
    let f = fixture();
    let bob = f
        .alice_chain
        .issue(f.alice.key(), &request(&f.bob, Roles::one(Role::Member)))
        .unwrap();
    let carol = ident(3, "carol");
    assert!(matches!(
        bob.issue(f.bob.key(), &request(&carol, Roles::one(Role::Member))),
        Err(Error::NotAuthorized(_))
    ));
    let der = forge(
        bob.leaf(),
        f.bob.key(),
        &request(&carol, Roles::one(Role::Member)),
        |_| {},
    );
    assert_eq!(
        validate(&f, &append(&bob, der), t0().plus(1)),
        Err(ChainError::IssuerMayNotIssue(3))
    );
}

#[test]
fn role_escalation() {
    let f = fixture();
    let inviter = f
        .alice_chain
        .issue(
            f.alice.key(),
            &request(&f.bob, Roles::one(Role::InvitingMember)),
        )
        .unwrap();
    validate(&f, &inviter, t0().plus(1)).unwrap();
    let carol = ident(3, "carol");
    assert!(matches!(
        inviter.issue(f.bob.key(), &request(&carol, Roles::one(Role::Admin))),
        Err(Error::NotAuthorized(_))
    ));
    let ok = inviter
        .issue(
            f.bob.key(),
            &request(&carol, Roles::one(Role::InvitingMember)),
        )
        .unwrap();
    validate(&f, &ok, t0().plus(1)).unwrap();
    let der = forge(
        inviter.leaf(),
        f.bob.key(),
        &request(&carol, Roles::one(Role::Admin)),
        |_| {},
    );
    assert_eq!(
        validate(&f, &append(&inviter, der), t0().plus(1)),
        Err(ChainError::RoleEscalation {
            index: 3,
            role: Role::Admin
        })
    );
}

#[test]
fn chain_too_long() {
    let f = fixture();
    let mut chain = f.alice_chain.clone();
    let mut key_holder = f.alice.key().public();
    let mut keys = vec![];
    for i in 0..(MAX_CHAIN_LEN - 2) {
        let who = ident(1000 + i as u64, "admin");
        let issuer_key = keys.last().unwrap_or(f.alice.key());
        assert_eq!(issuer_key.public(), key_holder);
        chain = chain
            .issue(issuer_key, &request(&who, Roles::one(Role::Admin)))
            .unwrap();
        key_holder = who.key().public();
        keys.push(KeyPair::from_test_seed(1000 + i as u64));
    }
    assert_eq!(chain.len(), MAX_CHAIN_LEN);
    validate(&f, &chain, t0().plus(1)).unwrap();
    let last = ident(5000, "last");
    assert!(matches!(
        chain.issue(
            keys.last().unwrap(),
            &request(&last, Roles::one(Role::Member))
        ),
        Err(Error::Chain(ChainError::TooLong(26)))
    ));
    let der = forge(
        chain.leaf(),
        keys.last().unwrap(),
        &request(&last, Roles::one(Role::Member)),
        |_| {},
    );
    let mut ders: Vec<Vec<u8>> = chain
        .certificates()
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
    ders.push(der);
    assert_eq!(CertChain::from_ders(&ders), Err(ChainError::TooLong(26)));
}

#[test]
fn tampered_signature() {
    let f = fixture();
    let bob = f
        .alice_chain
        .issue(f.alice.key(), &request(&f.bob, Roles::one(Role::Member)))
        .unwrap();
    let mut der = bob.leaf().der().to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x55;
    let chain = append(&f.alice_chain, der);
    assert_eq!(
        validate(&f, &chain, t0().plus(1)),
        Err(ChainError::BadSignature(2))
    );
    // Signed by someone else under the admin's name.
    let mallory = KeyPair::from_test_seed(66);
    let der = forge(
        f.alice_chain.leaf(),
        &mallory,
        &request(&f.bob, Roles::one(Role::Member)),
        |_| {},
    );
    assert_eq!(
        validate(&f, &append(&f.alice_chain, der), t0().plus(1)),
        Err(ChainError::BadSignature(2))
    );
}

#[test]
fn swapped_key() {
    let f = fixture();
    let bob = f
        .alice_chain
        .issue(f.alice.key(), &request(&f.bob, Roles::one(Role::Member)))
        .unwrap();
    let mallory = KeyPair::from_test_seed(66);
    assert_eq!(
        bob.validate(
            f.root.group(),
            t0().plus(1),
            &RevocationSet::new(),
            Some(&mallory.public())
        ),
        Err(ChainError::LeafKeyMismatch)
    );
    // A certificate for Mallory's key that claims Bob's peer name.
    let der = forge(
        f.alice_chain.leaf(),
        f.alice.key(),
        &request(&f.bob, Roles::one(Role::Member)),
        |t| {
            t.subject_key = mallory.public();
        },
    );
    assert_eq!(
        validate(&f, &append(&f.alice_chain, der), t0().plus(1)),
        Err(ChainError::LeafPeerNameMismatch)
    );
    // The issuer refuses to issue for a key that does not own the peer name.
    let mut req = request(&f.bob, Roles::one(Role::Member));
    req.subject_key = mallory.public();
    assert!(matches!(
        f.alice_chain.issue(f.alice.key(), &req),
        Err(Error::KeyMismatch)
    ));
    assert!(matches!(
        f.alice_chain
            .issue(&mallory, &request(&f.bob, Roles::one(Role::Member))),
        Err(Error::KeyMismatch)
    ));
}

#[test]
fn root_rules() {
    let f = fixture();
    // A GMC in first place.
    let ders: Vec<Vec<u8>> = vec![f.alice_chain.leaf().der().to_vec()];
    let chain = CertChain::from_ders(&ders).unwrap();
    assert_eq!(
        validate(&f, &chain, t0().plus(1)),
        Err(ChainError::RootNotGroupRoot)
    );
    // A root whose self-signature is by another key.
    let mallory = KeyPair::from_test_seed(66);
    let t = crate::cert::root_template(
        f.root.key(),
        f.root.group(),
        "Friends",
        f.alice.peer_name(),
        t0(),
        [9; 16],
    )
    .unwrap();
    let chain = CertChain::from_ders(&[t.sign(&mallory)]).unwrap();
    assert_eq!(
        validate(&f, &chain, t0().plus(1)),
        Err(ChainError::RootNotSelfSigned)
    );
    // A root for Mallory's key claiming our group name.
    let mut t = crate::cert::root_template(
        &mallory,
        f.root.group(),
        "Friends",
        f.alice.peer_name(),
        t0(),
        [9; 16],
    )
    .unwrap();
    t.subject_key = mallory.public();
    let chain = CertChain::from_ders(&[t.sign(&mallory)]).unwrap();
    assert_eq!(
        validate(&f, &chain, t0().plus(1)),
        Err(ChainError::RootKeyMismatch)
    );
    // A second root in the middle.
    let mut ders: Vec<Vec<u8>> = vec![f.root.chain().root().der().to_vec(); 2];
    ders.push(f.alice_chain.leaf().der().to_vec());
    let chain = CertChain::from_ders(&ders).unwrap();
    assert_eq!(
        validate(&f, &chain, t0().plus(1)),
        Err(ChainError::NotMemberCertificate(1))
    );
}

#[test]
fn issuer_name_mismatch() {
    let f = fixture();
    let der = forge(
        f.alice_chain.leaf(),
        f.alice.key(),
        &request(&f.bob, Roles::one(Role::Member)),
        |t| {
            t.issuer = Name {
                common_name: "someone".into(),
                peer_name: None,
            };
        },
    );
    assert_eq!(
        validate(&f, &append(&f.alice_chain, der), t0().plus(1)),
        Err(ChainError::IssuerNameMismatch(2))
    );
}

#[test]
fn ca_flag_must_match_roles() {
    let f = fixture();
    let der = forge(
        f.alice_chain.leaf(),
        f.alice.key(),
        &request(&f.bob, Roles::one(Role::Member)),
        |t| {
            t.extensions[0] = Extension::basic_constraints(true);
        },
    );
    assert_eq!(
        validate(&f, &append(&f.alice_chain, der), t0().plus(1)),
        Err(ChainError::CaFlagMismatch(2))
    );
}

#[test]
fn cycles_are_refused() {
    let f = fixture();
    // Alice's key certified again below herself.
    let der = forge(
        f.alice_chain.leaf(),
        f.alice.key(),
        &request(&f.alice, Roles::one(Role::Admin)),
        |_| {},
    );
    assert_eq!(
        validate(&f, &append(&f.alice_chain, der), t0().plus(1)),
        Err(ChainError::Cycle(2))
    );
}

#[test]
fn revoked_serial_and_peer() {
    let f = fixture();
    let bob = f
        .alice_chain
        .issue(f.alice.key(), &request(&f.bob, Roles::one(Role::Member)))
        .unwrap();
    let mut rev = RevocationSet::new();
    rev.insert(RevocationTarget::Serial(bob.leaf().serial().to_vec()), t0());
    assert!(matches!(
        bob.validate(f.root.group(), t0().plus(1), &rev, None),
        Err(ChainError::Revoked { index: 2, .. })
    ));
    let mut rev = RevocationSet::new();
    rev.insert(RevocationTarget::Peer(f.alice.peer_name().clone()), t0());
    // Revoking the admin cuts off what it certified.
    assert!(matches!(
        bob.validate(f.root.group(), t0().plus(1), &rev, None),
        Err(ChainError::Revoked { index: 1, .. })
    ));
    assert_eq!(rev.peer_revoked_at(f.alice.peer_name()), Some(t0()));
    rev.insert(
        RevocationTarget::Peer(f.alice.peer_name().clone()),
        t0().plus(10),
    );
    assert_eq!(
        rev.peer_revoked_at(f.alice.peer_name()),
        Some(t0()),
        "earliest time wins"
    );
}

#[test]
fn extensions_are_checked_when_parsing() {
    let f = fixture();
    let bad_type = forge(
        f.alice_chain.leaf(),
        f.alice.key(),
        &request(&f.bob, Roles::one(Role::Member)),
        |t| {
            t.extensions.retain(|e| e.oid != ext::oid(ext::ROLES));
        },
    );
    assert!(
        GroupCertificate::parse(&bad_type)
            .unwrap_err()
            .contains("no roles")
    );
    let unknown_role = forge(
        f.alice_chain.leaf(),
        f.alice.key(),
        &request(&f.bob, Roles::one(Role::Member)),
        |t| {
            t.extensions.retain(|e| e.oid != ext::oid(ext::ROLES));
            let v = peergroup_identity::der::sequence(&[&peergroup_identity::der::octet_string(
                &[7; 16],
            )]);
            t.extensions.push(Extension {
                oid: ext::oid(ext::ROLES),
                critical: false,
                value: v,
            });
        },
    );
    assert!(
        GroupCertificate::parse(&unknown_role)
            .unwrap_err()
            .contains("unknown role")
    );
    let root_typed = forge(
        f.alice_chain.leaf(),
        f.alice.key(),
        &request(&f.bob, Roles::one(Role::Member)),
        |t| {
            t.extensions.retain(|e| e.oid != ext::oid(ext::CERT_TYPE));
            t.extensions.push(ext::cert_type(CertType::Root));
        },
    );
    assert!(GroupCertificate::parse(&root_typed).is_err());
}

#[test]
fn pkcs7_round_trip_and_limits() {
    let f = fixture();
    let bob = f
        .alice_chain
        .issue(f.alice.key(), &request(&f.bob, Roles::one(Role::Member)))
        .unwrap();
    let p7 = bob.to_pkcs7();
    assert_eq!(CertChain::from_pkcs7(&p7).unwrap(), bob);
    assert!(CertChain::from_pkcs7(&p7[..p7.len() - 3]).is_err());
    let mut trailing = p7.clone();
    trailing.push(0);
    assert!(CertChain::from_pkcs7(&trailing).is_err());
    assert!(CertChain::from_pkcs7(b"").is_err());
}

#[test]
fn policy_table() {
    let f = fixture();
    let now = t0().plus(1);
    let carol = ident(3, "carol");
    let admin = validate(&f, &f.alice_chain, now).unwrap();
    let inviter_chain = f
        .alice_chain
        .issue(
            f.alice.key(),
            &request(&f.bob, Roles::one(Role::InvitingMember)),
        )
        .unwrap();
    let inviter = validate(&f, &inviter_chain, now).unwrap();
    let member_chain = f
        .alice_chain
        .issue(f.alice.key(), &request(&carol, Roles::one(Role::Member)))
        .unwrap();
    let member = validate(&f, &member_chain, now).unwrap();
    let root = validate(&f, f.root.chain(), now).unwrap();

    for role in Role::ALL {
        assert!(authorize(&admin, Action::Invite(role)).is_ok());
        assert_eq!(
            authorize(&inviter, Action::Invite(role)).is_ok(),
            role != Role::Admin
        );
        assert!(authorize(&member, Action::Invite(role)).is_err());
        assert!(authorize(&admin, Action::IssueCredentials(role)).is_ok());
        assert!(authorize(&inviter, Action::IssueCredentials(role)).is_err());
    }
    // Alice is the creator; the group root may too.
    assert!(authorize(&admin, Action::SetProperties).is_ok());
    assert!(authorize(&root, Action::SetProperties).is_ok());
    assert!(authorize(&inviter, Action::SetProperties).is_err());
    // A second admin is not the creator.
    let admin2_chain = f
        .alice_chain
        .issue(
            f.alice.key(),
            &request(&ident(4, "dave"), Roles::one(Role::Admin)),
        )
        .unwrap();
    let admin2 = validate(&f, &admin2_chain, now).unwrap();
    assert!(authorize(&admin2, Action::SetProperties).is_err());

    for v in [&admin, &inviter, &member] {
        assert!(authorize(v, Action::AddRecord).is_ok());
        assert!(authorize(v, Action::UpdateRecord { creator: v.peer() }).is_ok());
        assert!(authorize(v, Action::DeleteRecord { creator: v.peer() }).is_ok());
    }
    assert!(
        authorize(
            &member,
            Action::UpdateRecord {
                creator: f.alice.peer_name()
            }
        )
        .is_err()
    );
    assert!(
        authorize(
            &member,
            Action::DeleteRecord {
                creator: f.bob.peer_name()
            }
        )
        .is_err()
    );
    assert!(
        authorize(
            &admin,
            Action::DeleteRecord {
                creator: carol.peer_name()
            }
        )
        .is_ok()
    );
    assert!(authorize(&admin, Action::Revoke).is_ok());
    assert!(authorize(&inviter, Action::Revoke).is_err());
    assert!(authorize(&member, Action::Revoke).is_err());
}

proptest::proptest! {
    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let _ = GroupCertificate::parse(&bytes);
        let _ = CertChain::from_pkcs7(&bytes);
    }
}

/// A chosen serial makes the same certificate every time (the simulator relies on it), and
/// is made a positive integer of full length as random ones are.
#[test]
fn a_chosen_serial_is_reproducible_and_positive() {
    let make = |serial: [u8; 16]| {
        GroupRoot::with_key_and_serial(
            KeyPair::from_test_seed(201),
            "Seeded",
            Classifier::new("seeded").unwrap(),
            &PeerName::new(
                &KeyPair::from_test_seed(202).public(),
                Classifier::new("c").unwrap(),
            ),
            t0(),
            serial,
        )
        .unwrap()
    };
    let a = make([0xff; 16]);
    let b = make([0xff; 16]);
    assert_eq!(a.chain().to_pkcs7(), b.chain().to_pkcs7());
    let serial = a.chain().leaf().serial();
    assert_eq!(serial.len(), 16);
    assert_eq!(serial[0], 0x7f);
    assert_ne!(make([0; 16]).chain().leaf().serial()[0], 0);
    let req = |n: u64| MemberRequest {
        subject_key: KeyPair::from_test_seed(n).public(),
        subject_peer: PeerName::new(
            &KeyPair::from_test_seed(n).public(),
            Classifier::new("m").unwrap(),
        ),
        subject_friendly_name: "m".into(),
        roles: Roles::one(Role::Member),
        classifiers: vec![],
        not_before: t0(),
        not_after: t0().saturating_add(Duration::from_secs(3600)),
    };
    let one = a
        .chain()
        .issue_with_serial(a.key(), &req(203), [5; 16])
        .unwrap();
    let two = a
        .chain()
        .issue_with_serial(a.key(), &req(203), [5; 16])
        .unwrap();
    assert_eq!(one.to_pkcs7(), two.to_pkcs7());
    assert_eq!(one.leaf().serial(), &[5; 16][..]);
}
