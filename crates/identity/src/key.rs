//! Ed25519 keys and signatures.
//!
//! Randomness and hashing come from `ring`. The secret key lives in an `ed25519-dalek`
//! [`SigningKey`](ed25519_dalek::SigningKey), which zeroes its secret scalar and seed when
//! dropped (ring's `Ed25519KeyPair` does not), and every serialisation of the seed we make is
//! a [`Zeroizing`] buffer. Signing is RFC 8032's, deterministic.
//!
//! **One verification rule.** Every signature is verified by `ed25519-zebra` under the
//! rules of [ZIP-215](https://zips.z.cash/zip-0215), alone ([`PublicKey::verify`]) or in a
//! batch ([`verify_batch`]), and the two give the same verdict on every input: the public
//! key `A` and the signature's `R` may be any encoding of a curve point (non-canonical ones
//! included), `S` must be canonical (below the group order), and the equation is the
//! cofactored `[8][S]B = [8]R + [8][k]A`. RFC 8032 leaves implementations free to check
//! the cofactorless equation, or to refuse non-canonical or small-order points; libraries
//! differ on exactly those inputs, and so did a batch check (ed25519-dalek) and a single
//! one (ring) here before: a record signed with such edge cases could be accepted by a
//! replica that checked it in one burst and refused by another that checked it alone, and
//! the replicas would never converge. Every honest signature verifies under every rule;
//! only crafted ones are judged differently by other libraries (the test vectors below
//! pin each case).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::Signer as _;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Error;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// An Ed25519 public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Wraps raw key bytes. Whether they are a valid curve point is checked on verification.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    /// The raw 32 key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The DER SubjectPublicKeyInfo of this key (what certificates carry and peer names hash).
    pub fn spki_der(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(44);
        out.extend_from_slice(&ED25519_SPKI_PREFIX);
        out.extend_from_slice(&self.0);
        out
    }

    /// Parses a DER SubjectPublicKeyInfo holding an Ed25519 key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        let key = der
            .strip_prefix(&ED25519_SPKI_PREFIX[..])
            .and_then(|rest| <[u8; 32]>::try_from(rest).ok())
            .ok_or(Error::UnsupportedKey)?;
        Ok(PublicKey(key))
    }

    /// Checks `signature` over `message` by the ZIP-215 rules (see the module
    /// documentation): the same verdict [`verify_batch`] gives.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), Error> {
        let key =
            ed25519_zebra::VerificationKey::try_from(self.0).map_err(|_| Error::BadSignature)?;
        verify_with(&key, message, signature)
    }

    /// Whether this is a usable key: a canonical point that is not of small order.
    ///
    /// Certificates with weak keys are refused, so a signature is never valid for every
    /// message and batch and single verification agree on honest keys.
    pub fn is_strong(&self) -> bool {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).is_ok_and(|k| !k.is_weak())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for PublicKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(s, &mut key).map_err(|_| Error::UnsupportedKey)?;
        Ok(PublicKey(key))
    }
}

/// An Ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    /// Wraps raw signature bytes.
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Signature(bytes)
    }

    /// Parses a signature from a slice of exactly 64 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; 64]>::try_from(bytes)
            .map(Signature)
            .map_err(|_| Error::BadSignature)
    }

    /// The raw 64 bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..8]))
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                Signature::from_slice(v).map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// The 32-byte Ed25519 seed. Zeroed when dropped; never printed.
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl SecretKey {
    /// Wraps a seed. The caller should zero its own copy.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey(Zeroizing::new(seed))
    }

    /// The seed bytes (for sealing into an export or the identity file).
    pub fn seed(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// An Ed25519 key pair. The secret half is zeroed on drop.
pub struct KeyPair {
    signing: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl KeyPair {
    /// A fresh key pair from the operating system's random generator.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut seed[..])
            .map_err(|_| Error::Random)?;
        Ok(Self::from_secret(&SecretKey(seed)))
    }

    /// The key pair of a known seed.
    pub fn from_secret(secret: &SecretKey) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(secret.seed());
        let public = PublicKey(signing.verifying_key().to_bytes());
        KeyPair { signing, public }
    }

    /// A deterministic key pair for tests, fuzzers and the simulator. Never use for real keys.
    pub fn from_test_seed(n: u64) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, &n.to_le_bytes());
        let mut seed = [0u8; 32];
        seed.copy_from_slice(digest.as_ref());
        Self::from_secret(&SecretKey::from_seed(seed))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// A copy of the secret seed.
    pub fn secret(&self) -> SecretKey {
        SecretKey(Zeroizing::new(self.signing.to_bytes()))
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Lets rcgen sign certificates with our key without ever holding the secret itself.
impl rcgen::PublicKeyData for KeyPair {
    fn der_bytes(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for KeyPair {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(KeyPair::sign(self, msg).0.to_vec())
    }
}

/// One verification with a decoded key.
fn verify_with(
    key: &ed25519_zebra::VerificationKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), Error> {
    key.verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
        .map_err(|_| Error::BadSignature)
}

/// Verifies many (message, signature, key) triples at once, by the same rules as
/// [`PublicKey::verify`] and with the same verdict for each item.
///
/// One batch equation checks them all (ed25519-zebra, cofactored, with random 128-bit
/// coefficients; terms of one key are combined, so many signatures by few signers cost
/// less each). When it fails, each item is checked alone so the caller learns which ones
/// are bad: the result has one entry per input.
pub fn verify_batch(items: &[(&[u8], &Signature, &PublicKey)]) -> Vec<Result<(), Error>> {
    // One item is checked alone: the same verdict, for less work.
    if items.len() > 1 && batch_holds(items) {
        return items.iter().map(|_| Ok(())).collect();
    }
    // A batch usually holds many items by few signers: decode each key once.
    let mut keys: std::collections::HashMap<&[u8; 32], Option<ed25519_zebra::VerificationKey>> =
        std::collections::HashMap::new();
    items
        .iter()
        .map(|(m, s, k)| {
            let key = keys
                .entry(k.as_bytes())
                .or_insert_with(|| ed25519_zebra::VerificationKey::try_from(k.0).ok());
            match key {
                Some(key) => verify_with(key, m, s),
                None => Err(Error::BadSignature),
            }
        })
        .collect()
}

/// Whether the batch equation holds for all of `items` (false too when the operating
/// system's generator fails: then each item is checked alone, with the same verdicts).
fn batch_holds(items: &[(&[u8], &Signature, &PublicKey)]) -> bool {
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for (m, s, k) in items {
        batch.queue((
            ed25519_zebra::VerificationKeyBytes::from(k.0),
            ed25519_zebra::Signature::from_bytes(&s.0),
            *m,
        ));
    }
    BatchRng::new().is_some_and(|rng| batch.verify(rng).is_ok())
}

/// The random coefficients of one batch check: SHA-256 in counter mode over a 32-byte seed
/// from the operating system's generator (one system call per batch, however large). Only
/// the signers must not be able to predict them.
struct BatchRng {
    seed: Zeroizing<[u8; 32]>,
    counter: u64,
    block: Zeroizing<[u8; 32]>,
    used: usize,
}

impl BatchRng {
    /// `None` when the operating system's generator fails.
    fn new() -> Option<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        SystemRandom::new().fill(&mut seed[..]).ok()?;
        Some(BatchRng {
            seed,
            counter: 0,
            block: Zeroizing::new([0u8; 32]),
            used: 32,
        })
    }

    fn refill(&mut self) {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.seed[..]);
        ctx.update(&self.counter.to_le_bytes());
        self.block.copy_from_slice(ctx.finish().as_ref());
        self.counter += 1;
        self.used = 0;
    }
}

impl rand_core::RngCore for BatchRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for byte in dst {
            if self.used == self.block.len() {
                self.refill();
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dst);
        Ok(())
    }
}

impl rand_core::CryptoRng for BatchRng {}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// Fills `buf` from the operating system's random generator.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), Error> {
    SystemRandom::new().fill(buf).map_err(|_| Error::Random)
}

#[cfg(test)]
mod vectors;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let kp = KeyPair::generate().unwrap();
        let sig = kp.sign(b"hello");
        kp.public().verify(b"hello", &sig).unwrap();
        assert!(matches!(
            kp.public().verify(b"hellO", &sig),
            Err(Error::BadSignature)
        ));
        let other = KeyPair::generate().unwrap();
        assert!(other.public().verify(b"hello", &sig).is_err());
        assert!(kp.public().is_strong());
    }

    #[test]
    fn secret_round_trip() {
        let kp = KeyPair::generate().unwrap();
        let again = KeyPair::from_secret(&kp.secret());
        assert_eq!(kp.public(), again.public());
    }

    #[test]
    fn spki_round_trip() {
        let kp = KeyPair::from_test_seed(7);
        let der = kp.public().spki_der();
        assert_eq!(PublicKey::from_spki_der(&der).unwrap(), kp.public());
        assert!(PublicKey::from_spki_der(&der[1..]).is_err());
    }

    #[test]
    fn keys_and_signatures_are_rfc_8032_s_byte_for_byte() {
        // RFC 8032 section 7.1, tests 1 and 2: whichever ed25519-dalek release signs, stored
        // seeds give the same public keys and signatures.
        for (seed, public, message, signature) in [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ] {
            let seed: [u8; 32] = hex::decode(seed).unwrap().try_into().unwrap();
            let pair = KeyPair::from_secret(&SecretKey::from_seed(seed));
            assert_eq!(hex::encode(pair.public().as_bytes()), public);
            let message = hex::decode(message).unwrap();
            let signed = pair.sign(&message);
            assert_eq!(hex::encode(signed.0), signature);
            assert!(pair.public().verify(&message, &signed).is_ok());
        }
    }

    #[test]
    fn batch_reports_each_bad_item() {
        let kps: Vec<KeyPair> = (0..4).map(KeyPair::from_test_seed).collect();
        let msgs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Signature> = kps.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let pubs: Vec<PublicKey> = kps.iter().map(KeyPair::public).collect();
        let items = |sigs: &[Signature]| -> Vec<Result<(), Error>> {
            let v: Vec<(&[u8], &Signature, &PublicKey)> = msgs
                .iter()
                .zip(sigs)
                .zip(&pubs)
                .map(|((m, s), k)| (m.as_slice(), s, k))
                .collect();
            verify_batch(&v)
        };
        assert!(items(&sigs).iter().all(Result::is_ok));
        sigs[2] = kps[0].sign(b"other");
        let res = items(&sigs);
        assert!(res[0].is_ok() && res[1].is_ok() && res[3].is_ok());
        assert!(res[2].is_err());
    }

    #[test]
    fn batch_with_repeated_signers_keeps_keys_apart() {
        // Two signers, many items each (the decompressed key is reused within the batch).
        let kps = [KeyPair::from_test_seed(1), KeyPair::from_test_seed(2)];
        let pubs: Vec<PublicKey> = kps.iter().map(KeyPair::public).collect();
        let msgs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 32]).collect();
        let mut sigs: Vec<Signature> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| kps[i % 2].sign(m))
            .collect();
        let check = |sigs: &[Signature]| -> Vec<bool> {
            let v: Vec<(&[u8], &Signature, &PublicKey)> = msgs
                .iter()
                .zip(sigs)
                .enumerate()
                .map(|(i, (m, s))| (m.as_slice(), s, &pubs[i % 2]))
                .collect();
            verify_batch(&v).iter().map(Result::is_ok).collect()
        };
        assert!(check(&sigs).iter().all(|ok| *ok));
        // Item 5 (signer 1's turn) signed by signer 0 instead: only it fails.
        sigs[5] = kps[0].sign(&msgs[5]);
        let res = check(&sigs);
        assert!(!res[5]);
        assert_eq!(res.iter().filter(|ok| **ok).count(), 19);
    }

    #[test]
    fn small_order_key_is_weak() {
        // The identity point: a signature under it verifies for many messages.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(!PublicKey::from_bytes(identity).is_strong());
    }
}
