//! Password protection for exported identities (the DATA of PEERIDENTITYEXPORT).
//!
//! Layout, all integers little-endian:
//!
//! ```text
//! "PGIDEXP" 0x01 | m_cost_kib u32 | t_cost u32 | lanes u32 | salt [16] | nonce [24] | ciphertext
//! ```
//!
//! The key is Argon2id(password, salt, m, t, p) → 32 bytes; the ciphertext is
//! XChaCha20-Poly1305 over the postcard-encoded secret seed and identity certificate, with
//! the whole header as associated data, so changing any parameter breaks authentication.
//! A wrong password and a tampered blob are indistinguishable ([`Error::WrongPassword`]).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Error;

const MAGIC: &[u8; 8] = b"PGIDEXP\x01";
const SECRET_MAGIC: &[u8; 8] = b"PGSECRT\x01";
const HEADER_LEN: usize = 8 + 12 + 16 + 24;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub lanes: u32,
}

impl KdfParams {
    /// RFC 9106's second recommended choice: 64 MiB, 3 passes, 1 lane (well under a second).
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        lanes: 1,
    };
    /// Cheap parameters for tests only.
    pub const INSECURE_FAST: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        lanes: 1,
    };

    /// Refuses costs an attacker could use to exhaust memory or time on import.
    fn check(&self) -> Result<(), Error> {
        let ok = (8..=1024 * 1024).contains(&self.m_cost_kib)
            && (1..=16).contains(&self.t_cost)
            && (1..=16).contains(&self.lanes);
        if ok {
            Ok(())
        } else {
            Err(Error::MalformedExport(format!(
                "unreasonable key-derivation cost {self:?}"
            )))
        }
    }
}

/// What is sealed.
#[derive(Serialize, Deserialize)]
pub(crate) struct Plain {
    pub(crate) seed: [u8; 32],
    pub(crate) idc_der: Vec<u8>,
}

impl Drop for Plain {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.seed);
    }
}

fn derive_key(password: &[u8], salt: &[u8], p: KdfParams) -> Result<Zeroizing<[u8; 32]>, Error> {
    let params = argon2::Params::new(p.m_cost_kib, p.t_cost, p.lanes, Some(32))
        .map_err(|e| Error::MalformedExport(format!("key-derivation parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, salt, &mut key[..])
        .map_err(|e| Error::MalformedExport(format!("key derivation: {e}")))?;
    Ok(key)
}

pub(crate) fn seal(plain: &Plain, password: &[u8], p: KdfParams) -> Result<Vec<u8>, Error> {
    let body = Zeroizing::new(
        postcard::to_allocvec(plain).map_err(|e| Error::MalformedExport(e.to_string()))?,
    );
    seal_with(MAGIC, &body, password, p)
}

/// Seals arbitrary secret bytes under a password (same construction as identity exports,
/// with its own magic so one can never be mistaken for the other).
pub fn seal_secret(secret: &[u8], password: &[u8], p: KdfParams) -> Result<Vec<u8>, Error> {
    seal_with(SECRET_MAGIC, secret, password, p)
}

/// Opens bytes sealed by [`seal_secret`].
pub fn open_secret(sealed: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    open_with(SECRET_MAGIC, sealed, password)
}

fn seal_with(
    magic: &[u8; 8],
    body: &[u8],
    password: &[u8],
    p: KdfParams,
) -> Result<Vec<u8>, Error> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(magic);
    for v in [p.m_cost_kib, p.t_cost, p.lanes] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    let mut salt_nonce = [0u8; 40];
    crate::key::random_bytes(&mut salt_nonce)?;
    header.extend_from_slice(&salt_nonce);
    let key = derive_key(password, &salt_nonce[..16], p)?;
    let cipher = chacha20poly1305::XChaCha20Poly1305::new_from_slice(&key[..])
        .map_err(|_| Error::MalformedExport("key length".into()))?;
    let nonce = chacha20poly1305::XNonce::try_from(&salt_nonce[16..])
        .map_err(|_| Error::MalformedExport("nonce length".into()))?;
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: body,
                aad: &header,
            },
        )
        .map_err(|_| Error::MalformedExport("encryption failed".into()))?;
    header.extend_from_slice(&ct);
    Ok(header)
}

pub(crate) fn open(sealed: &[u8], password: &[u8]) -> Result<Plain, Error> {
    let body = open_with(MAGIC, sealed, password)?;
    postcard::from_bytes(&body).map_err(|e| Error::MalformedExport(format!("sealed body: {e}")))
}

fn open_with(magic: &[u8; 8], sealed: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    if sealed.len() < HEADER_LEN + 16 || &sealed[..8] != magic {
        return Err(Error::MalformedExport(
            "not sealed peergroup data of this kind".into(),
        ));
    }
    let u32_at = |i: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&sealed[i..i + 4]);
        u32::from_le_bytes(b)
    };
    let p = KdfParams {
        m_cost_kib: u32_at(8),
        t_cost: u32_at(12),
        lanes: u32_at(16),
    };
    p.check()?;
    let (header, ct) = sealed.split_at(HEADER_LEN);
    let key = derive_key(password, &header[20..36], p)?;
    let cipher = chacha20poly1305::XChaCha20Poly1305::new_from_slice(&key[..])
        .map_err(|_| Error::MalformedExport("key length".into()))?;
    let nonce = chacha20poly1305::XNonce::try_from(&header[36..60])
        .map_err(|_| Error::MalformedExport("nonce length".into()))?;
    let body = Zeroizing::new(
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ct,
                    aad: header,
                },
            )
            .map_err(|_| Error::WrongPassword)?,
    );
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Plain {
        Plain {
            seed: [9; 32],
            idc_der: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let sealed = seal(&plain(), b"secret", KdfParams::INSECURE_FAST).unwrap();
        let back = open(&sealed, b"secret").unwrap();
        assert_eq!(back.seed, [9; 32]);
        assert_eq!(back.idc_der, vec![1, 2, 3]);
        assert!(matches!(
            open(&sealed, b"Secret"),
            Err(Error::WrongPassword)
        ));
    }

    #[test]
    fn tampering_is_detected() {
        let sealed = seal(&plain(), b"pw", KdfParams::INSECURE_FAST).unwrap();
        for i in [9, 30, 50, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(open(&bad, b"pw").is_err(), "flip at {i} accepted");
        }
        assert!(matches!(
            open(&sealed[..20], b"pw"),
            Err(Error::MalformedExport(_))
        ));
    }

    #[test]
    fn secrets_round_trip_and_are_not_identity_exports() {
        let sealed = seal_secret(b"group key", b"pw", KdfParams::INSECURE_FAST).unwrap();
        assert_eq!(&open_secret(&sealed, b"pw").unwrap()[..], b"group key");
        assert!(matches!(
            open_secret(&sealed, b"px"),
            Err(Error::WrongPassword)
        ));
        assert!(
            open(&sealed, b"pw").is_err(),
            "a sealed secret read as an identity export"
        );
    }

    #[test]
    fn refuses_absurd_costs() {
        let mut sealed = seal(&plain(), b"pw", KdfParams::INSECURE_FAST).unwrap();
        sealed[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            open(&sealed, b"pw"),
            Err(Error::MalformedExport(_))
        ));
    }
}
