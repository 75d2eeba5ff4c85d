//! Where a group's events wait for its subscribers, bounded in count and in bytes.
//!
//! Two kinds of buffer, both behind one lock:
//!
//! - **The ring** holds group events (records, members, status, neighbors, failures) for
//!   every subscriber at once: an event is stored once, only if some subscriber's filter
//!   takes it, and only until every subscriber that takes it has read it. Past
//!   [`BUFFER_EVENTS`] events or [`BUFFER_BYTES`] bytes the oldest goes; each subscriber that
//!   had not read it and whose filter takes it counts it as missed and hears
//!   [`GroupEvent::Lagged`] next. The group never waits for a subscriber here.
//! - **Direct queues**, one per subscriber that wants direct-connection events, hold them
//!   without loss, at most [`DIRECT_EVENTS`] events and [`DIRECT_BYTES`] bytes each (an event
//!   always fits an empty queue). [`Hub::deliver_direct`] waits until every subscriber that
//!   wants the event has room, so a slow reader holds the direct connections back, and the
//!   remote sender waits. A dropped stream is removed at once and wakes the waiting delivery.
//!
//! Every event gets a sequence number when it is stored, so a subscriber reads the ring and
//! its direct queue merged in the order the events were stored.
//!
//! The forwarder of the driver's events can fall behind the driver itself; it then stores a
//! lag marker (a [`GroupEvent::Lagged`] carrying how many driver events it lost) in the ring,
//! and every subscriber counts those as missed when it reaches (or loses) the marker.

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};

use tokio::sync::Notify;

use super::{EventFilter, GroupEvent};
use crate::limits::MAX_DATA;

/// Group events kept in the ring.
pub(crate) const BUFFER_EVENTS: usize = 4096;
/// Bytes of group events kept in the ring: 16 MiB (16 records of the default maximum size).
pub(crate) const BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// Direct-connection events in one subscriber's queue.
pub(crate) const DIRECT_EVENTS: usize = 4096;
/// Bytes of direct-connection events in one subscriber's queue: two messages of the
/// largest size, and 64 KiB for the small events around them.
pub(crate) const DIRECT_BYTES: usize = 2 * MAX_DATA + 64 * 1024;

/// A subscriber's number within its hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SubscriberId(u64);

/// A stored event and its place in the order.
struct Entry {
    seq: u64,
    event: GroupEvent,
    cost: usize,
}

impl Entry {
    /// How many events a subscriber misses when it loses this entry.
    fn weight(&self) -> u64 {
        match self.event {
            GroupEvent::Lagged { missed } => missed,
            _ => 1,
        }
    }
}

struct Subscriber {
    filter: EventFilter,
    /// The ring position it reads next.
    cursor: u64,
    /// Events lost to it and not yet told.
    missed: u64,
    /// Its direct-connection events, when its filter takes any.
    direct: VecDeque<Entry>,
    direct_bytes: usize,
    waker: Option<Waker>,
}

impl Subscriber {
    fn has_room(&self, cost: usize) -> bool {
        self.direct.is_empty()
            || (self.direct.len() < DIRECT_EVENTS
                && self.direct_bytes.saturating_add(cost) <= DIRECT_BYTES)
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

#[derive(Default)]
struct State {
    next_seq: u64,
    next_id: u64,
    ring: VecDeque<Entry>,
    /// The ring position of `ring[0]`.
    front: u64,
    ring_bytes: usize,
    subs: HashMap<SubscriberId, Subscriber>,
    /// The group is closed: direct events no longer wait for room.
    closed: bool,
}

impl State {
    fn end(&self) -> u64 {
        self.front + self.ring.len() as u64
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Drops the oldest entry of the ring: subscribers that had not read it count it as
    /// missed if their filter takes it.
    fn evict_front(&mut self) {
        let Some(entry) = self.ring.pop_front() else {
            return;
        };
        let pos = self.front;
        self.front += 1;
        self.ring_bytes = self.ring_bytes.saturating_sub(entry.cost);
        for sub in self.subs.values_mut() {
            if sub.cursor <= pos {
                sub.cursor = pos + 1;
                if sub.filter.matches(&entry.event) {
                    sub.missed = sub.missed.saturating_add(entry.weight());
                    sub.wake();
                }
            }
        }
    }

    /// Drops the entries every subscriber has read.
    fn collect(&mut self) {
        let min = self
            .subs
            .values()
            .map(|s| s.cursor)
            .min()
            .unwrap_or(u64::MAX);
        while self.front < min {
            let Some(entry) = self.ring.pop_front() else {
                break;
            };
            self.front += 1;
            self.ring_bytes = self.ring_bytes.saturating_sub(entry.cost);
        }
    }

    /// Stores a group event (or a lag marker) in the ring; how many subscribers take it.
    fn store(&mut self, event: GroupEvent) -> usize {
        let takers = self
            .subs
            .values()
            .filter(|s| s.filter.matches(&event))
            .count();
        if takers == 0 {
            return 0;
        }
        let pos = self.end();
        let seq = self.take_seq();
        let cost = event.cost();
        for sub in self.subs.values_mut() {
            if !sub.filter.matches(&event) {
                // Caught up and not interested: never pinned by this one.
                if sub.cursor == pos {
                    sub.cursor = pos + 1;
                }
            } else {
                sub.wake();
            }
        }
        self.ring.push_back(Entry { seq, event, cost });
        self.ring_bytes = self.ring_bytes.saturating_add(cost);
        while self.ring.len() > 1
            && (self.ring.len() > BUFFER_EVENTS || self.ring_bytes > BUFFER_BYTES)
        {
            self.evict_front();
        }
        self.collect();
        takers
    }
}

/// A group's event buffers and subscribers. See the module docs.
#[derive(Default)]
pub(crate) struct Hub {
    state: Mutex<State>,
    /// Room was made in a direct queue, or a subscriber left.
    room: Notify,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new subscriber, which sees the events stored from now on.
    pub(crate) fn subscribe(&self, filter: EventFilter) -> SubscriberId {
        let mut state = self.lock();
        let id = SubscriberId(state.next_id);
        state.next_id += 1;
        let cursor = state.end();
        state.subs.insert(
            id,
            Subscriber {
                filter,
                cursor,
                missed: 0,
                direct: VecDeque::new(),
                direct_bytes: 0,
                waker: None,
            },
        );
        id
    }

    /// Removes a subscriber, releasing what it pinned and any delivery waiting for it.
    pub(crate) fn unsubscribe(&self, id: SubscriberId) {
        {
            let mut state = self.lock();
            state.subs.remove(&id);
            state.collect();
        }
        self.room.notify_waiters();
    }

    /// Publishes a group event (never waits; a direct-connection event goes through
    /// [`Hub::deliver_direct`] instead). Returns how many subscribers take it.
    pub(crate) fn send(&self, event: GroupEvent) -> usize {
        self.lock().store(event)
    }

    /// Every subscriber missed `n` events upstream (the forwarder fell behind the driver):
    /// each hears it in order, after the events stored before.
    pub(crate) fn lagged(&self, n: u64) {
        if n > 0 {
            self.lock().store(GroupEvent::Lagged { missed: n });
        }
    }

    /// After the group is closed, direct events no longer wait for room (a full queue
    /// loses them and its subscriber is told it lagged).
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.room.notify_waiters();
    }

    /// Delivers a direct-connection event to every subscriber whose filter takes it,
    /// waiting until each has room (or is gone). Events delivered one after another keep
    /// their order at every subscriber.
    pub(crate) async fn deliver_direct(&self, event: GroupEvent) {
        let cost = event.cost();
        let mut targets: Option<Vec<SubscriberId>> = None;
        loop {
            let mut notified = pin!(self.room.notified());
            notified.as_mut().enable();
            {
                let mut guard = self.lock();
                let state = &mut *guard;
                let targets = targets.get_or_insert_with(|| {
                    state
                        .subs
                        .iter()
                        .filter(|(_, s)| s.filter.matches(&event))
                        .map(|(id, _)| *id)
                        .collect()
                });
                let closed = state.closed;
                targets.retain(|id| {
                    let Some(sub) = state.subs.get_mut(id) else {
                        return false;
                    };
                    if sub.has_room(cost) {
                        let seq = state.next_seq;
                        state.next_seq += 1;
                        sub.direct.push_back(Entry {
                            seq,
                            event: event.clone(),
                            cost,
                        });
                        sub.direct_bytes = sub.direct_bytes.saturating_add(cost);
                        sub.wake();
                        false
                    } else if closed {
                        sub.missed = sub.missed.saturating_add(1);
                        sub.wake();
                        false
                    } else {
                        true
                    }
                });
                if targets.is_empty() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// The subscriber's next event, or `None` with its waker registered.
    pub(crate) fn poll_next(&self, id: SubscriberId, cx: &mut Context<'_>) -> Option<GroupEvent> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let front = state.front;
        let sub = state.subs.get_mut(&id)?;
        if sub.missed > 0 {
            let missed = std::mem::take(&mut sub.missed);
            return Some(GroupEvent::Lagged { missed });
        }
        // Its next ring entry, past those its filter does not take.
        let mut ring_next = None;
        while let Some(entry) = usize::try_from(sub.cursor.saturating_sub(front))
            .ok()
            .and_then(|i| state.ring.get(i))
        {
            if sub.filter.matches(&entry.event) {
                ring_next = Some(entry);
                break;
            }
            sub.cursor += 1;
        }
        let from_ring = match (ring_next, sub.direct.front()) {
            (None, None) => {
                sub.waker = Some(cx.waker().clone());
                state.collect();
                return None;
            }
            (Some(r), Some(d)) => r.seq < d.seq,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if from_ring {
            let event = ring_next?.event.clone();
            sub.cursor += 1;
            state.collect();
            Some(event)
        } else {
            let entry = sub.direct.pop_front()?;
            sub.direct_bytes = sub.direct_bytes.saturating_sub(entry.cost);
            drop(guard);
            self.room.notify_waiters();
            Some(entry.event)
        }
    }

    /// Bytes waiting in one subscriber's direct queue.
    pub(crate) fn queued_direct_bytes(&self, id: SubscriberId) -> usize {
        self.lock().subs.get(&id).map_or(0, |s| s.direct_bytes)
    }

    /// Bytes of every event buffered: the ring and every direct queue.
    pub(crate) fn buffered_bytes(&self) -> usize {
        let state = self.lock();
        state.subs.values().fold(state.ring_bytes, |sum, s| {
            sum.saturating_add(s.direct_bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::events::{EventKind, GroupEvent};

    fn failed(i: usize) -> GroupEvent {
        GroupEvent::ConnectionFailed {
            addr: None,
            reason: format!("attempt {i}"),
        }
    }

    fn auth(i: usize) -> GroupEvent {
        GroupEvent::AuthenticationFailed {
            addr: None,
            reason: format!("refusal {i}"),
        }
    }

    fn data(i: u8, len: usize) -> GroupEvent {
        GroupEvent::IncomingData {
            id: crate::ConnectionId(1),
            peer: peergroup_identity::PeerName::new(
                &peergroup_identity::KeyPair::from_test_seed(1).public(),
                peergroup_identity::Classifier::new("bob").unwrap(),
            ),
            data_type: "{f12dc4c7-0857-4ca0-93fc-b1bb19a3d8c2}".parse().unwrap(),
            data: bytes::Bytes::from(vec![i; len]),
        }
    }

    fn next(hub: &Hub, id: SubscriberId) -> Option<GroupEvent> {
        let mut cx = Context::from_waker(Waker::noop());
        hub.poll_next(id, &mut cx)
    }

    #[test]
    fn a_subscriber_behind_the_ring_is_told_how_many_of_its_events_it_missed() {
        let hub = Hub::default();
        let failures = hub.subscribe(EventFilter::kinds([EventKind::ConnectionFailed]));
        let everything = hub.subscribe(EventFilter::all());
        // Interleaved: 2 × BUFFER_EVENTS events, half of them failures.
        for i in 0..BUFFER_EVENTS {
            hub.send(failed(i));
            hub.send(auth(i));
        }
        // The ring kept the newest BUFFER_EVENTS: BUFFER_EVENTS / 2 failures.
        let kept = BUFFER_EVENTS / 2;
        assert_eq!(
            next(&hub, failures),
            Some(GroupEvent::Lagged {
                missed: (BUFFER_EVENTS - kept) as u64
            })
        );
        for i in BUFFER_EVENTS - kept..BUFFER_EVENTS {
            assert_eq!(next(&hub, failures), Some(failed(i)));
        }
        assert_eq!(next(&hub, failures), None);
        assert_eq!(
            next(&hub, everything),
            Some(GroupEvent::Lagged {
                missed: BUFFER_EVENTS as u64
            })
        );
    }

    #[test]
    fn the_ring_is_bounded_in_bytes() {
        let hub = Hub::default();
        let reader = hub.subscribe(EventFilter::all());
        let big = |i: usize| GroupEvent::ConnectionFailed {
            addr: None,
            reason: format!("{i} {}", "x".repeat(1 << 20)),
        };
        let n = 40;
        for i in 0..n {
            hub.send(big(i));
            assert!(hub.buffered_bytes() <= BUFFER_BYTES, "after {i}");
        }
        let Some(GroupEvent::Lagged { missed }) = next(&hub, reader) else {
            panic!("no lag notice");
        };
        let mut got = 0;
        while let Some(e) = next(&hub, reader) {
            assert_eq!(e, big(missed as usize + got));
            got += 1;
        }
        assert_eq!(
            missed as usize + got,
            n,
            "every event read or counted missed"
        );
        assert!(got * (1 << 20) <= BUFFER_BYTES);
        // Read: nothing is kept.
        assert_eq!(hub.buffered_bytes(), 0);
        // One event larger than the whole ring is kept alone.
        hub.send(GroupEvent::ConnectionFailed {
            addr: None,
            reason: "x".repeat(BUFFER_BYTES + 1),
        });
        assert!(matches!(
            next(&hub, reader),
            Some(GroupEvent::ConnectionFailed { .. })
        ));
    }

    #[test]
    fn events_nobody_wants_are_not_kept_and_a_dropped_subscriber_releases_its_share() {
        let hub = Hub::default();
        let records = hub.subscribe(EventFilter::kinds([EventKind::RecordChanged]));
        for i in 0..10 {
            assert_eq!(hub.send(failed(i)), 0);
        }
        assert_eq!(hub.buffered_bytes(), 0);
        let all = hub.subscribe(EventFilter::all());
        hub.send(failed(1));
        assert!(hub.buffered_bytes() > 0);
        hub.unsubscribe(all);
        assert_eq!(hub.buffered_bytes(), 0);
        assert_eq!(next(&hub, records), None);
    }

    #[test]
    fn a_lag_marker_counts_for_every_subscriber_in_order() {
        let hub = Hub::default();
        let a = hub.subscribe(EventFilter::kinds([EventKind::ConnectionFailed]));
        let b = hub.subscribe(EventFilter::kinds([EventKind::AuthenticationFailed]));
        hub.send(failed(0));
        hub.lagged(7);
        hub.send(failed(1));
        assert_eq!(next(&hub, a), Some(failed(0)));
        assert_eq!(next(&hub, a), Some(GroupEvent::Lagged { missed: 7 }));
        assert_eq!(next(&hub, a), Some(failed(1)));
        assert_eq!(next(&hub, b), Some(GroupEvent::Lagged { missed: 7 }));
        assert_eq!(next(&hub, b), None);
        // A marker lost to the ring still counts in full.
        hub.lagged(5);
        for i in 0..BUFFER_EVENTS {
            hub.send(auth(i));
        }
        assert_eq!(next(&hub, a), Some(GroupEvent::Lagged { missed: 5 }));
        assert_eq!(next(&hub, a), None);
        assert_eq!(next(&hub, b), Some(GroupEvent::Lagged { missed: 5 }));
    }

    #[tokio::test]
    async fn direct_events_wait_for_room_keep_their_order_and_skip_other_filters() {
        let hub = Arc::new(Hub::default());
        let reader = hub.subscribe(EventFilter::all());
        let records = hub.subscribe(EventFilter::kinds([EventKind::RecordChanged]));
        let size = MAX_DATA;
        // Two messages of MAX_DATA fit; the third waits.
        hub.deliver_direct(data(0, size)).await;
        hub.deliver_direct(data(1, size)).await;
        assert!(hub.queued_direct_bytes(reader) <= DIRECT_BYTES);
        let third = tokio::spawn({
            let hub = hub.clone();
            async move { hub.deliver_direct(data(2, size)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!third.is_finished(), "a third message went past the bound");
        // A group event stored meanwhile comes after the two, before the third.
        hub.send(failed(9));
        assert_eq!(next(&hub, reader), Some(data(0, size)));
        tokio::time::timeout(Duration::from_secs(20), third)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next(&hub, reader), Some(data(1, size)));
        assert_eq!(next(&hub, reader), Some(failed(9)));
        assert_eq!(next(&hub, reader), Some(data(2, size)));
        assert_eq!(hub.queued_direct_bytes(records), 0);
        assert_eq!(next(&hub, records), None);
    }

    #[tokio::test]
    async fn a_dropped_subscriber_never_blocks_and_after_the_close_nothing_waits() {
        let hub = Arc::new(Hub::default());
        let sleepy = hub.subscribe(EventFilter::all());
        hub.deliver_direct(data(0, MAX_DATA)).await;
        hub.deliver_direct(data(1, MAX_DATA)).await;
        let waiting = tokio::spawn({
            let hub = hub.clone();
            async move { hub.deliver_direct(data(2, MAX_DATA)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        hub.unsubscribe(sleepy);
        tokio::time::timeout(Duration::from_secs(20), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hub.buffered_bytes(), 0);

        let sleepy = hub.subscribe(EventFilter::all());
        hub.deliver_direct(data(0, MAX_DATA)).await;
        hub.deliver_direct(data(1, MAX_DATA)).await;
        hub.close();
        tokio::time::timeout(
            Duration::from_secs(20),
            hub.deliver_direct(data(2, MAX_DATA)),
        )
        .await
        .unwrap();
        assert_eq!(next(&hub, sleepy), Some(GroupEvent::Lagged { missed: 1 }));
        assert!(matches!(
            next(&hub, sleepy),
            Some(GroupEvent::IncomingData { .. })
        ));
    }
}
