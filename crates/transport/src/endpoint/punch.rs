//! TCP hole punching: a simultaneous open from the listening port. Both members dial each
//! other's candidates at the moment the mesh's punch exchange agreed on (`Output::Punch` in
//! `peergroup_mesh`), each from the port it listens on, which its NAT maps as it maps the
//! listener's (most home routers keep the port). Each side's SYN opens its own NAT for the
//! other's, and the kernel joins the two half-open sockets into one connection (RFC 793's
//! simultaneous open) — or, where one SYN arrives before the other side dialed, the listener
//! takes it as any incoming connection.
//!
//! Both sides dialed, so TLS's roles are settled by name and by what happened: the member
//! with the larger peer name is always the client (its socket joined ours, or reached our
//! listener, which serves). The smaller one waits up to [`PUNCH_FIRST_WORD`] for the other
//! to speak: a ClientHello means the two sockets joined (it serves); silence means its SYN
//! reached the other's listener, which waits for a ClientHello (it is the client). Where the
//! other's SYN reached our listener first, our own dial fails (the connection exists) and
//! the listener serves it.
//!
//! Dialing from a port a listener holds needs `SO_REUSEPORT` on both sockets (the listener
//! sets it; [`super::bind_one`] first checks that nobody holds the port, so a second process
//! cannot share it unnoticed). Where the system has no `SO_REUSEPORT`, no TCP punch is made.

use std::net::SocketAddr;
use std::time::Duration;

use super::Endpoint;
use crate::connection::{Connection, Transport};
use crate::error::ConnectError;
use crate::relayed::{Ends, accept_over, connect_over};
use crate::trust::{GroupCredentials, GroupTrust};

/// How long the member with the smaller peer name waits for the other to speak first on a
/// punched TCP connection before it takes the client's part (well under the listener's
/// first-byte timeout, [`crate::DEFAULT_FIRST_BYTE_TIMEOUT`]).
pub const PUNCH_FIRST_WORD: Duration = Duration::from_secs(1);

impl Endpoint {
    /// Dials `addr` over TCP from this endpoint's listening port, for a hole punch the other
    /// member runs at the same moment. `may_serve` is for the member with the smaller peer
    /// name: it takes TLS's server part if the other speaks first (see the module docs).
    /// Returns the connection and whether we served. Bounded by the connect and handshake
    /// timeouts.
    pub async fn punch_tcp(
        &self,
        addr: SocketAddr,
        creds: &GroupCredentials,
        trust: &GroupTrust,
        may_serve: bool,
    ) -> Result<(Connection, bool), ConnectError> {
        super::check_pair(creds, trust)?;
        let config = &self.shared.config;
        let from = self
            .local_addrs
            .iter()
            .find(|a| a.is_ipv4() == addr.is_ipv4())
            .copied()
            .ok_or_else(|| {
                ConnectError::Io(std::io::Error::new(
                    std::io::ErrorKind::AddrNotAvailable,
                    format!("no listening address of {addr}'s family to punch from"),
                ))
            })?;
        let socket = reusing_socket(from).map_err(ConnectError::Io)?;
        let stream = match tokio::time::timeout(config.connect_timeout, socket.connect(addr)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ConnectError::Io(e)),
            Err(_) => return Err(ConnectError::Timeout(crate::error::Phase::Connect)),
        };
        let _ = stream.set_nodelay(true);
        let ends = Ends {
            local: stream.local_addr().unwrap_or(from),
            remote: addr,
            transport: Transport::Tcp,
        };
        let budget = Some(self.shared.recv_budget.clone());
        let serve = may_serve && {
            let mut first = [0u8; 1];
            matches!(
                tokio::time::timeout(PUNCH_FIRST_WORD, stream.peek(&mut first)).await,
                Ok(Ok(n)) if n > 0
            )
        };
        let conn = if serve {
            accept_over(stream, ends, creds, trust, config, budget).await?
        } else {
            connect_over(stream, ends, creds, trust, config, budget).await?
        };
        Ok((conn, serve))
    }
}

/// A TCP socket bound to `from`, the port a listener of ours holds.
#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn reusing_socket(from: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = if from.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(from)?;
    Ok(socket)
}

#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn reusing_socket(_from: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "no SO_REUSEPORT here: TCP hole punching is not available",
    ))
}
