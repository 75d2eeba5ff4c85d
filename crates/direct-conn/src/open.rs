//! Opening a direct connection (in the background) and accepting one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use peergroup_identity::PeerName;
use peergroup_transport::{Connection, Endpoint};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::DirectError;
use crate::protocol::{DirectProtocol, Received};
use crate::session;
use crate::table::{Inner, Live, SHUT_DOWN};
use crate::types::{DirectConnId, DirectConnInfo, DirectEvent};
use crate::wire::ProtocolError;

/// A connection past the hello and welcome.
struct Established {
    conn: Connection,
    addr: SocketAddr,
    /// The protocol, established.
    protocol: DirectProtocol,
    /// The largest data the peer takes.
    max_send: usize,
}

/// Why opening failed: the error, and the per-address account for the event.
struct Failure {
    error: DirectError,
    reason: String,
}

/// The background attempt behind `open` and `open_wait`: tries the addresses in turn within
/// `timeout`, reports `Connected` or `Failed`, then runs the connection.
pub(crate) async fn run(
    inner: Arc<Inner>,
    id: DirectConnId,
    peer: PeerName,
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    cancel: oneshot::Receiver<()>,
    done: Option<oneshot::Sender<Result<(), DirectError>>>,
) {
    let cancelled = || {
        Box::new(Failure {
            error: DirectError::Cancelled { id },
            reason: "cancelled before it was established".into(),
        })
    };
    let outcome = tokio::select! {
        r = establish(&inner, &peer, &addrs, timeout) => r,
        _ = cancel => Err(cancelled()),
    };
    let outcome = outcome.and_then(|est| {
        let expires = session::expiry_of(est.conn.peer());
        let (sender, receiver) = est.conn.split();
        let info = DirectConnInfo {
            id,
            peer: peer.clone(),
            addr: est.addr,
            outbound: true,
        };
        let live = Live {
            info: info.clone(),
            sender: sender.clone(),
            max_send: est.max_send,
            expires,
        };
        if inner.promote(live) {
            Ok((info, sender, receiver, est.protocol, expires))
        } else {
            sender.close("direct connection cancelled");
            Err(cancelled())
        }
    });
    match outcome {
        Ok((info, sender, receiver, protocol, expires)) => {
            if let Some(done) = done {
                let _ = done.send(Ok(()));
            }
            session::run(inner, info, sender, receiver, protocol, expires).await;
        }
        Err(failure) => {
            inner.forget_opening(id);
            tracing::debug!(%id, %peer, reason = %failure.reason, "direct connection failed");
            if let Some(done) = done {
                let _ = done.send(Err(failure.error));
            }
            let event = DirectEvent::Failed {
                id,
                peer: Some(peer),
                addrs,
                reason: failure.reason,
            };
            inner.events.send(event).await;
        }
    }
}

/// Tries each address until one gives an accepted direct connection to `peer`, all within
/// `timeout`. The error is the last address's (or the timeout); the reason lists them all.
async fn establish(
    inner: &Inner,
    peer: &PeerName,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<Established, Box<Failure>> {
    if addrs.is_empty() {
        let error = DirectError::NoAddress { peer: peer.clone() };
        return Err(Box::new(Failure {
            reason: error.to_string(),
            error,
        }));
    }
    // A bound too large to add to the clock means no bound beyond the transport's own.
    let deadline = Instant::now().checked_add(timeout);
    let mut notes = Vec::with_capacity(addrs.len());
    let mut last = None;
    for &addr in addrs {
        let attempt = try_addr(inner, peer, addr);
        let result = match deadline {
            Some(d) => tokio::time::timeout_at(d, attempt).await.ok(),
            None => Some(attempt.await),
        };
        match result {
            Some(Ok(est)) => return Ok(est),
            Some(Err(e)) => {
                notes.push(format!("{addr}: {e}"));
                last = Some(e);
            }
            None => {
                notes.push(format!("{addr}: timed out"));
                let error = DirectError::Timeout {
                    peer: peer.clone(),
                    after: timeout,
                };
                return Err(Box::new(Failure {
                    reason: format!("{error} ({})", notes.join("; ")),
                    error,
                }));
            }
        }
    }
    let reason = notes.join("; ");
    let error = last.unwrap_or(DirectError::NoAddress { peer: peer.clone() });
    Err(Box::new(Failure { error, reason }))
}

/// One address: the authenticated transport connection, the member check, hello, welcome.
async fn try_addr(
    inner: &Inner,
    peer: &PeerName,
    addr: SocketAddr,
) -> Result<Established, DirectError> {
    let mut conn = Endpoint::connect(addr, &inner.creds, &inner.trust, &inner.config)
        .await
        .map_err(|source| DirectError::Connect {
            addr,
            source: Box::new(source),
        })?;
    let found = &conn.peer().peer;
    if found != peer {
        conn.close("not the member asked for");
        return Err(DirectError::WrongPeer {
            expected: peer.clone(),
            found: found.clone(),
        });
    }
    let (mut protocol, hello) = DirectProtocol::dial(peer, inner.own_limit(conn.max_data_len()));
    let refused = |reason: String| DirectError::Refused {
        peer: peer.clone(),
        addr,
        reason,
    };
    conn.send(hello).await.map_err(|e| refused(e.to_string()))?;
    let Some(first) = conn.recv().await else {
        let reason = conn.closed().await;
        return Err(refused(match reason {
            peergroup_transport::CloseReason::Peer(r) => r,
            other => other.to_string(),
        }));
    };
    let error = match protocol.on_frame(&first) {
        Ok(Received::Established { max_send }) => {
            return Ok(Established {
                conn,
                addr,
                protocol,
                max_send,
            });
        }
        // Waiting for the welcome the machine takes nothing else; kept for completeness.
        Ok(Received::Data { .. }) => ProtocolError::Unexpected("data before the welcome"),
        Err(e) => e,
    };
    conn.close(&format!("direct-connection protocol error: {error}"));
    Err(DirectError::Protocol {
        peer: peer.clone(),
        error,
    })
}

/// The acceptor's side: checks the group and the hello and that the bounds leave room,
/// answers the welcome, registers the connection and starts its task.
pub(crate) fn accept(
    inner: &Arc<Inner>,
    conn: Connection,
    first_frame: &[u8],
) -> Result<DirectConnId, DirectError> {
    let info = conn.peer().clone();
    let (peer, addr) = (info.peer.clone(), info.addr);
    let recv_max = inner.own_limit(conn.max_data_len());
    let checked = check_hello(inner, &info.group, &peer, recv_max, first_frame).and_then(
        |(protocol, welcome)| {
            inner
                .start_accepting(&peer, addr)
                .map(|id| (protocol, welcome, id))
        },
    );
    let (protocol, welcome, id) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            tracing::warn!(%peer, %addr, %error, "refusing direct connection");
            conn.close(&goodbye(&error));
            return Err(error);
        }
    };
    let max_send = protocol.max_send().unwrap_or(0);
    // The queue of a fresh connection has room: this fails only if it already closed.
    if let Err(e) = conn.try_send(welcome) {
        inner.forget_opening(id);
        return Err(DirectError::Refused {
            peer,
            addr,
            reason: e.to_string(),
        });
    }
    let expires = session::expiry_of(conn.peer());
    let (sender, receiver) = conn.split();
    let info = DirectConnInfo {
        id,
        peer: peer.clone(),
        addr,
        outbound: false,
    };
    let live = Live {
        info: info.clone(),
        sender: sender.clone(),
        max_send,
        expires,
    };
    if !inner.promote(live) {
        sender.close(SHUT_DOWN);
        return Err(DirectError::Refused {
            peer,
            addr,
            reason: SHUT_DOWN.into(),
        });
    }
    tokio::spawn(session::run(
        inner.clone(),
        info,
        sender,
        receiver,
        protocol,
        expires,
    ));
    Ok(id)
}

/// The acceptor's checks: our group, a well-formed hello, for us. Returns the established
/// protocol and the welcome to send.
fn check_hello(
    inner: &Inner,
    group: &PeerName,
    peer: &PeerName,
    recv_max: usize,
    first_frame: &[u8],
) -> Result<(DirectProtocol, Bytes), DirectError> {
    if group != &inner.creds.group {
        return Err(DirectError::WrongGroup {
            expected: inner.creds.group.clone(),
            found: group.clone(),
        });
    }
    DirectProtocol::accept(
        inner.local_peer(),
        recv_max,
        &Bytes::copy_from_slice(first_frame),
    )
    .map_err(|error| DirectError::Protocol {
        peer: peer.clone(),
        error,
    })
}

/// What the acceptor tells a peer it refuses.
fn goodbye(error: &DirectError) -> String {
    match error {
        DirectError::Protocol { error, .. } => format!("direct-connection protocol error: {error}"),
        DirectError::WrongGroup { .. } => "wrong group".into(),
        DirectError::TooManyConnections { .. } => format!("direct connection refused: {error}"),
        other => other.to_string(),
    }
}
