//! Group credentials for [peergroup](https://github.com/peergroup/peergroup): who belongs to a
//! group, with which roles, and what they may do.
//!
//! A group is defined by its key pair and self-signed *group root certificate* (GRC); the group
//! peer name is derived from that key. Members hold *group member certificates* (GMC) issued to
//! their identity keys by an admin or inviting member, forming a chain GRC → … → GMC. The chain
//! is checked by [`CertChain::validate`] (every rule has its own [`ChainError`]), and what a
//! validated chain may do is decided by the pure function [`authorize`]. Certificates are
//! ordinary X.509 v3 with non-critical extensions, so `openssl verify` accepts our chains.
//!
//! ```
//! use peergroup_credential_roles::*;
//! use peergroup_identity::{Classifier, Identity, Timestamp};
//!
//! let now = Timestamp::now();
//! let alice = Identity::generate("Alice", Classifier::new("alice")?, now)?;
//! let bob = Identity::generate("Bob", Classifier::new("bob")?, now)?;
//!
//! // Alice creates a group and gives herself an admin certificate.
//! let root = GroupRoot::create("Friends", Classifier::new("friends")?, alice.peer_name(), now)?;
//! let request = |who: &Identity, role| MemberRequest {
//!     subject_key: who.key().public(),
//!     subject_peer: who.peer_name().clone(),
//!     subject_friendly_name: who.friendly_name().to_owned(),
//!     roles: Roles::one(role),
//!     classifiers: vec![],
//!     not_before: now,
//!     not_after: now.saturating_add(std::time::Duration::from_secs(86_400)),
//! };
//! let alice_chain = root.issue(&request(&alice, Role::Admin))?;
//! // Alice invites Bob as a member.
//! let bob_chain = alice_chain.issue(alice.key(), &request(&bob, Role::Member))?;
//!
//! let valid = bob_chain.validate(root.group(), now, &RevocationSet::new(), None)?;
//! assert_eq!(valid.peer(), bob.peer_name());
//! assert!(authorize(&valid, Action::AddRecord).is_ok());
//! assert!(authorize(&valid, Action::Invite(Role::Member)).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cert;
mod chain;
mod error;
pub mod ext;
#[doc(hidden)]
pub mod fuzz_targets;
mod policy;
mod revocation;
mod role;

pub use cert::{DEFAULT_MEMBER_CLASSIFIER, GroupCertificate, INFINITE, MemberRequest};
pub use chain::{CertChain, GroupRoot, MAX_CHAIN_BYTES, MAX_CHAIN_LEN, ValidatedChain};
pub use error::{ChainError, Error};
pub use policy::{Action, Denied, authorize};
pub use revocation::{RevocationSet, RevocationTarget};
pub use role::{Role, RoleId, Roles, UnknownRole};

#[cfg(test)]
mod tests;
