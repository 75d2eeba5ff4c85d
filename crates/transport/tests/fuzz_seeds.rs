//! Runs the frame-decoding fuzz body over its seed corpus in `fuzz/seeds/frame_decode/`.

use std::path::Path;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {} missing: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(out.len() >= 4, "too few seeds in {}", dir.display());
    out.sort();
    out
}

#[test]
fn frame_decode_seeds() {
    for seed in seeds("frame_decode") {
        peergroup_transport::fuzz_targets::frame_decode(&seed);
    }
}

#[test]
fn frame_decode_survives_mutations_of_the_seeds() {
    // A poor man's fuzzer: every seed with each byte flipped, truncated at every length.
    for seed in seeds("frame_decode") {
        for i in 0..seed.len() {
            let mut s = seed.clone();
            s[i] ^= 0xff;
            peergroup_transport::fuzz_targets::frame_decode(&s);
            peergroup_transport::fuzz_targets::frame_decode(&seed[..i]);
        }
    }
}

#[test]
fn the_mixed_stream_seed_holds_every_kind_of_frame() {
    use peergroup_transport::Frame;
    use peergroup_transport::frame::FrameCodec;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/frame_decode");
    let bytes = std::fs::read(dir.join("stream-mixed.bin")).unwrap();
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let mut codec = FrameCodec::new(1024);
    let mut frames = Vec::new();
    while let Some(f) = codec.decode_frame(&mut buf).unwrap() {
        frames.push(f);
    }
    assert_eq!(
        frames,
        vec![
            Frame::Accepted,
            Frame::Ping(42),
            Frame::Pong(300),
            Frame::Data(bytes::Bytes::from_static(b"hello")),
            Frame::Close {
                reason: "bye".into()
            },
        ]
    );
}
