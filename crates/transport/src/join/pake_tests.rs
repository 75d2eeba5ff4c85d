//! The sans-IO password proof, without sockets.

use super::*;
use peergroup_identity::{Classifier, KeyPair};

fn name(seed: u64, classifier: &str) -> PeerName {
    PeerName::new(
        &KeyPair::from_test_seed(seed).public(),
        Classifier::new(classifier).unwrap(),
    )
}

fn binding(exporter: u8) -> Binding {
    Binding {
        group: name(100, "group"),
        joiner: name(6, "eve"),
        member: name(1, "alice"),
        exporter: [exporter; 32],
    }
}

fn secret(password: &[u8]) -> PasswordSecret {
    PasswordSecret::derive(password, &name(100, "group"), KdfParams::INSECURE_FAST).unwrap()
}

/// Runs the exchange through encoded bytes: the joiner's and the member's bindings and
/// secrets may differ. Returns the member's verdict and, on success, the joiner's check of
/// the member's confirmation.
fn run(
    member_secret: &PasswordSecret,
    member_binding: Binding,
    joiner_secret: &PasswordSecret,
    joiner_binding: &Binding,
) -> Result<Result<(), PakeError>, PakeError> {
    let (member, start) = MemberPake::start(member_secret, member_binding);
    let JoinMessage::Start { kdf, pake: msg_b } = decode(&encode(&start).unwrap()).unwrap() else {
        panic!("not a start message");
    };
    assert_eq!(KdfParams::from(kdf), member_secret.kdf());
    let (joiner, proof) = JoinerPake::respond(joiner_secret, joiner_binding, &msg_b).unwrap();
    let JoinMessage::Proof { pake, confirm } = decode(&encode(&proof).unwrap()).unwrap() else {
        panic!("not a proof message");
    };
    let member_confirm = member.finish(&pake, &confirm)?;
    Ok(joiner.check_member(&member_confirm))
}

#[test]
fn the_right_password_is_confirmed_both_ways() {
    let s = secret(b"correct horse");
    assert_eq!(run(&s, binding(7), &s, &binding(7)), Ok(Ok(())));
}

#[test]
fn a_wrong_password_is_refused_by_the_member() {
    let result = run(
        &secret(b"correct horse"),
        binding(7),
        &secret(b"correct horsf"),
        &binding(7),
    );
    assert_eq!(result, Err(PakeError::BadConfirmation));
}

#[test]
fn a_proof_from_another_tls_session_is_refused() {
    // Same password, same peers, but the joiner's proof was made for another session's
    // exporter value (a relayed PAKE run).
    let s = secret(b"correct horse");
    assert_eq!(
        run(&s, binding(7), &s, &binding(8)),
        Err(PakeError::BadConfirmation)
    );
}

#[test]
fn a_confirmation_mac_for_another_exporter_is_rejected() {
    let key = [42u8; 32];
    let t = [9u8; 32];
    let mac = confirmation(&key, Side::Joiner, &[1; 32], &t);
    assert_eq!(
        verify_confirmation(&key, Side::Joiner, &[1; 32], &t, &mac),
        Ok(())
    );
    let mut other_exporter = [1u8; 32];
    other_exporter[31] ^= 1;
    assert_eq!(
        verify_confirmation(&key, Side::Joiner, &other_exporter, &t, &mac),
        Err(PakeError::BadConfirmation)
    );
    // Nor for another transcript, another side (a reflected MAC), or another key.
    let mut other_t = t;
    other_t[0] ^= 1;
    assert!(verify_confirmation(&key, Side::Joiner, &[1; 32], &other_t, &mac).is_err());
    assert!(verify_confirmation(&key, Side::Member, &[1; 32], &t, &mac).is_err());
    assert!(verify_confirmation(&[43; 32], Side::Joiner, &[1; 32], &t, &mac).is_err());
}

#[test]
fn other_peers_or_costs_do_not_confirm() {
    let s = secret(b"pw");
    // The joiner believes it talks to another member (a relay between members).
    let mut other_member = binding(7);
    other_member.member = name(2, "bob");
    assert!(run(&s, binding(7), &s, &other_member).is_err());
    // Another joiner name.
    let mut other_joiner = binding(7);
    other_joiner.joiner = name(3, "carol");
    assert!(run(&s, binding(7), &s, &other_joiner).is_err());
    // Another group.
    let mut other_group = binding(7);
    other_group.group = name(200, "group");
    assert!(run(&s, binding(7), &s, &other_group).is_err());
    // The same key bytes claimed under other cost parameters.
    let cheaper = PasswordSecret::from_derived(
        KdfParams {
            m_cost_kib: 128,
            t_cost: 1,
            lanes: 1,
        },
        s.derived_key(),
    )
    .unwrap();
    assert_eq!(
        run(&s, binding(7), &cheaper, &binding(7)),
        Err(PakeError::BadConfirmation)
    );
}

#[test]
fn a_forged_member_confirmation_is_refused_by_the_joiner() {
    let s = secret(b"pw");
    let (_member, start) = MemberPake::start(&s, binding(7));
    let JoinMessage::Start { pake, .. } = start else {
        panic!("not a start message");
    };
    let (joiner, _proof) = JoinerPake::respond(&s, &binding(7), &pake).unwrap();
    assert_eq!(
        joiner.check_member(&[0; 32]),
        Err(PakeError::BadConfirmation)
    );
}

#[test]
fn malformed_spake2_messages_are_protocol_errors() {
    let s = secret(b"pw");
    for bad in [vec![], vec![0x42; 10], vec![0x53; 33]] {
        assert!(matches!(
            JoinerPake::respond(&s, &binding(7), &bad),
            Err(PakeError::Malformed(_))
        ));
        let (member, _) = MemberPake::start(&s, binding(7));
        assert!(matches!(
            member.finish(&bad, &[0; 32]),
            Err(PakeError::Malformed(_))
        ));
    }
}

#[test]
fn the_codec_refuses_what_is_not_exactly_one_message() {
    let messages = [
        JoinMessage::Start {
            kdf: KdfParams::DEFAULT.into(),
            pake: vec![1, 2, 3],
        },
        JoinMessage::Proof {
            pake: vec![4; 33],
            confirm: [5; 32],
        },
        JoinMessage::Issued {
            confirm: [6; 32],
            chain: vec![vec![7; 300], vec![8; 200]],
        },
        JoinMessage::Refused(WireRefusal::RateLimited {
            retry_after_secs: 60,
        }),
        JoinMessage::Refused(WireRefusal::IssueFailed("no".into())),
    ];
    for msg in messages {
        let body = encode(&msg).unwrap();
        assert_eq!(body[0], MESSAGE_VERSION);
        assert_eq!(decode(&body).unwrap(), msg);
        let mut trailing = body.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        let mut version = body.clone();
        version[0] = 2;
        assert!(decode(&version).is_err());
        assert!(decode(&body[..body.len() - 1]).is_err());
    }
    assert!(decode(&[]).is_err());
    assert!(decode(&vec![1; MAX_MESSAGE + 1]).is_err());
}

#[test]
fn long_refusal_reasons_are_cut() {
    let long = "é".repeat(1000);
    let WireRefusal::IssueFailed(cut) = WireRefusal::IssueFailed(long).truncated() else {
        panic!("variant changed");
    };
    assert!(cut.len() <= 256 && !cut.is_empty());
}
