//! Bodies of the fuzz targets in `fuzz/`, public so the seed corpus also runs as a test.

use bytes::Bytes;
use peergroup_identity::{Classifier, KeyPair, PeerName};

use crate::protocol::{DirectProtocol, Received};
use crate::types::DataType;
use crate::wire::{self, DirectFrame, DirectHello, DirectWelcome};

/// Direct-connection frames: arbitrary bytes decoded as a frame (a hello, a welcome or a data
/// envelope) and, with the magic and version put in front, as a body. Nothing may panic;
/// whatever decodes must encode and decode back to the same frame, and an encoding must
/// decode to the same frame.
pub fn direct_frame(data: &[u8]) {
    check(&Bytes::copy_from_slice(data));
    let mut framed = vec![wire::DIRECT_MAGIC, wire::DIRECT_VERSION];
    framed.extend_from_slice(data);
    check(&Bytes::from(framed));
}

fn check(bytes: &Bytes) {
    let hello = wire::is_direct_hello(bytes);
    let Ok(frame) = wire::decode(bytes) else {
        return;
    };
    assert!(hello, "a frame decoded without the magic byte");
    let wire = wire::encode(&frame);
    assert_eq!(
        wire::decode(&wire).as_ref(),
        Ok(&frame),
        "round trip changed the frame"
    );
    if let DirectFrame::Data { data, .. } = &frame {
        assert!(wire.len() <= data.len() + wire::DATA_OVERHEAD);
    }
}

/// The protocol machine ([`DirectProtocol`]): an honest opener and acceptor always agree, on
/// the smaller limit; then frames cut from `data` (raw bytes, or hellos, welcomes and data
/// frames built from its bytes) go to a fresh opener and to an acceptor, which must never
/// panic, deliver only data within the limit they announced, establish at most once and
/// only first, and refuse everything after their first error.
#[allow(clippy::panic, reason = "a fuzz body reports a finding by panicking")]
pub fn direct_handshake(data: &[u8]) {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let (Some(bob), Some(carol), Ok(data_type)) = (peer(2), peer(3), DATA_TYPE.parse()) else {
        return;
    };
    let (opener_max, acceptor_max) = (usize::from(*a) * 16, usize::from(*b) * 16);
    // The honest exchange.
    let (mut opener, hello) = DirectProtocol::dial(&bob, opener_max);
    let (acceptor, welcome) = match DirectProtocol::accept(&bob, acceptor_max, &hello) {
        Ok(accepted) => accepted,
        Err(e) => panic!("an honest hello is refused: {e}"),
    };
    let agreed = opener_max.min(acceptor_max);
    assert_eq!(acceptor.max_send(), Some(agreed));
    assert_eq!(
        opener.on_frame(&welcome),
        Ok(Received::Established { max_send: agreed })
    );
    // Hostile frames.
    let frames = cut(rest, &bob, &carol, data_type);
    let (mut opener, _) = DirectProtocol::dial(&bob, opener_max);
    let mut first = true;
    for frame in &frames {
        let was_failed = opener.has_failed();
        match opener.on_frame(frame) {
            Ok(Received::Established { max_send }) => {
                assert!(first && max_send <= opener_max);
                assert_eq!(opener.max_send(), Some(max_send));
            }
            Ok(Received::Data { data, .. }) => {
                assert!(!first && data.len() <= opener_max);
            }
            Err(_) => assert!(opener.has_failed()),
        }
        assert!(
            !was_failed || opener.has_failed(),
            "a failed opener recovered"
        );
        first = false;
    }
    let Some((head, tail)) = frames.split_first() else {
        return;
    };
    let Ok((mut acceptor, welcome)) = DirectProtocol::accept(&bob, acceptor_max, head) else {
        return;
    };
    assert!(matches!(wire::decode(head), Ok(DirectFrame::Hello(h)) if h.target == bob));
    assert!(matches!(
        wire::decode(&welcome),
        Ok(DirectFrame::Welcome(_))
    ));
    for frame in tail {
        let was_failed = acceptor.has_failed();
        match acceptor.on_frame(frame) {
            Ok(Received::Data { data, .. }) => assert!(data.len() <= acceptor_max),
            Ok(Received::Established { .. }) => panic!("an acceptor established twice"),
            Err(_) => assert!(acceptor.has_failed()),
        }
        assert!(
            !was_failed || acceptor.has_failed(),
            "a failed acceptor recovered"
        );
    }
}

const DATA_TYPE: &str = "{6f1d2c3b-0a4e-4b5c-9d8e-7f6a5b4c3d2e}";

fn peer(seed: u64) -> Option<PeerName> {
    let classifier = Classifier::new("m").ok()?;
    Some(PeerName::new(
        &KeyPair::from_test_seed(seed).public(),
        classifier,
    ))
}

/// Frames from fuzz bytes: a kind byte, then a length byte and that many bytes (raw) or a
/// few bytes for the fields of a built frame.
fn cut(mut data: &[u8], bob: &PeerName, carol: &PeerName, data_type: DataType) -> Vec<Bytes> {
    let mut frames = Vec::new();
    while let [kind, n, rest @ ..] = data {
        let n = usize::from(*n).min(rest.len());
        let (body, after) = rest.split_at(n);
        data = after;
        let number = body
            .iter()
            .take(8)
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        frames.push(match kind % 4 {
            0 => Bytes::copy_from_slice(body),
            1 => wire::encode_hello(&DirectHello {
                target: if number % 2 == 0 { bob } else { carol }.clone(),
                max_data: number,
            }),
            2 => wire::encode_welcome(&DirectWelcome { max_data: number }),
            _ => wire::encode_data(data_type, &vec![0xAB; (number % 8192) as usize]),
        });
    }
    frames
}
