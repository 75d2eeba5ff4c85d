//! Peer time: the group's common clock, as an offset from local UTC.
//!
//! When a neighbor welcomes us it sends its peer time. With `t_hello` the local time we sent
//! our hello and `t_welcome` when its welcome arrived, its peer time now is estimated as
//! `peer_time + (t_welcome − t_hello) / 2` (round-trip compensation). The sample offset is that
//! minus `t_welcome`. The first sample is taken if it is within [`MAX_FIRST_OFFSET`] of the
//! local clock; later ones move the estimate by a fifth (`0.8·old + 0.2·sample`), and samples
//! more than 20 minutes from the current estimate are rejected as outliers (MS-PPGRH
//! §3.1.5.2.2). The creator's offset is zero and never moves.
//!
//! Every value here may come from a hostile neighbor: the arithmetic is done in `i128` and
//! clamped, so no timestamp (up to `u64::MAX` milliseconds) can overflow it, and no neighbor
//! can move the group's clock more than [`MAX_FIRST_OFFSET`] from a member's own.

use std::time::Duration;

use peergroup_identity::Timestamp;

/// Samples further than this from the estimate are rejected.
pub const MAX_SKEW: Duration = Duration::from_secs(20 * 60);

/// The furthest peer time may be from the local clock: a first sample further off is
/// rejected, a persisted offset further off is clamped. A day: a member's clock may be wrong
/// by hours (a time zone set wrong), but a neighbor claiming years is lying or broken.
pub const MAX_FIRST_OFFSET: Duration = Duration::from_secs(24 * 3600);

fn max_first_offset_ms() -> i64 {
    MAX_FIRST_OFFSET.as_millis() as i64
}

/// Estimates the offset of peer time from the local clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerTime {
    offset_ms: i64,
    samples: u32,
    fixed: bool,
}

/// What happened to a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sample {
    /// It moved the estimate.
    Used,
    /// It was too far off and was ignored.
    Outlier,
    /// The clock is the reference (the creator) and does not move.
    Fixed,
}

impl PeerTime {
    /// The creator's clock: offset zero, never adjusted.
    pub fn reference() -> Self {
        PeerTime {
            offset_ms: 0,
            samples: 0,
            fixed: true,
        }
    }

    /// A clock resuming from a persisted offset (clamped to [`MAX_FIRST_OFFSET`]).
    pub fn from_offset(offset_ms: i64) -> Self {
        PeerTime {
            offset_ms: offset_ms.clamp(-max_first_offset_ms(), max_first_offset_ms()),
            samples: 1,
            fixed: false,
        }
    }

    /// The offset in milliseconds (peer time = local + offset).
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    /// Local UTC → peer time.
    pub fn to_peer(&self, local: Timestamp) -> Timestamp {
        shift(local, self.offset_ms)
    }

    /// Peer time → local UTC.
    pub fn to_local(&self, peer: Timestamp) -> Timestamp {
        shift(peer, -self.offset_ms)
    }

    /// Adds a sample from a welcome.
    pub fn sample(
        &mut self,
        t_hello: Timestamp,
        t_welcome: Timestamp,
        peer_time: Timestamp,
    ) -> Sample {
        if self.fixed {
            return Sample::Fixed;
        }
        let rtt = i128::from(t_welcome.as_millis().saturating_sub(t_hello.as_millis()));
        let estimate = i128::from(peer_time.as_millis()) + rtt / 2;
        let sample = estimate - i128::from(t_welcome.as_millis());
        let bound = if self.samples == 0 {
            // Against the local clock (offset zero).
            i128::from(max_first_offset_ms())
        } else {
            MAX_SKEW.as_millis() as i128
        };
        if (sample - i128::from(self.offset_ms)).abs() > bound {
            return Sample::Outlier;
        }
        let next = if self.samples == 0 {
            sample
        } else {
            (i128::from(self.offset_ms) * 4 + sample) / 5
        };
        // Within the bounds checked above, so within i64; clamped all the same.
        self.offset_ms = next.clamp(
            i128::from(-max_first_offset_ms()),
            i128::from(max_first_offset_ms()),
        ) as i64;
        self.samples = self.samples.saturating_add(1);
        Sample::Used
    }
}

fn shift(t: Timestamp, by_ms: i64) -> Timestamp {
    let v = i128::from(t.as_millis()) + i128::from(by_ms);
    Timestamp::from_millis(v.clamp(0, i128::from(u64::MAX)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn round_trip_compensation_and_smoothing() {
        let mut pt = PeerTime::default();
        // The neighbor's clock is 5 s ahead; the round trip takes 200 ms.
        let local_hello = 1_000_000;
        let local_welcome = local_hello + 200;
        let their_time_when_sent = local_hello + 100 + 5_000;
        assert_eq!(
            pt.sample(ts(local_hello), ts(local_welcome), ts(their_time_when_sent)),
            Sample::Used
        );
        assert_eq!(pt.offset_ms(), 5_000);
        assert_eq!(pt.to_peer(ts(2_000_000)), ts(2_005_000));
        assert_eq!(pt.to_local(ts(2_005_000)), ts(2_000_000));
        // A second neighbor 10 s ahead moves the estimate a fifth of the way.
        pt.sample(
            ts(local_hello),
            ts(local_welcome),
            ts(local_hello + 100 + 10_000),
        );
        assert_eq!(pt.offset_ms(), 6_000);
    }

    #[test]
    fn hostile_times_neither_overflow_nor_move_the_clock_far() {
        // A first welcome claiming the end of time (or the epoch) is refused, not added.
        for claimed in [u64::MAX, u64::MAX / 2 + 7, 1 << 63, 0] {
            let mut pt = PeerTime::default();
            let now = 1_800_000_000_000;
            assert_eq!(
                pt.sample(ts(now), ts(now + 10), ts(claimed)),
                Sample::Outlier,
                "{claimed}"
            );
            assert_eq!(pt.offset_ms(), 0);
            // Nor do hostile local instants overflow (a welcome "before" the hello).
            pt.sample(ts(u64::MAX), ts(0), ts(u64::MAX));
            pt.sample(ts(0), ts(u64::MAX), ts(0));
        }
        // A first sample within a day is taken; the next ones only within 20 minutes of it.
        let mut pt = PeerTime::default();
        let hour = 3_600_000;
        assert_eq!(pt.sample(ts(0), ts(0), ts(5 * hour)), Sample::Used);
        assert_eq!(pt.offset_ms(), 5 * hour as i64);
        assert_eq!(pt.sample(ts(0), ts(0), ts(u64::MAX)), Sample::Outlier);
        // A persisted offset from a tampered file is clamped; conversions saturate.
        let pt = PeerTime::from_offset(i64::MIN);
        assert_eq!(pt.offset_ms(), -(MAX_FIRST_OFFSET.as_millis() as i64));
        assert_eq!(pt.to_peer(ts(0)), ts(0));
        assert_eq!(
            PeerTime::from_offset(i64::MAX).to_peer(ts(u64::MAX)),
            ts(u64::MAX)
        );
    }

    #[test]
    fn outliers_and_reference() {
        let mut pt = PeerTime::from_offset(0);
        let far = 30 * 60 * 1000;
        assert_eq!(
            pt.sample(ts(1000), ts(1000), ts(1000 + far)),
            Sample::Outlier
        );
        assert_eq!(pt.offset_ms(), 0);
        let mut r = PeerTime::reference();
        assert_eq!(r.sample(ts(0), ts(0), ts(5000)), Sample::Fixed);
        assert_eq!(r.offset_ms(), 0);
    }
}
