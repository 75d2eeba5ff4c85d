//! Our addresses as other members see them (reflexive addresses: behind a NAT, its
//! mappings), told by the servers we connect to. One member's word is not enough: a member
//! could name any address, and we would advertise it for others to dial. An address is
//! published once [`OBSERVED_CONFIRMATIONS`] different members reported it; at most
//! [`MAX_OBSERVED`] are kept, the most recently confirmed first.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use peergroup_identity::PeerName;

/// Members that must report the same address before it is published.
pub const OBSERVED_CONFIRMATIONS: usize = 2;
/// Observed addresses published at most.
pub const MAX_OBSERVED: usize = 4;
/// Addresses waiting for confirmation at most (the oldest go first).
pub const MAX_OBSERVED_PENDING: usize = 16;

/// Observed addresses: confirmed ones, and those waiting for a second reporter.
#[derive(Debug, Default)]
pub(super) struct Observed {
    /// Confirmed, most recent first.
    confirmed: Vec<SocketAddr>,
    /// Reported, not yet confirmed, oldest first, with who reported them.
    pending: Vec<(SocketAddr, BTreeSet<PeerName>)>,
}

impl Observed {
    /// Notes that `by` saw us at `addr`. Returns whether the confirmed set changed.
    pub(super) fn note(&mut self, addr: SocketAddr, by: &PeerName) -> bool {
        if let Some(i) = self.confirmed.iter().position(|a| *a == addr) {
            // Confirmed again: the most recent now.
            let a = self.confirmed.remove(i);
            self.confirmed.insert(0, a);
            return false;
        }
        let i = match self.pending.iter().position(|(a, _)| *a == addr) {
            Some(i) => i,
            None => {
                if self.pending.len() == MAX_OBSERVED_PENDING {
                    self.pending.remove(0);
                }
                self.pending.push((addr, BTreeSet::new()));
                self.pending.len() - 1
            }
        };
        self.pending[i].1.insert(by.clone());
        if self.pending[i].1.len() < OBSERVED_CONFIRMATIONS {
            return false;
        }
        self.pending.remove(i);
        self.confirmed.insert(0, addr);
        self.confirmed.truncate(MAX_OBSERVED);
        true
    }

    /// The confirmed addresses, most recent first.
    pub(super) fn confirmed(&self) -> &[SocketAddr] {
        &self.confirmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerName {
        let key = peergroup_identity::KeyPair::from_test_seed(u64::from(n));
        PeerName::new(
            &key.public(),
            peergroup_identity::Classifier::new("t").unwrap(),
        )
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([203, 0, 113, 7], port))
    }

    #[test]
    fn one_reporter_is_not_enough_two_are() {
        let mut o = Observed::default();
        assert!(!o.note(addr(1), &peer(1)));
        assert!(
            !o.note(addr(1), &peer(1)),
            "the same member twice is one word"
        );
        assert!(o.confirmed().is_empty());
        assert!(o.note(addr(1), &peer(2)));
        assert_eq!(o.confirmed(), &[addr(1)]);
        assert!(!o.note(addr(1), &peer(3)), "already published");
    }

    #[test]
    fn confirmed_and_pending_addresses_are_bounded() {
        let mut o = Observed::default();
        for port in 0..(MAX_OBSERVED as u16 + 3) {
            o.note(addr(port), &peer(1));
            assert!(o.note(addr(port), &peer(2)));
        }
        assert_eq!(o.confirmed().len(), MAX_OBSERVED);
        assert_eq!(
            o.confirmed()[0],
            addr(MAX_OBSERVED as u16 + 2),
            "most recent first"
        );
        // A member naming many addresses fills only the pending list, which stays bounded,
        // and confirms nothing alone.
        for port in 1000..1100 {
            assert!(!o.note(addr(port), &peer(9)));
        }
        assert!(o.pending.len() <= MAX_OBSERVED_PENDING);
        assert_eq!(o.confirmed().len(), MAX_OBSERVED);
    }
}
