//! Tunables of the transport, with the defaults every peer uses unless told otherwise.

use std::time::Duration;

/// The ALPN protocol name of this transport and its frame format: `peergroup/1`.
///
/// A client that offers anything else (or nothing) is refused during the handshake, so a
/// future incompatible wire format can be told apart by its name (`peergroup/2`).
pub const ALPN: &[u8] = b"peergroup/1";

/// Default largest frame, in bytes, counting the version byte and the encoded frame but not
/// the 4-byte length prefix: 16 MiB. A peer announcing a longer frame is disconnected before a
/// byte of it is buffered.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Largest accepted `max_frame` setting (the length prefix is a `u32`; we stay well below).
pub const MAX_MAX_FRAME: usize = 1 << 30;

/// How a connection behaves. [`TransportConfig::default`] gives the values documented on each
/// field; every timeout is finite, so no operation can wait forever on a silent peer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportConfig {
    /// Bound on establishing the TCP connection (default 10 s).
    pub connect_timeout: Duration,
    /// Bound on the whole TLS handshake, including the server's acceptance (default 10 s).
    pub handshake_timeout: Duration,
    /// After this long without receiving a frame, a ping is sent (default 15 s).
    pub keepalive_interval: Duration,
    /// After this long without receiving any frame (pings and pongs count), the connection is
    /// closed (default 45 s). Time spent with the incoming queue full does not count.
    pub idle_timeout: Duration,
    /// Bound on writing one batch of frames to a peer that does not read (default 45 s).
    pub write_timeout: Duration,
    /// Bound on the goodbye (remaining queued frames, `Close`, TLS close_notify) (default 2 s).
    pub close_timeout: Duration,
    /// Largest frame in bytes (default [`DEFAULT_MAX_FRAME`], at most [`MAX_MAX_FRAME`]).
    pub max_frame: usize,
    /// Frames queued for sending per connection before `send` waits (default 64).
    pub send_queue: usize,
    /// Frames received and not yet read per connection before the socket stops being read
    /// (default 64).
    pub recv_queue: usize,
    /// Authenticated connections waiting in [`Endpoint::accept`](crate::Endpoint::accept)
    /// (default 64); beyond that, handshakes wait.
    pub accept_queue: usize,
    /// Handshakes in progress at once on an endpoint (default 128); beyond that, new TCP
    /// connections wait in the kernel's backlog.
    pub max_handshakes: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            write_timeout: Duration::from_secs(45),
            close_timeout: Duration::from_secs(2),
            max_frame: DEFAULT_MAX_FRAME,
            send_queue: 64,
            recv_queue: 64,
            accept_queue: 64,
            max_handshakes: 128,
        }
    }
}

impl TransportConfig {
    /// The values actually used: queues of at least one, a frame limit between 64 bytes and
    /// [`MAX_MAX_FRAME`], and non-zero intervals.
    pub(crate) fn normalized(&self) -> TransportConfig {
        let min = Duration::from_millis(1);
        TransportConfig {
            connect_timeout: self.connect_timeout.max(min),
            handshake_timeout: self.handshake_timeout.max(min),
            keepalive_interval: self.keepalive_interval.max(min),
            idle_timeout: self.idle_timeout.max(min),
            write_timeout: self.write_timeout.max(min),
            close_timeout: self.close_timeout.max(min),
            max_frame: self.max_frame.clamp(64, MAX_MAX_FRAME),
            send_queue: self.send_queue.max(1),
            recv_queue: self.recv_queue.max(1),
            accept_queue: self.accept_queue.max(1),
            max_handshakes: self.max_handshakes.max(1),
        }
    }
}
