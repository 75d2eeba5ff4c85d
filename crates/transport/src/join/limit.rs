//! Online guessing limits, sans-IO: at most `max` password attempts per key in any sliding
//! window, where a key is a joiner identity or a source address. The caller passes the time.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use peergroup_identity::PeerName;

/// The window of the limit: one minute.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// Keys tracked at most. Beyond (a flood from very many addresses and identities inside one
/// window) new keys are refused until old ones age out: memory stays bounded, and the
/// limiter fails closed.
pub(crate) const MAX_TRACKED: usize = 65_536;

/// What attempts are counted by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum LimitKey {
    /// A joiner identity.
    Peer(PeerName),
    /// A source address: an IPv4 address, or the /64 prefix of an IPv6 address (one host
    /// usually holds a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
    Source(IpAddr),
}

impl LimitKey {
    /// The key of a source address.
    pub(crate) fn source(ip: IpAddr) -> LimitKey {
        LimitKey::Source(crate::endpoint::pending::source_key(ip))
    }
}

/// Counts attempts per key in a sliding window.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    max: u32,
    window: Duration,
    /// When each key's attempts inside the window were made, oldest first.
    seen: HashMap<LimitKey, VecDeque<Instant>>,
}

impl RateLimiter {
    /// At most `max` attempts per key in any `window` (0 refuses every attempt).
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        RateLimiter {
            max,
            window,
            seen: HashMap::new(),
        }
    }

    /// Changes the limit (attempts already counted stay counted).
    pub(crate) fn set_max(&mut self, max: u32) {
        self.max = max;
    }

    /// Records one attempt under every key in `keys` at `now`, unless one of them already
    /// has `max` attempts in the window: then nothing is recorded and the wait until that
    /// key has room again is returned.
    pub(crate) fn attempt(&mut self, keys: &[LimitKey], now: Instant) -> Result<(), Duration> {
        if self.seen.len() >= MAX_TRACKED {
            self.prune(now);
        }
        let mut wait = Duration::ZERO;
        let mut new_keys = 0;
        for key in keys {
            let Some(times) = self.seen.get_mut(key) else {
                new_keys += 1;
                if self.max == 0 {
                    wait = wait.max(self.window);
                }
                continue;
            };
            expire(times, now, self.window);
            if times.len() >= self.max as usize {
                let oldest = times.front().copied().unwrap_or(now);
                let free_at = oldest + self.window;
                wait = wait.max(
                    free_at
                        .saturating_duration_since(now)
                        .max(Duration::from_secs(1)),
                );
            }
        }
        if wait.is_zero() && self.seen.len() + new_keys > MAX_TRACKED {
            wait = self.window;
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for key in keys {
            self.seen.entry(key.clone()).or_default().push_back(now);
        }
        Ok(())
    }

    /// Forgets attempts older than the window, and keys left with none.
    pub(crate) fn prune(&mut self, now: Instant) {
        let window = self.window;
        self.seen.retain(|_, times| {
            expire(times, now, window);
            !times.is_empty()
        });
    }

    /// Keys with attempts in memory.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.seen.len()
    }
}

fn expire(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peergroup_identity::{Classifier, KeyPair};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn peer(seed: u64) -> LimitKey {
        LimitKey::Peer(PeerName::new(
            &KeyPair::from_test_seed(seed).public(),
            Classifier::new("p").unwrap(),
        ))
    }

    fn ip(last: u8) -> LimitKey {
        LimitKey::source(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
    }

    #[test]
    fn the_sixth_attempt_in_a_minute_is_refused_and_allowed_after_it() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(5, WINDOW);
        let keys = [peer(1), ip(1)];
        for i in 0..5 {
            let at = t0 + Duration::from_secs(i * 10);
            assert_eq!(limiter.attempt(&keys, at), Ok(()), "attempt {}", i + 1);
        }
        let sixth = t0 + Duration::from_secs(50);
        assert_eq!(limiter.attempt(&keys, sixth), Err(Duration::from_secs(10)));
        // Refusals are not counted: once the first attempt is a minute old, one more fits.
        assert_eq!(limiter.attempt(&keys, t0 + WINDOW), Ok(()));
        assert!(limiter.attempt(&keys, t0 + WINDOW).is_err());
    }

    #[test]
    fn identity_and_address_are_limited_separately() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(5, WINDOW);
        for i in 0..5 {
            // A new identity every time, from one address.
            assert!(limiter.attempt(&[peer(i), ip(1)], t0).is_ok());
        }
        assert!(
            limiter.attempt(&[peer(99), ip(1)], t0).is_err(),
            "per address"
        );
        for i in 0..5 {
            // One identity from new addresses.
            assert!(limiter.attempt(&[peer(50), ip(10 + i as u8)], t0).is_ok());
        }
        assert!(
            limiter.attempt(&[peer(50), ip(99)], t0).is_err(),
            "per identity"
        );
        // A refused attempt recorded nothing for the fresh key either.
        assert!(limiter.attempt(&[peer(98), ip(99)], t0).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(LimitKey::source(a.into()), LimitKey::source(b.into()));
        assert_ne!(LimitKey::source(a.into()), LimitKey::source(c.into()));
        let mapped: Ipv6Addr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(LimitKey::source(mapped.into()), ip(1));
    }

    #[test]
    fn zero_refuses_everything_and_memory_is_pruned() {
        let t0 = Instant::now();
        let mut none = RateLimiter::new(0, WINDOW);
        assert!(none.attempt(&[peer(1)], t0).is_err());
        let mut limiter = RateLimiter::new(1, WINDOW);
        for i in 0..10 {
            limiter.attempt(&[peer(i)], t0).unwrap();
        }
        assert_eq!(limiter.tracked(), 10);
        limiter.prune(t0 + WINDOW);
        assert_eq!(limiter.tracked(), 0);
        limiter.set_max(0);
        assert!(limiter.attempt(&[peer(1)], t0 + WINDOW).is_err());
    }
}
