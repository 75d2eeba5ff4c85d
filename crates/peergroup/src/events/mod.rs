//! Group events: what happened, delivered as a [`Stream`](tokio_stream::Stream).
//!
//! Windows signalled a Win32 event and made the application drain `PeerGroupGetEventData`
//! until empty, and a record-changed event carried only the record's id. Here
//! [`Group::events`](crate::Group::events) returns a stream filtered by kind and by record or
//! data type; record events carry the record. Dropping the stream unregisters it.
//!
//! Everything buffered for subscribers is bounded in count and in bytes (`events/hub.rs`):
//!
//! - Group events (records, members, status, neighbors, failures) wait in one ring shared by
//!   the group's subscribers, at most [`EventStream::BUFFER_EVENTS`] events and
//!   [`EventStream::BUFFER_BYTES`] bytes; the oldest go first. A subscriber that falls behind
//!   them receives one [`GroupEvent::Lagged`] saying how many events it missed (of those its
//!   filter takes) and goes on; it never slows the group down.
//! - Direct-connection events (`DirectConnection`, `IncomingData`) are never dropped: each
//!   subscriber that wants them has its own queue of at most [`EventStream::DIRECT_EVENTS`]
//!   events and [`EventStream::DIRECT_BYTES`] bytes, and while one is full the data waits:
//!   the direct connection stops reading, and the member's `send_data` waits. A slow reader
//!   of data slows the sender down instead of making anyone buffer.

pub(crate) mod hub;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use peergroup_identity::PeerName;
use peergroup_membership::MemberChange;
use peergroup_record_db::reserved::GroupProperties;
use peergroup_record_db::{ChangeKind, Record, RecordType};
use tokio_stream::Stream;

use crate::Status;
use hub::{Hub, SubscriberId};

/// What an event costs in the buffers' byte bounds beyond the bytes it carries: the event
/// itself, names, bookkeeping.
const EVENT_OVERHEAD: usize = 256;

/// A connection's number, unique within a group (neighbor and direct connections never share
/// one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u64);

pub use peergroup_direct_conn::DataType;

/// What happened to a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionChange {
    /// It is up.
    Connected,
    /// It went away, with why.
    Disconnected(String),
    /// Opening it failed, with why.
    Failed(String),
}

/// Something that happened in a group.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupEvent {
    /// The status flags changed.
    StatusChanged(Status),
    /// The group properties changed.
    PropertyChanged(Box<GroupProperties>),
    /// A record was added, updated, deleted or expired.
    RecordChanged {
        /// What happened.
        change: ChangeKind,
        /// The record (the new version, the tombstone, or the expired record).
        record: Box<Record>,
    },
    /// A member joined, left, connected, disconnected or updated its presence.
    MemberChanged {
        /// Who.
        peer: PeerName,
        /// What.
        change: MemberChange,
    },
    /// A neighbor connection of the mesh came, went or failed.
    NeighborConnection {
        /// The connection.
        id: ConnectionId,
        /// The member (unknown when opening failed).
        peer: Option<PeerName>,
        /// Its address.
        addr: Option<SocketAddr>,
        /// What happened.
        change: ConnectionChange,
    },
    /// A direct connection came, went or failed.
    DirectConnection {
        /// The connection.
        id: ConnectionId,
        /// The member.
        peer: Option<PeerName>,
        /// Its address.
        addr: Option<SocketAddr>,
        /// What happened.
        change: ConnectionChange,
    },
    /// Data arrived on a direct connection.
    IncomingData {
        /// The connection.
        id: ConnectionId,
        /// The sender.
        peer: PeerName,
        /// The application's data type.
        data_type: DataType,
        /// The bytes.
        data: Bytes,
    },
    /// Connecting to the group failed (no member reachable at an address).
    ConnectionFailed {
        /// The address tried.
        addr: Option<SocketAddr>,
        /// Why.
        reason: String,
    },
    /// Someone failed to authenticate to us (bad credentials, revoked, wrong password…).
    AuthenticationFailed {
        /// Where from.
        addr: Option<SocketAddr>,
        /// Why.
        reason: String,
    },
    /// This subscriber fell behind and missed this many events.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// The kinds of [`GroupEvent`], for filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// [`GroupEvent::StatusChanged`]
    StatusChanged,
    /// [`GroupEvent::PropertyChanged`]
    PropertyChanged,
    /// [`GroupEvent::RecordChanged`]
    RecordChanged,
    /// [`GroupEvent::MemberChanged`]
    MemberChanged,
    /// [`GroupEvent::NeighborConnection`]
    NeighborConnection,
    /// [`GroupEvent::DirectConnection`]
    DirectConnection,
    /// [`GroupEvent::IncomingData`]
    IncomingData,
    /// [`GroupEvent::ConnectionFailed`]
    ConnectionFailed,
    /// [`GroupEvent::AuthenticationFailed`]
    AuthenticationFailed,
}

impl GroupEvent {
    /// The event's kind (`None` for [`GroupEvent::Lagged`], which every subscriber gets).
    pub fn kind(&self) -> Option<EventKind> {
        Some(match self {
            GroupEvent::StatusChanged(_) => EventKind::StatusChanged,
            GroupEvent::PropertyChanged(_) => EventKind::PropertyChanged,
            GroupEvent::RecordChanged { .. } => EventKind::RecordChanged,
            GroupEvent::MemberChanged { .. } => EventKind::MemberChanged,
            GroupEvent::NeighborConnection { .. } => EventKind::NeighborConnection,
            GroupEvent::DirectConnection { .. } => EventKind::DirectConnection,
            GroupEvent::IncomingData { .. } => EventKind::IncomingData,
            GroupEvent::ConnectionFailed { .. } => EventKind::ConnectionFailed,
            GroupEvent::AuthenticationFailed { .. } => EventKind::AuthenticationFailed,
            GroupEvent::Lagged { .. } => return None,
        })
    }

    /// What it costs in the buffers' byte bounds: the bytes it carries plus
    /// [`EVENT_OVERHEAD`].
    pub(crate) fn cost(&self) -> usize {
        let text = |c: &ConnectionChange| match c {
            ConnectionChange::Connected => 0,
            ConnectionChange::Disconnected(why) | ConnectionChange::Failed(why) => why.len(),
        };
        let carried = match self {
            GroupEvent::StatusChanged(_)
            | GroupEvent::MemberChanged { .. }
            | GroupEvent::Lagged { .. } => 0,
            GroupEvent::PropertyChanged(p) => p.friendly_name.len() + p.comment.len(),
            GroupEvent::RecordChanged { record, .. } => {
                std::mem::size_of::<Record>()
                    + record.payload.len()
                    + record.attributes.len()
                    + record.security.creator_serial.len()
                    + record.security.modifier_serial.len()
            }
            GroupEvent::NeighborConnection { change, .. }
            | GroupEvent::DirectConnection { change, .. } => text(change),
            GroupEvent::IncomingData { data, .. } => data.len(),
            GroupEvent::ConnectionFailed { reason, .. }
            | GroupEvent::AuthenticationFailed { reason, .. } => reason.len(),
        };
        carried.saturating_add(EVENT_OVERHEAD)
    }
}

/// Which events a subscriber wants (the PEER_GROUP_EVENT_REGISTRATION list).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    kinds: Option<BTreeSet<EventKind>>,
    record_types: Option<BTreeSet<RecordType>>,
    data_types: Option<BTreeSet<DataType>>,
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only these kinds.
    pub fn kinds(kinds: impl IntoIterator<Item = EventKind>) -> Self {
        EventFilter {
            kinds: Some(kinds.into_iter().collect()),
            ..Self::default()
        }
    }

    /// Record events only for these record types.
    pub fn record_types(mut self, types: impl IntoIterator<Item = RecordType>) -> Self {
        self.record_types = Some(types.into_iter().collect());
        self
    }

    /// Incoming-data events only for these data types.
    pub fn data_types(mut self, types: impl IntoIterator<Item = DataType>) -> Self {
        self.data_types = Some(types.into_iter().collect());
        self
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &GroupEvent) -> bool {
        let Some(kind) = event.kind() else {
            return true;
        };
        if self.kinds.as_ref().is_some_and(|k| !k.contains(&kind)) {
            return false;
        }
        match event {
            GroupEvent::RecordChanged { record, .. } => self
                .record_types
                .as_ref()
                .is_none_or(|t| t.contains(&record.record_type)),
            GroupEvent::IncomingData { data_type, .. } => self
                .data_types
                .as_ref()
                .is_none_or(|t| t.contains(data_type)),
            _ => true,
        }
    }
}

/// A filtered stream of a group's events. Also usable without `Stream` via
/// [`EventStream::next`]. It ends once the group is closed and the events from before the
/// close are delivered. Dropping it unregisters it at once (a direct connection waiting for
/// room in its queue goes on).
pub struct EventStream {
    hub: Arc<Hub>,
    id: SubscriberId,
    /// Completes when the group is closed (or gone).
    closed: Pin<Box<dyn Future<Output = ()> + Send>>,
    closed_seen: bool,
    done: bool,
}

impl EventStream {
    /// Group events (all but direct-connection ones) kept for subscribers that have not read
    /// them, in one ring shared by the group's streams; past it, the oldest go and a
    /// subscriber that had not read them gets [`GroupEvent::Lagged`].
    pub const BUFFER_EVENTS: usize = hub::BUFFER_EVENTS;
    /// Bytes of group events kept in the shared ring (records count their payload,
    /// attributes and serials; every event [`EventStream::EVENT_OVERHEAD`] more). A single
    /// event larger than this is kept alone.
    pub const BUFFER_BYTES: usize = hub::BUFFER_BYTES;
    /// Direct-connection events waiting in one stream's own queue before the direct
    /// connections wait for it to read.
    pub const DIRECT_EVENTS: usize = hub::DIRECT_EVENTS;
    /// Bytes of direct-connection events (data counts its length) waiting in one stream's
    /// own queue before the direct connections wait for it to read: two messages of
    /// [`MAX_DATA`](crate::MAX_DATA) and then some. A message always fits an empty queue.
    pub const DIRECT_BYTES: usize = hub::DIRECT_BYTES;
    /// What every event costs in the byte bounds beyond the bytes it carries.
    pub const EVENT_OVERHEAD: usize = EVENT_OVERHEAD;

    pub(crate) fn new(
        hub: Arc<Hub>,
        mut closed: tokio::sync::watch::Receiver<bool>,
        filter: EventFilter,
    ) -> Self {
        let id = hub.subscribe(filter);
        EventStream {
            hub,
            id,
            closed: Box::pin(async move {
                // An error means the group itself is gone: closed too.
                let _ = closed.wait_for(|c| *c).await;
            }),
            closed_seen: false,
            done: false,
        }
    }

    /// The next matching event; `None` once the group is closed.
    pub async fn next(&mut self) -> Option<GroupEvent> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Bytes of direct-connection events waiting in this stream's own queue (at most
    /// [`EventStream::DIRECT_BYTES`], or one event when it is larger).
    pub fn queued_direct_bytes(&self) -> usize {
        self.hub.queued_direct_bytes(self.id)
    }
}

impl Stream for EventStream {
    type Item = GroupEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<GroupEvent>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            if let Some(e) = self.hub.poll_next(self.id, cx) {
                return Poll::Ready(Some(e));
            }
            // Nothing buffered: the end, if the group is closed. The close is marked after
            // the last event was sent, so look once more after seeing it.
            if self.closed_seen {
                self.done = true;
                return Poll::Ready(None);
            }
            match self.closed.as_mut().poll(cx) {
                Poll::Ready(()) => self.closed_seen = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("queued_direct_bytes", &self.queued_direct_bytes())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
