//! Tunables of the transport, with the defaults every peer uses unless told otherwise.
//!
//! Everything a remote party can make this side hold has a bound here, in count and in bytes:
//! pending handshakes (in total and per source address, with a first-byte timeout), frames
//! and bytes queued each way per connection, bytes queued for the application per endpoint,
//! and the largest frame (per configuration, and per group through
//! [`GroupTrust::set_max_frame`](crate::GroupTrust::set_max_frame)).

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

/// Smallest frame limit: any setting (configuration or group) below is raised to this, so a
/// goodbye and the control frames always fit.
pub const MIN_MAX_FRAME: usize = 64;

/// Default [`TransportConfig::send_queue`]: frames queued for sending per connection.
pub const DEFAULT_SEND_QUEUE: usize = 64;

/// Default [`TransportConfig::recv_queue`]: frames received and not yet read per connection.
pub const DEFAULT_RECV_QUEUE: usize = 64;

/// Default [`TransportConfig::send_queue_bytes`]: 4 MiB of data queued for sending per
/// connection (one frame more may start while the queue is below it).
pub const DEFAULT_SEND_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// Default [`TransportConfig::recv_queue_bytes`]: 4 MiB of data received and not yet read per
/// connection before the socket stops being read.
pub const DEFAULT_RECV_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// Default [`TransportConfig::endpoint_recv_bytes`]: 64 MiB of data received and not yet read
/// across the connections of one endpoint.
pub const DEFAULT_ENDPOINT_RECV_BYTES: usize = 64 * 1024 * 1024;

/// Default [`TransportConfig::accept_queue`]: authenticated connections waiting for
/// [`Endpoint::accept`](crate::Endpoint::accept).
pub const DEFAULT_ACCEPT_QUEUE: usize = 64;

/// Default [`TransportConfig::max_handshakes`]: incoming connections between TCP accept and
/// delivery (or the end of a password join) per endpoint.
pub const DEFAULT_MAX_HANDSHAKES: usize = 256;

/// Default [`TransportConfig::max_handshakes_per_address`]: pending incoming handshakes per
/// source address (an IPv4 address, an IPv6 /64).
pub const DEFAULT_MAX_HANDSHAKES_PER_ADDRESS: usize = 16;

/// Default [`TransportConfig::first_byte_timeout`]: 3 s for a new TCP connection to send its
/// first byte.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(3);

/// Incoming sockets told to close (evicted) but not closed yet that an endpoint tolerates on
/// top of [`TransportConfig::max_handshakes`] before its listener waits for them to close
/// (they close as soon as their task runs, microseconds). With it, the sockets an endpoint
/// holds for connections not yet delivered never exceed `max_handshakes` + 64.
pub const EVICTED_UNCLOSED_SLACK: usize = 64;

/// How a connection behaves. [`TransportConfig::default`] gives the values documented on each
/// field; every timeout is finite, so no operation can wait forever on a silent peer, and
/// everything a peer can make us hold is bounded in count and in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportConfig {
    /// Bound on establishing the TCP connection (default 10 s).
    pub connect_timeout: Duration,
    /// Bound on the whole TLS handshake, including the server's acceptance (default 10 s).
    pub handshake_timeout: Duration,
    /// An incoming TCP connection that sends nothing for this long is closed (default
    /// [`DEFAULT_FIRST_BYTE_TIMEOUT`], 3 s; never more than `handshake_timeout`).
    pub first_byte_timeout: Duration,
    /// After this long without receiving a frame, a ping is sent (default 15 s).
    pub keepalive_interval: Duration,
    /// After this long without receiving any frame (pings and pongs count), the connection is
    /// closed (default 45 s). Time spent with the incoming queue full does not count.
    pub idle_timeout: Duration,
    /// Bound on writing one batch of frames to a peer that does not read (default 45 s).
    pub write_timeout: Duration,
    /// Bound on the goodbye (remaining queued frames, `Close`, TLS close_notify) (default 2 s).
    pub close_timeout: Duration,
    /// Largest frame in bytes (default [`DEFAULT_MAX_FRAME`], between [`MIN_MAX_FRAME`] and
    /// [`MAX_MAX_FRAME`]). A group can lower it for its connections with
    /// [`GroupTrust::set_max_frame`](crate::GroupTrust::set_max_frame).
    pub max_frame: usize,
    /// Frames queued for sending per connection before `send` waits (default
    /// [`DEFAULT_SEND_QUEUE`], 64).
    pub send_queue: usize,
    /// Bytes of data queued for sending per connection before `send` waits (default
    /// [`DEFAULT_SEND_QUEUE_BYTES`], 4 MiB). A frame is queued while the queue holds less, so
    /// at most this plus one frame is queued.
    pub send_queue_bytes: usize,
    /// Frames received and not yet read per connection before the socket stops being read
    /// (default [`DEFAULT_RECV_QUEUE`], 64). Once the queue is full, reading resumes when a
    /// quarter of it is free (not for each frame the application takes).
    pub recv_queue: usize,
    /// Bytes of data received and not yet read per connection before the socket stops being
    /// read (default [`DEFAULT_RECV_QUEUE_BYTES`], 4 MiB). Reading goes on while the queue
    /// holds less, so at most this plus one frame is queued.
    pub recv_queue_bytes: usize,
    /// Bytes of data received and not yet read across all connections of one endpoint (those
    /// it accepted and those made with [`Endpoint::connect_to`](crate::Endpoint::connect_to))
    /// before they stop reading (default [`DEFAULT_ENDPOINT_RECV_BYTES`], 64 MiB). A
    /// connection whose own queue is empty still reads one frame, so one connection's unread
    /// data never stalls another: at most this plus one frame per connection is queued.
    pub endpoint_recv_bytes: usize,
    /// Authenticated connections waiting in [`Endpoint::accept`](crate::Endpoint::accept)
    /// (default [`DEFAULT_ACCEPT_QUEUE`], 64); beyond that, handshaken connections wait,
    /// counted as pending handshakes.
    pub accept_queue: usize,
    /// Pending incoming handshakes per endpoint (default [`DEFAULT_MAX_HANDSHAKES`], 256):
    /// from TCP accept until the connection is delivered to `accept` (or its password join
    /// ends). A newcomer over the bound takes the place of the oldest pending handshake that
    /// has not finished, preferring one that never sent a byte; it is refused (closed at
    /// once) only when every pending one has finished and waits for `accept`.
    pub max_handshakes: usize,
    /// Pending incoming handshakes per source address, an IPv4 address or an IPv6 /64
    /// (default [`DEFAULT_MAX_HANDSHAKES_PER_ADDRESS`], 16). A newcomer over the bound takes
    /// the place of that address's oldest unfinished one, or is refused (closed at once).
    pub max_handshakes_per_address: usize,
    /// Listen for QUIC too: a UDP socket on each listening address, on the same port as
    /// TCP, taking the same members with the same handshake (default true).
    pub quic: bool,
    /// How [`Endpoint::connect_to`](crate::Endpoint::connect_to) and
    /// [`Endpoint::connect`](crate::Endpoint::connect) dial (default [`Dial::Tcp`]).
    pub dial: Dial,
    /// Ask the router (UPnP-IGD) to forward the listening port, and publish the mapped
    /// address ([`Endpoint::mapped_addrs`](crate::Endpoint::mapped_addrs); see
    /// [`crate::portmap`]). Default false: it speaks to the local network (SSDP multicast),
    /// which a library should not do unasked; `peergroup run` turns it on.
    pub port_mapping: bool,
}

/// Which transport an outgoing connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Dial {
    /// TCP only.
    #[default]
    Tcp,
    /// QUIC only.
    Quic,
    /// QUIC first; TCP too when QUIC has not connected within [`TCP_FALLBACK_DELAY`]
    /// (the first to connect wins, a refusal by the peer ends both).
    QuicThenTcp,
}

/// Bytes a QUIC peer may send us ahead of what we read, per connection (its one stream and
/// the connection alike): 1 MiB. Our own queues bound what we read
/// ([`TransportConfig::recv_queue_bytes`]); this bounds what quinn buffers below them.
pub const QUIC_RECEIVE_WINDOW: u32 = 1024 * 1024;

/// How long [`Dial::QuicThenTcp`] gives QUIC before it dials TCP as well.
pub const TCP_FALLBACK_DELAY: Duration = Duration::from_millis(500);

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            keepalive_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            write_timeout: Duration::from_secs(45),
            close_timeout: Duration::from_secs(2),
            max_frame: DEFAULT_MAX_FRAME,
            send_queue: DEFAULT_SEND_QUEUE,
            send_queue_bytes: DEFAULT_SEND_QUEUE_BYTES,
            recv_queue: DEFAULT_RECV_QUEUE,
            recv_queue_bytes: DEFAULT_RECV_QUEUE_BYTES,
            endpoint_recv_bytes: DEFAULT_ENDPOINT_RECV_BYTES,
            accept_queue: DEFAULT_ACCEPT_QUEUE,
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            max_handshakes_per_address: DEFAULT_MAX_HANDSHAKES_PER_ADDRESS,
            quic: true,
            dial: Dial::Tcp,
            port_mapping: false,
        }
    }
}

impl TransportConfig {
    /// The values actually used: queues and bounds of at least one, a frame limit between
    /// [`MIN_MAX_FRAME`] and [`MAX_MAX_FRAME`], non-zero intervals, and a first-byte timeout
    /// no longer than the handshake timeout.
    pub(crate) fn normalized(&self) -> TransportConfig {
        let min = Duration::from_millis(1);
        let handshake_timeout = self.handshake_timeout.max(min);
        TransportConfig {
            connect_timeout: self.connect_timeout.max(min),
            handshake_timeout,
            first_byte_timeout: self.first_byte_timeout.clamp(min, handshake_timeout),
            keepalive_interval: self.keepalive_interval.max(min),
            idle_timeout: self.idle_timeout.max(min),
            write_timeout: self.write_timeout.max(min),
            close_timeout: self.close_timeout.max(min),
            max_frame: clamp_frame(self.max_frame),
            send_queue: self.send_queue.max(1),
            send_queue_bytes: self.send_queue_bytes.max(1),
            recv_queue: self.recv_queue.max(1),
            recv_queue_bytes: self.recv_queue_bytes.max(1),
            endpoint_recv_bytes: self.endpoint_recv_bytes.max(1),
            accept_queue: self.accept_queue.max(1),
            max_handshakes: self.max_handshakes.max(1),
            max_handshakes_per_address: self.max_handshakes_per_address.max(1),
            quic: self.quic,
            dial: self.dial,
            port_mapping: self.port_mapping,
        }
    }
}

/// A frame limit brought between [`MIN_MAX_FRAME`] and [`MAX_MAX_FRAME`].
pub(crate) fn clamp_frame(max: usize) -> usize {
    max.clamp(MIN_MAX_FRAME, MAX_MAX_FRAME)
}
