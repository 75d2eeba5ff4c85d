//! The graft timeout, learned: how long a push trails the first announcement of its record.
//!
//! A lazy neighbor announces a record as soon as it has it; the push over the tree may come
//! a little later. Asking too soon costs a duplicate payload, too late costs latency. A fixed
//! timeout has to suit the slowest network: 500 ms, which loopback and a LAN never need (on
//! 50 real nodes, records that fell through the tree while it formed waited for it: p99
//! 520 ms). So each node keeps a smoothed lag and its mean deviation, as TCP does for its
//! retransmission timer (RFC 6298), and waits the lag plus five deviations (TCP's four left
//! RMR at 0.301 in a 150-node simulator test bound to 0.3), between [`MIN_GRAFT_TIMEOUT`]
//! and the configured `graft_timeout`, which stays the ceiling (and the wait before any
//! sample; a handshake's round trip, as dialer or acceptor, is the first guess).

use std::time::Duration;

/// The shortest wait for an announced payload before asking for it.
pub const MIN_GRAFT_TIMEOUT: Duration = Duration::from_millis(20);

/// The smoothed lag of pushes behind announcements (microseconds).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PushLag {
    smoothed: Option<u64>,
    deviation: u64,
}

impl PushLag {
    /// A push came `lag` after the first announcement of its record.
    pub(crate) fn sample(&mut self, lag: Duration) {
        let lag = u64::try_from(lag.as_micros())
            .unwrap_or(u64::MAX / 2)
            .min(u64::MAX / 2);
        match self.smoothed {
            None => {
                self.smoothed = Some(lag);
                self.deviation = lag / 2;
            }
            Some(s) => {
                let d = s.abs_diff(lag);
                self.deviation = self.deviation - self.deviation / 4 + d / 4;
                self.smoothed = Some(s - s / 8 + lag / 8);
            }
        }
    }

    /// A handshake's round trip, as a first estimate while no push has been measured (a
    /// push's path is longer than an announcement's by some link delays): a node that joins
    /// a group on a LAN does not wait the ceiling for the records that miss it while the
    /// tree forms (on 50 loopback nodes, p99 505 ms over the first records).
    pub(crate) fn first_guess(&mut self, round_trip: Duration) {
        if self.smoothed.is_none() {
            self.sample(round_trip);
        }
    }

    /// How long to wait for an announced payload: `ceiling` before any sample.
    pub(crate) fn timeout(&self, ceiling: Duration) -> Duration {
        let Some(s) = self.smoothed else {
            return ceiling;
        };
        let wait = Duration::from_micros(s.saturating_add(self.deviation.saturating_mul(5)));
        wait.max(MIN_GRAFT_TIMEOUT.min(ceiling)).min(ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CEILING: Duration = Duration::from_millis(500);

    #[test]
    fn the_ceiling_holds_until_a_push_is_measured() {
        assert_eq!(PushLag::default().timeout(CEILING), CEILING);
    }

    #[test]
    fn a_round_trip_is_a_first_guess_and_no_more() {
        let mut lag = PushLag::default();
        lag.first_guess(Duration::from_millis(1));
        assert_eq!(lag.timeout(CEILING), MIN_GRAFT_TIMEOUT);
        let mut measured = PushLag::default();
        measured.sample(Duration::from_millis(100));
        let before = measured.timeout(CEILING);
        measured.first_guess(Duration::from_millis(1));
        assert_eq!(
            measured.timeout(CEILING),
            before,
            "a measured lag was overridden"
        );
    }

    #[test]
    fn short_steady_lags_bring_the_wait_down_to_the_floor() {
        let mut lag = PushLag::default();
        for _ in 0..64 {
            lag.sample(Duration::from_millis(2));
        }
        assert_eq!(lag.timeout(CEILING), MIN_GRAFT_TIMEOUT);
    }

    #[test]
    fn the_wait_follows_the_lag_and_its_spread_up_to_the_ceiling() {
        let mut lag = PushLag::default();
        for i in 0..64u64 {
            lag.sample(Duration::from_millis(60 + (i % 2) * 40));
        }
        let wait = lag.timeout(CEILING);
        // Mean 80 ms, deviation about 20: some 180 ms.
        assert!(
            wait > Duration::from_millis(140) && wait < Duration::from_millis(240),
            "{wait:?}"
        );
        for _ in 0..64 {
            lag.sample(Duration::from_secs(3));
        }
        assert_eq!(lag.timeout(CEILING), CEILING);
        // A configured ceiling under the floor wins.
        assert_eq!(
            PushLag::default().timeout(Duration::from_millis(5)),
            Duration::from_millis(5)
        );
        let mut fast = PushLag::default();
        fast.sample(Duration::ZERO);
        assert_eq!(
            fast.timeout(Duration::from_millis(5)),
            Duration::from_millis(5)
        );
    }
}
