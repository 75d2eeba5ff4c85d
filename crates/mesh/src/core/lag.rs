//! The graft timeout, learned: how long a push trails the first announcement of its record.
//!
//! A lazy neighbor announces a record as soon as it has it; the push over the tree may come
//! a little later. Asking too soon costs a duplicate payload, too late costs latency. A fixed
//! timeout has to suit the slowest network: 500 ms, which loopback and a LAN never need (on
//! 50 real nodes, records that fell through the tree while it formed waited for it: p99
//! 520 ms). So each node keeps a smoothed lag and its mean deviation, as TCP does for its
//! retransmission timer (RFC 6298), and waits the lag plus five deviations (TCP's four left
//! RMR at 0.301 in a 150-node simulator test bound to 0.3), between [`MIN_GRAFT_TIMEOUT`]
//! and the configured `graft_timeout`, which is the ceiling (and the wait before any
//! sample; a handshake's round trip, as dialer or acceptor, is the first guess).
//!
//! The ceiling bounds how long a lost push is waited for. Where pushes are late rather than
//! lost, it only makes pulls the push then duplicates: over a tree 20 to 30 hops deep (1,000
//! to 10,000 simulated nodes, 40 ± 20 ms links) a push trails the announcement of a shorter
//! path by more than 500 ms, and three pulls in five were followed by their push. So each
//! node also smooths the share of its pulls a push followed (judged when the push comes, or
//! `PUSH_AFTER_PULL_WINDOW`, 3 s, after the pull), and while more than half of them
//! were late the ceiling rises with that share, to [`MAX_GRAFT_CEILING_FACTOR`] times the
//! configured one when three in four were. Where pushes are lost (500 nodes at 10% loss, 4 in
//! 10 late) the ceiling stays put and so does recovery's latency.

use std::time::Duration;

/// The shortest wait for an announced payload before asking for it.
pub const MIN_GRAFT_TIMEOUT: Duration = Duration::from_millis(20);

/// How far the graft timeout's ceiling (the configured `graft_timeout`) rises where nearly
/// every pull turned out late: also what a neighbor that delays its pushes on purpose can
/// make this node wait for an announced payload, at most.
pub const MAX_GRAFT_CEILING_FACTOR: u32 = 2;

/// Fixed-point one for `PushLag::late_share`.
const ONE: u32 = 1 << 10;

/// The smoothed lag of pushes behind announcements (microseconds), and how many pulls were
/// late rather than needed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PushLag {
    smoothed: Option<u64>,
    deviation: u64,
    /// The smoothed share of pulls a push followed, in 1/[`ONE`]: each pull judged is a
    /// sample of weight 1/8, from an even start (a node pulls a dozen times in a busy
    /// simulated run; from zero, it never came near a share it had).
    late_share: Option<u32>,
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

    /// A pull turned out late (its push came after it) or needed (none came).
    pub(crate) fn judge_pull(&mut self, late: bool) {
        let share = self.late_share.get_or_insert(ONE / 2);
        *share -= *share / 8;
        if late {
            *share += ONE / 8;
        }
    }

    /// The ceiling `configured` raised while most pulls were late: by nothing at half of
    /// them or fewer, up to [`MAX_GRAFT_CEILING_FACTOR`] times at three in four or more.
    fn ceiling(&self, configured: Duration) -> Duration {
        let share = self.late_share.unwrap_or(ONE / 2);
        let over_half = share.saturating_sub(ONE / 2).min(ONE / 4);
        let extra = (MAX_GRAFT_CEILING_FACTOR - 1) * over_half;
        // Saturating: the configured ceiling is the user's, whatever its size.
        configured.saturating_add(configured.saturating_mul(extra) / (ONE / 4))
    }

    /// How long to wait for an announced payload: the ceiling (from `configured`, see
    /// [`Self::ceiling`]) before any sample.
    pub(crate) fn timeout(&self, configured: Duration) -> Duration {
        let ceiling = self.ceiling(configured);
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

    fn long_lags() -> PushLag {
        let mut lag = PushLag::default();
        for _ in 0..64 {
            lag.sample(Duration::from_secs(3));
        }
        lag
    }

    #[test]
    fn the_ceiling_rises_only_while_most_pulls_were_late() {
        // Pushes lost: the ceiling holds.
        let mut lost = long_lags();
        for _ in 0..64 {
            lost.judge_pull(false);
        }
        assert_eq!(lost.timeout(CEILING), CEILING);
        // Half late, half lost: it holds too.
        let mut half = long_lags();
        for i in 0..64 {
            half.judge_pull(i % 2 == 0);
        }
        assert!(
            half.timeout(CEILING) <= CEILING * 23 / 20,
            "{:?}",
            half.timeout(CEILING)
        );
        // Two in three late: it rises, short of the most.
        let mut most = long_lags();
        for i in 0..64 {
            most.judge_pull(i % 3 != 0);
        }
        let wait = most.timeout(CEILING);
        assert!(wait > CEILING * 5 / 4 && wait < CEILING * 2, "{wait:?}");
        // All late: the most, and no further.
        let mut late = long_lags();
        for _ in 0..64 {
            late.judge_pull(true);
        }
        assert_eq!(late.timeout(CEILING), CEILING * MAX_GRAFT_CEILING_FACTOR);
        // Then pushes start to be lost: back down.
        for _ in 0..32 {
            late.judge_pull(false);
        }
        assert_eq!(late.timeout(CEILING), CEILING);
        // No overflow, whatever the configured ceiling.
        let mut unmeasured = PushLag::default();
        for _ in 0..64 {
            unmeasured.judge_pull(true);
        }
        assert_eq!(unmeasured.timeout(Duration::MAX), Duration::MAX);
        // The learned lag still rules under the ceiling.
        let mut short = PushLag::default();
        for _ in 0..64 {
            short.sample(Duration::from_millis(2));
            short.judge_pull(true);
        }
        assert_eq!(short.timeout(CEILING), MIN_GRAFT_TIMEOUT);
    }
}
