//! The life of an established direct connection: `Connected`, then each data frame as a
//! `Data` event, then `Disconnected`.
//!
//! Backpressure: the next frame is taken from the transport only after the previous event
//! went into the owner's bounded event channel. An owner that does not read its events
//! leaves frames in the transport's bounded receive queue, the transport stops reading the
//! socket, and TCP flow control makes the sender's `send` wait. Nothing grows without bound.

use std::sync::Arc;

use peergroup_transport::{ConnectionReceiver, ConnectionSender};

use crate::table::Inner;
use crate::types::{DirectConnInfo, DirectEvent};
use crate::wire::{self, DirectFrame, ProtocolError};

/// Runs until the connection ends; `recv_max` is the data limit we announced.
pub(crate) async fn run(
    inner: Arc<Inner>,
    info: DirectConnInfo,
    sender: ConnectionSender,
    mut receiver: ConnectionReceiver,
    recv_max: usize,
) {
    let DirectConnInfo { id, peer, addr, .. } = info;
    tracing::debug!(%id, %peer, %addr, outbound = info.outbound, "direct connection established");
    let _ = inner
        .events
        .send(DirectEvent::Connected {
            id,
            peer: peer.clone(),
            addr,
        })
        .await;
    let mut violation = None;
    while let Some(frame) = receiver.recv().await {
        if !inner.is_open(id) {
            // The owner closed it: what was still queued is not delivered.
            continue;
        }
        let error = match wire::decode(&frame) {
            Ok(DirectFrame::Data { data_type, data }) if data.len() <= recv_max => {
                let event = DirectEvent::Data {
                    id,
                    peer: peer.clone(),
                    data_type,
                    data,
                };
                let _ = inner.events.send(event).await;
                continue;
            }
            Ok(DirectFrame::Data { data, .. }) => ProtocolError::DataTooLarge {
                len: data.len(),
                max: recv_max,
            },
            Ok(DirectFrame::Hello(_)) => ProtocolError::Unexpected("a second hello"),
            Ok(DirectFrame::Welcome(_)) => {
                ProtocolError::Unexpected("a welcome on an established connection")
            }
            Err(e) => e,
        };
        tracing::warn!(%id, %peer, %addr, %error, "closing direct connection: protocol violation");
        sender.close(&format!("direct-connection protocol error: {error}"));
        violation = Some(format!("the peer broke the protocol: {error}"));
        break;
    }
    let reason = match violation {
        Some(v) => v,
        None => sender.closed().await.to_string(),
    };
    inner.remove_open(id);
    tracing::debug!(%id, %peer, %reason, "direct connection closed");
    let _ = inner
        .events
        .send(DirectEvent::Disconnected { id, peer, reason })
        .await;
}
