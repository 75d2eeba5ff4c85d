//! A timer table: deadlines by key, kept in order, so the next one is found in O(log n) and
//! the due ones in O(k log n), instead of by a scan of every key at each poll. Each of the
//! core's sub-machines keeps its deadlines in one (or in a single instant when it has one).

use std::collections::{BTreeMap, BTreeSet};

/// Deadlines of type `T` (a monotonic instant, or a wall-clock time) by key `K`.
#[derive(Debug)]
pub(crate) struct TimerTable<K, T> {
    /// The deadlines in order.
    due: BTreeSet<(T, K)>,
    /// Each key's deadline.
    at: BTreeMap<K, T>,
}

impl<K, T> Default for TimerTable<K, T> {
    fn default() -> Self {
        TimerTable {
            due: BTreeSet::new(),
            at: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy, T: Ord + Copy> TimerTable<K, T> {
    /// Sets (or moves) the deadline of `key`.
    pub(crate) fn set(&mut self, key: K, at: T) {
        if let Some(old) = self.at.insert(key, at) {
            self.due.remove(&(old, key));
        }
        self.due.insert((at, key));
    }

    /// Cancels the deadline of `key`, if it has one.
    pub(crate) fn cancel(&mut self, key: K) {
        if let Some(old) = self.at.remove(&key) {
            self.due.remove(&(old, key));
        }
    }

    /// Forgets every deadline.
    pub(crate) fn clear(&mut self) {
        self.due.clear();
        self.at.clear();
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<T> {
        self.due.first().map(|(t, _)| *t)
    }

    /// The keys whose deadline is at or before `now`, in key order (the order a scan of the
    /// keys would find them in). They stay set: handling one cancels or moves it.
    pub(crate) fn due(&self, now: T) -> Vec<K> {
        let mut keys: Vec<K> = self
            .due
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, k)| *k)
            .collect();
        keys.sort();
        keys
    }

    /// The deadline of `key`.
    #[cfg(test)]
    pub(crate) fn get(&self, key: K) -> Option<T> {
        self.at.get(&key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ConnId;
    use crate::time::Mono;

    #[test]
    fn the_next_deadline_follows_sets_moves_and_cancels() {
        let mut t: TimerTable<ConnId, Mono> = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(ConnId(1), Mono::from_millis(50));
        t.set(ConnId(2), Mono::from_millis(30));
        assert_eq!(t.next(), Some(Mono::from_millis(30)));
        // Moving a deadline replaces it.
        t.set(ConnId(2), Mono::from_millis(90));
        assert_eq!(t.next(), Some(Mono::from_millis(50)));
        assert_eq!(t.get(ConnId(2)), Some(Mono::from_millis(90)));
        t.cancel(ConnId(1));
        assert_eq!(t.next(), Some(Mono::from_millis(90)));
        t.cancel(ConnId(2));
        assert_eq!(t.next(), None);
    }

    #[test]
    fn due_keys_come_in_key_order_and_stay_until_handled() {
        let mut t: TimerTable<ConnId, Mono> = TimerTable::default();
        t.set(ConnId(9), Mono::from_millis(10));
        t.set(ConnId(3), Mono::from_millis(20));
        t.set(ConnId(5), Mono::from_millis(40));
        assert_eq!(t.due(Mono::from_millis(5)), Vec::<ConnId>::new());
        assert_eq!(t.due(Mono::from_millis(20)), vec![ConnId(3), ConnId(9)]);
        assert_eq!(t.due(Mono::from_millis(20)).len(), 2, "due keys stay set");
        t.cancel(ConnId(9));
        assert_eq!(t.due(Mono::from_millis(100)), vec![ConnId(3), ConnId(5)]);
        t.clear();
        assert_eq!((t.next(), t.due(Mono::from_millis(100)).len()), (None, 0));
    }
}
