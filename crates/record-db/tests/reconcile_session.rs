//! The two-party session against a `BTreeSet` model, edge cases, and hostile message sequences.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers")]

use std::collections::BTreeSet;

use peergroup_record_db::reconcile::measure::{drive, expected_outcome, random_keys};
use peergroup_record_db::reconcile::{
    CodedSymbol, Config, Fault, MAX_MESSAGE_BYTES, Message, Outcome, PROTOCOL_VERSION,
    ReconcileError, Session, SetSnapshot, Violation,
};
use proptest::prelude::*;

/// Runs an honest pair; returns both sessions.
fn reconcile(a: &[u64], b: &[u64], config: Config) -> (Session<SetSnapshot>, Session<SetSnapshot>) {
    let mut initiator = Session::initiator(SetSnapshot::new(a.iter().copied()), config);
    let mut responder = Session::responder(SetSnapshot::new(b.iter().copied()), config);
    drive(&mut initiator, &mut responder).expect("honest sessions succeed");
    (initiator, responder)
}

fn assert_exact(
    a: &[u64],
    b: &[u64],
    config: Config,
) -> (Session<SetSnapshot>, Session<SetSnapshot>) {
    let (i, r) = reconcile(a, b, config);
    assert_eq!(i.outcome(), Some(&expected_outcome(a, b)));
    assert_eq!(r.outcome(), Some(&expected_outcome(b, a)));
    let (si, sr) = (i.stats(), r.stats());
    assert_eq!(si.bytes_sent, sr.bytes_received);
    assert_eq!(si.bytes_received, sr.bytes_sent);
    assert_eq!(si.round_trips(), sr.round_trips());
    (i, r)
}

/// Sets with `common` shared keys, `a_only` only in A, `b_only` only in B.
fn sets(common: usize, a_only: usize, b_only: usize, seed: u64) -> (Vec<u64>, Vec<u64>) {
    let keys = random_keys(common + a_only + b_only, seed);
    let (shared, rest) = keys.split_at(common);
    let (ea, eb) = rest.split_at(a_only);
    (
        shared.iter().chain(ea).copied().collect(),
        shared.iter().chain(eb).copied().collect(),
    )
}

fn diff_size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), 0usize..4, 0usize..60, 0usize..2000]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Both sides end with exactly the model's differences, for any overlap from identical to
    /// disjoint sets.
    #[test]
    fn outcome_matches_the_model(
        common in 0usize..2000, a_only in diff_size(), b_only in diff_size(), seed in any::<u64>(),
        initial in prop_oneof![Just(32usize), 0usize..64],
    ) {
        let (a, b) = sets(common, a_only.min(2000), b_only.min(2000), seed);
        let config = Config { initial_symbols: initial, ..Config::default() };
        let (i, r) = reconcile(&a, &b, config);
        let model_a: BTreeSet<u64> = a.iter().copied().collect();
        let model_b: BTreeSet<u64> = b.iter().copied().collect();
        let want_i = Outcome {
            local_only: model_a.difference(&model_b).copied().collect(),
            remote_only: model_b.difference(&model_a).copied().collect(),
        };
        let want_r = Outcome {
            local_only: want_i.remote_only.clone(),
            remote_only: want_i.local_only.clone(),
        };
        prop_assert_eq!(i.outcome(), Some(&want_i));
        prop_assert_eq!(r.outcome(), Some(&want_r));
        prop_assert_eq!(i.stats().bytes_sent, r.stats().bytes_received);
        prop_assert_eq!(i.stats().round_trips(), r.stats().round_trips());
    }

    /// Symbol batches, key lists and results split into parts as small as one symbol or one
    /// key: the same outcome, the same symbols and the same round trips as unsplit, and no
    /// message larger than its parts allow.
    #[test]
    fn outcome_is_the_same_in_small_parts(
        common in 0usize..1500, a_only in diff_size(), b_only in diff_size(), seed in any::<u64>(),
        symbols_per_message in 1usize..8, keys_per_message in 1usize..40,
    ) {
        let (a, b) = sets(common, a_only.min(600), b_only.min(600), seed);
        let (whole_i, _) = reconcile(&a, &b, Config::default());
        let config = Config { symbols_per_message, keys_per_message, ..Config::default() };
        let mut i = Session::initiator(SetSnapshot::new(a.iter().copied()), config);
        let mut r = Session::responder(SetSnapshot::new(b.iter().copied()), config);
        let mut largest = (0, 0);
        drive_checked(&mut i, &mut r, |m| {
            let (symbols, keys) = counts(m);
            largest = (largest.0.max(symbols), largest.1.max(keys));
        })
        .expect("honest sessions succeed");
        prop_assert!(largest.0 <= symbols_per_message.max(32), "{largest:?}");
        prop_assert!(largest.1 <= keys_per_message.max(32), "{largest:?}");
        prop_assert_eq!(i.outcome(), Some(&expected_outcome(&a, &b)));
        prop_assert_eq!(r.outcome(), Some(&expected_outcome(&b, &a)));
        prop_assert_eq!(i.stats().round_trips(), whole_i.stats().round_trips());
        prop_assert_eq!(i.stats().round_trips(), r.stats().round_trips());
        prop_assert_eq!(i.stats().symbols_sent, whole_i.stats().symbols_sent);
    }
}

/// (symbols, keys) a message carries.
fn counts(message: &Message) -> (usize, usize) {
    match message {
        Message::Start { symbols, .. }
        | Message::SymbolsPart { symbols, .. }
        | Message::Symbols { symbols, .. } => (symbols.len(), 0),
        Message::StartKeys { keys, .. } | Message::KeysPart { keys } | Message::Keys { keys } => {
            (0, keys.len())
        }
        Message::DonePart {
            initiator_lacks,
            responder_lacks,
        }
        | Message::Done {
            initiator_lacks,
            responder_lacks,
            ..
        } => (0, initiator_lacks.len() + responder_lacks.len()),
        _ => (0, 0),
    }
}

/// [`drive`], showing every message to `check` (and checking it within the wire bounds and
/// through postcard) on its way.
fn drive_checked(
    initiator: &mut Session<SetSnapshot>,
    responder: &mut Session<SetSnapshot>,
    mut check: impl FnMut(&Message),
) -> Result<(), ReconcileError> {
    loop {
        let mut moved = false;
        while let Some(message) = initiator.poll_transmit() {
            check(&message);
            assert!(message.encoded_len() <= MAX_MESSAGE_BYTES);
            responder.handle_bytes(&message.encode())?;
            moved = true;
        }
        while let Some(message) = responder.poll_transmit() {
            check(&message);
            assert!(message.encoded_len() <= MAX_MESSAGE_BYTES);
            initiator.handle_bytes(&message.encode())?;
            moved = true;
        }
        if !moved {
            return Ok(());
        }
    }
}

#[test]
fn empty_sets() {
    let (i, _) = assert_exact(&[], &[], Config::default());
    assert_eq!(i.stats().round_trips(), 1);
    let big = random_keys(1000, 1);
    let (i, _) = assert_exact(&[], &big, Config::default());
    assert_eq!(i.stats().round_trips(), 1, "StartKeys → Done");
    let (i, _) = assert_exact(&big, &[], Config::default());
    assert_eq!(i.stats().round_trips(), 2, "Start → Keys → Done");
}

#[test]
fn identical_sets_take_one_round_trip() {
    let keys = random_keys(5000, 2);
    let (i, _) = assert_exact(&keys, &keys, Config::default());
    assert_eq!(i.stats().round_trips(), 1);
    assert_eq!(i.stats().symbols_sent, 32);
}

#[test]
fn disjoint_sets_fall_back_to_key_lists() {
    let (a, b) = sets(0, 3000, 2000, 3);
    let (i, _) = assert_exact(&a, &b, Config::default());
    assert!(i.stats().keys_sent + i.stats().keys_received >= 5000);
    assert!(i.stats().symbols_sent < 1000);
}

#[test]
fn symbol_cap_forces_the_fallback() {
    let (a, b) = sets(5000, 300, 300, 4);
    let config = Config {
        max_total_symbols: 100,
        ..Config::default()
    };
    let (i, _) = assert_exact(&a, &b, config);
    assert!(i.stats().symbols_sent <= 100);
}

#[test]
fn one_sided_differences() {
    let (a, b) = sets(3000, 0, 700, 5);
    assert_exact(&a, &b, Config::default());
    assert_exact(&b, &a, Config::default());
}

#[test]
fn handle_bytes_counts_and_rejects_trailing_bytes() {
    let keys = random_keys(100, 6);
    let mut initiator =
        Session::initiator(SetSnapshot::new(keys.iter().copied()), Config::default());
    let mut responder =
        Session::responder(SetSnapshot::new(keys.iter().copied()), Config::default());
    let mut bytes = initiator.poll_transmit().unwrap().encode();
    bytes.push(0);
    let err = responder.handle_bytes(&bytes).unwrap_err();
    assert!(matches!(err, ReconcileError::Malformed(_)));
    assert_eq!(err.fault(), Fault::Peer);
    assert_eq!(responder.stats().bytes_received, bytes.len() as u64);
    assert_eq!(
        responder.handle_bytes(&bytes[..bytes.len() - 1]),
        Err(ReconcileError::Closed)
    );
    assert!(responder.is_failed());
}

fn fresh() -> (Session<SetSnapshot>, Session<SetSnapshot>) {
    let (a, b) = sets(500, 20, 20, 7);
    (
        Session::initiator(SetSnapshot::new(a), Config::default()),
        Session::responder(SetSnapshot::new(b), Config::default()),
    )
}

fn violation(result: Result<(), ReconcileError>) -> Violation {
    match result {
        Err(ReconcileError::ProtocolViolation(v)) => v,
        other => panic!("expected a protocol violation, got {other:?}"),
    }
}

#[test]
fn unexpected_messages_are_violations() {
    let (mut i, mut r) = fresh();
    assert!(matches!(
        violation(r.handle_message(Message::SendKeys)),
        Violation::UnexpectedMessage {
            got: "SendKeys",
            ..
        }
    ));
    let _ = i.poll_transmit();
    let start = Message::Start {
        version: PROTOCOL_VERSION,
        set_size: 1,
        symbols: vec![],
    };
    assert!(matches!(
        violation(i.handle_message(start)),
        Violation::UnexpectedMessage { got: "Start", .. }
    ));
    assert_eq!(
        i.handle_message(Message::SendKeys),
        Err(ReconcileError::Closed)
    );
}

#[test]
fn out_of_order_and_absurd_requests_are_refused() {
    let (mut i, _) = fresh();
    let _ = i.poll_transmit();
    assert_eq!(
        violation(i.handle_message(Message::More { from: 5, count: 10 })),
        Violation::OutOfOrder {
            expected: 32,
            got: 5
        }
    );
    let (mut i, _) = fresh();
    let _ = i.poll_transmit();
    assert!(matches!(
        violation(i.handle_message(Message::More {
            from: 32,
            count: 1 << 40
        })),
        Violation::SymbolLimit { .. }
    ));
    let (mut i, _) = fresh();
    let _ = i.poll_transmit();
    assert!(matches!(
        violation(i.handle_message(Message::More { from: 32, count: 0 })),
        Violation::SymbolLimit { .. }
    ));
}

#[test]
fn request_count_is_capped() {
    let (mut i, _) = fresh();
    let _ = i.poll_transmit();
    let mut from = 32;
    for _ in 0..Config::default().max_requests {
        i.handle_message(Message::More { from, count: 1 }).unwrap();
        assert!(i.poll_transmit().is_some());
        from += 1;
    }
    assert!(matches!(
        violation(i.handle_message(Message::More { from, count: 1 })),
        Violation::TooManyRequests { .. }
    ));
    // An honest responder under a tiny request cap falls back to key lists instead.
    let (a, b) = sets(3000, 200, 200, 12);
    let config = Config {
        max_requests: 0,
        ..Config::default()
    };
    let (i, _) = assert_exact(&a, &b, config);
    assert_eq!(i.stats().symbols_sent, 32);
}

#[test]
fn wrong_symbol_batches_are_refused() {
    let more = |r: &mut Session<SetSnapshot>, i: &mut Session<SetSnapshot>| {
        let start = i.poll_transmit().unwrap();
        r.handle_message(start).unwrap();
        let Some(Message::More { from, count }) = r.poll_transmit() else {
            // 40 differences in 32 symbols: the responder needs more.
            panic!("expected More");
        };
        (from, count)
    };
    // More symbols than the request asked for.
    let (mut i, mut r) = fresh();
    let (from, count) = more(&mut r, &mut i);
    let long = Message::Symbols {
        from,
        symbols: vec![CodedSymbol::ZERO; count as usize + 1],
    };
    assert!(matches!(
        violation(r.handle_message(long)),
        Violation::WrongSymbolCount { .. }
    ));
    // An empty part.
    let (mut i, mut r) = fresh();
    let (from, _) = more(&mut r, &mut i);
    let empty = Message::Symbols {
        from,
        symbols: vec![],
    };
    assert!(matches!(
        violation(r.handle_message(empty)),
        Violation::WrongSymbolCount { .. }
    ));
    // A last part that does not complete the request.
    let (mut i, mut r) = fresh();
    let (from, count) = more(&mut r, &mut i);
    let short = Message::Symbols {
        from,
        symbols: vec![CodedSymbol::ZERO; count as usize - 1],
    };
    assert!(matches!(
        violation(r.handle_message(short)),
        Violation::WrongSymbolCount { .. }
    ));
    // A part that leaves nothing for the last.
    let (mut i, mut r) = fresh();
    let (from, count) = more(&mut r, &mut i);
    let whole = Message::SymbolsPart {
        from,
        symbols: vec![CodedSymbol::ZERO; count as usize],
    };
    assert!(matches!(
        violation(r.handle_message(whole)),
        Violation::WrongSymbolCount { .. }
    ));
    // A first part; the next must continue where it ended.
    let (mut i, mut r) = fresh();
    let (from, count) = more(&mut r, &mut i);
    let first = Message::SymbolsPart {
        from,
        symbols: vec![CodedSymbol::ZERO; count as usize - 1],
    };
    r.handle_message(first).unwrap();
    assert_eq!(r.poll_transmit(), None, "the request is not answered yet");
    let gap = Message::Symbols {
        from: from + count,
        symbols: vec![CodedSymbol::ZERO],
    };
    assert_eq!(
        violation(r.handle_message(gap)),
        Violation::OutOfOrder {
            expected: from + count - 1,
            got: from + count
        }
    );
}

#[test]
fn incompatible_version_is_its_own_fault() {
    let (_, mut r) = fresh();
    let err = r
        .handle_message(Message::StartKeys {
            version: PROTOCOL_VERSION + 1,
            keys: vec![],
        })
        .unwrap_err();
    assert_eq!(err.fault(), Fault::Incompatible);
}

#[test]
fn forged_done_is_checked_against_our_set() {
    let (a, b) = sets(500, 20, 20, 8);
    let mut i = Session::initiator(SetSnapshot::new(a.iter().copied()), Config::default());
    let _ = i.poll_transmit();
    // Claims the initiator lacks a key it holds.
    let forged = Message::Done {
        initiator_lacks: vec![a[0]],
        responder_lacks: vec![],
        sender_set: CodedSymbol::ZERO,
    };
    assert_eq!(
        violation(i.handle_message(forged)),
        Violation::InconsistentResult(a[0])
    );
    let mut i = Session::initiator(SetSnapshot::new(a.iter().copied()), Config::default());
    let _ = i.poll_transmit();
    let dup = Message::Done {
        initiator_lacks: vec![b[b.len() - 1]; 2],
        responder_lacks: vec![],
        sender_set: CodedSymbol::ZERO,
    };
    assert!(matches!(
        violation(i.handle_message(dup)),
        Violation::DuplicateKey(_)
    ));
}

#[test]
fn done_must_match_the_senders_set() {
    // The responder is still waiting for symbols; a `Done` claiming "no difference" reaches
    // the initiator instead of the `More` it sent. The initiator can tell: applied to its own
    // set, the (empty) differences do not give the set symbol the sender declares — unless
    // the declared symbol is the initiator's own, which only a forger knowing our set sends.
    let (a, b) = sets(300, 15, 15, 10);
    let config = Config {
        initial_symbols: 8,
        ..Config::default()
    };
    let mut i = Session::initiator(SetSnapshot::new(a.iter().copied()), config);
    let _ = i.poll_transmit();
    let mut responder_set = CodedSymbol::ZERO;
    for &k in &b {
        responder_set.add_key(k);
    }
    let claim = |sender_set| Message::Done {
        initiator_lacks: vec![],
        responder_lacks: vec![],
        sender_set,
    };
    assert_eq!(
        violation(i.handle_message(claim(responder_set))),
        Violation::SetMismatch
    );
    // The true differences with the true symbol are accepted.
    let mut i = Session::initiator(SetSnapshot::new(a.iter().copied()), config);
    let _ = i.poll_transmit();
    let want = expected_outcome(&a, &b);
    let done = Message::Done {
        initiator_lacks: want.remote_only.clone(),
        responder_lacks: want.local_only.clone(),
        sender_set: responder_set,
    };
    assert_eq!(i.handle_message(done), Ok(()));
    assert_eq!(i.outcome(), Some(&want));
}

#[test]
fn messages_after_the_outcome_are_rejected_but_the_outcome_stays() {
    let (a, b) = sets(500, 3, 3, 9);
    let (mut i, _) = assert_exact(&a, &b, Config::default());
    assert!(i.handle_message(Message::SendKeys).is_err());
    assert_eq!(i.outcome(), Some(&expected_outcome(&a, &b)));
    assert!(!i.is_failed());
}

#[test]
fn messages_roundtrip_through_postcard() {
    let (mut i, _) = fresh();
    let start = i.poll_transmit().unwrap();
    let bytes = start.encode();
    assert_eq!(bytes.len(), start.encoded_len());
    assert_eq!(Message::decode(&bytes), Ok(start));
    let done = Message::Done {
        initiator_lacks: vec![1, u64::MAX],
        responder_lacks: vec![],
        sender_set: CodedSymbol {
            count: 300,
            key_sum: 1,
            check_sum: 2,
        },
    };
    // Tag, length, two 8-byte keys, length, the set symbol (count 300 is a two-byte zigzag
    // varint, two fixed 8-byte sums).
    assert_eq!(done.encoded_len(), 1 + 1 + 16 + 1 + 2 + 16);
    assert_eq!(Message::decode(&done.encode()), Ok(done));
}

// ---- Hostile sequences -------------------------------------------------------------------

fn any_symbol() -> impl Strategy<Value = CodedSymbol> + Clone {
    (any::<i64>(), any::<u64>(), any::<u64>()).prop_map(|(count, key_sum, check_sum)| CodedSymbol {
        count: count % 3,
        key_sum,
        check_sum,
    })
}

fn any_key(known: Vec<u64>) -> impl Strategy<Value = u64> + Clone {
    prop_oneof![any::<u64>(), prop::sample::select(known)]
}

fn any_message(known: Vec<u64>) -> impl Strategy<Value = Message> {
    let keys = prop::collection::vec(any_key(known), 0..12);
    let symbols = prop::collection::vec(any_symbol(), 0..48);
    prop_oneof![
        (0u16..3, 0u64..3000, symbols.clone()).prop_map(|(version, set_size, symbols)| {
            Message::Start {
                version,
                set_size,
                symbols,
            }
        }),
        (0u16..3, keys.clone()).prop_map(|(version, keys)| Message::StartKeys { version, keys }),
        (0u64..100, prop_oneof![0u64..100, any::<u64>()])
            .prop_map(|(from, count)| Message::More { from, count }),
        (0u64..100, symbols.clone())
            .prop_map(|(from, symbols)| Message::SymbolsPart { from, symbols }),
        (0u64..100, symbols).prop_map(|(from, symbols)| Message::Symbols { from, symbols }),
        Just(Message::SendKeys),
        keys.clone().prop_map(|keys| Message::KeysPart { keys }),
        keys.clone().prop_map(|keys| Message::Keys { keys }),
        (keys.clone(), keys.clone()).prop_map(|(initiator_lacks, responder_lacks)| {
            Message::DonePart {
                initiator_lacks,
                responder_lacks,
            }
        }),
        (keys.clone(), keys, any_symbol()).prop_map(
            |(initiator_lacks, responder_lacks, sender_set)| Message::Done {
                initiator_lacks,
                responder_lacks,
                sender_set,
            }
        ),
    ]
}

fn known_keys() -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    let (a, b) = sets(300, 15, 15, 10);
    let mut known = a.clone();
    known.extend(&b);
    (a, b, known)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary message sequences never panic either role; once a session fails it stays
    /// failed; an accepted outcome never contradicts our own set; every reply is within the
    /// per-message bounds; with the default parts, each message produces at most one reply.
    #[test]
    fn arbitrary_sequences_never_panic(
        messages in prop::collection::vec(any_message(known_keys().2), 0..12),
        small_parts in any::<bool>(),
    ) {
        let (a, b, _) = known_keys();
        let config = if small_parts {
            Config { symbols_per_message: 3, keys_per_message: 4, ..Config::default() }
        } else {
            Config::default()
        };
        for initiator in [true, false] {
            let own = if initiator { a.clone() } else { b.clone() };
            let snapshot = SetSnapshot::new(own.iter().copied());
            let mut session = if initiator {
                Session::initiator(snapshot, config)
            } else {
                Session::responder(snapshot, config)
            };
            let _ = session.poll_transmit();
            let mut failed = false;
            for message in messages.clone() {
                let result = session.handle_message(message);
                if failed {
                    prop_assert_eq!(&result, &Err(ReconcileError::Closed));
                }
                failed |= session.is_failed();
                let mut replies = 0;
                while let Some(reply) = session.poll_transmit() {
                    replies += 1;
                    prop_assert!(reply.encoded_len() <= MAX_MESSAGE_BYTES);
                    prop_assert_eq!(reply.check_bounds(), Ok(()));
                }
                prop_assert!(small_parts || replies <= 1);
            }
            if let Some(outcome) = session.outcome() {
                prop_assert!(outcome.local_only.iter().all(|k| own.contains(k)));
                prop_assert!(outcome.remote_only.iter().all(|k| !own.contains(k)));
            }
        }
    }

    /// An honest pair with one message replaced or corrupted in flight still terminates:
    /// either a side reports an error, or both reach an outcome, or the tampered message
    /// became a part that more parts should follow (`SymbolsPart`, `KeysPart`, `DonePart`)
    /// and its receiver waits for them: the sender has nothing more to say, as if it went
    /// silent, which only the caller's timeout ends. With small parts, the victim may be any
    /// part of a symbol batch, a key list or `Done`.
    #[test]
    fn tampered_conversations_terminate(
        victim in 0usize..16, replacement in any_message(known_keys().2),
        corrupt in any::<bool>(), byte in any::<usize>(), bit in 0u8..8,
        small_parts in any::<bool>(),
    ) {
        let (a, b, _) = known_keys();
        let config = if small_parts {
            Config { initial_symbols: 8, symbols_per_message: 5, keys_per_message: 6,
                ..Config::default() }
        } else {
            Config { initial_symbols: 8, ..Config::default() }
        };
        let mut initiator = Session::initiator(SetSnapshot::new(a), config);
        let mut responder = Session::responder(SetSnapshot::new(b), config);
        let mut sent = 0usize;
        let mut error = None;
        let mut cut_short = false;
        'outer: for _ in 0..5000 {
            let mut moved = false;
            for to_responder in [true, false] {
                let from = if to_responder { &mut initiator } else { &mut responder };
                let Some(mut message) = from.poll_transmit() else { continue };
                if sent == victim {
                    message = if corrupt {
                        let mut bytes = message.encode();
                        let len = bytes.len();
                        bytes[byte % len] ^= 1 << bit;
                        Message::decode(&bytes).unwrap_or(Message::SendKeys)
                    } else {
                        replacement.clone()
                    };
                    cut_short = matches!(
                        message,
                        Message::SymbolsPart { .. }
                            | Message::KeysPart { .. }
                            | Message::DonePart { .. }
                    );
                }
                sent += 1;
                moved = true;
                let to = if to_responder { &mut responder } else { &mut initiator };
                if let Err(e) = to.handle_message(message) {
                    error = Some(e);
                    break 'outer;
                }
            }
            if !moved {
                break;
            }
        }
        prop_assert!(
            error.is_some()
                || (initiator.outcome().is_some() && responder.outcome().is_some())
                || cut_short,
            "stuck: initiator {:?} responder {:?}", initiator.outcome(), responder.outcome()
        );
    }
}
