//! Every reconciliation message is bounded: the worst case of each kind fits
//! [`MAX_MESSAGE_BYTES`] (and, wrapped for the sync, [`MAX_SYNC_MESSAGE_BYTES`]); a difference of
//! millions of keys or a symbol request past one message travels in parts under the bound; a
//! peer's message over the bound is refused as a protocol violation; a forged result in parts is
//! caught.

#![allow(clippy::expect_used, clippy::panic, reason = "test helpers")]

use peergroup_record_db::reconcile::measure::{expected_outcome, key_sets};
use peergroup_record_db::reconcile::{
    CodedSymbol, Config, DiffShape, Encoder, Fault, MAX_KEYS_PER_MESSAGE, MAX_MESSAGE_BYTES,
    MAX_SYMBOLS_PER_MESSAGE, Message, PROTOCOL_VERSION, ReconcileError, Session, SetSnapshot,
    Stats, Violation,
};
use peergroup_record_db::sync::{MAX_SYNC_MESSAGE_BYTES, SyncClass, SyncMessage};

/// A symbol of the largest encoding: a 10-byte zigzag count and two 8-byte sums.
const FAT: CodedSymbol = CodedSymbol {
    count: i64::MIN,
    key_sum: u64::MAX,
    check_sum: u64::MAX,
};

/// The encoded size of `message` wrapped in a [`SyncMessage`].
fn sync_len(message: Message) -> usize {
    SyncMessage::Reconcile {
        class: SyncClass::Security,
        message,
    }
    .encoded_len()
}

fn violation(result: Result<impl std::fmt::Debug, ReconcileError>) -> Violation {
    match result {
        Err(ReconcileError::ProtocolViolation(v)) => v,
        other => panic!("expected a protocol violation, got {other:?}"),
    }
}

/// The largest message of every kind, with the largest varints, stays within the bound; the
/// largest of all is a `Done` part full of keys.
#[test]
fn the_largest_message_of_each_kind_fits() {
    let keys: Vec<u64> = (0..MAX_KEYS_PER_MESSAGE as u64)
        .map(|k| u64::MAX - k)
        .rev()
        .collect();
    let (half_a, half_b) = keys.split_at(MAX_KEYS_PER_MESSAGE / 2);
    let symbols = vec![FAT; MAX_SYMBOLS_PER_MESSAGE];
    let largest = [
        Message::Start {
            version: u16::MAX,
            set_size: u64::MAX,
            symbols: symbols.clone(),
        },
        Message::StartKeys {
            version: u16::MAX,
            keys: keys.clone(),
        },
        Message::More {
            from: u64::MAX,
            count: u64::MAX,
        },
        Message::SymbolsPart {
            from: u64::MAX,
            symbols: symbols.clone(),
        },
        Message::Symbols {
            from: u64::MAX,
            symbols,
        },
        Message::SendKeys,
        Message::KeysPart { keys: keys.clone() },
        Message::Keys { keys: keys.clone() },
        Message::DonePart {
            initiator_lacks: half_a.to_vec(),
            responder_lacks: half_b.to_vec(),
        },
        Message::Done {
            initiator_lacks: half_a.to_vec(),
            responder_lacks: half_b.to_vec(),
            sender_set: FAT,
        },
    ];
    let mut lens = Vec::new();
    for message in largest {
        let len = message.encoded_len();
        assert!(
            len <= MAX_MESSAGE_BYTES,
            "{} of {len} bytes",
            message.kind()
        );
        let bytes = message.encode();
        assert_eq!(bytes.len(), len);
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(&message));
        let wrapped = sync_len(message);
        assert_eq!(wrapped, len + 2, "a tag and a class");
        assert!(wrapped <= MAX_SYNC_MESSAGE_BYTES);
        lens.push(len);
    }
    // Done: a tag, two 3-byte lengths, 2^17 keys, a 26-byte set symbol (the docs' figure).
    assert_eq!(lens.iter().max(), Some(&1_048_609));
    // A batch of symbols: a tag, a 10-byte index, a 3-byte length, 2^15 symbols of 26 bytes.
    assert_eq!(lens[4], 851_982);
}

/// Decoding refuses a message over the bounds as the peer's fault: more than
/// `MAX_MESSAGE_BYTES` without decoding it, more keys or symbols than a message may carry.
#[test]
fn decoding_refuses_a_message_over_the_bounds() {
    let err = Message::decode(&vec![0xa5; MAX_MESSAGE_BYTES + 1]).unwrap_err();
    assert_eq!(err.fault(), Fault::Peer);
    assert_eq!(
        violation(Err::<(), _>(err.clone())),
        Violation::MessageTooLarge {
            bytes: MAX_MESSAGE_BYTES as u64 + 1,
            limit: MAX_MESSAGE_BYTES as u64
        }
    );
    assert!(err.to_string().contains("1048641 bytes"), "{err}");

    let too_many_keys = Message::Keys {
        keys: (0..MAX_KEYS_PER_MESSAGE as u64 + 1).collect(),
    };
    let bytes = too_many_keys.encode();
    assert!(
        bytes.len() <= MAX_MESSAGE_BYTES,
        "caught by the count, not the size"
    );
    assert_eq!(
        violation(Message::decode(&bytes)),
        Violation::KeyLimit {
            got: MAX_KEYS_PER_MESSAGE as u64 + 1,
            limit: MAX_KEYS_PER_MESSAGE as u64
        }
    );
    let too_many_in_done = Message::Done {
        initiator_lacks: (0..MAX_KEYS_PER_MESSAGE as u64).collect(),
        responder_lacks: vec![u64::MAX],
        sender_set: CodedSymbol::ZERO,
    };
    assert!(matches!(
        violation(Message::decode(&too_many_in_done.encode())),
        Violation::KeyLimit { .. }
    ));
    let too_many_symbols = Message::Symbols {
        from: 32,
        symbols: vec![CodedSymbol::ZERO; MAX_SYMBOLS_PER_MESSAGE + 1],
    };
    assert!(matches!(
        violation(Message::decode(&too_many_symbols.encode())),
        Violation::SymbolLimit { .. }
    ));
    let too_large = Message::Keys {
        keys: (0..MAX_KEYS_PER_MESSAGE as u64 + 16).collect(),
    };
    assert!(matches!(
        violation(Message::decode(&too_large.encode())),
        Violation::MessageTooLarge { .. }
    ));
}

/// A session handed an over-bound message (already decoded, as the mesh hands them) fails
/// with a violation that blames the peer, whatever state it is in.
#[test]
fn a_session_refuses_an_over_bound_message() {
    let keys: Vec<u64> = (1..=1000).collect();
    let over = [
        Message::Keys {
            keys: (0..MAX_KEYS_PER_MESSAGE as u64 + 1).collect(),
        },
        Message::Symbols {
            from: 32,
            symbols: vec![CodedSymbol::ZERO; MAX_SYMBOLS_PER_MESSAGE + 1],
        },
        Message::DonePart {
            initiator_lacks: vec![],
            responder_lacks: (0..MAX_KEYS_PER_MESSAGE as u64 + 200).collect(),
        },
    ];
    for message in over {
        for initiator in [true, false] {
            let snapshot = SetSnapshot::new(keys.iter().copied());
            let mut session = if initiator {
                let mut s = Session::initiator(snapshot, Config::default());
                let _ = s.poll_transmit();
                s
            } else {
                Session::responder(snapshot, Config::default())
            };
            let err = session.handle_message(message.clone()).unwrap_err();
            assert_eq!(err.fault(), Fault::Peer, "{err}");
            assert!(
                matches!(
                    err,
                    ReconcileError::ProtocolViolation(
                        Violation::KeyLimit { .. }
                            | Violation::SymbolLimit { .. }
                            | Violation::MessageTooLarge { .. }
                    )
                ),
                "{err}"
            );
            assert!(session.is_failed());
        }
    }
}

/// `n` distinct keys (SplitMix64's finaliser is a bijection), cheaply.
fn distinct_keys(range: std::ops::Range<u64>) -> Vec<u64> {
    range
        .map(|i| {
            let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

/// A snapshot whose encoder keeps 64 symbols (building the full 4,096 for millions of keys
/// would dominate the test's time; symbols past the prefix are computed on demand).
fn snapshot(keys: Vec<u64>) -> SetSnapshot {
    let mut encoder = Encoder::with_prefix(64);
    for &k in &keys {
        encoder.insert(k);
    }
    SetSnapshot::from_parts(keys, encoder).expect("a consistent snapshot")
}

/// Runs two sessions, checking every message against the bounds (and wrapped for the sync)
/// and passing it through postcard; returns the kinds sent, in order.
fn drive_bounded(
    initiator: &mut Session<SetSnapshot>,
    responder: &mut Session<SetSnapshot>,
) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    let mut check = |message: &Message| {
        let len = message.encoded_len();
        assert!(
            len <= MAX_MESSAGE_BYTES,
            "{} of {len} bytes",
            message.kind()
        );
        assert_eq!(message.check_bounds(), Ok(()));
        assert!(sync_len(message.clone()) <= MAX_SYNC_MESSAGE_BYTES);
        kinds.push(message.kind());
    };
    loop {
        let mut moved = false;
        while let Some(message) = initiator.poll_transmit() {
            check(&message);
            responder.handle_message(message).expect("honest");
            moved = true;
        }
        while let Some(message) = responder.poll_transmit() {
            check(&message);
            initiator.handle_message(message).expect("honest");
            moved = true;
        }
        if !moved {
            return kinds;
        }
    }
}

fn same_traffic(a: Stats, b: Stats) {
    assert_eq!(a.bytes_sent, b.bytes_received);
    assert_eq!(a.bytes_received, b.bytes_sent);
    assert_eq!(a.round_trips(), b.round_trips());
}

/// Three million keys on one side only (and 500 on the other only): the result, once more
/// than 16 MiB of keys in one `Done`, travels in 23 parts under the bound, whichever side
/// holds the large set, in two round trips.
#[test]
fn a_difference_of_three_million_keys_travels_in_bounded_parts() {
    const LARGE: u64 = 3_000_000;
    let keys = distinct_keys(0..LARGE + 1000);
    let (large_only, rest) = keys.split_at(LARGE as usize);
    let (common, small_only) = rest.split_at(500);
    let mut large: Vec<u64> = large_only.iter().chain(common).copied().collect();
    let mut small: Vec<u64> = common.iter().chain(small_only).copied().collect();
    large.sort_unstable();
    small.sort_unstable();
    let mut large_only = large_only.to_vec();
    large_only.sort_unstable();
    let mut small_only = small_only.to_vec();
    small_only.sort_unstable();
    let parts = (LARGE as usize + 500).div_ceil(MAX_KEYS_PER_MESSAGE);
    assert_eq!(parts, 23);

    // The large set starts: the responder's small list comes back, the initiator answers
    // with the result in parts.
    let mut i = Session::initiator(snapshot(large.clone()), Config::default());
    let mut r = Session::responder(snapshot(small.clone()), Config::default());
    let kinds = drive_bounded(&mut i, &mut r);
    let mut want: Vec<&str> = vec!["Start", "Keys"];
    want.extend(std::iter::repeat_n("DonePart", parts - 1));
    want.push("Done");
    assert_eq!(kinds, want);
    let outcome = i.outcome().expect("an outcome");
    assert_eq!(outcome.local_only, large_only);
    assert_eq!(outcome.remote_only, small_only);
    let outcome = r.outcome().expect("an outcome");
    assert_eq!(outcome.local_only, small_only);
    assert_eq!(outcome.remote_only, large_only);
    assert_eq!(i.stats().round_trips(), 2);
    same_traffic(i.stats(), r.stats());

    // The small set starts: the responder asks for its keys and answers in parts.
    let mut i = Session::initiator(snapshot(small), Config::default());
    let mut r = Session::responder(snapshot(large), Config::default());
    let kinds = drive_bounded(&mut i, &mut r);
    let mut want: Vec<&str> = vec!["Start", "SendKeys", "Keys"];
    want.extend(std::iter::repeat_n("DonePart", parts - 1));
    want.push("Done");
    assert_eq!(kinds, want);
    assert_eq!(i.outcome().expect("an outcome").remote_only, large_only);
    assert_eq!(r.outcome().expect("an outcome").local_only, large_only);
    assert_eq!(i.stats().round_trips(), 2);
    same_traffic(i.stats(), r.stats());
}

/// A difference large enough that the responder asks for more symbols than one message
/// carries: the answer comes in parts, and costs no more round trips.
#[test]
fn a_large_symbol_request_is_answered_in_parts() {
    let (a, b) = key_sets(300_000, DiffShape::Scattered(25_000), 3);
    let mut i = Session::initiator(SetSnapshot::new(a.iter().copied()), Config::default());
    let mut r = Session::responder(SetSnapshot::new(b.iter().copied()), Config::default());
    let kinds = drive_bounded(&mut i, &mut r);
    assert!(
        kinds.contains(&"SymbolsPart"),
        "a request past one message: {kinds:?}"
    );
    assert_eq!(i.outcome(), Some(&expected_outcome(&a, &b)));
    assert_eq!(r.outcome(), Some(&expected_outcome(&b, &a)));
    assert!(i.stats().symbols_sent > MAX_SYMBOLS_PER_MESSAGE as u64);
    assert!(i.stats().round_trips() <= 3, "{:?}", i.stats());
    same_traffic(i.stats(), r.stats());
}

/// A result in parts is checked part by part and as a whole: a part listing a key we hold
/// among those we lack, a list that does not continue ascending, a last part whose set
/// symbol the differences do not produce.
#[test]
fn a_forged_result_in_parts_is_caught() {
    let keys = distinct_keys(0..3020);
    let (a, b) = (keys[..3010].to_vec(), keys[10..].to_vec());
    let start = |config| {
        let mut i = Session::initiator(SetSnapshot::new(a.iter().copied()), config);
        let _ = i.poll_transmit();
        i
    };
    let want = expected_outcome(&a, &b);
    let (lacks, held) = (want.remote_only.clone(), want.local_only.clone());
    let mut responder_set = CodedSymbol::ZERO;
    for &k in &b {
        responder_set.add_key(k);
    }
    let half = lacks.len() / 2;

    // The true result in two parts is accepted.
    let mut i = start(Config::default());
    i.handle_message(Message::DonePart {
        initiator_lacks: lacks[..half].to_vec(),
        responder_lacks: vec![],
    })
    .unwrap();
    assert_eq!(i.outcome(), None, "waiting for the last part");
    i.handle_message(Message::Done {
        initiator_lacks: lacks[half..].to_vec(),
        responder_lacks: held.clone(),
        sender_set: responder_set,
    })
    .unwrap();
    assert_eq!(i.outcome(), Some(&want));

    // A part claiming we lack a key we hold.
    let mut i = start(Config::default());
    assert_eq!(
        violation(i.handle_message(Message::DonePart {
            initiator_lacks: vec![a[0]],
            responder_lacks: vec![],
        })),
        Violation::InconsistentResult(a[0])
    );

    // A second part that goes back below the first.
    let mut i = start(Config::default());
    i.handle_message(Message::DonePart {
        initiator_lacks: lacks[half..].to_vec(),
        responder_lacks: vec![],
    })
    .unwrap();
    assert_eq!(
        violation(i.handle_message(Message::Done {
            initiator_lacks: lacks[..half].to_vec(),
            responder_lacks: held.clone(),
            sender_set: responder_set,
        })),
        Violation::KeysNotAscending(lacks[0])
    );

    // Parts that each look right but leave one key out: the set symbol tells.
    let mut i = start(Config::default());
    i.handle_message(Message::DonePart {
        initiator_lacks: lacks[..half].to_vec(),
        responder_lacks: vec![],
    })
    .unwrap();
    assert_eq!(
        violation(i.handle_message(Message::Done {
            initiator_lacks: lacks[half + 1..].to_vec(),
            responder_lacks: held,
            sender_set: responder_set,
        })),
        Violation::SetMismatch
    );

    // A `Done` part where the answer to a request must continue.
    let mut r = Session::responder(
        SetSnapshot::new(b.iter().copied()),
        Config {
            initial_symbols: 8,
            ..Config::default()
        },
    );
    r.handle_message(Message::Start {
        version: PROTOCOL_VERSION,
        set_size: a.len() as u64,
        symbols: SetSnapshot::new(a.iter().copied())
            .encoder()
            .prefix()
            .get(..8)
            .expect("8 symbols")
            .to_vec(),
    })
    .unwrap();
    assert!(matches!(r.poll_transmit(), Some(Message::More { .. })));
    assert!(matches!(
        violation(r.handle_message(Message::DonePart {
            initiator_lacks: vec![],
            responder_lacks: vec![],
        })),
        Violation::UnexpectedMessage {
            got: "DonePart",
            ..
        }
    ));
}
