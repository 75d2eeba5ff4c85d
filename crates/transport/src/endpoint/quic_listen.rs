//! The QUIC listener: every incoming QUIC connection goes through the same pending-handshake
//! table as TCP (bounded per source address and in total, the oldest unfinished one evicted
//! for a newcomer), then through the TLS handshake with the group chosen by SNI
//! ([`Route`]), then is delivered to `accept` like a TCP connection, or refused with the
//! same reasons.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::listen::{PendingGuard, report};
use super::pending::{Admission, Stage};
use crate::config::ALPN;
use crate::connection::{self, Connection, PeerInfo, Transport};
use crate::error::{Refusal, RefusalKind};
use crate::frame::{Frame, FrameCodec};
use crate::quic::route::{Lookup, Route};
use crate::quic::{self, QuicStream, alert_of, server_refusal};

/// Routes handshakes to the groups `shared` serves.
pub(super) fn lookup(shared: &Arc<Shared>) -> Arc<Lookup> {
    let shared = Arc::downgrade(shared);
    Arc::new(move |sni: &str| shared.upgrade()?.lookup(sni).map(|(served, _)| served))
}

/// The server configuration quinn starts with (every connection gets its own, see
/// [`Route`]): it bounds the connections quinn holds before we take them.
pub(super) fn base_server_config(shared: &Arc<Shared>) -> Result<quinn::ServerConfig, String> {
    let transport = quic::transport_config(&shared.config, true);
    let mut config = Route::new(lookup(shared)).server_config(transport)?;
    let pending = u32::try_from(shared.config.max_handshakes).unwrap_or(u32::MAX);
    config.max_incoming(shared.config.max_handshakes);
    config.incoming_buffer_size(64 * 1024);
    config.incoming_buffer_size_total(u64::from(pending) * 16 * 1024);
    Ok(config)
}

pub(super) async fn listen(
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    incoming: mpsc::Sender<Connection>,
    shutdown: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => None,
            next = endpoint.accept() => next,
        };
        let Some(next) = next else {
            // Stop taking connections; established ones live on until closed.
            endpoint.set_server_config(None);
            return;
        };
        let addr = next.remote_address();
        let token = shutdown.child_token();
        // A QUIC client's first packet is its ClientHello: it is talking.
        let admission = shared
            .handshakes
            .table()
            .admit(addr.ip(), true, token.clone());
        let id = match admission {
            Admission::Refused(why) => {
                next.refuse();
                tracing::debug!(peer = %addr, ?why, "QUIC connection refused: over the handshake limits");
                shared.handshakes.note(1, 0);
                continue;
            }
            Admission::Admitted { id, evicted } => {
                if !evicted.is_empty() {
                    for victim in &evicted {
                        victim.cancel();
                    }
                    shared.handshakes.note(0, evicted.len() as u64);
                }
                id
            }
        };
        let shared = shared.clone();
        let incoming = incoming.clone();
        let local = endpoint.local_addr().ok();
        tokio::spawn(async move {
            let guard = PendingGuard {
                handshakes: &shared.handshakes,
                id,
            };
            tokio::select! {
                () = token.cancelled() => {}
                () = serve(next, addr, local, &shared, &incoming, &guard) => {}
            }
        });
    }
}

/// One incoming QUIC connection: handshake, the acceptance on a new stream, then delivery
/// to `accept` or a refusal event.
async fn serve(
    next: quinn::Incoming,
    addr: SocketAddr,
    local: Option<SocketAddr>,
    shared: &Arc<Shared>,
    incoming: &mpsc::Sender<Connection>,
    guard: &PendingGuard<'_>,
) {
    let config = &shared.config;
    let deadline = Instant::now() + config.handshake_timeout;
    guard.advance(Stage::Talking);
    let route = Route::new(lookup(shared));
    let refused = |reason: Refusal, group| report(shared, addr, reason, group, false);
    let server_config = match route.server_config(quic::transport_config(config, true)) {
        Ok(c) => c,
        Err(e) => return refused(Refusal::new(RefusalKind::Protocol, e), None),
    };
    let local_ip = next.local_ip();
    let connecting = match next.accept_with(Arc::new(server_config)) {
        Ok(c) => c,
        Err(e) => {
            // The ClientHello is handled here already: the route may know why it failed.
            let outcome = route.take_outcome();
            let group = outcome.served.as_ref().map(|s| s.group.clone());
            return refused(outcome.refusal.unwrap_or_else(|| server_refusal(&e)), group);
        }
    };
    let result = tokio::time::timeout_at(deadline, connecting).await;
    let outcome = route.take_outcome();
    let group = outcome.served.as_ref().map(|s| s.group.clone());
    let conn = match result {
        Err(_) => {
            let detail = format!(
                "no complete handshake within {:?}",
                config.handshake_timeout
            );
            return refused(Refusal::new(RefusalKind::HandshakeTimeout, detail), group);
        }
        Ok(Err(quinn::ConnectionError::ConnectionClosed(close)))
            if outcome.refusal.is_none() && alert_of(close.error_code).is_some() =>
        {
            tracing::info!(peer = %addr, ?group, alert = %close, "the client refused our credentials");
            return;
        }
        Ok(Err(e)) => {
            let reason = outcome.refusal.unwrap_or_else(|| server_refusal(&e));
            return refused(reason, group);
        }
        Ok(Ok(conn)) => conn,
    };
    let (Some(served), Some(chain)) = (outcome.served, outcome.chain) else {
        conn.close(0u32.into(), b"no validated chain");
        let detail = "the handshake finished without a validated chain".to_owned();
        return refused(Refusal::new(RefusalKind::Protocol, detail), group);
    };
    let protocol = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol);
    if protocol.as_deref() != Some(ALPN) {
        conn.close(0u32.into(), b"no ALPN");
        let detail = "the client negotiated no peergroup/1".to_owned();
        return refused(Refusal::new(RefusalKind::BadAlpn, detail), group);
    }
    // A member authenticated is not evicted (its acceptance may already be on its way).
    guard.advance(Stage::Done);
    let mut accepted = BytesMut::new();
    let welcome = Frame::Welcome {
        observed: conn.remote_address(),
    };
    if let Err(e) = FrameCodec::new(64).encode_frame(&welcome, &mut accepted) {
        return refused(Refusal::new(RefusalKind::Protocol, e.to_string()), group);
    }
    let open = async {
        let (mut send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(&accepted).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((send, recv))
    };
    let (send, recv) = match tokio::time::timeout_at(deadline, open).await {
        Err(_) => {
            let detail = "the acceptance was not taken in time".to_owned();
            return refused(Refusal::new(RefusalKind::HandshakeTimeout, detail), group);
        }
        Ok(Err(e)) => return refused(Refusal::new(RefusalKind::Protocol, e), group),
        Ok(Ok(streams)) => streams,
    };
    let local_addr = match (local_ip, local) {
        (Some(ip), Some(l)) => SocketAddr::new(ip, l.port()),
        (None, Some(l)) => l,
        _ => SocketAddr::new(addr.ip(), 0),
    };
    let info = PeerInfo {
        peer: chain.peer().clone(),
        group: served.group.clone(),
        addr: conn.remote_address(),
        local_addr,
        chain,
        transport: Transport::Quic,
        observed_addr: None,
    };
    tracing::debug!(peer = %info.peer, %addr, group = %info.group, "accepted over QUIC");
    let stream = QuicStream::new(conn, send, recv, config.close_timeout);
    let conn = connection::spawn(
        stream,
        info,
        served.trust.clone(),
        config,
        Some(shared.recv_budget.clone()),
    );
    let _ = incoming.send(conn).await;
}
