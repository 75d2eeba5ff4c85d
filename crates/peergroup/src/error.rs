//! The one public error type, with kinds a caller can match on.

use std::fmt;

/// What kind of failure, as a caller would branch on it (the Windows error codes in spirit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's roles do not allow the operation (PEER_E_NOT_AUTHORIZED).
    NotAuthorized,
    /// An invitation that is tampered, expired, for another identity or group
    /// (PEER_E_INVITATION_NOT_TRUSTED).
    InvitationNotTrusted,
    /// The group is not connected or not synchronised yet (PEER_E_GROUP_NOT_READY).
    GroupNotReady,
    /// The group is open or connected, and the operation needs it closed (PEER_E_GROUP_IN_USE).
    GroupInUse,
    /// A validity window that is empty, inverted or over (PEER_E_INVALID_TIME_PERIOD).
    InvalidTimePeriod,
    /// No such record (PEER_E_RECORD_NOT_FOUND).
    RecordNotFound,
    /// A record over the group's maximum size (PEER_E_MAX_RECORD_SIZE_EXCEEDED).
    MaxRecordSizeExceeded,
    /// No such identity (PEER_E_IDENTITY_NOT_FOUND).
    IdentityNotFound,
    /// No such group for this identity.
    GroupNotFound,
    /// It exists already (PEER_E_ALREADY_EXISTS).
    AlreadyExists,
    /// No member could be reached, or a connection failed (PEER_E_CONNECTION_FAILED).
    ConnectionFailed,
    /// A password that does not match (password groups).
    WrongPassword,
    /// Too many attempts; try later.
    RateLimited,
    /// A record that breaks a rule (PEER_E_INVALID_RECORD).
    InvalidRecord,
    /// Attribute XML that does not parse (PEER_E_INVALID_ATTRIBUTES).
    InvalidAttributes,
    /// A search query that does not parse (PEER_E_INVALID_SEARCH).
    InvalidSearch,
    /// Some other bad argument.
    InvalidArgument,
    /// A file that is damaged or not what it should be.
    Corrupt,
    /// The group, the infrastructure or the direct connection was closed.
    Closed,
    /// A local input/output failure.
    Io,
    /// Another running node holds the data directory (one node per data directory).
    DirectoryInUse,
    /// This member of a password group holds no usable registration of the password (what
    /// an earlier version stored cannot be converted without it): set the password again
    /// with [`Group::set_password`](crate::Group::set_password).
    PasswordNotRegistered,
}

/// A peergroup error: a kind, a one-line message, and the underlying cause if any.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<peergroup_identity::Error> for Error {
    fn from(e: peergroup_identity::Error) -> Self {
        use peergroup_identity::Error as E;
        let kind = match &e {
            E::IdentityNotFound(_) | E::AmbiguousIdentity { .. } => ErrorKind::IdentityNotFound,
            E::AlreadyExists(_) => ErrorKind::AlreadyExists,
            E::GroupsExist(_) => ErrorKind::GroupInUse,
            E::WrongPassword => ErrorKind::WrongPassword,
            E::CorruptFile { .. } | E::MalformedExport(_) => ErrorKind::Corrupt,
            E::Io { .. } | E::Random => ErrorKind::Io,
            _ => ErrorKind::InvalidArgument,
        };
        Error {
            kind,
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

impl From<peergroup_credential_roles::Error> for Error {
    fn from(e: peergroup_credential_roles::Error) -> Self {
        use peergroup_credential_roles::Error as E;
        let kind = match &e {
            E::NotAuthorized(_) => ErrorKind::NotAuthorized,
            E::InvalidTimePeriod(_) => ErrorKind::InvalidTimePeriod,
            E::Chain(
                peergroup_credential_roles::ChainError::Expired { .. }
                | peergroup_credential_roles::ChainError::NotYetValid { .. },
            ) => ErrorKind::InvalidTimePeriod,
            E::Chain(_) | E::MalformedChain(_) => ErrorKind::InvitationNotTrusted,
            _ => ErrorKind::InvalidArgument,
        };
        Error {
            kind,
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

impl From<peergroup_credential_roles::Denied> for Error {
    fn from(e: peergroup_credential_roles::Denied) -> Self {
        Error::new(ErrorKind::NotAuthorized, e.to_string())
    }
}

impl From<peergroup_invitation_xml::Error> for Error {
    fn from(e: peergroup_invitation_xml::Error) -> Self {
        Error::with_source(
            ErrorKind::InvitationNotTrusted,
            format!("invalid XML blob: {e}"),
            e,
        )
    }
}

impl From<peergroup_record_db::Error> for Error {
    fn from(e: peergroup_record_db::Error) -> Self {
        use peergroup_record_db::{Error as E, ValidationError as V};
        let kind = match &e {
            E::NotFound(_) => ErrorKind::RecordNotFound,
            E::NotAuthorized(_) | E::Invalid(V::NotAuthorized(_)) => ErrorKind::NotAuthorized,
            E::Invalid(V::TooLarge { .. }) => ErrorKind::MaxRecordSizeExceeded,
            E::Invalid(V::BadAttributes(_)) => ErrorKind::InvalidAttributes,
            E::Invalid(
                V::OutsideMembership { .. }
                | V::ExpiryShrinks { .. }
                | V::TimesOutOfOrder { .. }
                | V::Expired(_),
            ) => ErrorKind::InvalidTimePeriod,
            E::Invalid(_) | E::Decode(_) => ErrorKind::InvalidRecord,
            E::Search(s) if s.is_invalid_attributes() => ErrorKind::InvalidAttributes,
            E::Search(_) => ErrorKind::InvalidSearch,
            E::BadExport(_) => ErrorKind::Corrupt,
            E::Store(_) => ErrorKind::Io,
            _ => ErrorKind::InvalidArgument,
        };
        Error {
            kind,
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

impl From<peergroup_membership::Error> for Error {
    fn from(e: peergroup_membership::Error) -> Self {
        match e {
            peergroup_membership::Error::Database(d) => d.into(),
            peergroup_membership::Error::Closed => {
                Error::new(ErrorKind::Closed, "the group is closed")
            }
            other => Error::new(ErrorKind::InvalidArgument, other.to_string()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::with_source(ErrorKind::Io, e.to_string(), e)
    }
}

impl From<peergroup_record_db::StoreError> for Error {
    fn from(e: peergroup_record_db::StoreError) -> Self {
        let kind = match &e {
            peergroup_record_db::StoreError::Corrupt(_) => ErrorKind::Corrupt,
            _ => ErrorKind::Io,
        };
        Error::with_source(kind, e.to_string(), e)
    }
}

impl From<peergroup_credential_roles::ChainError> for Error {
    fn from(e: peergroup_credential_roles::ChainError) -> Self {
        peergroup_credential_roles::Error::Chain(e).into()
    }
}
