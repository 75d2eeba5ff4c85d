//! The authenticated transport of [peergroup](https://github.com/peergroup/peergroup): how
//! members of a group reach each other.
//!
//! Every connection is TLS 1.3 (rustls, ring), over TCP or inside QUIC (quinn: the same
//! handshake, then one stream; see `docs/transport.md`), with **both** sides authenticated by their
//! group member certificate chain: the certificate list a peer presents is its chain leaf
//! first (its GMC, the issuers, the GRC), and the other side accepts it only if the chain
//! validates for the expected group, now, against the group's *current* revocations, and the
//! TLS handshake is signed (Ed25519) by the leaf key. A refusal has a reason the caller can
//! match on ([`RefusalKind`]) and is logged; an [`Endpoint`] also reports the refusals it
//! makes as [`AuthFailure`] events. Revoking a member through its [`GroupTrust`] closes its
//! live connections too.
//!
//! Inside TLS, data travels in length-delimited, versioned frames ([`frame`]) with a size
//! limit (per configuration, lowered per group with [`GroupTrust::set_max_frame`]),
//! keepalive pings and an idle timeout; every connection has queues bounded in frames and
//! in bytes both ways (and an endpoint bounds the bytes unread across its connections), so a
//! slow peer slows its sender instead of growing our memory. A listener accepts at once and
//! bounds pending handshakes per source address and in total, evicting the oldest
//! unfinished one (a silent one first) for a newcomer ([`Endpoint::handshake_stats`]). One [`Endpoint`]
//! listens on IPv4 and IPv6 and serves many groups, told apart by a hashed TLS server name
//! ([`naming::sni_name`]); [`Discovery`] finds members on the local network with mDNS.
//! The ALPN protocol is `peergroup/1` ([`ALPN`]). `docs/transport.md` describes it all.
//!
//! A second protocol, `peergroup-join/2` ([`JOIN_ALPN`]), serves **password joins**
//! ([`join`]): someone holding only an identity certificate and a password invitation
//! proves the password online (OPAQUE, bound to the TLS session) to an admin or inviting
//! member whose endpoint has a [`JoinPolicy`] for the group ([`Endpoint::set_join_policy`]),
//! and receives a member certificate chain ([`password_join`]). Those connections never
//! reach [`Endpoint::accept`]; failures are reported as [`AuthFailure`]s.
//!
//! ```no_run
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use peergroup_transport::{Endpoint, GroupCredentials, GroupTrust, TransportConfig};
//! # async fn demo(creds: GroupCredentials, other_creds: GroupCredentials)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! // A member listens on loopback (IPv4 and IPv6) for its group…
//! let trust = GroupTrust::new(creds.group.clone());
//! let endpoint = Endpoint::bind(
//!     &["127.0.0.1:0".parse()?, "[::1]:0".parse()?],
//!     TransportConfig::default(),
//! ).await?;
//! endpoint.add_group(creds, trust.clone())?;
//!
//! // …another member of the same group connects to it…
//! let addr = endpoint.local_addrs()[0];
//! let client = Endpoint::connect(addr, &other_creds, &trust, &TransportConfig::default()).await?;
//! client.send(Bytes::from_static(b"hello")).await?;
//!
//! // …and the listener sees who it is.
//! let mut incoming = endpoint.accept().await.ok_or("endpoint closed")?;
//! assert_eq!(&incoming.peer().peer, other_creds.peer());
//! assert_eq!(incoming.recv().await.as_deref(), Some(&b"hello"[..]));
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod alerts;
mod config;
mod connection;
mod discovery;
mod endpoint;
mod error;
pub mod frame;
#[doc(hidden)]
pub mod fuzz_targets;
mod handshake;
pub mod join;
pub mod naming;
pub mod portmap;
pub(crate) mod quic;
pub mod relayed;
#[doc(hidden)]
pub mod testing;
mod tls;
mod trust;

pub use config::{
    ALPN, DEFAULT_ACCEPT_QUEUE, DEFAULT_ENDPOINT_RECV_BYTES, DEFAULT_FIRST_BYTE_TIMEOUT,
    DEFAULT_MAX_FRAME, DEFAULT_MAX_HANDSHAKES, DEFAULT_MAX_HANDSHAKES_PER_ADDRESS,
    DEFAULT_RECV_QUEUE, DEFAULT_RECV_QUEUE_BYTES, DEFAULT_SEND_QUEUE, DEFAULT_SEND_QUEUE_BYTES,
    Dial, EVICTED_UNCLOSED_SLACK, MAX_MAX_FRAME, MIN_MAX_FRAME, QUIC_RECEIVE_WINDOW,
    TCP_FALLBACK_DELAY, TransportConfig,
};
pub use connection::{
    Connection, ConnectionReceiver, ConnectionSender, PeerInfo, Transport, max_data_len,
};
pub use discovery::{Browse, Discovered, Discovery, DiscoveryError};
pub use endpoint::{Endpoint, HandshakeStats, PUNCH_FIRST_WORD};
pub use error::{
    AuthFailure, CloseReason, ConnectError, CredentialsError, FrameError, Phase, Refusal,
    RefusalKind, TransportError,
};
pub use frame::Frame;
pub use join::{
    Issuer, JOIN_ALPN, JoinError, JoinPolicy, PasswordRecord, RecordError, password_join,
};
pub use relayed::{accept_relayed, connect_relayed};
pub use trust::{Clock, GroupCredentials, GroupTrust, system_clock};
