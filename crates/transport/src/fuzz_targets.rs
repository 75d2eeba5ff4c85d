//! Bodies of the fuzz targets in `fuzz/`, public so the seed corpus also runs as a test.

use bytes::BytesMut;

use crate::frame::{FrameCodec, decode_body, encode_body};

/// Frame decoding: arbitrary bytes as a stream of length-prefixed frames (whole, and split at
/// every 7th byte), and as one frame body. Nothing may panic; whatever decodes must encode
/// and decode back to the same frame; both ways of feeding must agree.
pub fn frame_decode(data: &[u8]) {
    const MAX: usize = 64 * 1024;
    let whole = decode_stream(data, data.len().max(1), MAX);
    let pieces = decode_stream(data, 7, MAX);
    assert_eq!(whole, pieces, "decoding depends on how the bytes arrive");
    for frame in whole.iter().flatten() {
        let mut wire = BytesMut::new();
        let mut codec = FrameCodec::new(MAX);
        assert!(
            codec.encode_frame(frame, &mut wire).is_ok(),
            "re-encoding failed"
        );
        assert_eq!(
            codec.decode_frame(&mut wire).ok().flatten().as_ref(),
            Some(frame)
        );
        assert!(wire.is_empty());
    }
    if let Ok(frame) = decode_body(data) {
        let again = encode_body(&frame).ok().map(|b| decode_body(&b));
        assert_eq!(again, Some(Ok(frame)), "body round trip changed the frame");
    }
}

/// Frames decoded from `data` fed `chunk` bytes at a time, up to the first error (kept as
/// `None`, so two feedings can be compared).
fn decode_stream(data: &[u8], chunk: usize, max: usize) -> Vec<Option<crate::Frame>> {
    let mut codec = FrameCodec::new(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode_frame(&mut buf) {
                Ok(Some(frame)) => out.push(Some(frame)),
                Ok(None) => break,
                Err(_) => {
                    out.push(None);
                    return out;
                }
            }
        }
    }
    out
}
