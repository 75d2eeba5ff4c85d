//! Announcing a forwarded record's key again, twice, to every neighbor but its source.
//!
//! A push or an announcement can be lost: with a connection that dies, or (in the
//! simulator) dropped on purpose. A node that heard of a record from nobody then waited for
//! anti-entropy, up to its 30 s period: among 500 nodes at 10% loss, 97 of the 101
//! deliveries that took over 5 s. So each node announces the keys it forwarded once more
//! after [`ANNOUNCE_AGAIN_AFTER`], and a last time twice that later; a neighbor that has the
//! record spends a lookup, one that lacks it pulls it. One more round was not enough: a node
//! with two neighbors still missed a record whenever both pushes and both second
//! announcements were lost (one in 10⁴, five times per run of 50,000 deliveries).

use std::time::Duration;

use super::ConnId;
use crate::time::Mono;

/// How long after forwarding a record a node announces its key again (and twice that after
/// the second announcement, the third and last).
pub const ANNOUNCE_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// Most keys waiting for each further announcement; past it the rest are left to
/// anti-entropy (a bulk transfer needs no repeat to be quick, and its keys would cost every
/// link 8 bytes each).
pub const MAX_ANNOUNCED_AGAIN: usize = 1024;

/// The further announcements after the first.
const ROUNDS: usize = 2;

/// Keys due for one round of announcement.
#[derive(Debug, Default)]
struct Batch {
    keys: Vec<(u64, Option<ConnId>)>,
    at: Option<Mono>,
}

impl Batch {
    fn push(&mut self, keys: impl IntoIterator<Item = (u64, Option<ConnId>)>, at: Mono) {
        for k in keys {
            if self.keys.len() >= MAX_ANNOUNCED_AGAIN {
                break;
            }
            self.keys.push(k);
            self.at.get_or_insert(at);
        }
    }
}

/// The keys forwarded lately, by the round of announcement they wait for.
#[derive(Debug, Default)]
pub(crate) struct Again {
    rounds: [Batch; ROUNDS],
}

impl Again {
    /// `key` was forwarded (it came over `from`) at `now`.
    pub(crate) fn forwarded(&mut self, key: u64, from: Option<ConnId>, now: Mono) {
        self.rounds[0].push([(key, from)], now.saturating_add(ANNOUNCE_AGAIN_AFTER));
    }

    /// When the next round is due.
    pub(crate) fn next_deadline(&self) -> Option<Mono> {
        self.rounds.iter().filter_map(|b| b.at).min()
    }

    /// The keys to announce at `now`; each moves on to its next round.
    pub(crate) fn take_due(&mut self, now: Mono) -> Vec<(u64, Option<ConnId>)> {
        let mut due = Vec::new();
        for r in (0..ROUNDS).rev() {
            if self.rounds[r].at.is_none_or(|at| at > now) {
                continue;
            }
            self.rounds[r].at = None;
            let keys = std::mem::take(&mut self.rounds[r].keys);
            if r + 1 < ROUNDS {
                let wait = ANNOUNCE_AGAIN_AFTER.saturating_mul(2 << r);
                self.rounds[r + 1].push(keys.iter().copied(), now.saturating_add(wait));
            }
            due.extend(keys);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Mono {
        Mono::from_millis(ms)
    }

    #[test]
    fn a_key_is_announced_again_after_one_second_and_after_two_more() {
        let mut a = Again::default();
        assert_eq!(a.next_deadline(), None);
        a.forwarded(7, Some(ConnId(1)), at(0));
        a.forwarded(8, None, at(400));
        assert_eq!(a.next_deadline(), Some(at(1_000)));
        assert!(a.take_due(at(999)).is_empty());
        assert_eq!(a.take_due(at(1_000)), vec![(7, Some(ConnId(1))), (8, None)]);
        // A key forwarded meanwhile waits for its own first round.
        a.forwarded(9, None, at(1_500));
        assert_eq!(a.next_deadline(), Some(at(2_500)));
        assert_eq!(a.take_due(at(2_500)), vec![(9, None)]);
        assert_eq!(a.next_deadline(), Some(at(3_000)));
        assert_eq!(
            a.take_due(at(3_000)),
            vec![(7, Some(ConnId(1))), (8, None), (9, None)]
        );
        assert_eq!(a.next_deadline(), None, "three announcements in all");
        assert!(a.take_due(at(100_000)).is_empty());
    }

    #[test]
    fn each_round_holds_at_most_its_bound() {
        let mut a = Again::default();
        for k in 0..(MAX_ANNOUNCED_AGAIN as u64 + 500) {
            a.forwarded(k, None, at(0));
        }
        let first = a.take_due(at(1_000));
        assert_eq!(first.len(), MAX_ANNOUNCED_AGAIN);
        assert_eq!(first.last(), Some(&(MAX_ANNOUNCED_AGAIN as u64 - 1, None)));
        for k in 0..(MAX_ANNOUNCED_AGAIN as u64) {
            a.forwarded(k + 10_000, None, at(1_000));
        }
        // The second round is full with the first round's keys; the new ones go on.
        assert_eq!(a.take_due(at(2_000)).len(), MAX_ANNOUNCED_AGAIN);
        assert_eq!(a.take_due(at(3_000)).len(), MAX_ANNOUNCED_AGAIN);
    }
}
