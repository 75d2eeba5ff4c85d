//! Keeping the mesh healthy: candidates, connecting, dropping the least useful neighbor,
//! shuffling (which heals partitions), anti-entropy, timeouts.

use std::net::SocketAddr;
use std::time::Duration;

use peergroup_identity::PeerName;
use peergroup_record_db::Record;
use peergroup_record_db::store::Store;

use super::candidates::Source;
use super::{ConnId, Core, Event, LinkEnd, Output, Status};
use crate::presence::Presence;
use crate::time::{Mono, Now};

/// A link younger than this is not judged on its usefulness yet.
const GRACE: Duration = Duration::from_secs(60);

impl<S: Store> Core<S> {
    /// Adds addresses that may reach members, from a source this node trusts (an
    /// invitation, mDNS, or given by the user). See [`super::candidates`] for the bounds.
    pub fn add_candidates(&mut self, addrs: &[SocketAddr]) {
        for a in addrs {
            if !self.is_own_addr(a) {
                self.neighbors.candidates.add(*a, Source::Local);
            }
        }
    }

    /// Adds addresses another member told us of (referrals, its listen addresses, presence),
    /// within its share.
    pub(crate) fn add_referred(&mut self, addrs: &[SocketAddr], from: &PeerName) {
        for a in addrs {
            if !self.is_own_addr(a) {
                self.neighbors
                    .candidates
                    .add(*a, Source::Member(from.clone()));
            }
        }
    }

    /// Dials `addr` now (explicit connect), whatever its backoff.
    pub fn connect_to(&mut self, addr: SocketAddr, now: Now) {
        self.neighbors.online = true;
        self.add_candidates(&[addr]);
        if let Some(c) = self.neighbors.candidates.get_mut(&addr) {
            c.next = Mono::default();
        }
        self.dial(addr, now);
    }

    fn dial(&mut self, addr: SocketAddr, now: Now) {
        if self.closed
            || !self.neighbors.online
            || self.neighbors.dialing.contains_key(&addr)
            || self.neighbors.is_connected_to(addr)
        {
            return;
        }
        self.neighbors.dialing.insert(addr, now.mono);
        self.outputs.push_back(Output::Connect { addr });
    }

    /// A connection attempt failed.
    pub fn handle_connect_failed(&mut self, addr: SocketAddr, reason: &str, now: Now) {
        self.neighbors.dialing.remove(&addr);
        self.back_off(addr, now);
        self.events.push_back(Event::ConnectFailed {
            addr,
            reason: reason.to_owned(),
        });
        self.check_alone(now);
    }

    /// Not again before a backoff that doubles with each failure in a row.
    fn back_off(&mut self, addr: SocketAddr, now: Now) {
        if let Some(c) = self.neighbors.candidates.get_mut(&addr) {
            c.failures = c.failures.saturating_add(1);
            let backoff = self
                .config
                .retry_backoff
                .saturating_mul(1 << c.failures.min(5));
            c.next = now.mono.saturating_add(backoff);
        }
    }

    /// A node we dialed (at `addr`) was full and refused us with referrals: it is not
    /// dialed again before a backoff, as a failed dial, and while this node is short of
    /// neighbors it dials the referrals now rather than at its next maintenance round (a
    /// joiner its busy inviter refused waited 5 s for it: the lonely round's interval).
    pub(crate) fn refused_busy(&mut self, addr: Option<SocketAddr>, now: Now) {
        if let Some(addr) = addr {
            self.back_off(addr, now);
        }
        let links = self.neighbors.established_count() + self.neighbors.pending_count();
        if links < self.config.ideal_neighbors {
            self.neighbors.next_maintenance = self.neighbors.next_maintenance.min(now.mono);
        }
    }

    /// Nobody reachable: a member with a database from before starts listening anyway, so the
    /// group can come back after everyone went offline.
    fn check_alone(&mut self, now: Now) {
        let alone = self.neighbors.is_empty() && self.neighbors.dialing.is_empty();
        let all_failed = self
            .neighbors
            .candidates
            .iter()
            .all(|(_, c)| c.failures > 0 && c.next > now.mono);
        if alone && all_failed && !self.status.listening && !self.db.is_empty() {
            let s = Status {
                listening: true,
                ..self.status
            };
            self.set_status(s);
        }
    }

    /// Listen addresses of a few neighbors, for a node we refuse or leave.
    pub(crate) fn referrals(&mut self, except: Option<ConnId>) -> Vec<SocketAddr> {
        let mut all: Vec<SocketAddr> = self
            .neighbors
            .established()
            .filter(|(c, _)| Some(*c) != except)
            .flat_map(|(_, l)| l.listen.iter().copied())
            .collect();
        self.rng.shuffle(&mut all);
        all.truncate(self.config.max_referrals);
        all
    }

    /// Learns addresses from presence records.
    pub(crate) fn learn_addresses(&mut self, record: &Record) {
        if record.creator == *self.peer() {
            return;
        }
        if let Some(p) = Presence::of(record)
            && p.node != self.node
        {
            let from = record.creator.clone();
            self.add_referred(&p.addresses, &from);
        }
    }

    /// Mesh maintenance: connect up to the ideal size, drop the least useful neighbor above it,
    /// and now and then add a random neighbor so the mesh keeps mixing.
    pub(crate) fn maintain(&mut self, now: Now) {
        let established = self.neighbors.established_count();
        let pending = self.neighbors.pending_count();
        let ideal = self.config.ideal_neighbors;
        if established + pending < ideal {
            for _ in 0..ideal - established - pending {
                if !self.dial_random(now) {
                    break;
                }
            }
        } else if established > ideal {
            self.drop_least_useful(now);
        } else if established == ideal
            && pending == 0
            && self.rng.chance(self.config.shuffle_probability)
        {
            self.dial_random(now);
        }
        for l in self.neighbors.links_mut() {
            l.utility -= l.utility / 8;
        }
        let base = if established == 0 {
            self.config.lonely_maintenance_interval
        } else {
            self.config.maintenance_interval
        };
        let jitter = Duration::from_millis(self.rng.below(base.as_millis() as u64 / 4 + 1));
        self.neighbors.next_maintenance = now.mono.saturating_add(base + jitter);
        self.want_auto_punch(now);
        self.check_alone(now);
    }

    /// Dials a random candidate that is not connected, not being dialed and not backing off.
    fn dial_random(&mut self, now: Now) -> bool {
        let mut ready: Vec<SocketAddr> = self
            .neighbors
            .candidates
            .iter()
            .filter(|(a, c)| {
                c.next <= now.mono
                    && !self.neighbors.dialing.contains_key(a)
                    && !self.neighbors.is_connected_to(**a)
            })
            .map(|(a, _)| *a)
            .collect();
        if ready.is_empty() {
            return false;
        }
        ready.sort();
        let pick = ready[self.rng.below(ready.len() as u64) as usize];
        self.dial(pick, now);
        true
    }

    fn drop_least_useful(&mut self, now: Now) {
        let victim = self
            .neighbors
            .established()
            .filter(|(c, l)| {
                !self.syncs.is_running(*c) && now.mono.duration_since(l.opened) >= GRACE
            })
            // A lazy link before an eager one: an eager link is a branch of the tree, and
            // dropping it cuts off what hangs below it until pulls find the way again.
            .min_by_key(|(c, l)| (self.broadcast.is_eager(*c), l.utility, *c))
            .map(|(c, _)| c);
        if let Some(conn) = victim {
            self.drop_link(conn, LinkEnd::LeastUseful, now);
        }
    }

    /// Anti-entropy: sync with one random neighbor.
    pub(crate) fn anti_entropy(&mut self, now: Now) {
        let idle: Vec<ConnId> = self
            .neighbors
            .established()
            .filter(|(c, _)| !self.syncs.is_running(*c))
            .map(|(c, _)| c)
            .collect();
        if !idle.is_empty() {
            let conn = idle[self.rng.below(idle.len() as u64) as usize];
            self.start_sync(conn, now);
        }
        let jitter = Duration::from_millis(
            self.rng
                .below(self.config.anti_entropy_interval.as_millis() as u64 / 4 + 1),
        );
        self.syncs.next_anti_entropy = now
            .mono
            .saturating_add(self.config.anti_entropy_interval + jitter);
    }

    /// Closes links to members whose certificates have expired (a member's rights end at its
    /// certificate's end, whether or not it is still connected then).
    pub(crate) fn expire_links(&mut self, now: Now) {
        let expired = self.neighbors.rights_ended(now.wall);
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            expired,
            self.neighbors
                .iter()
                .filter(|(_, l)| l.expires.is_some_and(|e| e <= now.wall))
                .map(|(c, _)| c)
                .collect::<Vec<_>>(),
            "the rights table disagrees with the links"
        );
        // Nothing more is sent to it, not even a goodbye.
        for conn in expired {
            self.drop_link(conn, LinkEnd::CertificateExpired, now);
        }
    }

    /// Closes handshakes that take too long and abandons stalled syncs.
    pub(crate) fn expire_handshakes_and_syncs(&mut self, now: Now) {
        let late = self.neighbors.late_handshakes(now.mono);
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            late,
            self.neighbors
                .iter()
                .filter(|(_, l)| {
                    l.phase != super::neighbors::Phase::Established
                        && l.opened.saturating_add(self.config.handshake_timeout) <= now.mono
                })
                .map(|(c, _)| c)
                .collect::<Vec<_>>(),
            "the handshake table disagrees with the links"
        );
        for conn in late {
            self.drop_link(conn, LinkEnd::HandshakeTimeout, now);
        }
        let stalled = self.syncs.stalled(now.mono);
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            stalled,
            self.syncs
                .iter_running()
                .filter(|(_, s)| {
                    s.progress.saturating_add(self.config.sync_stall_timeout) <= now.mono
                })
                .map(|(c, _)| c)
                .collect::<Vec<_>>(),
            "the stall table disagrees with the sessions"
        );
        for conn in stalled {
            // A sync cannot resume after a lost message: start a new one.
            self.abandon_sync(conn, "sync stalled", now);
        }
    }
}
