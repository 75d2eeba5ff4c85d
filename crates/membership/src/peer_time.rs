//! Peer time: the group's common clock, as an offset from local UTC.
//!
//! When a neighbor welcomes us it sends its peer time. With `t_hello` the local time we sent
//! our hello and `t_welcome` when its welcome arrived, its peer time now is estimated as
//! `peer_time + (t_welcome − t_hello) / 2` (round-trip compensation). The sample offset is that
//! minus `t_welcome`. The first sample is taken as is; later ones move the estimate by a fifth
//! (`0.8·old + 0.2·sample`), and samples more than 20 minutes from the current estimate are
//! rejected as outliers (MS-PPGRH §3.1.5.2.2). The creator's offset is zero and never moves.

use std::time::Duration;

use peergroup_identity::Timestamp;

/// Samples further than this from the estimate are rejected.
pub const MAX_SKEW: Duration = Duration::from_secs(20 * 60);

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

    /// A clock resuming from a persisted offset.
    pub fn from_offset(offset_ms: i64) -> Self {
        PeerTime {
            offset_ms,
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
        let rtt = t_welcome.as_millis().saturating_sub(t_hello.as_millis()) as i64;
        let estimate = peer_time.as_millis() as i64 + rtt / 2;
        let sample = estimate - t_welcome.as_millis() as i64;
        if self.samples > 0
            && (sample - self.offset_ms).unsigned_abs() > MAX_SKEW.as_millis() as u64
        {
            return Sample::Outlier;
        }
        self.offset_ms = if self.samples == 0 {
            sample
        } else {
            (self.offset_ms * 4 + sample) / 5
        };
        self.samples = self.samples.saturating_add(1);
        Sample::Used
    }
}

fn shift(t: Timestamp, by_ms: i64) -> Timestamp {
    let v = t.as_millis() as i64 + by_ms;
    Timestamp::from_millis(v.max(0) as u64)
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
