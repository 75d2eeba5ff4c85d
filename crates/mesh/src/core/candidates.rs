//! Addresses that may reach members: bounded in all and per referrer, evicting the least
//! promising.
//!
//! Addresses come from the user, an invitation or mDNS (trusted: [`Source::Local`]), and from
//! other members: referrals in handshakes and goodbyes, and presence records. A hostile
//! member could refer thousands of addresses (presence records of made-up nodes, say), each
//! of which we would dial. So each referring member has at most
//! [`MAX_CANDIDATES_PER_REFERRER`] addresses remembered, and when the table is full
//! ([`MAX_CANDIDATES`]) a referred address that failed most often gives way to the new one;
//! local addresses are never evicted by referred ones.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use peergroup_identity::PeerName;

use crate::time::Mono;

/// Most candidate addresses remembered.
pub const MAX_CANDIDATES: usize = 4096;
/// Most candidate addresses remembered from one referring member.
pub const MAX_CANDIDATES_PER_REFERRER: usize = 64;

/// Where an address came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The user, an invitation, mDNS.
    Local,
    /// Another member (a referral or its presence).
    Member(PeerName),
}

/// One address.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// The next attempt is allowed at.
    pub(crate) next: Mono,
    /// Failed attempts in a row.
    pub(crate) failures: u32,
    source: Source,
}

#[derive(Debug, Default)]
pub(crate) struct Candidates {
    by_addr: BTreeMap<SocketAddr, Candidate>,
    per_referrer: HashMap<PeerName, usize>,
}

impl Candidates {
    /// Remembers `addr` (no-op if known). Returns whether it is known afterwards.
    pub(crate) fn add(&mut self, addr: SocketAddr, source: Source) -> bool {
        if let Some(c) = self.by_addr.get_mut(&addr) {
            // Learned locally as well: it is ours now, not the referrer's.
            if source == Source::Local && c.source != Source::Local {
                let old = std::mem::replace(&mut c.source, Source::Local);
                self.uncount(&old);
            }
            return true;
        }
        if let Source::Member(p) = &source
            && self.per_referrer.get(p).copied().unwrap_or(0) >= MAX_CANDIDATES_PER_REFERRER
        {
            return false;
        }
        if self.by_addr.len() >= MAX_CANDIDATES && !self.evict_one() {
            return false;
        }
        if let Source::Member(p) = &source {
            *self.per_referrer.entry(p.clone()).or_default() += 1;
        }
        self.by_addr.insert(
            addr,
            Candidate {
                next: Mono::default(),
                failures: 0,
                source,
            },
        );
        true
    }

    /// Drops the referred address that failed most often (the first such in address
    /// order); says whether one was dropped.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .by_addr
            .iter()
            .filter(|(_, c)| c.source != Source::Local)
            .max_by_key(|(a, c)| (c.failures, std::cmp::Reverse(**a)))
            .map(|(a, _)| *a);
        match victim.and_then(|a| self.by_addr.remove(&a)) {
            Some(c) => {
                self.uncount(&c.source);
                true
            }
            None => false,
        }
    }

    fn uncount(&mut self, source: &Source) {
        if let Source::Member(p) = source
            && let Some(n) = self.per_referrer.get_mut(p)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_referrer.remove(p);
            }
        }
    }

    pub(crate) fn get_mut(&mut self, addr: &SocketAddr) -> Option<&mut Candidate> {
        self.by_addr.get_mut(addr)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&SocketAddr, &Candidate)> {
        self.by_addr.iter()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_addr.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peergroup_identity::{Classifier, KeyPair};

    fn member(i: u64) -> Source {
        let key = KeyPair::from_test_seed(i);
        Source::Member(PeerName::new(&key.public(), Classifier::new("m").unwrap()))
    }

    fn addr(i: u32) -> SocketAddr {
        SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 3587))
    }

    #[test]
    fn one_referrer_gets_a_bounded_share() {
        let mut c = Candidates::default();
        let hostile = member(1);
        for i in 0..10_000 {
            c.add(addr(i), hostile.clone());
        }
        assert_eq!(c.len(), MAX_CANDIDATES_PER_REFERRER);
        assert!(c.add(addr(20_000), member(2)));
        assert!(c.add(addr(20_001), Source::Local));
        assert_eq!(c.len(), MAX_CANDIDATES_PER_REFERRER + 2);
    }

    #[test]
    fn a_full_table_evicts_the_worst_referred_address_never_a_local_one() {
        let mut c = Candidates::default();
        let referrers = MAX_CANDIDATES / MAX_CANDIDATES_PER_REFERRER;
        let mut i = 0;
        for r in 0..referrers as u64 {
            for _ in 0..MAX_CANDIDATES_PER_REFERRER {
                assert!(c.add(addr(i), member(100 + r)));
                i += 1;
            }
        }
        assert_eq!(c.len(), MAX_CANDIDATES);
        c.get_mut(&addr(17)).unwrap().failures = 9;
        // A new referrer's address takes the place of the one that failed most.
        assert!(c.add(addr(50_000), member(99)));
        assert_eq!(c.len(), MAX_CANDIDATES);
        assert!(c.get_mut(&addr(17)).is_none());
        // Local addresses fill the table and then stay.
        let mut local = 60_000;
        while c.len() < MAX_CANDIDATES || c.iter().any(|(_, x)| x.source != Source::Local) {
            c.add(addr(local), Source::Local);
            local += 1;
        }
        assert!(!c.add(addr(1_000_000), member(5)));
        assert!(!c.add(addr(1_000_001), Source::Local));
        assert_eq!(c.len(), MAX_CANDIDATES);
        assert!(c.per_referrer.is_empty());
    }
}
