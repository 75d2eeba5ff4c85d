//! Fuzz body: arbitrary message sequences against a fresh initiator and a fresh responder.
//!
//! Input format: a sequence of frames `[target: u8][len: u16 LE][len bytes]`. Each payload is
//! decoded as a postcard [`Message`]; bit 0 of `target` picks the recipient (0: responder, 1:
//! initiator). A truncated last frame uses the bytes that remain. After every frame both
//! sessions' outgoing messages are drained and checked (they re-decode to themselves, stay
//! within the symbol caps and the per-message bounds, and outcomes agree with the fixed sets).

use super::config::{Config, Outcome};
use super::hash::splitmix64;
use super::message::Message;
use super::session::Session;
use super::source::SetSnapshot;
use super::symbol::CodedSymbol;

/// Limits of the fuzzed sessions: small, so runs are fast and `More` happens.
pub fn config() -> Config {
    Config {
        initial_symbols: 8,
        max_symbols_per_request: 256,
        symbols_per_message: 48,
        keys_per_message: 16,
        max_total_symbols: 1024,
        max_requests: 8,
        max_keys: 512,
    }
}

/// The fixed (initiator, responder) sets: 200 and 205 keys, 25 differences.
pub fn sets() -> (Vec<u64>, Vec<u64>) {
    let key = |i: u64| {
        let mut state = i;
        splitmix64(&mut state)
    };
    ((0..200).map(key).collect(), (10..215).map(key).collect())
}

/// The fuzz entry point.
pub fn reconcile_messages(data: &[u8]) {
    let _ = run(data);
}

/// Runs the body; returns the (initiator, responder) outcomes reached.
pub fn run(data: &[u8]) -> (Option<Outcome>, Option<Outcome>) {
    let (a, b) = sets();
    let mut initiator = Session::initiator(SetSnapshot::new(a.iter().copied()), config());
    let mut responder = Session::responder(SetSnapshot::new(b.iter().copied()), config());
    let mut rest = data;
    while let Some((&target, after)) = rest.split_first() {
        let len = match after {
            [lo, hi, ..] => usize::from(u16::from_le_bytes([*lo, *hi])),
            _ => after.len(),
        };
        let body = after.get(2..).unwrap_or_default();
        let (payload, next) = body.split_at(len.min(body.len()));
        rest = next;
        if let Ok(message) = Message::decode(payload) {
            let _ = if target & 1 == 0 {
                responder.handle_message(message)
            } else {
                initiator.handle_message(message)
            };
        }
        drain(&mut initiator);
        drain(&mut responder);
    }
    check_outcome(&initiator, &a);
    check_outcome(&responder, &b);
    (initiator.into_outcome(), responder.into_outcome())
}

fn drain(session: &mut Session<SetSnapshot>) {
    while let Some(message) = session.poll_transmit() {
        assert!(message.encoded_len() <= super::MAX_MESSAGE_BYTES);
        let (symbols, keys) = message.payload_counts();
        assert!(symbols <= config().symbols_per_message as u64);
        assert!(keys <= config().keys_per_message as u64);
        assert_eq!(Message::decode(&message.encode()).ok(), Some(message));
    }
    assert!(session.stats().symbols_sent <= config().max_total_symbols);
}

/// Whatever peers say, an accepted outcome never contradicts our own set.
fn check_outcome(session: &Session<SetSnapshot>, ours: &[u64]) {
    if let Some(outcome) = session.outcome() {
        assert!(outcome.local_only.iter().all(|k| ours.contains(k)));
        assert!(outcome.remote_only.iter().all(|k| !ours.contains(k)));
    }
}

/// Frames `message` for [`run`]: to the responder if `to_initiator` is false.
pub fn frame(to_initiator: bool, message: &Message) -> Vec<u8> {
    let bytes = message.encode();
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut out = vec![u8::from(to_initiator)];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or_default());
    out
}

/// The honest conversation between the fixed sets, framed for [`run`].
pub fn recorded_conversation() -> Vec<u8> {
    let (a, b) = sets();
    let mut initiator = Session::initiator(SetSnapshot::new(a), config());
    let mut responder = Session::responder(SetSnapshot::new(b), config());
    let mut out = Vec::new();
    for _ in 0..64 {
        let mut moved = false;
        while let Some(message) = initiator.poll_transmit() {
            out.extend(frame(false, &message));
            let _ = responder.handle_message(message);
            moved = true;
        }
        while let Some(message) = responder.poll_transmit() {
            out.extend(frame(true, &message));
            let _ = initiator.handle_message(message);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    out
}

/// A seed corpus: (file name, contents).
pub fn seed_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let conversation = recorded_conversation();
    let truncated = conversation
        .get(..conversation.len() / 2)
        .unwrap_or_default()
        .to_vec();
    let mut tampered = conversation.clone();
    if let Some(byte) = tampered.get_mut(20) {
        *byte ^= 0x40;
    }
    let mut state = 99;
    let garbage: Vec<u8> = (0..256).map(|_| splitmix64(&mut state) as u8).collect();
    let mut hostile = Vec::new();
    let start = Message::Start {
        version: super::PROTOCOL_VERSION,
        set_size: 3,
        symbols: vec![CodedSymbol::ZERO; 8],
    };
    hostile.extend(frame(false, &start));
    hostile.extend(frame(
        true,
        &Message::More {
            from: 8,
            count: 1 << 40,
        },
    ));
    hostile.extend(frame(
        true,
        &Message::Done {
            initiator_lacks: vec![1, 1],
            responder_lacks: vec![2],
            sender_set: CodedSymbol::ZERO,
        },
    ));
    hostile.extend(frame(false, &Message::SendKeys));
    let mut fallback = Vec::new();
    fallback.extend(frame(
        false,
        &Message::StartKeys {
            version: super::PROTOCOL_VERSION,
            keys: sets().0.into_iter().take(5).collect(),
        },
    ));
    fallback.extend(frame(true, &Message::SendKeys));
    fallback.extend(frame(
        true,
        &Message::Keys {
            keys: vec![7, 8, 9],
        },
    ));
    vec![
        ("conversation.bin", conversation),
        ("truncated.bin", truncated),
        ("tampered.bin", tampered),
        ("garbage.bin", garbage),
        ("hostile.bin", hostile),
        ("fallback.bin", fallback),
    ]
}
