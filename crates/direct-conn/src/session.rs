//! The life of an established direct connection: `Connected`, then each data frame as a
//! `Data` event, then `Disconnected`.
//!
//! Backpressure: the next frame is taken from the transport only after the previous event
//! went into the owner's event queue, bounded in events and in bytes. An owner that does not
//! read its events leaves frames in the transport's bounded receive queue, the transport
//! stops reading the socket, and TCP flow control makes the sender's `send` wait. Nothing
//! grows without bound.
//!
//! Rights end on time: the connection ends when the member's certificate chain expires (the
//! earliest `not_after` of its chain, read on the group trust's clock, the wall clock unless
//! the owner injected another). From then on nothing it sent is delivered, and nothing more
//! is sent to it: sending is refused at once, and the transport is asked to re-validate the
//! peer, which closes it without writing what was still queued.

use std::sync::Arc;
use std::time::Duration;

use peergroup_identity::{PeerName, Timestamp};
use peergroup_transport::{ConnectionReceiver, ConnectionSender, GroupTrust, PeerInfo};

use crate::limits::{EXPIRY_CLOSE_GRACE, EXPIRY_RECHECK};
use crate::protocol::{DirectProtocol, Received};
use crate::table::Inner;
use crate::types::{DirectConnId, DirectConnInfo, DirectEvent};
use crate::wire::ProtocolError;

/// The reason a connection gives when its member's certificate expired.
pub(crate) const EXPIRED: &str = "the member's certificate expired";

/// The end of the member's rights: the earliest `not_after` over its chain (a certificate
/// is valid through its `not_after`).
pub(crate) fn expiry_of(peer: &PeerInfo) -> Timestamp {
    peer.chain
        .chain()
        .certificates()
        .iter()
        .map(|c| c.not_after())
        .min()
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Whether rights ending at `expires` have ended on `trust`'s clock.
pub(crate) fn has_expired(trust: &GroupTrust, expires: Timestamp) -> bool {
    trust.now() > expires
}

/// Completes once `trust`'s clock reads past `expires`. Sleeps on the monotonic clock, at
/// most [`EXPIRY_RECHECK`] at a time, and reads the wall clock again on waking, so a clock
/// that jumps is followed.
async fn expiry(trust: &GroupTrust, expires: Timestamp) {
    loop {
        let now = trust.now();
        if now > expires {
            return;
        }
        let left = expires
            .duration_since(now)
            .saturating_add(Duration::from_millis(1));
        tokio::time::sleep(left.min(EXPIRY_RECHECK)).await;
    }
}

/// How a connection's loop ended.
enum End {
    /// The transport connection closed.
    Closed,
    /// The peer broke the protocol (the connection was closed with the reason).
    Violation(String),
    /// The member's certificate expired.
    Expired,
}

/// Runs until the connection ends; `protocol` is the connection's protocol, established,
/// `expires` the end of the member's rights.
pub(crate) async fn run(
    inner: Arc<Inner>,
    info: DirectConnInfo,
    sender: ConnectionSender,
    mut receiver: ConnectionReceiver,
    mut protocol: DirectProtocol,
    expires: Timestamp,
) {
    let DirectConnInfo { id, peer, addr, .. } = info;
    tracing::debug!(%id, %peer, %addr, outbound = info.outbound, %expires, "direct connection established");
    let expired = expiry(&inner.trust, expires);
    tokio::pin!(expired);
    let connected = DirectEvent::Connected {
        id,
        peer: peer.clone(),
        addr,
    };
    // Whether the owner got `Connected` (an expiry while it waited still closes at once;
    // `Connected` is then delivered before `Disconnected`).
    let mut announced = false;
    let end = 'session: {
        tokio::select! {
            biased;
            () = &mut expired => break 'session End::Expired,
            _ = inner.events.send(connected.clone()) => announced = true,
        }
        loop {
            let frame = tokio::select! {
                biased;
                () = &mut expired => break 'session End::Expired,
                frame = receiver.recv() => match frame {
                    Some(frame) => frame,
                    None => break 'session End::Closed,
                },
            };
            if !inner.is_open(id) {
                // The owner closed it: what was still queued is not delivered.
                continue;
            }
            let error = match protocol.on_frame(&frame) {
                Ok(Received::Data { data_type, data }) => {
                    if has_expired(&inner.trust, expires) {
                        break 'session End::Expired;
                    }
                    let event = DirectEvent::Data {
                        id,
                        peer: peer.clone(),
                        data_type,
                        data,
                    };
                    tokio::select! {
                        biased;
                        () = &mut expired => break 'session End::Expired,
                        _ = inner.events.send(event) => {}
                    }
                    continue;
                }
                // An established machine takes no second welcome; kept for completeness.
                Ok(Received::Established { .. }) => {
                    ProtocolError::Unexpected("a welcome on an established connection")
                }
                Err(e) => e,
            };
            tracing::warn!(%id, %peer, %addr, %error, "closing direct connection: protocol violation");
            sender.close(&format!("direct-connection protocol error: {error}"));
            break End::Violation(format!("the peer broke the protocol: {error}"));
        }
    };
    let reason = match end {
        End::Closed => sender.closed().await.to_string(),
        End::Violation(v) => v,
        End::Expired => {
            if close_on_expiry(&inner, id, &peer, &sender, expires).await {
                format!("{EXPIRED} (valid until {})", expires.to_rfc3339())
            } else {
                // The owner had closed it already.
                sender.closed().await.to_string()
            }
        }
    };
    inner.remove_ended(id);
    tracing::debug!(%id, %peer, %reason, "direct connection closed");
    if !announced {
        inner.events.send(connected).await;
    }
    inner
        .events
        .send(DirectEvent::Disconnected { id, peer, reason })
        .await;
}

/// Closes a connection whose member's certificate expired, sending nothing more: `send` is
/// refused from now on, and the trust's re-check makes the transport close it without writing
/// what was queued. Should the transport not close it within [`EXPIRY_CLOSE_GRACE`] (its
/// trust reads another clock), it is closed with a goodbye. False if the owner had closed it
/// already.
async fn close_on_expiry(
    inner: &Inner,
    id: DirectConnId,
    peer: &PeerName,
    sender: &ConnectionSender,
    expires: Timestamp,
) -> bool {
    if !inner.expire(id) {
        return false;
    }
    tracing::info!(%id, %peer, %expires, "closing direct connection: the member's certificate expired");
    inner.trust.recheck();
    if tokio::time::timeout(EXPIRY_CLOSE_GRACE, sender.closed())
        .await
        .is_err()
    {
        sender.close(&format!("direct connection closed: {EXPIRED}"));
    }
    true
}
