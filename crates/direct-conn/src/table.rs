//! The shared state behind [`DirectConnections`](crate::DirectConnections): the table of
//! connections (opening or open), the configuration, and the event channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use peergroup_identity::PeerName;
use peergroup_transport::{ConnectionSender, GroupCredentials, GroupTrust, TransportConfig};
use tokio::sync::{mpsc, oneshot};

use crate::error::DirectError;
use crate::types::{DirectConnId, DirectConnInfo, DirectEvent};
use crate::wire::DATA_OVERHEAD;

/// What the owner's `close` tells the peer.
pub(crate) const CLOSED_BY_APP: &str = "direct connection closed";

pub(crate) struct Inner {
    pub(crate) creds: GroupCredentials,
    pub(crate) trust: GroupTrust,
    pub(crate) config: TransportConfig,
    /// The owner's limit on data, each way.
    pub(crate) max_data: usize,
    pub(crate) events: mpsc::Sender<DirectEvent>,
    /// The receiving end of `events` until the owner takes it.
    pub(crate) untaken: Mutex<Option<mpsc::Receiver<DirectEvent>>>,
    next_id: AtomicU64,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    slots: HashMap<DirectConnId, Slot>,
    shut_down: bool,
}

enum Slot {
    /// Being opened; dropping the sender cancels the attempt.
    Opening {
        _cancel: oneshot::Sender<()>,
    },
    Open(Live),
}

/// An established connection as the table keeps it.
pub(crate) struct Live {
    pub(crate) info: DirectConnInfo,
    pub(crate) sender: ConnectionSender,
    /// The largest data we send: our limit and the peer's, whichever is smaller.
    pub(crate) max_send: usize,
}

impl Inner {
    pub(crate) fn new(
        creds: GroupCredentials,
        trust: GroupTrust,
        config: TransportConfig,
        max_data: usize,
        events: mpsc::Sender<DirectEvent>,
    ) -> Self {
        Inner {
            creds,
            trust,
            config,
            max_data,
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
        self.max_data
            .min(transport_max.saturating_sub(DATA_OVERHEAD))
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_id(&self) -> DirectConnId {
        DirectConnId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// A new id in the opening state, and the receiver that resolves when the attempt is
    /// cancelled. `None` after shutdown.
    pub(crate) fn start_opening(&self) -> (DirectConnId, Option<oneshot::Receiver<()>>) {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        let mut table = self.lock();
        if table.shut_down {
            return (id, None);
        }
        table.slots.insert(id, Slot::Opening { _cancel: tx });
        (id, Some(rx))
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

    /// Registers an accepted connection under a new id. Fails after shutdown.
    pub(crate) fn insert_accepted(
        &self,
        make: impl FnOnce(DirectConnId) -> Live,
    ) -> Option<DirectConnId> {
        let mut table = self.lock();
        if table.shut_down {
            return None;
        }
        let id = self.next_id();
        table.slots.insert(id, Slot::Open(make(id)));
        Some(id)
    }

    /// Whether `id` is open (not closed by the owner, not gone).
    pub(crate) fn is_open(&self, id: DirectConnId) -> bool {
        matches!(self.lock().slots.get(&id), Some(Slot::Open(_)))
    }

    /// Forgets an open connection (it ended).
    pub(crate) fn remove_open(&self, id: DirectConnId) {
        let mut table = self.lock();
        if matches!(table.slots.get(&id), Some(Slot::Open(_))) {
            table.slots.remove(&id);
        }
    }

    /// The sender and send limit of an open connection.
    pub(crate) fn sender(
        &self,
        id: DirectConnId,
    ) -> Result<(ConnectionSender, usize), DirectError> {
        match self.lock().slots.get(&id) {
            Some(Slot::Open(live)) => Ok((live.sender.clone(), live.max_send)),
            Some(Slot::Opening { .. }) => Err(DirectError::StillOpening(id)),
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
            // Dropping the slot cancels the attempt.
            Some(Slot::Opening { .. }) => Ok(()),
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
                Slot::Opening { .. } => None,
            })
            .collect();
        out.sort_by_key(|i| i.id);
        out
    }
}
