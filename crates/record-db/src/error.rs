//! Errors of the record database, split by who is at fault.

use peergroup_credential_roles::ChainError;
use peergroup_identity::Timestamp;

/// Bytes that are not a canonical record (bad input from outside).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No bytes at all.
    #[error("empty record encoding")]
    Empty,
    /// A format version this build does not know.
    #[error("unknown record format version {0}")]
    UnknownVersion(u8),
    /// More bytes than any record may have.
    #[error("encoded record of {0} bytes is over the limit")]
    TooLarge(usize),
    /// postcard could not read it.
    #[error("malformed record encoding: {0}")]
    Malformed(String),
    /// Bytes after the record.
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
    /// A valid record in a non-canonical encoding (for example an over-long integer).
    #[error("record is not in canonical encoding")]
    NonCanonical,
}

/// Why a record is not accepted. Each rule has its own variant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Version 0.
    #[error("record version 0 (versions start at 1)")]
    VersionZero,
    /// Flag bits we do not know.
    #[error("unknown record flag bits {0:#04x}")]
    UnknownFlags(u8),
    /// Not expires > last-modified ≥ created.
    #[error(
        "record times out of order: created {created}, last modified {last_modified}, expires {expires}"
    )]
    TimesOutOfOrder {
        /// Creation time.
        created: Timestamp,
        /// Last modification.
        last_modified: Timestamp,
        /// Expiry.
        expires: Timestamp,
    },
    /// A deletion tombstone that still carries data.
    #[error("a deleted record must have no payload and no attributes")]
    DeletedWithData,
    /// Payload plus attributes over the limit: the group's maximum record size for a
    /// record made here, [`crate::reserved::MAX_RECORD_SIZE_LIMIT`] (what any group may
    /// allow) for a received one.
    #[error("record data is {size} bytes; at most {max} are allowed")]
    TooLarge {
        /// Payload plus attributes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Version 1 with a modifier, or a later version without one.
    #[error("version {version} {what}")]
    ModifierMismatch {
        /// The version.
        version: u32,
        /// What is inconsistent.
        what: &'static str,
    },
    /// Certificate serials of a bad size.
    #[error("certificate serial numbers must be 1 to 20 bytes")]
    BadSerial,
    /// Attribute XML that does not parse.
    #[error("invalid attributes: {0}")]
    BadAttributes(String),
    /// The id is not bound to the creator.
    #[error("record id {id} is not bound to its creator {creator}")]
    IdNotBound {
        /// The id.
        id: String,
        /// The claimed creator.
        creator: String,
    },
    /// Already expired when received.
    #[error("record expired at {0}")]
    Expired(Timestamp),
    /// The signer's certificate (by serial) is not the signer's.
    #[error("the signing certificate does not belong to {0}")]
    SignerMismatch(String),
    /// The signature does not verify.
    #[error("bad record signature")]
    BadSignature,
    /// The signer's certificate chain is not valid when the record was signed.
    #[error("signer's certificate chain is not valid: {0}")]
    Chain(#[from] ChainError),
    /// The record's lifetime is not inside the signer's membership.
    #[error(
        "record lifetime ({last_modified} to {expires}) is outside the signer's membership ({not_before} to {not_after})"
    )]
    OutsideMembership {
        /// Last modification.
        last_modified: Timestamp,
        /// Expiry.
        expires: Timestamp,
        /// Membership start.
        not_before: Timestamp,
        /// Membership end.
        not_after: Timestamp,
    },
    /// The signer may not make this change.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// The signer was revoked before it made this version.
    #[error("the signer was revoked: {0}")]
    Revoked(String),
    /// A reserved record type with a payload that is not what the type requires.
    #[error("invalid {kind} record: {reason}")]
    BadReservedPayload {
        /// Which reserved type.
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An update that shortens the record's lifetime.
    #[error("an update may not move expiry earlier ({old} → {new})")]
    ExpiryShrinks {
        /// The stored expiry.
        old: Timestamp,
        /// The new expiry.
        new: Timestamp,
    },
}

/// A failure of the storage underneath (the local machine's fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(String),
    /// A stored record no longer decodes.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// A file operation failed.
    #[error("{0}")]
    Io(String),
}

/// The record database's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record failed validation.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Bytes are not a record.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No record with this id.
    #[error("record not found: {0}")]
    NotFound(String),
    /// The caller's own credentials do not allow the operation.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// An invalid argument from the caller.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An export file that is damaged or not ours.
    #[error("invalid database export: {0}")]
    BadExport(String),
    /// A search query or attributes that do not parse.
    #[error(transparent)]
    Search(#[from] crate::search::SearchError),
    /// An identity-layer failure (randomness).
    #[error(transparent)]
    Identity(#[from] peergroup_identity::Error),
    /// The store holds another group's database.
    #[error("the store holds the database of group {holds}, not of {wanted}")]
    WrongGroup {
        /// The group whose database the store holds.
        holds: String,
        /// The group it was opened for.
        wanted: String,
    },
}
