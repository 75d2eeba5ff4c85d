//! What a member that takes password joins keeps: an OPAQUE registration of the password.
//!
//! When a member is given the group password (it creates the group, or joins by password
//! with a role that issues credentials), it runs both sides of OPAQUE's registration
//! locally, once, and keeps:
//!
//! - its own `ServerSetup`: the OPRF seed (its OPRF key for the password is derived from it
//!   and the credential identifier of the group, see `pake.rs`) and its AKE key pair;
//! - the registration record (`ServerRegistration`): the client's public key, the masking
//!   key and the envelope, sealed under a key derived from OPRF(password) stretched by
//!   Argon2id at the cost below;
//! - the Argon2id cost (sent to joiners, who stretch alike).
//!
//! Never the password nor an Argon2id output of it: the record cannot be presented instead
//! of the password (a login with any bytes of it as the password fails), and testing a guess
//! against it takes one OPRF evaluation and one Argon2id evaluation, with the member's OPRF
//! seed. Whoever holds the setup can still pass for this member to joiners (it can answer
//! their logins), so the record stays secret: owner-only, never in the group database.
//!
//! Stored as [`PasswordRecord::to_bytes`]:
//!
//! ```text
//! "PGOPAQUE" ‖ version 0x01 ‖ m_cost_kib u32 LE ‖ t_cost u32 LE ‖ lanes u32 LE
//!   ‖ ServerSetup (opaque-ke 4 serialization) ‖ ServerRegistration (idem)
//! ```
//!
//! The SPAKE2 protocol before it stored a password-equivalent secret (44 bytes: the cost and
//! 32 bytes of Argon2id output). It cannot be turned into a record without the password:
//! [`PasswordRecord::from_bytes`] recognises it and says so ([`RecordError::Legacy`]).

use std::fmt;

use opaque_ke::generic_array::typenum::Unsigned;
use opaque_ke::{
    ClientRegistration, ClientRegistrationFinishParameters, Identifiers, ServerRegistration,
    ServerRegistrationLen, ServerSetup,
};
use peergroup_identity::{KdfParams, PeerName};
use rand_core::OsRng;
use zeroize::{Zeroize, Zeroizing};

use crate::join::JoinError;
use crate::join::pake::{PakeError, Suite, credential_identifier};

/// Largest Argon2id memory cost a joiner accepts from a member, in KiB (256 MiB): a member
/// cannot make a joiner allocate more.
pub const MAX_KDF_MEMORY_KIB: u32 = 256 * 1024;

/// Largest Argon2id pass count accepted.
pub const MAX_KDF_PASSES: u32 = 10;

/// Largest Argon2id lane count accepted.
pub const MAX_KDF_LANES: u32 = 8;

/// The magic in front of a stored record.
const MAGIC: &[u8; 8] = b"PGOPAQUE";

/// The format version after the magic.
const FORMAT_VERSION: u8 = 1;

/// Length of the stored secret of the SPAKE2 protocol (three u32 costs, 32 bytes).
const LEGACY_LEN: usize = 44;

/// Why stored bytes are not a [`PasswordRecord`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A password-equivalent secret of the earlier (SPAKE2) protocol: it cannot become an
    /// OPAQUE record without the password. Give the member the password again.
    #[error(
        "a password secret of the earlier SPAKE2 protocol: it cannot take OPAQUE joins and \
         cannot be converted without the password; register the password again"
    )]
    Legacy,
    /// Not a record, or a damaged one.
    #[error("damaged password record: {0}")]
    Damaged(String),
}

/// A member's OPAQUE registration of a group password (see the module docs of
/// [`join`](crate::join)): its server setup, the record, and the Argon2id cost.
///
/// Secret (the setup's keys let one pass for this member to joiners) but not
/// password-equivalent. Cloning copies it; every copy is zeroed on drop. `Debug` does not
/// print it.
#[derive(Clone)]
pub struct PasswordRecord {
    kdf: KdfParams,
    setup: Zeroizing<Vec<u8>>,
    registration: Zeroizing<Vec<u8>>,
}

impl PasswordRecord {
    /// Argon2id cost used when the caller has no reason to choose another:
    /// [`KdfParams::DEFAULT`] (64 MiB, 3 passes, 1 lane).
    pub const DEFAULT_KDF: KdfParams = KdfParams::DEFAULT;

    /// Registers `password` for `group` with the Argon2id cost `kdf`: a fresh server setup
    /// and the record of the password under it. Takes as long as one Argon2id evaluation
    /// (well under a second at the default cost): call it from a blocking context, or
    /// `tokio::task::spawn_blocking`.
    pub fn register(password: &[u8], group: &PeerName, kdf: KdfParams) -> Result<Self, JoinError> {
        check_kdf(kdf).map_err(JoinError::Kdf)?;
        let ksf = ksf(kdf).map_err(JoinError::Kdf)?;
        let opaque = |e: opaque_ke::errors::ProtocolError| JoinError::Kdf(format!("OPAQUE: {e:?}"));
        let mut rng = OsRng;
        let setup = ServerSetup::<Suite>::new(&mut rng);
        let client = ClientRegistration::<Suite>::start(&mut rng, password).map_err(opaque)?;
        let server = ServerRegistration::<Suite>::start(
            &setup,
            client.message,
            &credential_identifier(group),
        )
        .map_err(opaque)?;
        let finished = client
            .state
            .finish(
                &mut rng,
                password,
                server.message,
                ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&ksf)),
            )
            .map_err(opaque)?;
        let registration = ServerRegistration::<Suite>::finish(finished.message);
        Ok(PasswordRecord {
            kdf,
            setup: Zeroizing::new(setup.serialize().to_vec()),
            registration: Zeroizing::new(registration.serialize().to_vec()),
        })
    }

    /// The Argon2id cost joiners stretch with (sent to them).
    pub fn kdf(&self) -> KdfParams {
        self.kdf
    }

    /// The bytes to store (owner-only, never in the group database).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            MAGIC.len() + 13 + self.setup.len() + self.registration.len(),
        ));
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        for v in [self.kdf.m_cost_kib, self.kdf.t_cost, self.kdf.lanes] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.setup);
        out.extend_from_slice(&self.registration);
        out
    }

    /// A record stored with [`PasswordRecord::to_bytes`]. The earlier protocol's secret is
    /// [`RecordError::Legacy`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let damaged = |why: &str| RecordError::Damaged(why.into());
        let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            return Err(if bytes.len() == LEGACY_LEN {
                RecordError::Legacy
            } else {
                damaged("not a password record")
            });
        };
        let (&version, rest) = rest.split_first().ok_or_else(|| damaged("truncated"))?;
        if version != FORMAT_VERSION {
            return Err(RecordError::Damaged(format!("unknown version {version}")));
        }
        let u32_at = |i: usize| -> Result<u32, RecordError> {
            let b = rest.get(i..i + 4).ok_or_else(|| damaged("truncated"))?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let kdf = KdfParams {
            m_cost_kib: u32_at(0)?,
            t_cost: u32_at(4)?,
            lanes: u32_at(8)?,
        };
        check_kdf(kdf).map_err(RecordError::Damaged)?;
        let rest = &rest[12..];
        // The record has a fixed length; the setup is what comes before it.
        let setup_len = rest
            .len()
            .checked_sub(<ServerRegistrationLen<Suite> as Unsigned>::USIZE)
            .ok_or_else(|| damaged("truncated"))?;
        let (setup, registration) = rest.split_at(setup_len);
        let record = PasswordRecord {
            kdf,
            setup: Zeroizing::new(setup.to_vec()),
            registration: Zeroizing::new(registration.to_vec()),
        };
        record
            .opaque()
            .map_err(|e| RecordError::Damaged(e.to_string()))?;
        Ok(record)
    }

    /// The setup and the registration, decoded.
    pub(crate) fn opaque(
        &self,
    ) -> Result<(ServerSetup<Suite>, ServerRegistration<Suite>), PakeError> {
        let setup = ServerSetup::<Suite>::deserialize(&self.setup)
            .map_err(|e| PakeError::Malformed(format!("server setup: {e:?}")))?;
        // `deserialize` reads what it needs and ignores what follows; the
        // setup must be exactly its own encoding, or a record with a byte
        // too many would pass whenever the shifted registration happens to
        // decode (a flaky test caught it).
        let mut encoded = setup.serialize();
        let canonical = encoded.as_slice() == self.setup.as_slice();
        encoded.as_mut_slice().zeroize();
        if !canonical {
            return Err(PakeError::Malformed(
                "server setup: wrong length or not canonical".into(),
            ));
        }
        let registration = ServerRegistration::<Suite>::deserialize(&self.registration)
            .map_err(|e| PakeError::Malformed(format!("registration record: {e:?}")))?;
        Ok((setup, registration))
    }
}

impl fmt::Debug for PasswordRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordRecord")
            .field("kdf", &self.kdf)
            .finish_non_exhaustive()
    }
}

/// OPAQUE's key-stretching function at cost `kdf`: Argon2id, version 0x13.
pub(crate) fn ksf(kdf: KdfParams) -> Result<argon2::Argon2<'static>, String> {
    check_kdf(kdf)?;
    let params = argon2::Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.lanes, None)
        .map_err(|e| format!("Argon2id parameters: {e}"))?;
    Ok(argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// Refuses costs outside what a joiner is willing to spend (or Argon2id accepts).
pub(crate) fn check_kdf(kdf: KdfParams) -> Result<(), String> {
    let ok = (1..=MAX_KDF_LANES).contains(&kdf.lanes)
        && (1..=MAX_KDF_PASSES).contains(&kdf.t_cost)
        && (8 * kdf.lanes..=MAX_KDF_MEMORY_KIB).contains(&kdf.m_cost_kib);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Argon2id cost out of bounds: {kdf:?} (at most {MAX_KDF_MEMORY_KIB} KiB, \
             {MAX_KDF_PASSES} passes, {MAX_KDF_LANES} lanes)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peergroup_identity::{Classifier, KeyPair};

    fn group(seed: u64) -> PeerName {
        PeerName::new(
            &KeyPair::from_test_seed(seed).public(),
            Classifier::new("g").unwrap(),
        )
    }

    #[test]
    fn a_record_round_trips_and_is_fresh_per_registration() {
        let fast = KdfParams::INSECURE_FAST;
        let a = PasswordRecord::register(b"pw", &group(1), fast).unwrap();
        let bytes = a.to_bytes();
        let back = PasswordRecord::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.kdf(), fast);
        // A fresh server setup each time: two registrations of one password differ.
        let again = PasswordRecord::register(b"pw", &group(1), fast).unwrap();
        assert_ne!(again.to_bytes(), bytes);
        assert!(!format!("{a:?}").contains(&hex::encode(&a.setup[..8])));
    }

    #[test]
    fn the_spake2_secret_is_recognised_and_damage_is_reported() {
        // What the SPAKE2 protocol stored: three u32 costs and 32 bytes of Argon2id output.
        let mut legacy = Vec::new();
        for v in [19_456u32, 2, 1] {
            legacy.extend_from_slice(&v.to_le_bytes());
        }
        legacy.extend_from_slice(&[7; 32]);
        assert_eq!(
            PasswordRecord::from_bytes(&legacy).unwrap_err(),
            RecordError::Legacy
        );
        assert!(
            RecordError::Legacy
                .to_string()
                .contains("register the password again")
        );
        let good = PasswordRecord::register(b"pw", &group(1), KdfParams::INSECURE_FAST)
            .unwrap()
            .to_bytes();
        for bad in [
            &[][..],
            &good[..good.len() - 1],
            &good[..20],
            &legacy[..43],
            b"PGOPAQUE",
        ] {
            assert!(
                matches!(
                    PasswordRecord::from_bytes(bad),
                    Err(RecordError::Damaged(_))
                ),
                "{} bytes",
                bad.len()
            );
        }
        let mut version = good.to_vec();
        version[8] = 2;
        assert!(PasswordRecord::from_bytes(&version).is_err());
        // A byte too many shifts the registration by one; that shifted
        // registration decodes now and then, so try many fresh records.
        for _ in 0..64 {
            let mut extra = PasswordRecord::register(b"pw", &group(1), KdfParams::INSECURE_FAST)
                .unwrap()
                .to_bytes()
                .to_vec();
            extra.push(0);
            assert!(PasswordRecord::from_bytes(&extra).is_err());
        }
    }

    #[test]
    fn unreasonable_costs_are_refused() {
        let bad = [
            KdfParams {
                m_cost_kib: MAX_KDF_MEMORY_KIB + 1,
                t_cost: 1,
                lanes: 1,
            },
            KdfParams {
                m_cost_kib: 64,
                t_cost: 0,
                lanes: 1,
            },
            KdfParams {
                m_cost_kib: 64,
                t_cost: 1,
                lanes: 9,
            },
            KdfParams {
                m_cost_kib: 7,
                t_cost: 1,
                lanes: 1,
            },
        ];
        for kdf in bad {
            assert!(check_kdf(kdf).is_err(), "{kdf:?}");
            assert!(matches!(
                PasswordRecord::register(b"pw", &group(1), kdf),
                Err(JoinError::Kdf(_))
            ));
        }
        assert!(check_kdf(KdfParams::DEFAULT).is_ok());
        assert!(check_kdf(KdfParams::INSECURE_FAST).is_ok());
    }
}
