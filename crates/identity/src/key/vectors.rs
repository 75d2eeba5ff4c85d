//! Edge-case signatures (small-order and non-canonical points, unreduced scalars): single
//! and batch verification give the same verdict on each, and that verdict is ZIP-215's.

use super::*;

/// The eight points of small order, canonically encoded.
const TORSION: [&str; 8] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
];

/// The non-canonical encodings of small-order points: y = 1 and y = −1 with the sign bit
/// set, and y = p (≡ 0) and y = p + 1 (≡ 1) with either sign bit.
const NON_CANONICAL: [&str; 6] = [
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

/// The test vectors of Chalkias, Garillot and Nikolaenko, "Taming the many EdDSAs" (SSR
/// 2020), as published with ed25519-speccheck: message, public key, signature, and
/// whether ZIP-215 accepts it. 0–5 combine small-order and mixed-order `A` and `R` (0–3
/// pass both the cofactored and the cofactorless equation, 4–5 only the cofactored one);
/// 6–7 have `S` ≥ ℓ; 8–9 a non-canonical `R`; 10–11 a non-canonical `A`.
const TAMING: [(&str, &str, &str, bool); 12] = [
    (
        "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000",
        true,
    ),
    (
        "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
        true,
    ),
    (
        "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
        true,
    ),
    (
        "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
        true,
    ),
    (
        "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
        true,
    ),
    (
        "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
        true,
    ),
    (
        "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
        false,
    ),
    (
        "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
        false,
    ),
    (
        "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f",
        false,
    ),
    (
        "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908",
        true,
    ),
    (
        "e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
        true,
    ),
    (
        "39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
        true,
    ),
];

fn bytes<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).unwrap();
    out
}

/// One case: a message, key and signature, and the verdict expected.
struct Case {
    message: Vec<u8>,
    key: PublicKey,
    signature: Signature,
    valid: bool,
}

/// Single and batch verification agree on `case`, and give the expected verdict: alone,
/// as the only item of a batch, and amid good signatures (where the batch equation
/// itself, before any fallback, must hold exactly when the case is valid).
fn check(what: &str, case: &Case) {
    let single = case.key.verify(&case.message, &case.signature).is_ok();
    assert_eq!(single, case.valid, "{what}: single verification");
    let alone = verify_batch(&[(&case.message, &case.signature, &case.key)]);
    assert_eq!(alone[0].is_ok(), single, "{what}: a batch of one");
    let (a, b) = (KeyPair::from_test_seed(1), KeyPair::from_test_seed(2));
    let (ma, mb) = (b"first good".as_slice(), b"second good".as_slice());
    let (sa, sb) = (a.sign(ma), b.sign(mb));
    let (ka, kb) = (a.public(), b.public());
    let items: Vec<(&[u8], &Signature, &PublicKey)> = vec![
        (ma, &sa, &ka),
        (&case.message, &case.signature, &case.key),
        (mb, &sb, &kb),
    ];
    assert_eq!(batch_holds(&items), single, "{what}: the batch equation");
    let verdicts: Vec<bool> = verify_batch(&items).iter().map(Result::is_ok).collect();
    assert_eq!(verdicts, [true, single, true], "{what}: batch verdicts");
}

/// ZIP-215's small-order cases, built as ed25519-zebra's tests build them: for every pair
/// of the 14 encodings above as `A` and `R`, with `S` = 0 and the message "Zcash", both
/// sides of `[8][S]B = [8]R + [8][k]A` are the identity: all 196 are valid under ZIP-215
/// (RFC 8032's cofactorless check, or a refusal of non-canonical or small-order points,
/// would refuse some and accept others).
#[test]
fn zip215_small_order_cases() {
    let encodings: Vec<[u8; 32]> = TORSION
        .iter()
        .chain(NON_CANONICAL.iter())
        .map(|e| bytes::<32>(e))
        .collect();
    let mut all = Vec::new();
    for a in &encodings {
        for r in &encodings {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(r);
            let case = Case {
                message: b"Zcash".to_vec(),
                key: PublicKey::from_bytes(*a),
                signature: Signature::from_bytes(signature),
                valid: true,
            };
            check(
                &format!("A = {}, R = {}", hex::encode(a), hex::encode(r)),
                &case,
            );
            all.push(case);
        }
    }
    assert_eq!(all.len(), 196);
    // All of them in one batch.
    let items: Vec<(&[u8], &Signature, &PublicKey)> = all
        .iter()
        .map(|c| (c.message.as_slice(), &c.signature, &c.key))
        .collect();
    assert!(batch_holds(&items));
}

#[test]
fn taming_the_many_eddsas_vectors() {
    for (i, (message, key, signature, valid)) in TAMING.iter().enumerate() {
        let case = Case {
            message: hex::decode(message).unwrap(),
            key: PublicKey::from_bytes(bytes::<32>(key)),
            signature: Signature::from_bytes(bytes::<64>(signature)),
            valid: *valid,
        };
        check(&format!("case {i}"), &case);
    }
}

/// A signature is refused whatever batch it is in: an `S` of ℓ + 1 (a valid signature's
/// `S` plus the group order) and a key that is not a curve point.
#[test]
fn unreduced_scalars_and_non_points_are_refused_both_ways() {
    let kp = KeyPair::from_test_seed(9);
    let message = b"edge".to_vec();
    let good = kp.sign(&message);
    // S + ℓ, little-endian (S < ℓ, so this stays below 2^256 for this key's signature).
    const ELL: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut raised = *good.as_bytes();
    let mut carry = 0u16;
    for (b, l) in raised[32..].iter_mut().zip(ELL) {
        let sum = u16::from(*b) + u16::from(l) + carry;
        *b = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    check(
        "S + ℓ",
        &Case {
            message: message.clone(),
            key: kp.public(),
            signature: Signature::from_bytes(raised),
            valid: false,
        },
    );
    check(
        "good",
        &Case {
            message: message.clone(),
            key: kp.public(),
            signature: good,
            valid: true,
        },
    );
    // y = 2 is not the y-coordinate of a curve point.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    check(
        "not a point",
        &Case {
            message,
            key: PublicKey::from_bytes(not_a_point),
            signature: good,
            valid: false,
        },
    );
}
