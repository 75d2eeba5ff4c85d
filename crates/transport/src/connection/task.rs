//! The task that owns a connection's socket: a reader and a writer running concurrently,
//! keepalive, idle and write timeouts, trust re-checks, and the goodbye.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::codec::{Decoder, FramedRead, FramedWrite};

use super::Shared;
use super::gauge::{ByteGauge, Queued, room_to_read};
use crate::config::TransportConfig;
use crate::error::{CloseReason, FrameError, Refusal};
use crate::frame::{CodecError, Frame, FrameCodec, truncate_reason};
use crate::trust::GroupTrust;

/// Frames written per flush at most (then the socket is flushed and the queue looked at again).
const WRITE_BATCH: usize = 64;

/// Places the reader waits for once the application's queue of `capacity` frames is full: a
/// quarter of it. Waiting for one place at a time woke the reader for every frame the
/// application took from a full queue, each time on another thread: a node receiving a
/// flood switched threads 2–2.5 times as often (~34,000 against 14,000–16,000 in 8 s of
/// `network/flood_1KiB`) and spent ~7% more CPU time per record.
fn refill(capacity: usize) -> usize {
    (capacity / 4).max(1)
}

/// When a frame last arrived, readable from both halves of the task.
struct Liveness {
    start: Instant,
    last_rx_ms: AtomicU64,
}

impl Liveness {
    fn mark(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_rx_ms.store(ms, Ordering::Relaxed);
    }

    fn last_rx(&self) -> Instant {
        self.start + Duration::from_millis(self.last_rx_ms.load(Ordering::Relaxed))
    }
}

/// The frame decoder of the reader, held to the limit in force when the bytes arrive (the
/// group's or the connection's may be lowered while a read is waiting).
struct LiveLimit {
    codec: FrameCodec,
    shared: Arc<Shared>,
}

impl Decoder for LiveLimit {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        self.codec.set_max_frame(self.shared.max_frame());
        self.codec.decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        self.codec.set_max_frame(self.shared.max_frame());
        self.codec.decode_eof(src)
    }
}

/// Publishes a reason if the task ends without one (it cannot panic, but an aborted runtime
/// drops it), so `closed()` never waits forever; then that the task has finished.
struct StateGuard(Arc<Shared>);

impl Drop for StateGuard {
    fn drop(&mut self) {
        self.0.state.send_if_modified(|s| {
            if s.is_none() {
                *s = Some(CloseReason::Io("the connection task ended".into()));
                true
            } else {
                false
            }
        });
        self.0.finished.send_replace(true);
    }
}

pub(super) struct Task {
    pub(super) shared: Arc<Shared>,
    pub(super) trust: GroupTrust,
    pub(super) trust_rx: watch::Receiver<u64>,
    pub(super) config: TransportConfig,
    /// The endpoint's gauge of unread incoming bytes, if the connection counts towards one.
    pub(super) recv_budget: Option<Arc<ByteGauge>>,
}

impl Task {
    pub(super) async fn run<S>(
        self,
        io: S,
        mut out_rx: mpsc::Receiver<Queued>,
        in_tx: mpsc::Sender<Queued>,
    ) where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let _state_guard = StateGuard(self.shared.clone());
        let (rd, wr) = tokio::io::split(io);
        let codec = FrameCodec::new(self.config.max_frame);
        let mut reader = FramedRead::new(
            rd,
            LiveLimit {
                codec,
                shared: self.shared.clone(),
            },
        );
        let mut writer = FramedWrite::new(wr, codec);
        let liveness = Liveness {
            start: Instant::now(),
            last_rx_ms: AtomicU64::new(0),
        };
        let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(4);
        let mut trust_rx = self.trust_rx.clone();
        // The peer was validated during the handshake; check once more in case the trust
        // changed since, then on every change.
        trust_rx.mark_changed();
        let reason = tokio::select! {
            r = self.read_loop(&mut reader, &in_tx, &pong_tx, &liveness) => r,
            r = self.write_loop(&mut writer, &mut out_rx, &mut pong_rx, &mut trust_rx, &liveness) => r,
        };
        // Publish first, then refuse new data: a failed send always finds the reason.
        self.shared.state.send_replace(Some(reason.clone()));
        out_rx.close();
        self.log_close(&reason);
        let graceful = matches!(reason, CloseReason::Local(_) | CloseReason::Dropped);
        let goodbye = goodbye_text(&reason);
        let farewell = async {
            if graceful {
                while let Ok(queued) = out_rx.try_recv() {
                    writer.feed(Frame::Data(queued.into_data())).await?;
                }
            }
            if let Some(text) = goodbye {
                writer.feed(Frame::Close { reason: text }).await?;
            }
            writer.flush().await?;
            writer.get_mut().shutdown().await?;
            // Read (and discard) until the peer closes too: closing a socket with unread
            // bytes (the rest of an oversized frame, say) sends a reset, which can destroy
            // our goodbye before the peer has read it.
            tokio::io::copy(reader.get_mut(), &mut tokio::io::sink()).await?;
            Ok::<(), CodecError>(())
        };
        let _ = tokio::time::timeout(self.config.close_timeout, farewell).await;
    }

    fn log_close(&self, reason: &CloseReason) {
        let info = &self.shared.info;
        match reason {
            CloseReason::Protocol(_) | CloseReason::Untrusted(_) | CloseReason::WriteTimeout => {
                tracing::warn!(peer = %info.peer, addr = %info.addr, %reason, "closing connection");
            }
            _ => {
                tracing::debug!(peer = %info.peer, addr = %info.addr, %reason, "connection closed");
            }
        }
    }

    async fn read_loop<R: AsyncRead + Unpin>(
        &self,
        reader: &mut FramedRead<R, LiveLimit>,
        in_tx: &mpsc::Sender<Queued>,
        pong_tx: &mpsc::Sender<u64>,
        liveness: &Liveness,
    ) -> CloseReason {
        // Places in the application's queue taken ahead of the frames that will fill them.
        let mut permits: Option<mpsc::PermitIterator<'_, Queued>> = None;
        let refill = refill(self.config.recv_queue);
        let mut app_gone = false;
        let own = &self.shared.recv_bytes;
        let budget = self.recv_budget.as_ref();
        loop {
            if permits.as_ref().is_none_or(|p| p.len() == 0) && !app_gone {
                permits = None;
                match in_tx.try_reserve_many(1) {
                    Ok(p) => permits = Some(p),
                    Err(mpsc::error::TrySendError::Full(())) => {
                        match in_tx.reserve_many(refill).await {
                            // Waiting on our own application does not count as the peer idling.
                            Ok(p) => {
                                permits = Some(p);
                                liveness.mark();
                            }
                            Err(_) => app_gone = true,
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(())) => app_gone = true,
                }
            }
            // Bytes: the socket is not read while the queue (or the endpoint's queues
            // together) hold their bound; waiting on our application does not count as idling.
            if !app_gone && room_to_read(own, budget.map(Arc::as_ref)).await {
                liveness.mark();
            }
            let deadline = liveness.last_rx() + self.config.idle_timeout;
            let frame = match tokio::time::timeout_at(deadline, reader.next()).await {
                Err(_) => return CloseReason::IdleTimeout,
                Ok(None) => return CloseReason::PeerGone,
                Ok(Some(Err(CodecError::Frame(e)))) => return CloseReason::Protocol(e),
                Ok(Some(Err(CodecError::Io(e)))) => return io_close_reason(&e),
                Ok(Some(Ok(frame))) => frame,
            };
            liveness.mark();
            match frame {
                Frame::Data(data) => {
                    // Without a permit the application dropped its receiver: discard.
                    if let Some(p) = permits.as_mut().and_then(Iterator::next) {
                        let len = data.len();
                        let charged = budget.map(|b| b.charge(len));
                        p.send(Queued::new(data, own.charge(len), charged));
                    }
                }
                Frame::Ping(n) => {
                    // At most a few pongs wait; a peer flooding pings gets fewer answers.
                    let _ = pong_tx.try_send(n);
                }
                Frame::Pong(_) => {}
                Frame::Close { reason } => return CloseReason::Peer(truncate_reason(&reason)),
                Frame::Accepted | Frame::Welcome { .. } => {
                    return CloseReason::Protocol(FrameError::Unexpected(
                        "an acceptance after the handshake",
                    ));
                }
            }
        }
    }

    async fn write_loop<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut FramedWrite<W, FrameCodec>,
        out_rx: &mut mpsc::Receiver<Queued>,
        pong_rx: &mut mpsc::Receiver<u64>,
        trust_rx: &mut watch::Receiver<u64>,
        liveness: &Liveness,
    ) -> CloseReason {
        let mut close_rx = self.shared.close_request.subscribe();
        let mut trust_live = true;
        let mut out_open = true;
        let mut last_ping = liveness.start;
        let mut ping_seq = 0u64;
        let keepalive = self.config.keepalive_interval;
        loop {
            let next_ping = liveness.last_rx().max(last_ping) + keepalive;
            let first = tokio::select! {
                biased;
                reason = wait_close(&mut close_rx) => return reason,
                r = trust_rx.changed(), if trust_live => {
                    match r {
                        Ok(()) => if let Err(refusal) = self.recheck() {
                            return CloseReason::Untrusted(refusal);
                        },
                        Err(_) => trust_live = false,
                    }
                    continue;
                }
                Some(n) = pong_rx.recv() => Frame::Pong(n),
                data = out_rx.recv(), if out_open => match data {
                    Some(queued) => Frame::Data(queued.into_data()),
                    // Every sender is gone; the receiver may still be reading.
                    None => {
                        out_open = false;
                        continue;
                    }
                },
                () = tokio::time::sleep_until(next_ping) => {
                    let now = Instant::now();
                    if liveness.last_rx() + keepalive > now {
                        continue;
                    }
                    last_ping = now;
                    ping_seq = ping_seq.wrapping_add(1);
                    Frame::Ping(ping_seq)
                }
            };
            let batch = write_batch(writer, first, out_rx, pong_rx);
            tokio::pin!(batch);
            let written = tokio::select! {
                r = tokio::time::timeout(self.config.write_timeout, &mut batch) => r,
                reason = wait_close(&mut close_rx) => {
                    // Let what the application sent before closing go out.
                    let _ = tokio::time::timeout(self.config.close_timeout, &mut batch).await;
                    return reason;
                }
            };
            match written {
                Err(_) => return CloseReason::WriteTimeout,
                Ok(Err(CodecError::Io(e))) => return io_close_reason(&e),
                Ok(Err(CodecError::Frame(e))) => return CloseReason::Protocol(e),
                Ok(Ok(())) => {}
            }
        }
    }

    /// Validates the peer's chain again against the trust's current revocations and time.
    fn recheck(&self) -> Result<(), Refusal> {
        let chain = &self.shared.info.chain;
        self.trust
            .validate(chain.chain(), chain.key())
            .map(drop)
            .map_err(|e| Refusal::from_chain(&e))
    }
}

/// Writes `first` and whatever else is already queued (up to a batch), then flushes.
async fn write_batch<W: AsyncWrite + Unpin>(
    writer: &mut FramedWrite<W, FrameCodec>,
    first: Frame,
    out_rx: &mut mpsc::Receiver<Queued>,
    pong_rx: &mut mpsc::Receiver<u64>,
) -> Result<(), CodecError> {
    writer.feed(first).await?;
    for _ in 0..WRITE_BATCH {
        if let Ok(n) = pong_rx.try_recv() {
            writer.feed(Frame::Pong(n)).await?;
        }
        match out_rx.try_recv() {
            Ok(queued) => writer.feed(Frame::Data(queued.into_data())).await?,
            Err(_) => break,
        }
    }
    writer.flush().await
}

/// Waits for a close request from the handles.
async fn wait_close(rx: &mut watch::Receiver<Option<CloseReason>>) -> CloseReason {
    match rx.wait_for(Option::is_some).await {
        Ok(reason) => reason.clone().unwrap_or(CloseReason::Dropped),
        Err(_) => CloseReason::Dropped,
    }
}

/// What we tell the peer when we close, if anything.
fn goodbye_text(reason: &CloseReason) -> Option<String> {
    match reason {
        CloseReason::Local(r) => Some(truncate_reason(r)),
        CloseReason::Dropped => Some("closed".into()),
        CloseReason::IdleTimeout => Some("idle timeout".into()),
        CloseReason::Protocol(e) => Some(truncate_reason(&e.to_string())),
        CloseReason::Untrusted(r) => Some(truncate_reason(&r.to_string())),
        _ => None,
    }
}

fn io_close_reason(e: &std::io::Error) -> CloseReason {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe => CloseReason::PeerGone,
        _ => CloseReason::Io(e.to_string()),
    }
}
