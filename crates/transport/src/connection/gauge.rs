//! Bytes queued, counted. Each queue of a connection (and the incoming queues of an endpoint
//! together) has a [`ByteGauge`] with a bound; every frame in a queue carries the [`Charge`]s
//! it made, released when it leaves the queue whichever way it does (read by the
//! application, taken by the writer, or dropped with the queue), so the count can never leak.
//!
//! A queue takes a frame while it holds *less* than its bound, so a frame larger than the
//! bound still passes (alone): a queue holds at most its bound plus one frame.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;

/// Bytes held in a queue (or in several), with a bound and a wake-up for those waiting for
/// room.
#[derive(Debug)]
pub(crate) struct ByteGauge {
    queued: AtomicUsize,
    /// Bytes ever charged (for an endpoint's incoming queues: bytes received).
    charged: AtomicU64,
    bound: usize,
    room: Notify,
}

impl ByteGauge {
    /// A gauge with this bound (at least 1).
    pub(crate) fn new(bound: usize) -> Arc<Self> {
        Arc::new(ByteGauge {
            queued: AtomicUsize::new(0),
            charged: AtomicU64::new(0),
            bound: bound.max(1),
            room: Notify::new(),
        })
    }

    /// Bytes held now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Bytes ever charged.
    pub(crate) fn charged(&self) -> u64 {
        self.charged.load(Ordering::Relaxed)
    }

    /// Whether it holds less than its bound.
    fn below_bound(&self) -> bool {
        self.queued() < self.bound
    }

    /// Charges `n` bytes, whatever the bound (the caller checked for room).
    pub(crate) fn charge(self: &Arc<Self>, n: usize) -> Charge {
        self.queued.fetch_add(n, Ordering::AcqRel);
        self.charged.fetch_add(n as u64, Ordering::Relaxed);
        Charge {
            gauge: self.clone(),
            n,
        }
    }

    /// Charges `n` bytes if it holds less than its bound, atomically (several senders may
    /// race).
    pub(crate) fn try_charge(self: &Arc<Self>, n: usize) -> Option<Charge> {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q < self.bound).then(|| q.saturating_add(n))
            })
            .ok()?;
        self.charged.fetch_add(n as u64, Ordering::Relaxed);
        Some(Charge {
            gauge: self.clone(),
            n,
        })
    }

    /// Charges `n` bytes once it holds less than its bound.
    pub(crate) async fn charge_when_room(self: &Arc<Self>, n: usize) -> Charge {
        loop {
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            if let Some(charge) = self.try_charge(n) {
                return charge;
            }
            room.await;
        }
    }

    fn release(&self, n: usize) {
        let before = self.queued.fetch_sub(n, Ordering::AcqRel);
        let after = before.saturating_sub(n);
        // Wake whoever waits for room when room appears, or for the queue to empty.
        if (before >= self.bound && after < self.bound) || after == 0 {
            self.room.notify_waiters();
        }
    }
}

/// Bytes charged to a gauge, released when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    gauge: Arc<ByteGauge>,
    n: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.gauge.release(self.n);
    }
}

/// A frame of data in a queue, with what it charges.
#[derive(Debug)]
pub(crate) struct Queued {
    data: Bytes,
    _charges: (Charge, Option<Charge>),
}

impl Queued {
    /// `data` with its charges.
    pub(crate) fn new(data: Bytes, charge: Charge, also: Option<Charge>) -> Self {
        Queued {
            data,
            _charges: (charge, also),
        }
    }

    /// Takes the data out of the queue: the charges are released.
    pub(crate) fn into_data(self) -> Bytes {
        let Queued { data, _charges } = self;
        data
    }
}

/// Waits until the reader of a connection may read another frame: its own queue (`own`) is
/// empty, or it is below its bound and the endpoint's (`shared`, if any) is below its own.
/// An empty queue always reads, so one connection's unread data never stalls another.
/// Says whether it had to wait.
pub(crate) async fn room_to_read(own: &ByteGauge, shared: Option<&ByteGauge>) -> bool {
    let room =
        || own.queued() == 0 || (own.below_bound() && shared.is_none_or(ByteGauge::below_bound));
    // Nearly always room: then nothing to register with either wake-up.
    if room() {
        return false;
    }
    let mut waited = false;
    loop {
        let mut own_room = pin!(own.room.notified());
        own_room.as_mut().enable();
        let mut shared_room = pin!(shared.map(|g| g.room.notified()));
        if let Some(n) = shared_room.as_mut().as_pin_mut() {
            n.enable();
        }
        if room() {
            return waited;
        }
        waited = true;
        let shared_wait = async {
            match shared_room.as_mut().as_pin_mut() {
                Some(n) => n.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = own_room => {}
            () = shared_wait => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn charges_are_released_however_the_frame_leaves() {
        let g = ByteGauge::new(100);
        let q = Queued::new(Bytes::from_static(b"abc"), g.charge(3), None);
        assert_eq!(g.queued(), 3);
        assert_eq!(q.into_data(), &b"abc"[..]);
        assert_eq!(g.queued(), 0);
        let q = Queued::new(Bytes::new(), g.charge(7), Some(g.charge(5)));
        assert_eq!(g.queued(), 12);
        drop(q);
        assert_eq!(g.queued(), 0);
    }

    #[test]
    fn try_charge_admits_below_the_bound_only() {
        let g = ByteGauge::new(10);
        let a = g.try_charge(9).unwrap();
        // Below the bound: a frame larger than the room still goes in.
        let b = g.try_charge(50).unwrap();
        assert_eq!(g.queued(), 59);
        assert!(g.try_charge(1).is_none());
        drop(b);
        assert!(g.try_charge(1).is_some());
        drop(a);
        assert_eq!(g.queued(), 0);
    }

    #[tokio::test]
    async fn waiting_for_room_wakes_when_room_appears() {
        let g = ByteGauge::new(10);
        let full = g.charge(10);
        let waiter = tokio::spawn({
            let g = g.clone();
            async move { g.charge_when_room(4).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(full);
        let charge = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(g.queued(), 4);
        drop(charge);
    }

    #[tokio::test]
    async fn a_reader_waits_for_its_own_queue_or_the_endpoints() {
        let own = ByteGauge::new(10);
        let shared = ByteGauge::new(20);
        // Empty own queue: reads even though the endpoint is over its bound.
        let other = shared.charge(30);
        assert!(!room_to_read(&own, Some(&shared)).await);
        // Own queue non-empty and the endpoint over: waits until the endpoint has room.
        let mine = own.charge(2);
        let _mine_too = shared.charge(2);
        let reader = tokio::spawn({
            let (own, shared) = (own.clone(), shared.clone());
            async move { room_to_read(&own, Some(&shared)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!reader.is_finished());
        drop(other);
        let waited = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .unwrap()
            .unwrap();
        assert!(waited);
        // Own queue over its bound: waits for its own reader.
        let more = own.charge(20);
        let reader = tokio::spawn({
            let own = own.clone();
            async move { room_to_read(&own, None).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!reader.is_finished());
        drop(more);
        drop(mine);
        assert!(
            tokio::time::timeout(Duration::from_secs(10), reader)
                .await
                .unwrap()
                .unwrap()
        );
    }
}
