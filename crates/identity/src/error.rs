//! The identity crate's error type.

use std::path::PathBuf;

/// What went wrong, grouped by who is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- The caller's mistakes -------------------------------------------------------------
    /// A peer name that is not `<40 lowercase hex>.<classifier>`.
    #[error("invalid peer name {0:?}: expected 40 lowercase hex digits, a dot and a classifier")]
    InvalidPeerName(String),
    /// A classifier outside the alphabet or length.
    #[error("invalid classifier {0:?}: use 1 to 149 characters from A-Z a-z 0-9 - _")]
    InvalidClassifier(String),
    /// An empty, over-long or control-character friendly name.
    #[error("invalid friendly name {0:?}: use 1 to 255 characters without control characters")]
    InvalidFriendlyName(String),
    /// No identity matches.
    #[error("identity not found: {0}")]
    IdentityNotFound(String),
    /// Several identities match a friendly-name prefix.
    #[error("{query:?} matches several identities: {candidates}")]
    AmbiguousIdentity {
        /// What was asked for.
        query: String,
        /// The peer names it matches, comma separated.
        candidates: String,
    },
    /// The identity is already in the store.
    #[error("identity already exists: {0}")]
    AlreadyExists(String),
    /// The identity still holds groups and cannot be deleted.
    #[error("identity {0} still holds groups; delete them first")]
    GroupsExist(String),
    /// A peer name that the key does not own.
    #[error("the peer name is not owned by the key")]
    PeerNameMismatch,

    // --- Bad input from outside (files, the network, other people) --------------------------
    /// DER that is not well formed.
    #[error("malformed DER: {0}")]
    MalformedDer(String),
    /// A certificate we cannot parse or that breaks a structural rule.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// A key or signature algorithm other than Ed25519, or a weak key.
    #[error("unsupported key: only strong Ed25519 keys are accepted")]
    UnsupportedKey,
    /// A signature that does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The export password is wrong (or the sealed data was altered).
    #[error("wrong password, or the exported identity was altered")]
    WrongPassword,
    /// An exported identity that is not in our format.
    #[error("malformed identity export: {0}")]
    MalformedExport(String),
    /// A store file that exists but cannot be read as what it should be.
    #[error("corrupt file {path}: {reason}")]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    // --- Local failures --------------------------------------------------------------------
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Certificate(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
