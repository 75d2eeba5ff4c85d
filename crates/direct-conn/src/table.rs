//! The shared state behind [`DirectConnections`](crate::DirectConnections): the table of
//! connections (opening or open), the configuration, and the event channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use peergroup_identity::{PeerName, Timestamp};
use peergroup_transport::{ConnectionSender, GroupCredentials, GroupTrust, TransportConfig};
use tokio::sync::oneshot;

use crate::error::{ConnectionCap, DirectError};
use crate::events::{EventReceiver, EventSender};
use crate::limits::DirectLimits;
use crate::types::{DirectConnId, DirectConnInfo};
use crate::wire::DATA_OVERHEAD;

/// What the owner's `close` tells the peer.
pub(crate) const CLOSED_BY_APP: &str = "direct connection closed";

/// Why a connection is refused once the owner has shut down.
pub(crate) const SHUT_DOWN: &str = "direct connections of this group are closed";

pub(crate) struct Inner {
    pub(crate) creds: GroupCredentials,
    pub(crate) trust: GroupTrust,
    pub(crate) config: TransportConfig,
    /// The bounds, normalized.
    pub(crate) limits: DirectLimits,
    pub(crate) events: EventSender,
    /// The receiving end of `events` until the owner takes it.
    pub(crate) untaken: Mutex<Option<EventReceiver>>,
    next_id: AtomicU64,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    slots: HashMap<DirectConnId, Slot>,
    shut_down: bool,
}

enum Slot {
    /// Being opened by us (dropping `_cancel` cancels the attempt), or accepted and being
    /// answered (no cancel). Counts toward the bounds like an open one.
    Opening {
        peer: PeerName,
        _cancel: Option<oneshot::Sender<()>>,
    },
    Open(Live),
    /// The member's certificate expired: closing, nothing sent or delivered any more.
    Expired {
        peer: PeerName,
    },
}

impl Slot {
    fn peer(&self) -> &PeerName {
        match self {
            Slot::Opening { peer, .. } | Slot::Expired { peer } => peer,
            Slot::Open(live) => &live.info.peer,
        }
    }
}

/// An established connection as the table keeps it.
pub(crate) struct Live {
    pub(crate) info: DirectConnInfo,
    pub(crate) sender: ConnectionSender,
    /// The largest data we send: our limit and the peer's, whichever is smaller.
    pub(crate) max_send: usize,
    /// The end of the member's rights: the earliest `not_after` of its chain.
    pub(crate) expires: Timestamp,
}

/// What `send` needs of an open connection.
pub(crate) struct SendTo {
    pub(crate) sender: ConnectionSender,
    pub(crate) max_send: usize,
    pub(crate) expires: Timestamp,
}

impl Inner {
    pub(crate) fn new(
        creds: GroupCredentials,
        trust: GroupTrust,
        config: TransportConfig,
        limits: &DirectLimits,
        events: EventSender,
    ) -> Self {
        Inner {
            creds,
            trust,
            config,
            limits: limits.normalized(),
            events,
            untaken: Mutex::new(None),
            next_id: AtomicU64::new(1),
            table: Mutex::new(Table::default()),
        }
    }

    pub(crate) fn local_peer(&self) -> &PeerName {
        self.creds.peer()
    }

    /// The largest data we accept (and announce) on a connection whose transport carries
    /// at most `transport_max` bytes of data per frame.
    pub(crate) fn own_limit(&self, transport_max: usize) -> usize {
        self.limits
            .max_data
            .min(transport_max.saturating_sub(DATA_OVERHEAD))
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_id(&self) -> DirectConnId {
        DirectConnId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Checks the bounds for one more connection with `peer` (the table locked).
    fn check_room(&self, table: &Table, peer: &PeerName, inbound: bool) -> Result<(), DirectError> {
        let too_many = |cap, limit| DirectError::TooManyConnections {
            peer: peer.clone(),
            cap,
            limit,
            inbound,
        };
        if table.slots.len() >= self.limits.max_connections {
            return Err(too_many(ConnectionCap::Total, self.limits.max_connections));
        }
        let with_peer = table.slots.values().filter(|s| s.peer() == peer).count();
        if with_peer >= self.limits.max_per_member {
            return Err(too_many(
                ConnectionCap::PerMember,
                self.limits.max_per_member,
            ));
        }
        Ok(())
    }

    /// A new id in the opening state for a connection we open to `peer`, and the receiver
    /// that resolves when the attempt is cancelled. Refused over the bounds (the caller's
    /// mistake) and after shutdown.
    pub(crate) fn start_opening(
        &self,
        peer: &PeerName,
    ) -> Result<(DirectConnId, oneshot::Receiver<()>), DirectError> {
        let mut table = self.lock();
        let id = self.next_id();
        if table.shut_down {
            return Err(DirectError::Cancelled { id });
        }
        self.check_room(&table, peer, false)?;
        let (tx, rx) = oneshot::channel();
        table.slots.insert(
            id,
            Slot::Opening {
                peer: peer.clone(),
                _cancel: Some(tx),
            },
        );
        Ok((id, rx))
    }

    /// A new id in the opening state for a connection `peer` opened to us, before it is
    /// answered. Refused over the bounds (the peer's doing) and after shutdown.
    pub(crate) fn start_accepting(
        &self,
        peer: &PeerName,
        addr: SocketAddr,
    ) -> Result<DirectConnId, DirectError> {
        let mut table = self.lock();
        if table.shut_down {
            return Err(DirectError::Refused {
                peer: peer.clone(),
                addr,
                reason: SHUT_DOWN.into(),
            });
        }
        self.check_room(&table, peer, true)?;
        let id = self.next_id();
        table.slots.insert(
            id,
            Slot::Opening {
                peer: peer.clone(),
                _cancel: None,
            },
        );
        Ok(id)
    }

    /// An opening connection is established. Says `false` (and drops `live`) if it was
    /// cancelled meanwhile.
    pub(crate) fn promote(&self, live: Live) -> bool {
        let mut table = self.lock();
        let id = live.info.id;
        match table.slots.get(&id) {
            Some(Slot::Opening { .. }) if !table.shut_down => {
                table.slots.insert(id, Slot::Open(live));
                true
            }
            _ => false,
        }
    }

    /// An opening attempt failed: forget it.
    pub(crate) fn forget_opening(&self, id: DirectConnId) {
        let mut table = self.lock();
        if matches!(table.slots.get(&id), Some(Slot::Opening { .. })) {
            table.slots.remove(&id);
        }
    }

    /// Whether `id` is open (not closed by the owner, not expired, not gone).
    pub(crate) fn is_open(&self, id: DirectConnId) -> bool {
        matches!(self.lock().slots.get(&id), Some(Slot::Open(_)))
    }

    /// The member's certificate expired: `id` takes no more data either way. False if it
    /// was not open (the owner closed it).
    pub(crate) fn expire(&self, id: DirectConnId) -> bool {
        let mut table = self.lock();
        let Some(Slot::Open(live)) = table.slots.remove(&id) else {
            return false;
        };
        table.slots.insert(
            id,
            Slot::Expired {
                peer: live.info.peer,
            },
        );
        true
    }

    /// Forgets a connection that ended (open or expired).
    pub(crate) fn remove_ended(&self, id: DirectConnId) {
        let mut table = self.lock();
        if matches!(
            table.slots.get(&id),
            Some(Slot::Open(_) | Slot::Expired { .. })
        ) {
            table.slots.remove(&id);
        }
    }

    /// What sending on an open connection needs.
    pub(crate) fn sender(&self, id: DirectConnId) -> Result<SendTo, DirectError> {
        match self.lock().slots.get(&id) {
            Some(Slot::Open(live)) => Ok(SendTo {
                sender: live.sender.clone(),
                max_send: live.max_send,
                expires: live.expires,
            }),
            Some(Slot::Opening { .. }) => Err(DirectError::StillOpening(id)),
            Some(Slot::Expired { .. }) => Err(DirectError::Expired { id }),
            None => Err(self.gone(id)),
        }
    }

    /// The error for an id not in the table: closed if it was ever handed out.
    fn gone(&self, id: DirectConnId) -> DirectError {
        if id.0 > 0 && id.0 < self.next_id.load(Ordering::Relaxed) {
            DirectError::Closed {
                id,
                reason: "the connection is closed".into(),
            }
        } else {
            DirectError::UnknownConnection(id)
        }
    }

    /// Closes an open connection or cancels an opening one.
    pub(crate) fn close(&self, id: DirectConnId) -> Result<(), DirectError> {
        let slot = self.lock().slots.remove(&id);
        match slot {
            Some(Slot::Open(live)) => {
                live.sender.close(CLOSED_BY_APP);
                Ok(())
            }
            // Dropping the slot cancels the attempt; an expired one is closing already.
            Some(Slot::Opening { .. } | Slot::Expired { .. }) => Ok(()),
            None => Err(self.gone(id)),
        }
    }

    /// Closes everything; with `shut_down`, also refuses new connections from now on.
    pub(crate) fn close_all(&self, shut_down: bool) {
        let slots: Vec<Slot> = {
            let mut table = self.lock();
            table.shut_down |= shut_down;
            table.slots.drain().map(|(_, s)| s).collect()
        };
        for slot in slots {
            if let Slot::Open(live) = slot {
                live.sender.close(CLOSED_BY_APP);
            }
        }
    }

    pub(crate) fn connections(&self) -> Vec<DirectConnInfo> {
        let mut out: Vec<DirectConnInfo> = self
            .lock()
            .slots
            .values()
            .filter_map(|s| match s {
                Slot::Open(live) => Some(live.info.clone()),
                Slot::Opening { .. } | Slot::Expired { .. } => None,
            })
            .collect();
        out.sort_by_key(|i| i.id);
        out
    }

    /// Connections counted against the bounds: established, opening and closing on expiry.
    pub(crate) fn counted(&self) -> usize {
        self.lock().slots.len()
    }
}
