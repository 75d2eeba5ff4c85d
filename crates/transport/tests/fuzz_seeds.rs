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

#[test]
fn password_join_seeds() {
    for seed in seeds("password_join") {
        peergroup_transport::fuzz_targets::password_join(&seed);
        for i in 0..seed.len() {
            let mut s = seed.clone();
            s[i] ^= 0x55;
            peergroup_transport::fuzz_targets::password_join(&s);
            peergroup_transport::fuzz_targets::password_join(&seed[..i]);
        }
    }
}

#[test]
fn password_join_every_short_input() {
    // Every input of up to two bytes, and three-byte ones over the first byte's choices.
    peergroup_transport::fuzz_targets::password_join(&[]);
    for a in 0..=255u8 {
        peergroup_transport::fuzz_targets::password_join(&[a]);
        for b in 0..16u8 {
            peergroup_transport::fuzz_targets::password_join(&[a, b, b.wrapping_mul(17)]);
        }
    }
}

#[test]
fn password_join_seeds_reach_every_outcome() {
    use std::collections::BTreeSet;
    let (mut member, mut joiner) = (BTreeSet::new(), BTreeSet::new());
    for seed in seeds("password_join") {
        let (m, j) = peergroup_transport::fuzz_targets::password_join_outcome(&seed);
        member.insert(m);
        joiner.insert(j);
    }
    for m in [
        "issued",
        "wrong password",
        "bad proof",
        "bad request",
        "malformed",
    ] {
        assert!(
            member.contains(m),
            "no seed makes the member say {m:?}: {member:?}"
        );
    }
    for j in [
        "accepted",
        "bad chain",
        "bad cost",
        "no credentials",
        "bad confirmation",
    ] {
        assert!(
            joiner.contains(j),
            "no seed makes the joiner end with {j:?}: {joiner:?}"
        );
    }
}
