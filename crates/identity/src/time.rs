//! Wall-clock instants as plain values.
//!
//! Every check that depends on time (certificate validity, record lifetimes) takes a
//! [`Timestamp`] argument instead of reading the clock, so tests and the simulator can
//! drive it. [`Timestamp::now`] is for the edges of the program only.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (1970-01-01T00:00:00Z), in UTC.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);
    /// The latest instant X.509 can express (9999-12-31T23:59:59Z).
    pub const MAX_X509: Timestamp = Timestamp(253_402_300_799_000);

    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// The instant `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The current time from the system clock.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// This instant plus `d`, saturating at the largest value.
    pub fn saturating_add(self, d: Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// This instant minus `d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Self {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_sub(ms))
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Rounded down to a whole second (certificates carry seconds).
    pub const fn truncate_to_secs(self) -> Self {
        Timestamp(self.0 / 1000 * 1000)
    }

    /// RFC 3339 text, e.g. `2026-11-22T10:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = i64::try_from(self.as_secs()).unwrap_or(i64::MAX);
        match time::OffsetDateTime::from_unix_timestamp(secs) {
            Ok(t) => t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| format!("@{secs}")),
            Err(_) => format!("@{secs}"),
        }
    }

    /// Parses RFC 3339 text (`2026-11-22T10:00:00Z`, with or without fraction or offset).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()?;
        let ms = t.unix_timestamp_nanos() / 1_000_000;
        u64::try_from(ms).ok().map(Timestamp)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            Err(_) => Timestamp(0),
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        UNIX_EPOCH + Duration::from_millis(t.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = Timestamp::from_secs(1_795_000_000);
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("not a date"), None);
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(
            Timestamp::from_millis(5).saturating_sub(Duration::from_secs(1)),
            Timestamp(0)
        );
        assert_eq!(
            Timestamp(u64::MAX).saturating_add(Duration::from_secs(1)),
            Timestamp(u64::MAX)
        );
    }
}
