//! The driver's side of relayed streams (`peergroup_mesh::core` relay): each circuit this
//! node is an end of becomes an in-memory pipe. One half runs the member TLS handshake
//! (`peergroup_transport::relayed`; the client on the side that asked) and then carries a
//! connection like any other; the other half is pumped to and from the core, which sends
//! the bytes over the link to the relay. What the pump sends waits for credit from the other
//! end ([`RELAY_WINDOW`] at first), and what arrives is acknowledged once written into the
//! pipe, so neither end nor the relay holds more than a window per direction.

use std::net::SocketAddr;
use std::sync::Arc;

use peergroup_identity::PeerName;
use peergroup_transport::{GroupCredentials, GroupTrust, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};

use super::Input;
use crate::core::{CircuitId, MAX_RELAY_CHUNK, RELAY_WINDOW};

/// Bytes the in-memory pipe of a relayed stream buffers each way.
const PIPE_BYTES: usize = 64 * 1024;

/// One relayed stream this node is an end of.
pub(super) struct Pipe {
    /// Bytes that arrived, to write into the pipe.
    to_pipe: mpsc::UnboundedSender<Vec<u8>>,
    /// What the pump may still send.
    credit: Arc<Semaphore>,
    /// Reads the pipe and hands the bytes to the core.
    pump: tokio::task::JoinHandle<()>,
}

impl Pipe {
    /// Bytes for our side of the stream.
    pub(super) fn deliver(&self, data: Vec<u8>) {
        let _ = self.to_pipe.send(data);
    }

    /// The other end took bytes: the pump may send that many more.
    pub(super) fn credit(&self, bytes: u32) {
        self.credit.add_permits(bytes as usize);
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // Dropping `to_pipe` ends the writer, which closes the pipe: the connection over it
        // ends with it.
        self.pump.abort();
    }
}

/// What a relayed stream's handshake needs.
pub(super) struct Ends {
    pub(super) credentials: GroupCredentials,
    pub(super) trust: GroupTrust,
    pub(super) transport: TransportConfig,
    /// Our address and the relay's, on our link to the relay.
    pub(super) local: SocketAddr,
    pub(super) via: SocketAddr,
}

/// Opens our side of circuit `circuit` to `peer`: the pipe, its pump and writer, and the
/// handshake, whose outcome comes back as [`Input::Relayed`].
pub(super) fn open(
    circuit: CircuitId,
    peer: PeerName,
    initiator: bool,
    ends: Ends,
    input: &mpsc::Sender<Input>,
) -> Pipe {
    let (app, pipe) = tokio::io::duplex(PIPE_BYTES);
    let (mut from_pipe, mut into_pipe) = tokio::io::split(pipe);
    let credit = Arc::new(Semaphore::new(RELAY_WINDOW as usize));
    let (tx, window) = (input.clone(), credit.clone());
    let pump = tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_RELAY_CHUNK];
        loop {
            let n = match from_pipe.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // n ≤ MAX_RELAY_CHUNK, far below u32::MAX.
            let Ok(permit) = window.acquire_many(n as u32).await else {
                break;
            };
            permit.forget();
            if tx
                .send(Input::RelayOut(circuit, buf[..n].to_vec()))
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = tx.send(Input::RelayEnded(circuit)).await;
    });
    let (to_pipe, mut arrived) = mpsc::unbounded_channel::<Vec<u8>>();
    let tx = input.clone();
    tokio::spawn(async move {
        while let Some(data) = arrived.recv().await {
            if into_pipe.write_all(&data).await.is_err() {
                break;
            }
            let taken = u32::try_from(data.len()).unwrap_or(u32::MAX);
            if tx.send(Input::RelayTaken(circuit, taken)).await.is_err() {
                break;
            }
        }
        let _ = into_pipe.shutdown().await;
    });
    let tx = input.clone();
    tokio::spawn(async move {
        let Ends {
            credentials,
            trust,
            transport,
            local,
            via,
        } = ends;
        let result = if initiator {
            peergroup_transport::connect_relayed(app, local, via, &credentials, &trust, &transport)
                .await
        } else {
            peergroup_transport::accept_relayed(app, local, via, &credentials, &trust, &transport)
                .await
        };
        let result = result.map_err(|e| format!("relayed stream to {peer}: {e}"));
        let _ = tx.send(Input::Relayed(circuit, result, initiator)).await;
    });
    Pipe {
        to_pipe,
        credit,
        pump,
    }
}
