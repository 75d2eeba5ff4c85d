//! The pending-handshake table, sans-IO: which incoming connections are between TCP accept
//! and delivery, how far each got, and who gives way when a bound is reached.
//!
//! Bounds: at most `max_total` pending handshakes, at most `max_per_source` from one source
//! (an IPv4 address, an IPv6 /64: [`source_key`]). A newcomer over a bound takes the place of
//! the oldest pending handshake that has not finished — of its source when the source's bound
//! is reached, of anyone when the total is — choosing first among those that never sent a
//! byte ([`Stage::Silent`]), then those whose ClientHello is incomplete ([`Stage::Talking`]),
//! then those past a valid ClientHello ([`Stage::Hello`]). Finished ones ([`Stage::Done`],
//! authenticated and waiting for `accept`) never give way; when only they are left, the
//! newcomer is refused. Separately, sockets evicted but not closed yet count as *open*, and
//! no newcomer is admitted while `max_total` + `slack` sockets are open, so the sockets held
//! are bounded whatever the scheduler does.
//!
//! Ids grow with admission, so the oldest of a stage is the smallest id of its set. Every
//! operation is `O(log n)`; the table holds at most `max_total` entries and as many sources.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// How far a pending handshake got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Accepted; not a byte received yet.
    Silent = 0,
    /// Bytes received; no valid ClientHello yet.
    Talking = 1,
    /// A ClientHello naming a group served here, with our protocol: TLS (or a password
    /// join) in progress.
    Hello = 2,
    /// Authenticated, waiting for the application's `accept`: never evicted.
    Done = 3,
}

/// The stages that give way, in the order they do.
const EVICTABLE: [Stage; 3] = [Stage::Silent, Stage::Talking, Stage::Hello];

/// Why a newcomer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its source has `max_per_source` pending handshakes, all finished.
    PerSource,
    /// There are `max_total` pending handshakes, all finished.
    Total,
    /// `max_total` + `slack` sockets are still open (evicted ones not closed yet).
    Open,
}

/// What became of a newcomer.
#[derive(Debug)]
pub(crate) enum Admission<T> {
    /// Admitted under `id`; the payloads of the handshakes it displaced (to be told to close).
    Admitted { id: u64, evicted: Vec<T> },
    /// Refused: close it at once.
    Refused(Refused),
}

/// Counters of an endpoint's pending handshakes since it was bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeStats {
    /// Pending handshakes now.
    pub pending: usize,
    /// Pending handshakes now that have not sent a byte yet.
    pub silent: usize,
    /// The most pending handshakes at any time (never above
    /// [`TransportConfig::max_handshakes`](crate::TransportConfig::max_handshakes)).
    pub peak_pending: usize,
    /// The most pending handshakes from one source address at any time (never above
    /// [`TransportConfig::max_handshakes_per_address`](crate::TransportConfig::max_handshakes_per_address)).
    pub peak_per_address: usize,
    /// Incoming sockets held now: pending, plus evicted ones not closed yet.
    pub open_sockets: usize,
    /// The most incoming sockets held at any time (never above `max_handshakes` +
    /// [`EVICTED_UNCLOSED_SLACK`](crate::EVICTED_UNCLOSED_SLACK)).
    pub peak_open_sockets: usize,
    /// Connections admitted as pending handshakes.
    pub admitted: u64,
    /// Pending handshakes closed to make room for a newcomer.
    pub evicted: u64,
    /// Connections closed at once on arrival, over a bound.
    pub refused: u64,
    /// Connections closed for sending nothing within the first-byte timeout.
    pub silent_timeouts: u64,
}

/// The key a source address is counted under: an IPv4 address (IPv4-mapped IPv6 addresses
/// included), or the /64 prefix of an IPv6 address (one host usually holds a whole /64).
pub(crate) fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

struct Entry<T> {
    source: IpAddr,
    stage: Stage,
    payload: T,
}

/// Ids of unfinished handshakes by stage (index = `Stage as usize`).
#[derive(Default)]
struct ByStage([BTreeSet<u64>; 3]);

impl ByStage {
    fn insert(&mut self, stage: Stage, id: u64) {
        if let Some(set) = self.0.get_mut(stage as usize) {
            set.insert(id);
        }
    }

    fn remove(&mut self, stage: Stage, id: u64) {
        if let Some(set) = self.0.get_mut(stage as usize) {
            set.remove(&id);
        }
    }

    /// The oldest handshake of the earliest stage that has one.
    fn first_to_evict(&self) -> Option<u64> {
        EVICTABLE
            .iter()
            .find_map(|s| self.0.get(*s as usize)?.first().copied())
    }
}

#[derive(Default)]
struct Source {
    count: usize,
    stages: ByStage,
}

/// The table. `T` is what the I/O side keeps per handshake (a cancellation token).
pub(crate) struct PendingTable<T> {
    max_total: usize,
    max_per_source: usize,
    slack: usize,
    next_id: u64,
    entries: HashMap<u64, Entry<T>>,
    stages: ByStage,
    sources: HashMap<IpAddr, Source>,
    open: usize,
    stats: HandshakeStats,
}

impl<T> PendingTable<T> {
    /// A table with these bounds (each at least 1).
    pub(crate) fn new(max_total: usize, max_per_source: usize, slack: usize) -> Self {
        PendingTable {
            max_total: max_total.max(1),
            max_per_source: max_per_source.max(1),
            slack,
            next_id: 0,
            entries: HashMap::new(),
            stages: ByStage::default(),
            sources: HashMap::new(),
            open: 0,
            stats: HandshakeStats::default(),
        }
    }

    /// Whether a newcomer would be admitted as far as open sockets go.
    pub(crate) fn has_open_room(&self) -> bool {
        self.open < self.max_total.saturating_add(self.slack)
    }

    /// A new connection from `ip` (its payload `payload`; `talking` if bytes are already
    /// there): admitted, perhaps displacing others, or refused. An admitted one counts as an
    /// open socket until [`Self::closed`].
    pub(crate) fn admit(&mut self, ip: IpAddr, talking: bool, payload: T) -> Admission<T> {
        if !self.has_open_room() {
            return self.refuse(Refused::Open);
        }
        let source = source_key(ip);
        let mut evicted = Vec::new();
        let source_full = self
            .sources
            .get(&source)
            .is_some_and(|s| s.count >= self.max_per_source);
        if source_full {
            let victim = self
                .sources
                .get(&source)
                .and_then(|s| s.stages.first_to_evict());
            match victim.and_then(|id| self.remove(id)) {
                Some(p) => evicted.push(p),
                None => return self.refuse(Refused::PerSource),
            }
        }
        if self.entries.len() >= self.max_total {
            match self.stages.first_to_evict().and_then(|id| self.remove(id)) {
                Some(p) => evicted.push(p),
                None => return self.refuse(Refused::Total),
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let stage = if talking {
            Stage::Talking
        } else {
            Stage::Silent
        };
        self.entries.insert(
            id,
            Entry {
                source,
                stage,
                payload,
            },
        );
        self.stages.insert(stage, id);
        let src = self.sources.entry(source).or_default();
        src.count += 1;
        src.stages.insert(stage, id);
        let per_source = src.count;
        self.open += 1;
        let stats = &mut self.stats;
        stats.admitted += 1;
        stats.evicted += evicted.len() as u64;
        stats.pending = self.entries.len();
        stats.peak_pending = stats.peak_pending.max(stats.pending);
        stats.peak_per_address = stats.peak_per_address.max(per_source);
        stats.open_sockets = self.open;
        stats.peak_open_sockets = stats.peak_open_sockets.max(self.open);
        Admission::Admitted { id, evicted }
    }

    fn refuse(&mut self, why: Refused) -> Admission<T> {
        self.stats.refused += 1;
        Admission::Refused(why)
    }

    /// Handshake `id` got to `stage` (only forward; nothing if it is gone). Says whether it is
    /// still pending.
    pub(crate) fn advance(&mut self, id: u64, stage: Stage) -> bool {
        let Some(entry) = self.entries.get_mut(&id) else {
            return false;
        };
        if stage <= entry.stage {
            return true;
        }
        let (from, source) = (entry.stage, entry.source);
        entry.stage = stage;
        self.stages.remove(from, id);
        if let Some(src) = self.sources.get_mut(&source) {
            src.stages.remove(from, id);
            if stage != Stage::Done {
                src.stages.insert(stage, id);
            }
        }
        if stage != Stage::Done {
            self.stages.insert(stage, id);
        }
        true
    }

    /// Handshake `id` ended (delivered, refused, failed): no longer pending. Nothing if it
    /// was evicted already.
    pub(crate) fn finish(&mut self, id: u64) {
        let _ = self.remove(id);
    }

    /// A socket admitted earlier is closed (whether it finished or was evicted).
    pub(crate) fn closed(&mut self) {
        self.open = self.open.saturating_sub(1);
        self.stats.open_sockets = self.open;
    }

    /// Counts a connection closed for sending nothing in time.
    pub(crate) fn note_silent_timeout(&mut self) {
        self.stats.silent_timeouts += 1;
    }

    /// The counters.
    pub(crate) fn stats(&self) -> HandshakeStats {
        HandshakeStats {
            silent: self.stages.0.first().map_or(0, BTreeSet::len),
            ..self.stats.clone()
        }
    }

    /// Removes `id` from every index; its payload.
    fn remove(&mut self, id: u64) -> Option<T> {
        let entry = self.entries.remove(&id)?;
        self.stages.remove(entry.stage, id);
        if let Some(src) = self.sources.get_mut(&entry.source) {
            src.stages.remove(entry.stage, id);
            src.count = src.count.saturating_sub(1);
            if src.count == 0 {
                self.sources.remove(&entry.source);
            }
        }
        self.stats.pending = self.entries.len();
        Some(entry.payload)
    }

    /// Pending handshakes from the source of `ip`.
    #[cfg(test)]
    fn pending_from(&self, ip: IpAddr) -> usize {
        self.sources.get(&source_key(ip)).map_or(0, |s| s.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn admitted(a: Admission<u64>) -> (u64, Vec<u64>) {
        match a {
            Admission::Admitted { id, evicted } => (id, evicted),
            Admission::Refused(why) => panic!("refused: {why:?}"),
        }
    }

    #[test]
    fn per_source_bound_displaces_that_sources_oldest_silent_one() {
        let mut t = PendingTable::new(100, 3, 10);
        let a = ip("10.0.0.1");
        let ids: Vec<u64> = (0..3).map(|n| admitted(t.admit(a, false, n)).0).collect();
        // The oldest has talked: the second oldest, silent, gives way.
        assert!(t.advance(ids[0], Stage::Talking));
        let (_, evicted) = admitted(t.admit(a, false, 3));
        assert_eq!(evicted, vec![1]);
        assert_eq!(t.pending_from(a), 3);
        // Another source is not affected.
        let (_, evicted) = admitted(t.admit(ip("10.0.0.2"), false, 4));
        assert!(evicted.is_empty());
        assert_eq!(t.stats().peak_per_address, 3);
    }

    #[test]
    fn per_source_bound_refuses_when_all_finished() {
        let mut t = PendingTable::new(100, 2, 10);
        let a = ip("10.0.0.1");
        for n in 0..2 {
            let (id, _) = admitted(t.admit(a, false, n));
            t.advance(id, Stage::Done);
        }
        assert!(matches!(
            t.admit(a, false, 9),
            Admission::Refused(Refused::PerSource)
        ));
        assert_eq!(t.stats().refused, 1);
        assert_eq!(t.stats().pending, 2);
    }

    #[test]
    fn total_bound_evicts_silent_then_talking_then_hello_oldest_first() {
        let mut t = PendingTable::new(4, 100, 100);
        let hello = admitted(t.admit(ip("10.0.0.1"), false, 0)).0;
        let talking = admitted(t.admit(ip("10.0.0.2"), false, 1)).0;
        let _silent_a = admitted(t.admit(ip("10.0.0.3"), false, 2)).0;
        let _silent_b = admitted(t.admit(ip("10.0.0.4"), false, 3)).0;
        t.advance(hello, Stage::Hello);
        t.advance(talking, Stage::Talking);
        // Silent ones first, oldest first.
        assert_eq!(admitted(t.admit(ip("10.0.1.1"), false, 4)).1, vec![2]);
        assert_eq!(admitted(t.admit(ip("10.0.1.2"), false, 5)).1, vec![3]);
        // Then the newcomers, still silent and older than the next.
        assert_eq!(admitted(t.admit(ip("10.0.1.3"), false, 6)).1, vec![4]);
        t.advance(5, Stage::Done);
        t.advance(6, Stage::Done);
        // Only talking, hello and finished ones are left: talking goes, then hello.
        assert_eq!(admitted(t.admit(ip("10.0.1.4"), false, 7)).1, vec![1]);
        t.advance(7, Stage::Done);
        assert_eq!(admitted(t.admit(ip("10.0.1.5"), false, 8)).1, vec![0]);
        t.advance(8, Stage::Done);
        // Everything finished: refused.
        assert!(matches!(
            t.admit(ip("10.0.1.6"), false, 9),
            Admission::Refused(Refused::Total)
        ));
        let s = t.stats();
        assert_eq!(
            (s.pending, s.peak_pending, s.evicted, s.refused),
            (4, 4, 5, 1)
        );
    }

    #[test]
    fn a_newcomer_with_bytes_already_there_is_admitted_talking() {
        let mut t = PendingTable::new(2, 100, 10);
        let member = admitted(t.admit(ip("10.0.0.1"), true, 0)).0;
        admitted(t.admit(ip("10.0.0.2"), false, 1));
        // Silent newcomers displace each other, never the member that talked at once.
        for n in 2..10 {
            assert_eq!(admitted(t.admit(ip("10.0.0.2"), false, n)).1, vec![n - 1]);
        }
        assert!(t.advance(member, Stage::Hello));
    }

    #[test]
    fn open_sockets_are_bounded_until_evicted_ones_close() {
        let mut t = PendingTable::new(2, 100, 1);
        for n in 0..3 {
            admitted(t.admit(ip("10.0.0.1"), false, n));
        }
        // 2 pending, 1 evicted and not closed: 3 open = 2 + slack.
        assert_eq!(t.stats().open_sockets, 3);
        assert!(!t.has_open_room());
        assert!(matches!(
            t.admit(ip("10.0.0.2"), false, 9),
            Admission::Refused(Refused::Open)
        ));
        t.closed();
        assert!(t.has_open_room());
        admitted(t.admit(ip("10.0.0.2"), false, 10));
        assert_eq!(t.stats().peak_open_sockets, 3);
    }

    #[test]
    fn finishing_frees_the_place_and_eviction_is_idempotent() {
        let mut t = PendingTable::new(1, 1, 10);
        let (first, _) = admitted(t.admit(ip("10.0.0.1"), false, 0));
        let (_, evicted) = admitted(t.admit(ip("10.0.0.1"), false, 1));
        assert_eq!(evicted, vec![0]);
        // The evicted one's task ends later: nothing happens twice.
        assert!(!t.advance(first, Stage::Talking));
        t.finish(first);
        assert_eq!(t.stats().pending, 1);
        t.finish(1);
        assert_eq!(t.stats().pending, 0);
        assert!(t.sources.is_empty() && t.entries.is_empty());
        assert!(t.stages.0.iter().all(BTreeSet::is_empty));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            source_key(ip("2001:db8:1:2:aaaa::1")),
            source_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            source_key(ip("2001:db8:1:2::1")),
            source_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(source_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        let mut t = PendingTable::new(100, 2, 10);
        admitted(t.admit(ip("2001:db8::1"), false, 0));
        admitted(t.admit(ip("2001:db8::2"), false, 1));
        assert_eq!(admitted(t.admit(ip("2001:db8::3"), false, 2)).1, vec![0]);
    }

    #[test]
    fn a_flood_never_exceeds_the_bounds() {
        // 10,000 arrivals from 50 sources (half of them from one), some talking, some
        // finishing, some closing.
        let mut t = PendingTable::new(64, 8, 16);
        // Payload -> id of the handshakes still pending.
        let mut live = std::collections::BTreeMap::new();
        for n in 0..10_000u64 {
            let last = if n % 2 == 0 { 0 } else { (n % 50) as u8 };
            let source = IpAddr::from([10, 0, 0, last]);
            if let Admission::Admitted { id, evicted } = t.admit(source, false, n) {
                for p in &evicted {
                    live.remove(p);
                    t.closed();
                }
                live.insert(n, id);
                if n % 3 == 0 {
                    t.advance(id, Stage::Talking);
                }
                if n % 7 == 0 {
                    t.advance(id, Stage::Hello);
                }
            }
            if n % 5 == 0
                && let Some((_, id)) = live.pop_last()
            {
                t.finish(id);
                t.closed();
            }
            let s = t.stats();
            assert!(s.pending <= 64 && s.open_sockets <= 64 + 16, "{s:?}");
            assert_eq!(s.pending, live.len());
            assert!(t.sources.values().all(|s| s.count <= 8));
        }
        let s = t.stats();
        assert!(s.peak_pending == 64 && s.peak_per_address == 8, "{s:?}");
    }
}
