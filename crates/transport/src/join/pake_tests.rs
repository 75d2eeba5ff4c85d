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

fn record(password: &[u8]) -> PasswordRecord {
    PasswordRecord::register(password, &name(100, "group"), KdfParams::INSECURE_FAST).unwrap()
}

/// The messages of one run, as sent (through the codec).
fn through_codec(msg: &JoinMessage) -> JoinMessage {
    decode(&encode(msg).unwrap()).unwrap()
}

/// Runs the exchange through encoded bytes: the member's record and binding and the
/// joiner's password and binding may differ. `Err` at the joiner is its verdict on KE2; the
/// inner result the member's verdict on KE3.
fn run(
    member_record: &PasswordRecord,
    member_binding: &Binding,
    joiner_password: &[u8],
    joiner_binding: &Binding,
) -> Result<Result<(), PakeError>, PakeError> {
    let (joiner, request) = JoinerPake::start(joiner_password).unwrap();
    let JoinMessage::Request { ke1 } = through_codec(&request) else {
        panic!("not a request");
    };
    let (member, start) = MemberPake::start(member_record, member_binding, &ke1).unwrap();
    let JoinMessage::Start { kdf, ke2 } = through_codec(&start) else {
        panic!("not a start message");
    };
    assert_eq!(KdfParams::from(kdf), member_record.kdf());
    let proof = joiner.finish(joiner_password, joiner_binding, kdf, &ke2)?;
    let JoinMessage::Proof { ke3 } = through_codec(&proof) else {
        panic!("not a proof message");
    };
    Ok(member.finish(&ke3))
}

#[test]
fn the_right_password_is_confirmed_both_ways() {
    let r = record(b"correct horse");
    assert_eq!(
        run(&r, &binding(7), b"correct horse", &binding(7)),
        Ok(Ok(()))
    );
}

#[test]
fn a_wrong_password_is_refused() {
    // The joiner learns it from KE2 (its envelope does not open) and sends no proof.
    let result = run(
        &record(b"correct horse"),
        &binding(7),
        b"correct horsf",
        &binding(7),
    );
    assert_eq!(result, Err(PakeError::BadConfirmation));
}

#[test]
fn a_member_without_a_registration_of_the_password_is_refused_by_the_joiner() {
    // A member (or a relay) holding a registration of another password, or of this password
    // for another group, cannot make a KE2 the joiner accepts.
    let other_password = record(b"another");
    assert_eq!(
        run(&other_password, &binding(7), b"pw", &binding(7)),
        Err(PakeError::BadConfirmation)
    );
    let other_group =
        PasswordRecord::register(b"pw", &name(200, "group"), KdfParams::INSECURE_FAST).unwrap();
    assert_eq!(
        run(&other_group, &binding(7), b"pw", &binding(7)),
        Err(PakeError::BadConfirmation)
    );
}

#[test]
fn a_login_from_another_tls_session_is_refused() {
    // Same password, same peers, but the joiner's login is for another session's exporter
    // value (a relayed run).
    let r = record(b"correct horse");
    assert_eq!(
        run(&r, &binding(7), b"correct horse", &binding(8)),
        Err(PakeError::BadConfirmation)
    );
}

#[test]
fn a_proof_replayed_into_another_session_is_refused_by_the_member() {
    let r = record(b"pw");
    // A complete honest run in session 7 ...
    let (joiner, JoinMessage::Request { ke1 }) = JoinerPake::start(b"pw").unwrap() else {
        panic!("not a request");
    };
    let (_member, start) = MemberPake::start(&r, &binding(7), &ke1).unwrap();
    let JoinMessage::Start { kdf, ke2 } = start else {
        panic!("not a start message");
    };
    let JoinMessage::Proof { ke3 } = joiner.finish(b"pw", &binding(7), kdf, &ke2).unwrap() else {
        panic!("not a proof");
    };
    // ... whose KE1 and KE3 are replayed to the member in session 8.
    let (member, _) = MemberPake::start(&r, &binding(8), &ke1).unwrap();
    assert_eq!(member.finish(&ke3), Err(PakeError::BadConfirmation));
}

#[test]
fn other_peers_or_costs_do_not_confirm() {
    let r = record(b"pw");
    // The joiner believes it talks to another member (a relay between members).
    let mut other_member = binding(7);
    other_member.member = name(2, "bob");
    assert!(run(&r, &binding(7), b"pw", &other_member).is_err());
    // Another joiner name.
    let mut other_joiner = binding(7);
    other_joiner.joiner = name(3, "carol");
    assert!(run(&r, &binding(7), b"pw", &other_joiner).is_err());
    // Another group.
    let mut other_group = binding(7);
    other_group.group = name(200, "group");
    assert!(run(&r, &binding(7), b"pw", &other_group).is_err());
    // The cost in `Start` changed on the way (the context covers it, whatever it stretches).
    let (joiner, JoinMessage::Request { ke1 }) = JoinerPake::start(b"pw").unwrap() else {
        panic!("not a request");
    };
    let (_member, JoinMessage::Start { kdf, ke2 }) =
        MemberPake::start(&r, &binding(7), &ke1).unwrap()
    else {
        panic!("not a start message");
    };
    let other_cost = WireKdf {
        t_cost: kdf.t_cost + 1,
        ..kdf
    };
    assert!(matches!(
        joiner.finish(b"pw", &binding(7), other_cost, &ke2),
        Err(PakeError::BadConfirmation)
    ));
}

#[test]
fn the_stored_record_cannot_stand_in_for_the_password() {
    let password = b"correct horse battery staple";
    let r = record(password);
    let stored = r.to_bytes();
    // The password is not in it.
    assert!(!stored.windows(password.len()).any(|w| w == password));
    // Nor is the SPAKE2 protocol's password-equivalent Argon2id output of it (same salt,
    // same cost): the Argon2id input is now the OPRF output, which needs the member's key.
    let salt = sha256(
        &[
            b"peergroup password join v1\0".as_slice(),
            name(100, "group").to_string().as_bytes(),
        ]
        .concat(),
    );
    let mut old = [0u8; 32];
    let kdf = KdfParams::INSECURE_FAST;
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.lanes, Some(32)).unwrap(),
    )
    .hash_password_into(password, &salt, &mut old)
    .unwrap();
    assert!(!stored.windows(32).any(|w| w == old));
    // No bytes of it log in in the password's place: the whole record, the setup, the
    // registration record, any 32 or 64 aligned bytes.
    let (setup, registration) = r.opaque().unwrap();
    let mut candidates: Vec<Vec<u8>> = vec![
        stored.to_vec(),
        setup.serialize().to_vec(),
        registration.serialize().to_vec(),
        old.to_vec(),
    ];
    for size in [32, 64] {
        candidates.extend(stored.chunks(size).map(<[u8]>::to_vec));
    }
    for candidate in &candidates {
        assert_eq!(
            run(&r, &binding(7), candidate, &binding(7)),
            Err(PakeError::BadConfirmation),
            "{} bytes",
            candidate.len()
        );
    }
    assert_eq!(run(&r, &binding(7), password, &binding(7)), Ok(Ok(())));
}

#[test]
fn malformed_opaque_messages_are_protocol_errors() {
    let r = record(b"pw");
    let oversize = vec![0x42; MAX_OPAQUE_MESSAGE + 1];
    for bad in [
        vec![],
        vec![0x42; 10],
        vec![0xff; 96],
        vec![0x53; 320],
        oversize,
    ] {
        assert!(matches!(
            MemberPake::start(&r, &binding(7), &bad),
            Err(PakeError::Malformed(_))
        ));
        let (joiner, JoinMessage::Request { ke1 }) = JoinerPake::start(b"pw").unwrap() else {
            panic!("not a request");
        };
        assert!(matches!(
            joiner.finish(b"pw", &binding(7), KdfParams::INSECURE_FAST.into(), &bad),
            Err(PakeError::Malformed(_))
        ));
        let (member, _) = MemberPake::start(&r, &binding(7), &ke1).unwrap();
        assert!(matches!(
            member.finish(&bad),
            Err(PakeError::Malformed(_)) | Err(PakeError::BadConfirmation)
        ));
    }
}

#[test]
fn the_codec_refuses_what_is_not_exactly_one_message() {
    let messages = [
        JoinMessage::Request { ke1: vec![9; 96] },
        JoinMessage::Start {
            kdf: KdfParams::DEFAULT.into(),
            ke2: vec![1, 2, 3],
        },
        JoinMessage::Proof { ke3: vec![4; 64] },
        JoinMessage::Abandoned,
        JoinMessage::Issued {
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
        version[0] = 1;
        assert!(decode(&version).is_err());
        if body.len() > 2 {
            assert!(decode(&body[..body.len() - 1]).is_err());
        }
    }
    assert!(decode(&[]).is_err());
    assert!(decode(&vec![2; MAX_MESSAGE + 1]).is_err());
}

#[test]
fn long_refusal_reasons_are_cut() {
    let long = "é".repeat(1000);
    let WireRefusal::IssueFailed(cut) = WireRefusal::IssueFailed(long).truncated() else {
        panic!("variant changed");
    };
    assert!(cut.len() <= 256 && !cut.is_empty());
}
