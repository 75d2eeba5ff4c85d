//! The owner's event queue, bounded in events and in bytes.
//!
//! A connection's task puts an event in only once the queue has room for both: it first
//! takes the event's [`cost`](DirectEvent::cost) from a byte budget (a semaphore whose
//! permits are bytes), then a slot of the bounded channel; the permit travels with the event
//! and is given back when the owner takes it. While the queue is full the task waits, does
//! not read its transport connection, and the peer's sends wait in turn. Nothing here grows
//! without bound: at most `len` events and `bytes` bytes are queued (one event larger than the
//! whole budget is let in alone).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::limits::EVENT_OVERHEAD;
use crate::types::DirectEvent;

/// An event in the queue with the bytes it holds of the budget.
struct Queued {
    event: DirectEvent,
    _bytes: OwnedSemaphorePermit,
}

/// The sending side, shared by the connections' tasks.
pub(crate) struct EventSender {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    /// The whole budget: no event takes more.
    budget: usize,
}

/// Where the owner reads the events of a [`DirectConnections`](crate::DirectConnections),
/// from [`DirectConnections::take_events`](crate::DirectConnections::take_events).
///
/// The queue is bounded in events and in bytes
/// ([`DirectLimits`](crate::DirectLimits)`::event_queue_len` and `event_queue_bytes`): an
/// owner that does not read holds the connections back (they stop reading the network, and
/// their senders wait) instead of making anyone buffer. Dropping it discards what is queued;
/// events after that are lost.
pub struct EventReceiver {
    rx: mpsc::Receiver<Queued>,
    bytes: Arc<Semaphore>,
    budget: usize,
}

/// A queue of at most `len` events and `bytes` bytes.
pub(crate) fn channel(len: usize, bytes: usize) -> (EventSender, EventReceiver) {
    let len = len.max(1);
    // The semaphore's permits are counted in a `u32` per acquisition and its total is capped.
    let budget = bytes
        .clamp(1, u32::MAX as usize)
        .min(Semaphore::MAX_PERMITS);
    let (tx, rx) = mpsc::channel(len);
    let sem = Arc::new(Semaphore::new(budget));
    (
        EventSender {
            tx,
            bytes: sem.clone(),
            budget,
        },
        EventReceiver {
            rx,
            bytes: sem,
            budget,
        },
    )
}

impl EventSender {
    /// Queues `event`, waiting for room; false when the owner is gone (the event is dropped).
    pub(crate) async fn send(&self, event: DirectEvent) -> bool {
        let cost = event.cost().min(self.budget);
        let Ok(cost) = u32::try_from(cost) else {
            return false;
        };
        let Ok(permit) = self.bytes.clone().acquire_many_owned(cost).await else {
            return false;
        };
        self.tx
            .send(Queued {
                event,
                _bytes: permit,
            })
            .await
            .is_ok()
    }
}

impl EventReceiver {
    /// The next event, waiting for one; `None` once every connection task and the
    /// [`DirectConnections`](crate::DirectConnections) are gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<DirectEvent> {
        self.rx.recv().await.map(|q| q.event)
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<DirectEvent> {
        self.rx.try_recv().ok().map(|q| q.event)
    }

    /// Bytes of the queue's budget in use now: the [`DirectEvent::cost`] of the events
    /// queued, and what a connection waiting for room has already set aside. Never more than
    /// the bound.
    pub fn queued_bytes(&self) -> usize {
        self.budget.saturating_sub(self.bytes.available_permits())
    }

    /// Events queued now.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        // Senders waiting for room give up instead of waiting for a reader that never comes.
        self.bytes.close();
    }
}

impl std::fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReceiver")
            .field("queued", &self.queued())
            .field("queued_bytes", &self.queued_bytes())
            .finish_non_exhaustive()
    }
}

impl DirectEvent {
    /// What the event costs in the owner's queue: the bytes it carries (data, reason,
    /// addresses) plus [`EVENT_OVERHEAD`].
    pub fn cost(&self) -> usize {
        let carried = match self {
            DirectEvent::Connected { .. } => 0,
            DirectEvent::Failed { addrs, reason, .. } => {
                reason.len().saturating_add(addrs.len().saturating_mul(32))
            }
            DirectEvent::Disconnected { reason, .. } => reason.len(),
            DirectEvent::Data { data, .. } => data.len(),
        };
        carried.saturating_add(EVENT_OVERHEAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{DataType, DirectConnId};
    use bytes::Bytes;
    use peergroup_identity::{Classifier, KeyPair, PeerName};
    use std::time::Duration;

    fn data(n: usize) -> DirectEvent {
        DirectEvent::Data {
            id: DirectConnId(1),
            peer: PeerName::new(
                &KeyPair::from_test_seed(1).public(),
                Classifier::new("alice").unwrap(),
            ),
            data_type: DataType(uuid::Uuid::nil()),
            data: Bytes::from(vec![0; n]),
        }
    }

    #[tokio::test]
    async fn the_queue_is_bounded_in_bytes_and_in_events() {
        let one = data(1000).cost();
        // Room for two such events by bytes, ten by count.
        let (tx, mut rx) = channel(10, 2 * one + 10);
        assert!(tx.send(data(1000)).await);
        assert!(tx.send(data(1000)).await);
        assert_eq!(rx.queued_bytes(), 2 * one);
        let third = tokio::time::timeout(Duration::from_millis(200), tx.send(data(1000))).await;
        assert!(third.is_err(), "a third event went past the byte bound");
        // Reading one makes room.
        assert!(rx.recv().await.is_some());
        assert!(tx.send(data(1000)).await);
        // By count: small events, two slots.
        let (tx, mut rx) = channel(2, 1 << 20);
        assert!(tx.send(data(0)).await);
        assert!(tx.send(data(0)).await);
        let third = tokio::time::timeout(Duration::from_millis(200), tx.send(data(0))).await;
        assert!(third.is_err(), "a third event went past the count bound");
        assert!(rx.try_recv().is_some());
        assert_eq!(rx.queued(), 1);
    }

    #[tokio::test]
    async fn an_event_over_the_whole_budget_goes_alone_and_a_dropped_reader_frees_senders() {
        let (tx, mut rx) = channel(10, 100);
        assert!(
            tx.send(data(5000)).await,
            "a large event waits for an empty queue, not forever"
        );
        assert_eq!(rx.queued_bytes(), 100);
        let tx = Arc::new(tx);
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(data(1)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        assert!(rx.recv().await.is_some());
        assert!(waiting.await.unwrap());
        assert!(rx.recv().await.is_some());
        // Full again; the reader goes away: the waiting sender gives up.
        assert!(tx.send(data(5000)).await);
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(data(1)).await }
        });
        drop(rx);
        let sent = tokio::time::timeout(Duration::from_secs(20), waiting).await;
        assert!(
            !sent.unwrap().unwrap(),
            "a send to a dropped reader reports failure"
        );
    }
}
