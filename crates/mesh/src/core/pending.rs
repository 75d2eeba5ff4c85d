//! Payloads announced (`IHave`) but not received: bounded per link and per node, with the
//! next deadline found without scanning.
//!
//! Announcements cost the announcer nothing, so a hostile neighbor could announce millions
//! of keys that do not exist: each would be remembered, and every driver round would scan
//! them for the next deadline (seen: 1.65 GB and a full core for minutes after the attacker
//! left). Here a link has at most [`MAX_PENDING_PER_LINK`] keys waiting (later ones from it
//! are ignored: anti-entropy finds anything real), a key remembers at most
//! [`MAX_ANNOUNCERS`] announcers, and a node at most [`MAX_PENDING_KEYS`] keys (the one due
//! soonest is dropped for a new one). Deadlines live in an ordered set beside the keys.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::ConnId;
use crate::time::Mono;

/// Most announced keys a node waits for at once, over all its links.
pub const MAX_PENDING_KEYS: usize = 16_384;
/// Most keys one link may have waiting (announced by it and not yet received).
pub const MAX_PENDING_PER_LINK: usize = 4_096;
/// Most announcers remembered per key (more only add ways to ask for the same payload).
pub const MAX_ANNOUNCERS: usize = 8;

/// A payload announced but not received.
#[derive(Debug)]
pub(crate) struct Missing {
    pub(crate) announcers: Vec<ConnId>,
    /// Whether the announcers are gone and the node's other neighbors were taken in their
    /// place (once per key).
    pub(crate) adopted: bool,
    /// When the first announcement came.
    pub(crate) announced: Mono,
    pub(crate) deadline: Mono,
    pub(crate) attempts: u32,
}

/// The keys waited for.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    keys: BTreeMap<u64, Missing>,
    /// (deadline, key) for every key: the next one due is the first.
    due: BTreeSet<(Mono, u64)>,
    /// Per link, how many keys list it as an announcer.
    per_link: HashMap<ConnId, usize>,
}

impl Pending {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, key: u64) -> bool {
        self.keys.contains_key(&key)
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Mono> {
        self.due.first().map(|(t, _)| *t)
    }

    /// `conn` announced `key` at `now`; a new key is due at `deadline`. Returns whether it
    /// was taken (not when `conn` already has [`MAX_PENDING_PER_LINK`] keys waiting).
    pub(crate) fn announce(&mut self, key: u64, conn: ConnId, now: Mono, deadline: Mono) -> bool {
        let count = self.per_link.get(&conn).copied().unwrap_or(0);
        if let Some(m) = self.keys.get_mut(&key) {
            if m.announcers.contains(&conn) {
                return true;
            }
            if m.announcers.len() >= MAX_ANNOUNCERS || count >= MAX_PENDING_PER_LINK {
                return false;
            }
            m.announcers.push(conn);
            *self.per_link.entry(conn).or_default() += 1;
            return true;
        }
        if count >= MAX_PENDING_PER_LINK {
            return false;
        }
        if self.keys.len() >= MAX_PENDING_KEYS
            && let Some(&(_, oldest)) = self.due.first()
        {
            self.remove(oldest);
        }
        self.keys.insert(
            key,
            Missing {
                announcers: vec![conn],
                adopted: false,
                announced: now,
                deadline,
                attempts: 0,
            },
        );
        self.due.insert((deadline, key));
        *self.per_link.entry(conn).or_default() += 1;
        true
    }

    /// Stops waiting for `key` (it arrived, or is given up).
    pub(crate) fn remove(&mut self, key: u64) -> Option<Missing> {
        let m = self.keys.remove(&key)?;
        self.due.remove(&(m.deadline, key));
        for c in &m.announcers {
            self.uncount(*c);
        }
        Some(m)
    }

    /// A link is gone: it is no announcer any more.
    pub(crate) fn forget_link(&mut self, conn: ConnId) {
        if self.per_link.remove(&conn).is_none() {
            return;
        }
        for m in self.keys.values_mut() {
            m.announcers.retain(|c| *c != conn);
        }
    }

    /// Takes the keys due at `now` out of the deadline order (hand each back with
    /// [`Pending::reschedule`], or [`Pending::remove`] it).
    pub(crate) fn take_due(&mut self, now: Mono) -> Vec<u64> {
        let mut keys = Vec::new();
        while let Some(&(t, key)) = self.due.first() {
            if t > now {
                break;
            }
            self.due.pop_first();
            keys.push(key);
        }
        keys
    }

    /// Whether `key` has been asked for at least once.
    pub(crate) fn pulled(&self, key: u64) -> bool {
        self.keys.get(&key).is_some_and(|m| m.attempts > 0)
    }

    /// The waiting state of a key taken by [`Pending::take_due`].
    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut Missing> {
        self.keys.get_mut(&key)
    }

    /// Puts a key taken by [`Pending::take_due`] back, due at `deadline`.
    pub(crate) fn reschedule(&mut self, key: u64, deadline: Mono) {
        if let Some(m) = self.keys.get_mut(&key) {
            m.deadline = deadline;
            self.due.insert((deadline, key));
        }
    }

    /// Every announcer of a key taken by [`Pending::take_due`] is gone (its link dropped,
    /// and with it whatever it was sending): `others`, the links the node has now, are asked
    /// in their place, up to [`MAX_ANNOUNCERS`] and each link's share, each once: `attempts`
    /// is set to leave one round of `rounds`. (A member that announced keys that do not
    /// exist and left would otherwise have every other neighbor asked for each of them all
    /// `rounds` over.) Once per key; returns whether any was taken.
    pub(crate) fn adopt(&mut self, key: u64, others: &[ConnId], rounds: u32) -> bool {
        let Some(m) = self.keys.get_mut(&key) else {
            return false;
        };
        if m.adopted {
            return false;
        }
        m.adopted = true;
        for c in others.iter().take(MAX_ANNOUNCERS) {
            let count = self.per_link.entry(*c).or_default();
            if *count < MAX_PENDING_PER_LINK && !m.announcers.contains(c) {
                *count += 1;
                m.announcers.push(*c);
            }
        }
        m.attempts = rounds.saturating_sub(1) * m.announcers.len() as u32;
        !m.announcers.is_empty()
    }

    /// Removes a key taken by [`Pending::take_due`] (no longer in the deadline order).
    pub(crate) fn give_up(&mut self, key: u64) {
        if let Some(m) = self.keys.remove(&key) {
            for c in &m.announcers {
                self.uncount(*c);
            }
        }
    }

    fn uncount(&mut self, conn: ConnId) {
        if let Some(n) = self.per_link.get_mut(&conn) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_link.remove(&conn);
            }
        }
    }

    /// Keys waiting on `conn`.
    pub(crate) fn on_link(&self, conn: ConnId) -> usize {
        self.per_link.get(&conn).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Mono {
        Mono::from_millis(ms)
    }

    #[test]
    fn announcers_gone_are_replaced_once_each_for_one_round() {
        let mut p = Pending::default();
        p.announce(7, ConnId(1), at(0), at(10));
        assert_eq!(p.take_due(at(10)), vec![7]);
        p.get_mut(7).unwrap().announcers.clear();
        let others: Vec<ConnId> = (10..30).map(ConnId).collect();
        assert!(p.adopt(7, &others, 5));
        let m = p.get_mut(7).unwrap();
        assert_eq!(m.announcers.len(), MAX_ANNOUNCERS);
        // One round left: each adopted link is asked once.
        assert_eq!(m.attempts, 4 * MAX_ANNOUNCERS as u32);
        m.announcers.clear();
        assert!(!p.adopt(7, &others, 5), "adopted twice");
    }

    #[test]
    fn a_link_cannot_make_the_node_wait_for_more_than_its_share() {
        let mut p = Pending::default();
        let (hostile, honest) = (ConnId(1), ConnId(2));
        for k in 0..(MAX_PENDING_PER_LINK as u64 + 1000) {
            p.announce(k, hostile, at(0), at(k));
        }
        assert_eq!(p.len(), MAX_PENDING_PER_LINK);
        assert_eq!(p.on_link(hostile), MAX_PENDING_PER_LINK);
        // An honest neighbor's announcements are still taken.
        assert!(p.announce(u64::MAX, honest, at(0), at(5)));
        assert!(p.contains(u64::MAX));
    }

    #[test]
    fn the_node_bound_drops_the_key_due_soonest() {
        let mut p = Pending::default();
        let links = MAX_PENDING_KEYS / MAX_PENDING_PER_LINK + 2;
        let mut k = 0u64;
        for l in 0..links as u64 {
            for _ in 0..MAX_PENDING_PER_LINK {
                p.announce(k, ConnId(l), at(0), at(1_000 + k));
                k += 1;
            }
        }
        assert_eq!(p.len(), MAX_PENDING_KEYS);
        assert_eq!(p.due.len(), MAX_PENDING_KEYS);
        // The earliest keys went; the newest are kept.
        assert!(!p.contains(0));
        assert!(p.contains(k - 1));
        assert_eq!(
            p.next_deadline(),
            Some(at(1_000 + k - MAX_PENDING_KEYS as u64))
        );
        // Per-link counts follow the evictions.
        let counted: usize = (0..links as u64).map(|l| p.on_link(ConnId(l))).sum();
        assert_eq!(counted, MAX_PENDING_KEYS);
    }

    #[test]
    fn announcers_per_key_are_bounded_and_deadlines_ordered() {
        let mut p = Pending::default();
        for c in 0..(MAX_ANNOUNCERS as u64 + 5) {
            p.announce(7, ConnId(c), at(0), at(100));
        }
        assert_eq!(p.get_mut(7).unwrap().announcers.len(), MAX_ANNOUNCERS);
        p.announce(8, ConnId(0), at(0), at(50));
        assert_eq!(p.next_deadline(), Some(at(50)));
        assert_eq!(p.take_due(at(60)), vec![8]);
        assert_eq!(p.next_deadline(), Some(at(100)));
        p.reschedule(8, at(200));
        assert_eq!(p.take_due(at(150)), vec![7]);
        p.give_up(7);
        assert_eq!(p.next_deadline(), Some(at(200)));
        p.forget_link(ConnId(0));
        assert!(p.get_mut(8).unwrap().announcers.is_empty());
        assert!(p.remove(8).is_some());
        assert_eq!(p.len(), 0);
        assert_eq!(p.next_deadline(), None);
        assert!(p.per_link.is_empty());
    }
}
