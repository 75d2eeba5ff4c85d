//! Memos of pure, costly functions of bytes: a membership record's certificate chain parsed
//! from its payload, and a chain validated for a group. Each is keyed by the SHA-256 of its
//! whole input, so a hit is the result the function would give again; only successes are
//! kept. A replica meets one membership payload several times (validation, the member list,
//! the application's view), and replicas in one process (the simulator's thousands) meet the
//! same ones: each is parsed and validated once while it is remembered.
//!
//! Bounded: at most [`MAX_MEMO_ENTRIES`] results each, the oldest forgotten first, whatever
//! peers send (a chain is a few KiB).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use peergroup_credential_roles::CertChain;
use peergroup_identity::{PeerName, sha256};

use crate::members::MemberCert;

/// Most results each memo holds.
pub const MAX_MEMO_ENTRIES: usize = 1024;

/// Results by the SHA-256 of their input, the oldest forgotten first.
pub(crate) struct Memo<V> {
    inner: Mutex<Entries<V>>,
}

struct Entries<V> {
    by_key: HashMap<[u8; 32], V>,
    order: VecDeque<[u8; 32]>,
}

impl<V: Clone> Memo<V> {
    fn new() -> Self {
        Memo {
            inner: Mutex::new(Entries {
                by_key: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The result for `key`, computed by `f` unless remembered (an error is not).
    pub(crate) fn get_or<E>(
        &self,
        key: [u8; 32],
        f: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(v) = self.lock().by_key.get(&key) {
            return Ok(v.clone());
        }
        // Computed outside the lock: two threads may both compute it, once each.
        let v = f()?;
        let mut m = self.lock();
        if m.by_key.insert(key, v.clone()).is_none() {
            m.order.push_back(key);
            while m.order.len() > MAX_MEMO_ENTRIES {
                if let Some(old) = m.order.pop_front() {
                    m.by_key.remove(&old);
                }
            }
        }
        Ok(v)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_key.len()
    }
}

/// Membership payloads' chains, by the payload's hash.
pub(crate) static PARSED_CHAINS: LazyLock<Memo<CertChain>> = LazyLock::new(Memo::new);

/// Chains validated for a group, by the hash of the group and the chain's certificates.
pub(crate) static VALIDATED_CHAINS: LazyLock<Memo<Arc<MemberCert>>> = LazyLock::new(Memo::new);

/// The key of `chain` validated for `group`.
pub(crate) fn chain_key(group: &PeerName, chain: &CertChain) -> [u8; 32] {
    let group = group.to_string();
    let mut input = Vec::with_capacity(group.len() + 2048);
    input.extend_from_slice(&(group.len() as u64).to_be_bytes());
    input.extend_from_slice(group.as_bytes());
    for cert in chain.certificates() {
        input.extend_from_slice(&(cert.der().len() as u64).to_be_bytes());
        input.extend_from_slice(cert.der());
    }
    sha256(&input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_remembers_successes_only_and_at_most_its_bound() {
        let memo: Memo<u64> = Memo::new();
        let mut calls = 0;
        for round in 0..2 {
            for i in 0..(MAX_MEMO_ENTRIES as u64 + 100) {
                let key = sha256(&i.to_be_bytes());
                let v = memo.get_or(key, || {
                    calls += 1;
                    Ok::<_, ()>(i * 2)
                });
                assert_eq!(v, Ok(i * 2));
            }
            assert_eq!(memo.len(), MAX_MEMO_ENTRIES, "round {round}");
        }
        // Pushed past its bound, it forgot the oldest: the second round computed again.
        assert_eq!(calls, 2 * (MAX_MEMO_ENTRIES + 100));
        let newest = sha256(&(MAX_MEMO_ENTRIES as u64 + 99).to_be_bytes());
        assert_eq!(
            memo.get_or(newest, || Err("computed")),
            Ok((MAX_MEMO_ENTRIES as u64 + 99) * 2)
        );
        let fresh = sha256(b"fresh");
        assert_eq!(memo.get_or(fresh, || Err::<u64, _>("bad")), Err("bad"));
        assert_eq!(
            memo.get_or(fresh, || Ok::<_, &str>(7)),
            Ok(7),
            "an error was remembered"
        );
    }
}
