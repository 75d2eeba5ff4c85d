//! The wire format of direct connections, as plain functions over bytes (sans-IO).
//!
//! Every frame a direct connection sends is one transport data frame whose bytes are
//!
//! ```text
//! direct frame = magic (u8 0xD1) version (u8 1) postcard(Message)
//! Message      = Hello { target: PeerName (string), max_data: u64 }      variant 0
//!              | Welcome { max_data: u64 }                               variant 1
//!              | Data { data_type: GUID (16 bytes), data: bytes }        variant 2
//! ```
//!
//! The opener's first frame is a `Hello` naming the member it wants and the largest data it
//! accepts; the acceptor answers `Welcome` with its own limit; then both send `Data`. The
//! magic byte tells a direct connection from a mesh connection on the shared endpoint: mesh
//! messages start with their version byte, 0x01. Decoding checks the magic, the version, and
//! that nothing trails the message; the data of a `Data` frame is a zero-copy slice of the
//! frame.

use bytes::Bytes;
use peergroup_identity::PeerName;
use serde::{Deserialize, Serialize};

use crate::types::DataType;

/// The first byte of every direct-connection frame. Never the first byte of a mesh message
/// (those start with their version, 0x01).
pub const DIRECT_MAGIC: u8 = 0xD1;

/// The version of the direct-connection protocol, the second byte of every frame.
pub const DIRECT_VERSION: u8 = 1;

/// At most this many bytes of a data frame are not data (magic, version, variant, GUID,
/// length), so data of `n` bytes fits in a transport frame carrying `n + DATA_OVERHEAD`.
pub const DATA_OVERHEAD: usize = 32;

/// The opener's first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectHello {
    /// The member the opener wants to reach (the acceptor checks that it is itself).
    pub target: PeerName,
    /// The largest data the opener accepts in one frame.
    pub max_data: u64,
}

/// The acceptor's first frame: the connection is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectWelcome {
    /// The largest data the acceptor accepts in one frame.
    pub max_data: u64,
}

/// A decoded direct-connection frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectFrame {
    /// The opener's first frame.
    Hello(DirectHello),
    /// The acceptor's first frame.
    Welcome(DirectWelcome),
    /// Typed application data.
    Data {
        /// The application's data type.
        data_type: DataType,
        /// The bytes (a slice of the frame).
        data: Bytes,
    },
}

/// The raw view of a frame's body, borrowing the data from the frame.
#[derive(Serialize, Deserialize)]
enum Message<'a> {
    Hello(DirectHello),
    Welcome(DirectWelcome),
    Data { data_type: DataType, data: &'a [u8] },
}

/// A peer broke the direct-connection protocol. The connection is closed; others are not.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An empty frame.
    #[error("empty frame")]
    Empty,
    /// A frame that does not start with the direct-connection magic byte.
    #[error("not a direct-connection frame (first byte {0:#04x})")]
    NotDirect(u8),
    /// The magic byte and nothing else.
    #[error("frame ends after the magic byte")]
    Truncated,
    /// A protocol version we do not speak.
    #[error("unknown direct-connection version {0}")]
    UnknownVersion(u8),
    /// The body does not decode.
    #[error("undecodable direct-connection frame: {0}")]
    Undecodable(postcard::Error),
    /// Bytes after the message.
    #[error("{0} trailing bytes after the direct-connection frame")]
    TrailingBytes(usize),
    /// A valid frame out of place (data before the hello, a second hello, …).
    #[error("unexpected {0}")]
    Unexpected(&'static str),
    /// A hello for another member than the one that received it.
    #[error("the hello is for {0}, another member")]
    WrongTarget(PeerName),
    /// Data over the limit the receiver announced.
    #[error("{len} bytes of data exceed the announced limit of {max}")]
    DataTooLarge {
        /// The data's length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Whether `first_frame` (the first data frame of an accepted connection) opens a direct
/// connection: it starts with [`DIRECT_MAGIC`]. Such a connection goes to
/// [`DirectConnections::accept`](crate::DirectConnections::accept), which checks the rest.
pub fn is_direct_hello(first_frame: &[u8]) -> bool {
    first_frame.first() == Some(&DIRECT_MAGIC)
}

/// Encodes a hello.
pub fn encode_hello(hello: &DirectHello) -> Bytes {
    encode_message(&Message::Hello(hello.clone()), 64)
}

/// Encodes a welcome.
pub fn encode_welcome(welcome: &DirectWelcome) -> Bytes {
    encode_message(&Message::Welcome(welcome.clone()), 16)
}

/// Encodes data of `data_type` (one copy of `data`, into the frame).
pub fn encode_data(data_type: DataType, data: &[u8]) -> Bytes {
    encode_message(
        &Message::Data { data_type, data },
        DATA_OVERHEAD + data.len(),
    )
}

/// Magic, version, then the message in postcard, into a buffer of about `capacity` bytes.
fn encode_message(message: &Message<'_>, capacity: usize) -> Bytes {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(&[DIRECT_MAGIC, DIRECT_VERSION]);
    // Serialising these types into a Vec cannot fail; if it ever did, the empty frame that
    // stands in is refused by the peer ("empty frame") rather than sent half-made.
    postcard::to_extend(message, out)
        .map(Bytes::from)
        .unwrap_or_default()
}

/// Encodes any frame.
pub fn encode(frame: &DirectFrame) -> Bytes {
    match frame {
        DirectFrame::Hello(h) => encode_hello(h),
        DirectFrame::Welcome(w) => encode_welcome(w),
        DirectFrame::Data { data_type, data } => encode_data(*data_type, data),
    }
}

/// Decodes one frame, checking the magic byte, the version and that nothing trails.
pub fn decode(frame: &Bytes) -> Result<DirectFrame, ProtocolError> {
    let (&magic, rest) = frame.split_first().ok_or(ProtocolError::Empty)?;
    if magic != DIRECT_MAGIC {
        return Err(ProtocolError::NotDirect(magic));
    }
    let (&version, body) = rest.split_first().ok_or(ProtocolError::Truncated)?;
    if version != DIRECT_VERSION {
        return Err(ProtocolError::UnknownVersion(version));
    }
    let (message, trailing) =
        postcard::take_from_bytes::<Message<'_>>(body).map_err(ProtocolError::Undecodable)?;
    if !trailing.is_empty() {
        return Err(ProtocolError::TrailingBytes(trailing.len()));
    }
    Ok(match message {
        Message::Hello(h) => DirectFrame::Hello(h),
        Message::Welcome(w) => DirectFrame::Welcome(w),
        Message::Data { data_type, data } => {
            // Nothing trails, so the data is the frame's tail.
            let start = frame.len().saturating_sub(data.len());
            DirectFrame::Data {
                data_type,
                data: frame.slice(start..),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use peergroup_identity::{Classifier, KeyPair};
    use uuid::Uuid;

    fn peer() -> PeerName {
        PeerName::new(
            &KeyPair::from_test_seed(1).public(),
            Classifier::new("alice").unwrap(),
        )
    }

    #[test]
    fn a_frame_is_magic_version_variant_then_postcard() {
        let hello = encode_hello(&DirectHello {
            target: peer(),
            max_data: 1 << 40,
        });
        assert_eq!(hello[..3], [DIRECT_MAGIC, DIRECT_VERSION, 0]);
        let welcome = encode_welcome(&DirectWelcome { max_data: 300 });
        // Variant 1, then 300 as postcard's varint (0xac 0x02).
        assert_eq!(welcome[..], [DIRECT_MAGIC, DIRECT_VERSION, 1, 0xac, 0x02]);
        let t = DataType(Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677));
        for len in [0usize, 1, 127, 128, 70_000] {
            let data = vec![0x5a; len];
            let wire = encode_data(t, &data);
            // Variant 2, the GUID as 16 bytes, the data with its length.
            assert_eq!(wire[..4], [DIRECT_MAGIC, DIRECT_VERSION, 2, 16]);
            assert_eq!(wire[4..20], t.0.as_bytes()[..]);
            assert!(wire.ends_with(&data));
            assert!(wire.len() <= len + DATA_OVERHEAD);
        }
    }

    #[test]
    fn frames_round_trip() {
        let t = DataType(Uuid::from_u128(7));
        let frames = [
            DirectFrame::Hello(DirectHello {
                target: peer(),
                max_data: 4096,
            }),
            DirectFrame::Welcome(DirectWelcome { max_data: 1 }),
            DirectFrame::Data {
                data_type: t,
                data: Bytes::from_static(b"hello"),
            },
            DirectFrame::Data {
                data_type: t,
                data: Bytes::new(),
            },
        ];
        for f in frames {
            let wire = encode(&f);
            assert!(is_direct_hello(&wire));
            assert_eq!(decode(&wire), Ok(f));
        }
    }

    #[test]
    fn bad_frames_are_refused_with_their_reason() {
        let good = encode_welcome(&DirectWelcome { max_data: 5 });
        let cases: [(&[u8], ProtocolError); 5] = [
            (&[], ProtocolError::Empty),
            (&[1, 0, 0], ProtocolError::NotDirect(1)),
            (&[DIRECT_MAGIC], ProtocolError::Truncated),
            (&[DIRECT_MAGIC, 9, 1, 5], ProtocolError::UnknownVersion(9)),
            (
                &[DIRECT_MAGIC, DIRECT_VERSION, 1, 5, 0],
                ProtocolError::TrailingBytes(1),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decode(&Bytes::copy_from_slice(bytes)), Err(expected));
        }
        for bad in [
            &[DIRECT_MAGIC, DIRECT_VERSION, 7][..],
            &good[..good.len() - 1],
        ] {
            let err = decode(&Bytes::copy_from_slice(bad)).unwrap_err();
            assert!(matches!(err, ProtocolError::Undecodable(_)), "{err:?}");
        }
        // A mesh message (version byte 1 first) is not a direct hello.
        assert!(!is_direct_hello(&[1, 0, 0]));
        assert!(!is_direct_hello(&[]));
    }

    #[test]
    fn data_is_a_slice_of_the_frame() {
        let wire = encode_data(DataType(Uuid::nil()), b"abc");
        let Ok(DirectFrame::Data { data, .. }) = decode(&wire) else {
            panic!("not data")
        };
        assert_eq!(&data[..], b"abc");
        assert_eq!(data.as_ptr(), wire[wire.len() - 3..].as_ptr());
    }

    proptest::proptest! {
        #[test]
        fn any_frame_round_trips(
            kind in 0u8..3,
            seed in 1u64..4,
            max_data in proptest::num::u64::ANY,
            data_type in proptest::num::u128::ANY,
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        ) {
            let frame = match kind {
                0 => DirectFrame::Hello(DirectHello {
                    target: PeerName::new(
                        &KeyPair::from_test_seed(seed).public(),
                        Classifier::new("member").unwrap(),
                    ),
                    max_data,
                }),
                1 => DirectFrame::Welcome(DirectWelcome { max_data }),
                _ => DirectFrame::Data {
                    data_type: DataType(Uuid::from_u128(data_type)),
                    data: Bytes::from(data),
                },
            };
            let wire = encode(&frame);
            proptest::prop_assert!(is_direct_hello(&wire));
            proptest::prop_assert_eq!(decode(&wire), Ok(frame));
            // Every strict prefix is refused, never misread.
            for cut in 0..wire.len() {
                proptest::prop_assert!(decode(&wire.slice(..cut)).is_err());
            }
        }
    }
}
