//! Errors of certificate issuance and chain validation.

use peergroup_identity::Timestamp;

use crate::role::Role;

/// Why a certificate chain is not valid for a group. Every rule has its own variant; the
/// index is the position in the chain (0 = the group root certificate).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The chain has no certificates.
    #[error("the certificate chain is empty")]
    Empty,
    /// More than [`crate::MAX_CHAIN_LEN`] certificates.
    #[error("the certificate chain has {0} certificates; at most 25 are allowed")]
    TooLong(usize),
    /// A certificate could not be parsed or breaks a structural rule.
    #[error("certificate {index}: {reason}")]
    Malformed {
        /// Position in the chain.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The first certificate is not a group root certificate.
    #[error("the chain does not start with a group root certificate")]
    RootNotGroupRoot,
    /// The group root certificate's signature is not its own.
    #[error("the group root certificate is not self-signed")]
    RootNotSelfSigned,
    /// The root's key does not own the group peer name.
    #[error("the group root certificate's key does not own the group peer name")]
    RootKeyMismatch,
    /// A certificate names another group.
    #[error("certificate {index} belongs to group {found}, not {expected}")]
    WrongGroup {
        /// Position in the chain.
        index: usize,
        /// The group asked for.
        expected: String,
        /// The group it names.
        found: String,
    },
    /// A certificate after the root is not a group member certificate.
    #[error("certificate {0} is not a group member certificate")]
    NotMemberCertificate(usize),
    /// A certificate's issuer name is not its parent's subject name.
    #[error("certificate {0} was not issued by the certificate before it (issuer name differs)")]
    IssuerNameMismatch(usize),
    /// A certificate's signature does not verify with its parent's key.
    #[error("certificate {0} has a signature its issuer did not make")]
    BadSignature(usize),
    /// The parent may not issue at all (a member certificate, or not marked as a CA).
    #[error("certificate {0} was issued by a certificate that may not issue")]
    IssuerMayNotIssue(usize),
    /// The certificate holds a role its parent may not grant.
    #[error("certificate {index} holds role {role}, which its issuer may not grant")]
    RoleEscalation {
        /// Position in the chain.
        index: usize,
        /// The role.
        role: Role,
    },
    /// The CA flag does not match the roles (issuers are CAs, plain members are not).
    #[error("certificate {0}: its CA flag does not match its roles")]
    CaFlagMismatch(usize),
    /// The certificate's validity is not inside its issuer's.
    #[error("certificate {0} is valid outside its issuer's validity")]
    ValidityNotNested(usize),
    /// The certificate has expired.
    #[error("certificate {index} expired at {not_after}")]
    Expired {
        /// Position in the chain.
        index: usize,
        /// End of validity.
        not_after: Timestamp,
    },
    /// The certificate is not valid yet.
    #[error("certificate {index} is not valid before {not_before}")]
    NotYetValid {
        /// Position in the chain.
        index: usize,
        /// Start of validity.
        not_before: Timestamp,
    },
    /// A key appears twice in the chain.
    #[error("certificate {0} repeats a key earlier in the chain (a cycle)")]
    Cycle(usize),
    /// The leaf's subject peer name is not owned by its key.
    #[error("the leaf certificate's peer name is not owned by its key")]
    LeafPeerNameMismatch,
    /// The leaf key is not the one expected (for example the TLS peer's key).
    #[error("the leaf certificate is for another key")]
    LeafKeyMismatch,
    /// A certificate or peer in the chain has been revoked.
    #[error("certificate {index} is revoked ({what})")]
    Revoked {
        /// Position in the chain.
        index: usize,
        /// The serial number or peer name that is revoked.
        what: String,
    },
}

/// Why an operation on credentials failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The chain is not valid.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The caller asked for something its roles do not allow.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// An empty or inverted validity window, or one entirely outside the issuer's.
    #[error("invalid time period: {0}")]
    InvalidTimePeriod(String),
    /// The role set is empty.
    #[error("at least one role is required")]
    NoRoles,
    /// Bytes that are not a certificate chain.
    #[error("malformed certificate chain: {0}")]
    MalformedChain(String),
    /// A key that does not belong to the certificate it is used with.
    #[error("the key does not match the certificate")]
    KeyMismatch,
    /// An error from the identity layer.
    #[error(transparent)]
    Identity(#[from] peergroup_identity::Error),
}
