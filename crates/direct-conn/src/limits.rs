//! What one [`DirectConnections`](crate::DirectConnections) holds at most, whatever its peers
//! do: connections per member and in all, data per frame, and events queued for the owner,
//! in count and in bytes.

use std::time::Duration;

/// Default [`DirectLimits::max_per_member`]: direct connections with one remote member,
/// established or opening, both directions together.
pub const DEFAULT_MAX_PER_MEMBER: usize = 8;

/// Default [`DirectLimits::max_connections`]: direct connections of one
/// [`DirectConnections`](crate::DirectConnections) (one member's participation in one group,
/// a node), established or opening, both directions, all members together.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Default [`DirectLimits::event_queue_len`]: events waiting for the owner to read them.
pub const DEFAULT_EVENT_QUEUE_LEN: usize = 64;

/// Default [`DirectLimits::event_queue_bytes`]: 8 MiB of events waiting for the owner to read
/// them (an event costs [`DirectEvent::cost`](crate::DirectEvent::cost)).
pub const DEFAULT_EVENT_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// What an event costs in the queue's byte budget beyond the bytes it carries: the event
/// itself, the member's name, the channel's slot.
pub const EVENT_OVERHEAD: usize = 256;

/// The longest a connection sleeps before it reads the clock again to see whether its
/// member's certificate expired: a wall clock that jumps is noticed within this.
pub const EXPIRY_RECHECK: Duration = Duration::from_secs(60);

/// After a member's certificate expired, how long the transport has to close the connection
/// without sending what was still queued (the trust's re-check) before it is closed with a
/// goodbye instead.
pub const EXPIRY_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The bounds of one [`DirectConnections`](crate::DirectConnections). Every one is at least 1
/// when used (a zero is taken as 1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectLimits {
    /// The largest data one frame carries, each way (less if the transport's frames are
    /// smaller).
    pub max_data: usize,
    /// Direct connections with one member, established or opening, both directions
    /// (default [`DEFAULT_MAX_PER_MEMBER`]). Over it, our own opens fail with
    /// [`DirectError::TooManyConnections`](crate::DirectError::TooManyConnections) (the
    /// caller's fault) and the member's are refused with a goodbye saying why.
    pub max_per_member: usize,
    /// Direct connections in all, established or opening, both directions (default
    /// [`DEFAULT_MAX_CONNECTIONS`]); over it, as for `max_per_member`.
    pub max_connections: usize,
    /// Events waiting for the owner (default [`DEFAULT_EVENT_QUEUE_LEN`]).
    pub event_queue_len: usize,
    /// Bytes of events waiting for the owner (default [`DEFAULT_EVENT_QUEUE_BYTES`]); an
    /// event costs [`DirectEvent::cost`](crate::DirectEvent::cost), and one larger than the
    /// whole budget waits for an empty queue. When full, connections stop reading the
    /// network and their senders wait.
    pub event_queue_bytes: usize,
}

impl DirectLimits {
    /// The defaults, with data of at most `max_data` bytes.
    pub fn new(max_data: usize) -> Self {
        DirectLimits {
            max_data,
            max_per_member: DEFAULT_MAX_PER_MEMBER,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            event_queue_len: DEFAULT_EVENT_QUEUE_LEN,
            event_queue_bytes: DEFAULT_EVENT_QUEUE_BYTES,
        }
    }

    /// With at most `n` connections per member.
    pub fn max_per_member(mut self, n: usize) -> Self {
        self.max_per_member = n;
        self
    }

    /// With at most `n` connections in all.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// With an event queue of at most `len` events and `bytes` bytes.
    pub fn event_queue(mut self, len: usize, bytes: usize) -> Self {
        self.event_queue_len = len;
        self.event_queue_bytes = bytes;
        self
    }

    /// The values used: every bound at least 1.
    pub(crate) fn normalized(&self) -> Self {
        DirectLimits {
            max_data: self.max_data,
            max_per_member: self.max_per_member.max(1),
            max_connections: self.max_connections.max(1),
            event_queue_len: self.event_queue_len.max(1),
            event_queue_bytes: self.event_queue_bytes.max(1),
        }
    }
}
