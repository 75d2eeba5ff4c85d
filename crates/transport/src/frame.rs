//! The frame format inside the TLS stream.
//!
//! ```text
//! frame   = length body
//! length  = u32, big-endian: the number of bytes of `body` (at most the configured maximum)
//! body    = version frame-postcard
//! version = u8, 1 for `peergroup/1`
//! ```
//!
//! The postcard part is a [`Frame`]. A length over the limit is refused as soon as the 4
//! prefix bytes arrive (nothing of the frame is buffered); an unknown version, bytes that do
//! not decode, or trailing bytes after the frame are errors too. Any error closes the
//! connection it came from, never anything else.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::FrameError;

/// The version byte of every frame body.
pub const FRAME_VERSION: u8 = 1;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// Longest close reason we send; longer ones are cut (at a character boundary).
pub const MAX_CLOSE_REASON: usize = 256;

/// One frame on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Application data.
    Data(Bytes),
    /// A keepalive probe; the peer's transport answers with a [`Frame::Pong`] of the same value.
    Ping(u64),
    /// The answer to a ping.
    Pong(u64),
    /// Goodbye, with a reason.
    Close {
        /// Why (at most [`MAX_CLOSE_REASON`] bytes when we send it).
        reason: String,
    },
    /// Sent once by the server right after the TLS handshake: the client's credentials were
    /// accepted. (In TLS 1.3 the client finishes its handshake before the server has checked
    /// its certificate, so a refusal can only be told apart from success by waiting for this.)
    /// Earlier servers send this; current ones send [`Frame::Welcome`].
    Accepted,
    /// The acceptance, with the address the server saw the client connect from (its
    /// reflexive address: behind a NAT, the NAT's mapping). Clients take either form.
    Welcome {
        /// The client's address as the server sees it.
        observed: std::net::SocketAddr,
    },
}

/// The length of the body of a `Data` frame carrying `n` bytes: version, variant, length
/// varint, data.
pub const fn data_frame_len(n: usize) -> usize {
    let mut varint = 1;
    let mut rest = n >> 7;
    while rest != 0 {
        varint += 1;
        rest >>= 7;
    }
    2 + varint + n
}

/// Encodes a frame body (version byte and postcard), without the length prefix.
pub fn encode_body(frame: &Frame) -> Result<Vec<u8>, FrameError> {
    postcard::to_extend(frame, vec![FRAME_VERSION])
        .map_err(|e| FrameError::Undecodable(format!("encoding failed: {e}")))
}

/// Decodes a frame body (version byte and postcard), refusing unknown versions and trailing
/// bytes.
pub fn decode_body(body: &[u8]) -> Result<Frame, FrameError> {
    let (&version, rest) = body.split_first().ok_or(FrameError::Empty)?;
    if version != FRAME_VERSION {
        return Err(FrameError::UnknownVersion(version));
    }
    let (frame, trailing) = postcard::take_from_bytes::<Frame>(rest)
        .map_err(|e| FrameError::Undecodable(e.to_string()))?;
    if !trailing.is_empty() {
        return Err(FrameError::TrailingBytes(trailing.len()));
    }
    Ok(frame)
}

/// An error of the frame codec: a bad frame from the peer, or the stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The peer sent a bad frame.
    #[error(transparent)]
    Frame(FrameError),
    /// The stream failed.
    #[error(transparent)]
    Io(std::io::Error),
}

impl From<std::io::Error> for CodecError {
    fn from(e: std::io::Error) -> Self {
        CodecError::Io(e)
    }
}

impl From<FrameError> for CodecError {
    fn from(e: FrameError) -> Self {
        CodecError::Frame(e)
    }
}

/// Length-delimited, versioned frames with a size limit, for `tokio_util::codec`.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    /// A codec refusing bodies longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameCodec { max }
    }

    /// The limit.
    pub fn max_frame(&self) -> usize {
        self.max
    }

    /// Changes the limit; it applies to the next frame decoded or encoded.
    pub fn set_max_frame(&mut self, max: usize) {
        self.max = max;
    }

    /// Decodes one frame from the front of `src`: `Ok(None)` when more bytes are needed.
    pub fn decode_frame(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(prefix) = src.get(..LENGTH_PREFIX) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; LENGTH_PREFIX];
        len_bytes.copy_from_slice(prefix);
        let len = usize::try_from(u32::from_be_bytes(len_bytes)).unwrap_or(usize::MAX);
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        let needed = LENGTH_PREFIX + len;
        if src.len() < needed {
            // Grow towards the frame, but never commit more than 64 KiB ahead of the data.
            src.reserve((needed - src.len()).min(64 * 1024));
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX);
        let body = src.split_to(len);
        // The data is copied out (by `decode_body`), not sliced out of the read buffer: a slice
        // keeps the whole buffer alive, up to twice a large frame's size, while the queues
        // count only the frame's bytes (`cargo xtask hostile`'s oversized-frames attack grew
        // the node by +86 MiB against a bound of +64 MiB).
        decode_body(&body).map(Some)
    }

    /// Appends the encoding of `frame` (length prefix and body) to `dst`.
    pub fn encode_frame(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let body = encode_body(frame)?;
        if body.len() > self.max {
            return Err(FrameError::TooLarge {
                len: body.len(),
                max: self.max,
            });
        }
        let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge {
            len: body.len(),
            max: self.max,
        })?;
        dst.reserve(LENGTH_PREFIX + body.len());
        dst.put_u32(len);
        dst.put_slice(&body);
        Ok(())
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.decode_frame(src)?)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match self.decode_frame(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated.into()),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encode_frame(&frame, dst)?)
    }
}

/// Cuts `reason` to at most [`MAX_CLOSE_REASON`] bytes at a character boundary.
pub(crate) fn truncate_reason(reason: &str) -> String {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason.to_owned();
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<Frame> {
        vec![
            Frame::Data(Bytes::from_static(b"hello")),
            Frame::Data(Bytes::new()),
            Frame::Data(Bytes::from(vec![7u8; 300])),
            Frame::Ping(0),
            Frame::Ping(u64::MAX),
            Frame::Pong(42),
            Frame::Close {
                reason: "bye".into(),
            },
            Frame::Accepted,
            Frame::Welcome {
                observed: "203.0.113.7:40001".parse().unwrap(),
            },
            Frame::Welcome {
                observed: "[2001:db8::1]:3587".parse().unwrap(),
            },
        ]
    }

    #[test]
    fn round_trip_through_the_codec() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::new();
        for f in frames() {
            codec.encode_frame(&f, &mut buf).unwrap();
        }
        for f in frames() {
            assert_eq!(codec.decode_frame(&mut buf).unwrap(), Some(f));
        }
        assert_eq!(codec.decode_frame(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn data_frame_length_is_exact() {
        for n in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let body = encode_body(&Frame::Data(Bytes::from(vec![0u8; n]))).unwrap();
            assert_eq!(body.len(), data_frame_len(n), "n = {n}");
        }
    }

    #[test]
    fn byte_by_byte_arrival() {
        let mut codec = FrameCodec::new(1024);
        let mut wire = BytesMut::new();
        let f = Frame::Data(Bytes::from_static(b"slowly"));
        codec.encode_frame(&f, &mut wire).unwrap();
        let mut buf = BytesMut::new();
        for (i, b) in wire.iter().enumerate() {
            buf.put_u8(*b);
            let got = codec.decode_frame(&mut buf).unwrap();
            assert_eq!(got.is_some(), i == wire.len() - 1);
        }
    }

    #[test]
    fn oversized_is_refused_from_the_prefix_alone() {
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::from(&101u32.to_be_bytes()[..]);
        assert_eq!(
            codec.decode_frame(&mut buf),
            Err(FrameError::TooLarge { len: 101, max: 100 })
        );
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            codec.decode_frame(&mut buf),
            Err(FrameError::TooLarge { .. })
        ));
        let mut out = BytesMut::new();
        assert!(matches!(
            codec.encode_frame(&Frame::Data(Bytes::from(vec![0; 100])), &mut out),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn bad_bodies() {
        assert_eq!(decode_body(&[]), Err(FrameError::Empty));
        assert_eq!(decode_body(&[2, 3, 0]), Err(FrameError::UnknownVersion(2)));
        assert!(matches!(
            decode_body(&[1, 99]),
            Err(FrameError::Undecodable(_))
        ));
        assert!(matches!(
            decode_body(&[1, 0, 5, 1]),
            Err(FrameError::Undecodable(_))
        ));
        let mut ping = encode_body(&Frame::Ping(1)).unwrap();
        ping.push(0);
        assert_eq!(decode_body(&ping), Err(FrameError::TrailingBytes(1)));
    }

    #[test]
    fn truncated_at_eof() {
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 5, 1][..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(CodecError::Frame(FrameError::Truncated))
        ));
    }

    #[test]
    fn close_reasons_are_cut_at_a_character_boundary() {
        let long = "é".repeat(200);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON);
        assert!(long.starts_with(&cut));
        assert_eq!(truncate_reason("short"), "short");
    }
}
