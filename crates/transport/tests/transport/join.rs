//! Password joins over real TLS on loopback: Eve, who has only her identity, proves the
//! password to Alice (admin of group A) and is issued a member certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use peergroup_credential_roles::{CertChain, MemberRequest, RevocationTarget, Role, Roles};
use peergroup_identity::{Classifier, IdentityCertificate, KdfParams, KeyPair, PeerName};
use peergroup_transport::testing::{ClientTweaks, password_join_tweaked};
use peergroup_transport::{
    CredentialsError, Endpoint, GroupCredentials, GroupTrust, Issuer, JOIN_ALPN, JoinError,
    JoinPolicy, PasswordRecord, RefusalKind, naming, password_join,
};

use crate::support::*;

const PASSWORD: &[u8] = b"correct horse battery staple";

/// The role the policy grants.
const PASSWORD_ROLE: Role = Role::Member;

/// An issuer signing with `issuer`'s chain for a year, counting its calls.
fn issuer(issuer: &Member, calls: Arc<AtomicUsize>) -> Issuer {
    let chain = issuer.creds.chain.clone();
    let key = issuer.creds.key.clone();
    Arc::new(move |idc: &IdentityCertificate| {
        calls.fetch_add(1, Ordering::SeqCst);
        let request = MemberRequest {
            subject_key: *idc.public_key(),
            subject_peer: idc.peer_name().clone(),
            subject_friendly_name: idc.friendly_name().to_owned(),
            roles: Roles::one(PASSWORD_ROLE),
            classifiers: vec![],
            not_before: t0(),
            not_after: t0().saturating_add(365 * DAY),
        };
        chain.issue(&key, &request).map_err(|e| e.to_string())
    })
}

fn secret(group: &PeerName) -> PasswordRecord {
    PasswordRecord::register(PASSWORD, group, KdfParams::INSECURE_FAST).unwrap()
}

/// Alice's endpoint for group A, taking password joins; the issuer's call count.
async fn alice_takes_joins(
    f: &Fixture,
    trust: &GroupTrust,
) -> (Endpoint, SocketAddr, Arc<AtomicUsize>) {
    let (ep, addr) = server(&f.alice.creds, trust, config()).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let policy = JoinPolicy::new(secret(f.a.group()), issuer(&f.alice, calls.clone()));
    ep.set_join_policy(f.a.group(), policy).unwrap();
    assert_eq!(ep.join_groups(), vec![f.a.group().clone()]);
    (ep, addr, calls)
}

struct Joiner {
    key: Arc<KeyPair>,
    idc: IdentityCertificate,
}

fn eve(f: &Fixture) -> Joiner {
    Joiner {
        key: f.eve_key.clone(),
        idc: IdentityCertificate::from_der(&f.eve_idc).unwrap(),
    }
}

fn new_joiner(seed: u64, name: &str) -> Joiner {
    let key = KeyPair::from_test_seed(seed);
    let peer = PeerName::new(&key.public(), Classifier::new(name).unwrap());
    let idc = IdentityCertificate::create(&key, &peer, name, t0()).unwrap();
    Joiner {
        key: Arc::new(key),
        idc,
    }
}

async fn join(
    addr: SocketAddr,
    f: &Fixture,
    who: &Joiner,
    password: &[u8],
) -> Result<CertChain, JoinError> {
    password_join(
        addr,
        f.a.group(),
        who.key.clone(),
        &who.idc,
        password,
        &f.trust_a(),
        &config(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_password_gets_a_member_certificate() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr, calls) = alice_takes_joins(&f, &trust).await;
        let mut failures = ep.auth_failures();
        let eve = eve(&f);

        let chain = join(addr, &f, &eve, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("Eve's join with the right password: {e:?}"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let valid = trust.validate(&chain, &eve.key.public()).unwrap();
        assert_eq!(valid.key(), &eve.key.public());
        assert_eq!(valid.peer(), eve.idc.peer_name());
        assert_eq!(valid.roles(), Roles::one(PASSWORD_ROLE));
        assert_eq!(chain.group(), f.a.group());
        // The join was not handed out as a member connection, and nothing was refused. (A
        // check that nothing happens: after the join completed, a moment for a wrongly
        // delivered connection or refusal to show up; load makes it pass more easily.)
        let handed_out = tokio::time::timeout(Duration::from_millis(200), ep.accept()).await;
        assert!(
            handed_out.is_err(),
            "the join came out of accept: {handed_out:?}"
        );
        let refused = failures.try_recv();
        assert!(refused.is_err(), "the endpoint reported {refused:?}");

        // Eve is a member now: she connects as one.
        let creds = GroupCredentials::new(f.a.group().clone(), eve.key.clone(), chain).unwrap();
        let conn = Endpoint::connect(addr, &creds, &trust, &config())
            .await
            .unwrap_or_else(|e| panic!("Eve connecting as a member: {e:?}"));
        assert_eq!(&conn.peer().peer, f.alice.peer());
        let incoming = accept(&ep).await;
        assert_eq!(&incoming.peer().peer, eve.idc.peer_name());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_on_both_sides() {
    bounded(async {
        let f = Fixture::new();
        let (ep, addr, calls) = alice_takes_joins(&f, &f.trust_a()).await;
        let mut failures = ep.auth_failures();
        let eve = eve(&f);
        let err = join(addr, &f, &eve, b"correct horse battery stapler")
            .await
            .unwrap_err();
        assert!(matches!(err, JoinError::WrongPassword), "{err:?}");
        assert!(err.to_string().contains("wrong password"), "{err}");
        assert_eq!(err.refusal_kind(), Some(RefusalKind::WrongPassword));
        let failure = expect_failure(&mut failures, RefusalKind::WrongPassword).await;
        assert_eq!(failure.peer.as_ref(), Some(eve.idc.peer_name()));
        assert_eq!(failure.group.as_ref(), Some(f.a.group()));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "no credentials for a wrong password"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sixth_attempt_in_a_minute_is_refused() {
    bounded(async {
        let f = Fixture::new();
        let (ep, addr, calls) = alice_takes_joins(&f, &f.trust_a()).await;
        let mut failures = ep.auth_failures();
        let eve = eve(&f);
        for attempt in 1..=5 {
            let err = join(addr, &f, &eve, format!("guess {attempt}").as_bytes())
                .await
                .unwrap_err();
            assert!(
                matches!(err, JoinError::WrongPassword),
                "attempt {attempt}: {err:?}"
            );
            expect_failure(&mut failures, RefusalKind::WrongPassword).await;
        }
        // Even the right password is refused now, before any proof is run.
        let err = join(addr, &f, &eve, PASSWORD).await.unwrap_err();
        assert_eq!(
            err.refusal_kind(),
            Some(RefusalKind::RateLimited),
            "{err:?}"
        );
        let JoinError::RateLimited { retry_after } = err else {
            panic!("expected a rate limit, got {err:?}");
        };
        assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60));
        let failure = expect_failure(&mut failures, RefusalKind::RateLimited).await;
        assert_eq!(failure.peer.as_ref(), Some(eve.idc.peer_name()));
        // A fresh identity from the same address is limited too.
        let frank = new_joiner(8, "frank");
        let err = join(addr, &f, &frank, PASSWORD).await.unwrap_err();
        assert!(matches!(err, JoinError::RateLimited { .. }), "{err:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_without_a_join_policy_refuses_joins() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, config()).await;
        let mut failures = ep.auth_failures();
        let err = join(addr, &f, &eve(&f), PASSWORD).await.unwrap_err();
        assert!(matches!(err, JoinError::JoinsNotAccepted), "{err:?}");
        let failure = expect_failure(&mut failures, RefusalKind::JoinsNotAccepted).await;
        assert_eq!(failure.group.as_ref(), Some(f.a.group()));

        // Set, then cleared: refused again.
        let policy = JoinPolicy::new(secret(f.a.group()), issuer(&f.alice, Arc::default()));
        ep.set_join_policy(f.a.group(), policy.clone()).unwrap();
        assert!(ep.clear_join_policy(f.a.group()));
        assert!(!ep.clear_join_policy(f.a.group()));
        let err = join(addr, &f, &eve(&f), PASSWORD).await.unwrap_err();
        assert!(matches!(err, JoinError::JoinsNotAccepted), "{err:?}");

        // Only served groups, and only with credentials that can issue.
        assert!(matches!(
            ep.set_join_policy(f.b.group(), policy.clone()),
            Err(CredentialsError::NotServed(_))
        ));
        let (bobs, _) = server(&f.bob.creds, &trust, config()).await;
        assert!(matches!(
            bobs.set_join_policy(f.a.group(), policy),
            Err(CredentialsError::NotIssuer)
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_certificate_alone_is_still_refused_as_a_member() {
    bounded(async {
        let f = Fixture::new();
        let (ep, addr, calls) = alice_takes_joins(&f, &f.trust_a()).await;
        let mut failures = ep.auth_failures();
        let eve = GroupCredentials {
            group: f.a.group().clone(),
            key: f.eve_key.clone(),
            chain: f.bob.creds.chain.clone(),
        };
        // With the member protocol, or with both (the member protocol wins).
        for alpn in [
            vec![b"peergroup/1".to_vec()],
            vec![b"peergroup/1".to_vec(), JOIN_ALPN.to_vec()],
        ] {
            let tweaks = ClientTweaks {
                certificates: Some(vec![f.eve_idc.clone()]),
                alpn: Some(alpn),
                ..Default::default()
            };
            let err = connect_tweaked(addr, &eve, &f.trust_a(), tweaks)
                .await
                .unwrap_err();
            assert_eq!(err.refusal_kind(), Some(RefusalKind::NotMember), "{err:?}");
            expect_failure(&mut failures, RefusalKind::NotMember).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_joiner_refuses_a_server_of_another_group() {
    bounded(async {
        let f = Fixture::new();
        // Mallory serves group B, takes joins with the same password, and answers a joiner
        // who asks for group B's server name while holding group A's invitation.
        let (ep, addr) = server(&f.mallory.creds, &f.trust_b(), config()).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let policy = JoinPolicy::new(secret(f.b.group()), issuer(&f.mallory, calls.clone()));
        ep.set_join_policy(f.b.group(), policy).unwrap();
        let eve = eve(&f);
        let tweaks = ClientTweaks {
            sni: Some(naming::sni_name(f.b.group())),
            ..Default::default()
        };
        let err = password_join_tweaked(
            addr,
            f.a.group(),
            eve.key.clone(),
            &eve.idc,
            PASSWORD,
            &f.trust_a(),
            &config(),
            &tweaks,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, JoinError::NotAuthenticated(r) if r.kind == RefusalKind::WrongGroup),
            "{err:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_must_present_a_valid_unrevoked_identity() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr, calls) = alice_takes_joins(&f, &trust).await;
        let mut failures = ep.auth_failures();

        // A group chain instead of an identity certificate.
        let bob_idc = IdentityCertificate::create(f.bob.key(), f.bob.peer(), "bob", t0()).unwrap();
        let leaf_first: Vec<Vec<u8>> = f
            .bob
            .creds
            .chain
            .certificates()
            .iter()
            .rev()
            .map(|c| c.der().to_vec())
            .collect();
        let tweaks = ClientTweaks {
            certificates: Some(leaf_first),
            ..Default::default()
        };
        let err = password_join_tweaked(
            addr,
            f.a.group(),
            f.bob.creds.key.clone(),
            &bob_idc,
            PASSWORD,
            &trust,
            &config(),
            &tweaks,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.refusal_kind(),
            Some(RefusalKind::BadIdentity),
            "{err:?}"
        );
        expect_failure(&mut failures, RefusalKind::BadIdentity).await;

        // A revoked identity cannot come back by password.
        trust.revoke(RevocationTarget::Peer(f.eve_idc_peer()), t0());
        let err = join(addr, &f, &eve(&f), PASSWORD).await.unwrap_err();
        assert_eq!(err.refusal_kind(), Some(RefusalKind::Revoked), "{err:?}");
        expect_failure(&mut failures, RefusalKind::Revoked).await;

        // An identity certificate for another key is a caller's mistake.
        let mismatched = password_join(
            addr,
            f.a.group(),
            f.bob.creds.key.clone(),
            &eve(&f).idc,
            PASSWORD,
            &trust,
            &config(),
        )
        .await
        .unwrap_err();
        assert!(matches!(
            mismatched,
            JoinError::Credentials(CredentialsError::KeyMismatch)
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    })
    .await;
}

impl Fixture {
    fn eve_idc_peer(&self) -> PeerName {
        IdentityCertificate::from_der(&self.eve_idc)
            .unwrap()
            .peer_name()
            .clone()
    }
}
