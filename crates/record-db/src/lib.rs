//! The group's shared memory: a replicated database of signed records.
//!
//! Every member holds a replica. A [`Record`] is signed by the member that made its current
//! version, its id is bound to its creator, and every replica validates every record it
//! receives (structure, signature, certificate chain, roles, lifetime, revocations) before
//! storing it. Versions of one record are merged by a total order ([`merge`]), so replicas
//! converge whatever order records arrive in — the replica is a state-based CRDT. Records live
//! in a [`store::Store`]: SQLite for real use ([`store::SqliteStore`], durable, group commit),
//! a map for tests ([`store::MemoryStore`]). [`search`] runs Windows-style attribute queries;
//! [`sync`] brings two replicas together, security records first, with [`reconcile`]'s
//! rateless IBLT so the bytes exchanged grow with the difference, not the database.
//!
//! The crate works alone: what it needs of identities and group credentials is re-exported
//! (the types at the root, the whole crates as [`identity`] and [`credentials`]).
//!
//! ```
//! use std::time::Duration;
//! use peergroup_record_db::store::MemoryStore;
//! use peergroup_record_db::{
//!     Classifier, Database, GroupRoot, Identity, LocalSigner, MemberRequest, NewRecord,
//!     RecordType, Role, Roles, Timestamp,
//! };
//!
//! let now = Timestamp::now();
//! let alice = Identity::generate("Alice", Classifier::new("alice")?, now)?;
//! let root = GroupRoot::create("Friends", Classifier::new("friends")?, alice.peer_name(), now)?;
//! let a_day = now.saturating_add(Duration::from_secs(86_400));
//! let chain = root.issue(&MemberRequest::for_identity(&alice, Roles::one(Role::Admin), now, a_day))?;
//!
//! let mut db = Database::open(MemoryStore::new(), &chain)?;
//! let me = LocalSigner { key: alice.key(), chain: &chain };
//! let notes: RecordType = "0d6a1f4e-8c1b-4a57-9e0a-3f3c2b1a0c00".parse()?;
//! let attributes = r#"<attributes><attribute name="Topic" type="string">lunch</attribute></attributes>"#;
//! let new = NewRecord {
//!     record_type: notes,
//!     attributes: attributes.into(),
//!     payload: b"noon?".to_vec(),
//!     expires: now.saturating_add(Duration::from_secs(3600)),
//!     autorefresh: false,
//! };
//! let record = db.create(me, new, now)?.record;
//! let found = db.search(r#"<peersearch><clause attrib="Topic" type="string">lun*</clause></peersearch>"#)?;
//! assert_eq!(found[0].id, record.id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
mod db;
mod error;
pub mod export;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod members;
mod memo;
pub mod merge;
pub mod reconcile;
mod record;
mod record_search;
pub mod reserved;
pub mod search;
pub mod store;
pub mod sync;
pub mod validate;

pub use db::{
    ApplyReport, Change, ChangeKind, Database, GROUP_META, LocalSigner, MAX_DEFERRED,
    MAX_DEFERRED_BYTES, MAX_DEFERRED_BYTES_PER_SIGNER, MAX_DEFERRED_PER_SIGNER, NewRecord,
    Received, RecordUpdate, SignedRecords, SignerKeys,
};
pub use error::{DecodeError, Error, StoreError, ValidationError};
pub use memo::MAX_MEMO_ENTRIES;
pub use record::{
    Record, RecordFlags, RecordId, RecordIdError, RecordType, RecordTypeError, SecurityData,
};

/// Group certificates, roles and revocation (the `peergroup-credential-roles` crate).
pub use peergroup_credential_roles as credentials;
pub use peergroup_credential_roles::{
    CertChain, GroupRoot, MemberRequest, RevocationTarget, Role, Roles,
};
/// Identities, keys, peer names and time (the `peergroup-identity` crate).
pub use peergroup_identity as identity;
pub use peergroup_identity::{Classifier, Identity, KeyPair, PeerName, Timestamp};
