//! Identities for [peergroup](https://github.com/peergroup/peergroup): who a peer is.
//!
//! An identity is an Ed25519 key pair, a self-signed identity certificate (IDC) naming it,
//! and a *secure peer name* — `<40 hex digits of a hash of the public key>.<classifier>` —
//! that only the key's holder can claim. The [`IdentityStore`] keeps identities on disk
//! (owner-only files, atomic writes) and seals them under a password for export.
//!
//! This crate is the bottom layer: it has no notion of groups. The certificate writer in
//! [`x509`] and the durable file helpers in [`fs`] are shared with the layers above.
//!
//! ```
//! use peergroup_identity::{Classifier, Identity, PeerName, Timestamp};
//!
//! let alice = Identity::generate("Alice", Classifier::new("laptop")?, Timestamp::now())?;
//! let name: PeerName = alice.peer_name().to_string().parse()?;
//! assert!(name.is_owned_by(&alice.key().public()));
//!
//! let signature = alice.key().sign(b"hello");
//! alice.key().public().verify(b"hello", &signature)?;
//! # Ok::<(), peergroup_identity::Error>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod der;
mod error;
pub mod fs;
mod idc;
mod key;
mod peer_name;
mod seal;
mod store;
mod time;
pub mod x509;

pub use error::Error;
pub use idc::{IdentityCertificate, MAX_FRIENDLY_NAME, check_friendly_name};
pub use key::{KeyPair, PublicKey, SecretKey, Signature, random_bytes, sha256, verify_batch};
pub use peer_name::{Authority, Classifier, PeerName};
pub use seal::{KdfParams, open_secret, seal_secret};
pub use store::{DEFAULT_CLASSIFIER, Identity, IdentityStore, IdentitySummary};
pub use time::Timestamp;
