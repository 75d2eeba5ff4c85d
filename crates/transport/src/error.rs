//! Errors, split by who is at fault: the peer we refused, the peer that refused us, the
//! clock, the network, or the caller.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use peergroup_credential_roles::ChainError;
use peergroup_identity::PeerName;

/// Why a handshake (or a live connection) was refused. Every case has its own kind, so the
/// caller can match on it; [`Refusal::detail`] says more in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalKind {
    /// The peer does not speak TLS (a plain TCP client, garbage bytes, or it hung up before
    /// its ClientHello).
    NotTls,
    /// The peer presented no certificate (client authentication is mandatory).
    NoCertificate,
    /// The peer's chain does not make it a member of the group: a self-signed identity
    /// certificate only, a forged or broken chain, or the group root certificate alone.
    NotMember,
    /// The peer is a member of another group.
    WrongGroup,
    /// The peer's membership (or a certificate above it) has expired or is not valid yet.
    Expired,
    /// The peer (or a certificate above it) is revoked.
    Revoked,
    /// The peer offered no ALPN protocol or not `peergroup/1`.
    BadAlpn,
    /// The peer asked (by SNI) for a group this endpoint does not serve.
    UnknownGroup,
    /// The handshake signature does not verify with the leaf key, or uses another scheme
    /// than Ed25519.
    BadSignature,
    /// The peer speaks TLS, but no version or cipher we accept (TLS 1.2, say).
    Incompatible,
    /// The handshake did not finish in time.
    HandshakeTimeout,
    /// The peer broke the TLS or transport protocol during the handshake.
    Protocol,
    /// Password join: the joiner's proof of the password did not verify (or, seen from the
    /// joiner, the member could not prove it knows the password).
    WrongPassword,
    /// Password join: too many attempts from this identity or this address in the last
    /// minute.
    RateLimited,
    /// Password join: the group is served here but accepts no password joins (no join
    /// policy), or the member does not speak the join protocol.
    JoinsNotAccepted,
    /// Password join: the joiner's certificate is not one valid self-signed identity
    /// certificate.
    BadIdentity,
    /// Password join: the member cannot issue credentials (neither admin nor inviting
    /// member).
    NotIssuer,
}

impl RefusalKind {
    /// A short stable name, for logs and events.
    pub const fn as_str(self) -> &'static str {
        match self {
            RefusalKind::NotTls => "not TLS",
            RefusalKind::NoCertificate => "no certificate",
            RefusalKind::NotMember => "not a member",
            RefusalKind::WrongGroup => "member of another group",
            RefusalKind::Expired => "membership expired or not yet valid",
            RefusalKind::Revoked => "revoked",
            RefusalKind::BadAlpn => "bad ALPN",
            RefusalKind::UnknownGroup => "unknown group",
            RefusalKind::BadSignature => "bad handshake signature",
            RefusalKind::Incompatible => "incompatible TLS",
            RefusalKind::HandshakeTimeout => "handshake timeout",
            RefusalKind::Protocol => "protocol error",
            RefusalKind::WrongPassword => "wrong password",
            RefusalKind::RateLimited => "too many password attempts",
            RefusalKind::JoinsNotAccepted => "password joins not accepted",
            RefusalKind::BadIdentity => "bad identity certificate",
            RefusalKind::NotIssuer => "not an issuer of credentials",
        }
    }

    /// The kind of a chain validation failure.
    pub fn of_chain_error(e: &ChainError) -> RefusalKind {
        match e {
            ChainError::Expired { .. } | ChainError::NotYetValid { .. } => RefusalKind::Expired,
            ChainError::Revoked { .. } => RefusalKind::Revoked,
            // The root itself names another group: a member of another group. (A later
            // certificate naming another group is a broken chain.)
            ChainError::WrongGroup { index: 0, .. } => RefusalKind::WrongGroup,
            _ => RefusalKind::NotMember,
        }
    }
}

impl fmt::Display for RefusalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: its kind and what exactly was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct Refusal {
    /// What kind of refusal.
    pub kind: RefusalKind,
    /// The details (the chain rule broken, the SNI asked for, …).
    pub detail: String,
}

impl Refusal {
    /// A refusal of `kind` with `detail`.
    pub fn new(kind: RefusalKind, detail: impl Into<String>) -> Self {
        Refusal {
            kind,
            detail: detail.into(),
        }
    }

    /// The refusal a chain validation failure stands for.
    pub fn from_chain(e: &ChainError) -> Self {
        Refusal::new(RefusalKind::of_chain_error(e), e.to_string())
    }
}

/// An endpoint refused an incoming connection. Also logged (`tracing::warn!`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthFailure {
    /// The remote address.
    pub addr: SocketAddr,
    /// The group the peer asked for, when it named one this endpoint serves.
    pub group: Option<PeerName>,
    /// The peer's identity, when the refusal came after the handshake told it (password
    /// joins: a wrong password, too many attempts).
    pub peer: Option<PeerName>,
    /// Why.
    pub reason: Refusal,
}

/// Which phase of establishing a connection timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// The TCP connect.
    Connect,
    /// The TLS handshake and the server's acceptance.
    Handshake,
    /// The password proof and the issuance of a password join.
    PasswordProof,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "TCP connect",
            Phase::Handshake => "TLS handshake",
            Phase::PasswordProof => "password proof",
        })
    }
}

/// Why [`Endpoint::connect`](crate::Endpoint::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server refused us. The kind is inferred from its TLS alert, when it sent one we
    /// know (`certificate_revoked` → [`RefusalKind::Revoked`], …).
    #[error("refused by the peer ({alert}){}", kind.map(|k| format!(": {k}")).unwrap_or_default())]
    Refused {
        /// The refusal kind the alert stands for.
        kind: Option<RefusalKind>,
        /// The alert (or "connection closed" when the peer just hung up).
        alert: String,
    },
    /// Our verifier refused the server: it is not an authenticated member of the group.
    #[error("the peer is not authenticated: {0}")]
    NotAuthenticated(Refusal),
    /// A phase did not finish in time.
    #[error("{0} timed out")]
    Timeout(Phase),
    /// The network failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// Our own credentials are unusable (a caller's mistake).
    #[error("bad credentials: {0}")]
    Credentials(#[from] CredentialsError),
}

impl ConnectError {
    /// The refusal kind, whichever side refused.
    pub fn refusal_kind(&self) -> Option<RefusalKind> {
        match self {
            ConnectError::Refused { kind, .. } => *kind,
            ConnectError::NotAuthenticated(r) => Some(r.kind),
            _ => None,
        }
    }
}

/// Credentials that do not fit together (a caller's mistake).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The chain is for another group than the one named.
    #[error("the chain is for group {found}, not {expected}")]
    GroupMismatch {
        /// The group named.
        expected: PeerName,
        /// The chain's group.
        found: PeerName,
    },
    /// The chain's leaf does not certify the key (or the identity certificate is for
    /// another key).
    #[error("the certificate certifies another key")]
    KeyMismatch,
    /// The group is not served by this endpoint (add it first).
    #[error("group {0} is not served here")]
    NotServed(PeerName),
    /// Our chain does not allow issuing credentials (neither admin nor inviting member),
    /// so we cannot take password joins.
    #[error("our credentials cannot issue member certificates")]
    NotIssuer,
    /// The chain is the group root certificate alone; peers need a member certificate.
    #[error("the chain has no member certificate")]
    NotMemberChain,
    /// The chain is broken.
    #[error("invalid chain: {0}")]
    InvalidChain(ChainError),
    /// The trust is for another group than the credentials.
    #[error("the trust is for group {trust}, the credentials for {credentials}")]
    TrustMismatch {
        /// The trust's group.
        trust: PeerName,
        /// The credentials' group.
        credentials: PeerName,
    },
    /// TLS refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// Why a frame could not be read. The connection it came from is closed; others are not.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix announces more than the limit.
    #[error("frame of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A zero-length frame (no version byte).
    #[error("empty frame")]
    Empty,
    /// A version byte we do not speak.
    #[error("unknown frame version {0}")]
    UnknownVersion(u8),
    /// The frame does not decode.
    #[error("undecodable frame: {0}")]
    Undecodable(String),
    /// Bytes after the encoded frame.
    #[error("{0} trailing bytes after the frame")]
    TrailingBytes(usize),
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// A frame that is valid but not allowed here (say, a second acceptance).
    #[error("unexpected frame: {0}")]
    Unexpected(&'static str),
}

/// Why a connection closed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Connection::close`](crate::Connection::close) was called here.
    Local(String),
    /// Every handle to the connection was dropped.
    Dropped,
    /// The peer said goodbye with this reason.
    Peer(String),
    /// The peer went away without a goodbye (EOF, reset).
    PeerGone,
    /// Nothing received for the idle timeout.
    IdleTimeout,
    /// The peer did not read what we wrote for the write timeout.
    WriteTimeout,
    /// The peer broke the framing; we closed.
    Protocol(FrameError),
    /// The peer is no longer trusted (revoked, or its membership expired).
    Untrusted(Refusal),
    /// The network failed.
    Io(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Local(r) => write!(f, "closed locally: {r}"),
            CloseReason::Dropped => f.write_str("dropped"),
            CloseReason::Peer(r) => write!(f, "closed by the peer: {r}"),
            CloseReason::PeerGone => f.write_str("the peer went away"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::WriteTimeout => f.write_str("the peer stopped reading (write timeout)"),
            CloseReason::Protocol(e) => write!(f, "protocol error: {e}"),
            CloseReason::Untrusted(r) => write!(f, "peer no longer trusted: {r}"),
            CloseReason::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

/// Why sending on a connection failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The connection is closed.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// The outgoing queue is full ([`Connection::try_send`](crate::Connection::try_send)).
    #[error("the outgoing queue is full")]
    QueueFull,
    /// The data does not fit in one frame (a caller's mistake).
    #[error("{len} bytes do not fit in a frame (at most {max})")]
    TooLarge {
        /// Data length.
        len: usize,
        /// Largest data length per frame.
        max: usize,
    },
}
