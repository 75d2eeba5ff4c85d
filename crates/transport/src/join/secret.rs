//! The secret both sides feed into the PAKE: Argon2id of the password, salted by the group.
//!
//! ```text
//! salt   = SHA-256("peergroup password join v1" 0x00 ‖ group peer name, as text)
//! secret = Argon2id(password, salt, m, t, p) → 32 bytes
//! ```
//!
//! The joiner derives it from the typed password with the cost parameters the member sends;
//! the member either derives it the same way or loads one it stored. It is
//! password-equivalent (whoever holds it can prove "the password"), but learning the password
//! itself from it costs an Argon2id evaluation per guess, and the salt ties it to one group.

use std::fmt;

use peergroup_identity::{KdfParams, PeerName, sha256};
use zeroize::Zeroizing;

use crate::join::JoinError;

/// Domain separation of the salt.
const SALT_LABEL: &[u8] = b"peergroup password join v1\0";

/// Largest Argon2id memory cost a joiner accepts from a member, in KiB (256 MiB): a member
/// cannot make a joiner allocate more.
pub const MAX_KDF_MEMORY_KIB: u32 = 256 * 1024;

/// Largest Argon2id pass count accepted.
pub const MAX_KDF_PASSES: u32 = 10;

/// Largest Argon2id lane count accepted.
pub const MAX_KDF_LANES: u32 = 8;

/// The password-derived secret of a password group (see the module docs of
/// [`join`](crate::join)): 32 bytes of Argon2id output and the parameters that made it.
///
/// Cloning copies the secret; every copy is zeroed on drop. `Debug` does not print it.
#[derive(Clone)]
pub struct PasswordSecret {
    kdf: KdfParams,
    key: Zeroizing<[u8; 32]>,
}

impl PasswordSecret {
    /// Argon2id cost used when the caller has no reason to choose another:
    /// [`KdfParams::DEFAULT`] (64 MiB, 3 passes, 1 lane).
    pub const DEFAULT_KDF: KdfParams = KdfParams::DEFAULT;

    /// Derives the secret of `password` for `group` with the cost `kdf`. Takes as long as
    /// one Argon2id evaluation (well under a second at the default cost): call it from a
    /// blocking context, or `tokio::task::spawn_blocking`.
    pub fn derive(password: &[u8], group: &PeerName, kdf: KdfParams) -> Result<Self, JoinError> {
        check_kdf(kdf).map_err(JoinError::Kdf)?;
        let params = argon2::Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.lanes, Some(32))
            .map_err(|e| JoinError::Kdf(format!("Argon2id parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(password, &salt(group), key.as_mut())
            .map_err(|e| JoinError::Kdf(format!("Argon2id: {e}")))?;
        Ok(PasswordSecret { kdf, key })
    }

    /// A secret derived earlier (what a member keeps on its own disk instead of the
    /// password): the parameters it was derived with and its 32 bytes.
    pub fn from_derived(kdf: KdfParams, key: &[u8; 32]) -> Result<Self, JoinError> {
        check_kdf(kdf).map_err(JoinError::Kdf)?;
        Ok(PasswordSecret {
            kdf,
            key: Zeroizing::new(*key),
        })
    }

    /// The Argon2id cost it was derived with (sent to joiners, who must derive alike).
    pub fn kdf(&self) -> KdfParams {
        self.kdf
    }

    /// The 32 secret bytes, to store (owner-only, never in the group database: they are
    /// password-equivalent).
    pub fn derived_key(&self) -> &[u8; 32] {
        &self.key
    }
}

impl fmt::Debug for PasswordSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordSecret")
            .field("kdf", &self.kdf)
            .finish_non_exhaustive()
    }
}

/// The salt for `group`.
fn salt(group: &PeerName) -> [u8; 32] {
    let mut input = SALT_LABEL.to_vec();
    input.extend_from_slice(group.to_string().as_bytes());
    sha256(&input)
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
    fn derivation_is_deterministic_per_password_and_group() {
        let fast = KdfParams::INSECURE_FAST;
        let a = PasswordSecret::derive(b"pw", &group(1), fast).unwrap();
        let again = PasswordSecret::derive(b"pw", &group(1), fast).unwrap();
        let other_pw = PasswordSecret::derive(b"pw2", &group(1), fast).unwrap();
        let other_group = PasswordSecret::derive(b"pw", &group(2), fast).unwrap();
        assert_eq!(a.derived_key(), again.derived_key());
        assert_ne!(a.derived_key(), other_pw.derived_key());
        assert_ne!(a.derived_key(), other_group.derived_key());
        let stored = PasswordSecret::from_derived(fast, a.derived_key()).unwrap();
        assert_eq!(stored.derived_key(), a.derived_key());
        assert!(!format!("{a:?}").contains(&hex::encode(a.derived_key())));
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
                PasswordSecret::from_derived(kdf, &[0; 32]),
                Err(JoinError::Kdf(_))
            ));
        }
        assert!(check_kdf(KdfParams::DEFAULT).is_ok());
        assert!(check_kdf(KdfParams::INSECURE_FAST).is_ok());
    }
}
