//! The two clocks of an input: a monotonic one for the protocol's timers, the wall clock for
//! what a certificate's or a record's validity says.
//!
//! A wall clock can step backwards (an NTP correction, a user setting the time): timers kept
//! on it would wait for the lost time to pass again, stalling maintenance, pulls and
//! anti-entropy. So every input of the [`Core`](crate::Core) carries a [`Now`]: its
//! [`Mono`] instant drives timers, its wall time decides validity and is what records carry.

use std::time::Duration;

use peergroup_identity::Timestamp;

/// A monotonic instant: milliseconds since an origin of the caller's choosing (the driver:
/// when it started; the simulator: its virtual epoch). Never goes backwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono(u64);

impl Mono {
    /// The instant `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Self {
        Mono(ms)
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `d` later (saturating).
    pub fn saturating_add(self, d: Duration) -> Self {
        Mono(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// `d` earlier (saturating at the origin).
    pub fn saturating_sub(self, d: Duration) -> Self {
        Mono(
            self.0
                .saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// The time since `earlier` (zero if it is not earlier).
    pub fn duration_since(self, earlier: Mono) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// The time of an input: both clocks, read together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// The monotonic clock: timers.
    pub mono: Mono,
    /// The wall clock (UTC): validity of certificates and records, timestamps of records.
    pub wall: Timestamp,
}

impl Now {
    /// Both clocks.
    pub fn new(mono: Mono, wall: Timestamp) -> Self {
        Now { mono, wall }
    }
}

/// For a caller whose wall clock never steps (the simulator, tests): the monotonic instant is
/// the wall time's milliseconds.
impl From<Timestamp> for Now {
    fn from(wall: Timestamp) -> Self {
        Now {
            mono: Mono(wall.as_millis()),
            wall,
        }
    }
}
