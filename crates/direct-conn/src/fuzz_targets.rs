//! Bodies of the fuzz targets in `fuzz/`, public so the seed corpus also runs as a test.

use bytes::Bytes;

use crate::wire::{self, DirectFrame};

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
