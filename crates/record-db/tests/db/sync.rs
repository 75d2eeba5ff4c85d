//! Synchronising replicas: security records first, then data; any two replicas end equal.

use peergroup_record_db::merge::Replica;
use peergroup_record_db::reserved::GroupProperties;
use peergroup_record_db::store::Store;
use peergroup_record_db::sync::{SyncMessage, SyncSession};
use peergroup_record_db::{Database, Record};
use proptest::prelude::*;

use crate::merge_laws::{group, operations};
use crate::support::*;

/// Runs a sync between two replicas in memory; returns the reconcile bytes and round trips.
pub(crate) fn sync<S: Store, T: Store>(a: &mut Database<S>, b: &mut Database<T>) -> (u64, u64) {
    let now = t0().saturating_add(HOUR);
    let mut sa = SyncSession::initiator();
    let mut sb = SyncSession::responder();
    for _ in 0..10_000 {
        let mut moved = false;
        while let Some(m) = sa.poll_transmit(a).unwrap() {
            let m: SyncMessage = m;
            sb.handle(m, b).unwrap();
            let got = sb.take_received();
            if !got.is_empty() {
                let report = b.apply(got, now).unwrap();
                assert!(
                    report.rejected.is_empty() && report.deferred == 0,
                    "{report:?}"
                );
            }
            moved = true;
        }
        while let Some(m) = sb.poll_transmit(b).unwrap() {
            sa.handle(m, a).unwrap();
            let got = sa.take_received();
            if !got.is_empty() {
                let report = a.apply(got, now).unwrap();
                assert!(
                    report.rejected.is_empty() && report.deferred == 0,
                    "{report:?}"
                );
            }
            moved = true;
        }
        if sa.is_done() && sb.is_done() {
            // Each side was told how many records to expect (an upper bound: a record gone
            // from the sender since its snapshot is skipped), and got what the other sent.
            for (mine, theirs) in [(&sa, &sb), (&sb, &sa)] {
                let received = mine.record_counts().1;
                assert!(received <= mine.records_expected(), "more than expected");
                assert_eq!(received, theirs.record_counts().0);
            }
            let s = sa.reconcile_stats();
            return (
                s.bytes_sent + s.bytes_received,
                s.messages_sent + s.messages_received,
            );
        }
        assert!(moved, "sync stalled");
    }
    panic!("sync did not finish");
}

#[test]
fn a_bare_replica_catches_up_security_first() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    // The full replica knows members only from their membership records.
    let mut full = g.bare_replica();
    full.learn_member(&g.alice.chain).unwrap();
    full.set_properties(
        g.alice.signer(),
        &GroupProperties::new("Synced", g.alice.peer().clone()),
        now,
    )
    .unwrap();
    for m in [&g.alice, &g.bob, &g.carol] {
        full.publish_membership(m.signer(), &m.chain, now).unwrap();
    }
    for i in 0..50u32 {
        let who = [&g.bob, &g.carol][i as usize % 2];
        full.create(
            who.signer(),
            new_record(&i.to_be_bytes(), t0().saturating_add(DAY)),
            now,
        )
        .unwrap();
    }
    // The fresh replica knows nothing but the group root: without the memberships first,
    // every data record would have to be deferred (sync() asserts none was).
    let mut fresh = g.bare_replica();
    sync(&mut full, &mut fresh);
    assert_eq!(fresh.digest(), full.digest());
    assert_eq!(fresh.properties().friendly_name, "Synced");
    assert_eq!(fresh.len(), 54);
    // A second sync of equal replicas moves no records and one round trip per class.
    let (bytes, messages) = sync(&mut fresh, &mut full);
    assert!(messages <= 4, "{messages} messages");
    assert!(
        bytes < 2048,
        "{bytes} bytes to learn there is nothing to do"
    );
}

#[test]
fn differences_cost_bytes_not_the_database() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let mut a = g.replica();
    for i in 0..2000u32 {
        a.create(
            g.bob.signer(),
            new_record(&i.to_be_bytes(), t0().saturating_add(DAY)),
            now,
        )
        .unwrap();
    }
    let mut b = g.replica();
    sync(&mut a, &mut b);
    assert_eq!(a.digest(), b.digest());
    // One new record on each side.
    a.create(
        g.bob.signer(),
        new_record(b"only a", t0().saturating_add(DAY)),
        now,
    )
    .unwrap();
    b.create(
        g.carol.signer(),
        new_record(b"only b", t0().saturating_add(DAY)),
        now,
    )
    .unwrap();
    let (bytes, _) = sync(&mut a, &mut b);
    assert_eq!(a.digest(), b.digest());
    assert!(
        bytes < 2048,
        "{bytes} reconcile bytes for two differences among 2000 records"
    );
}

fn replica_with(ops: &[Record]) -> Database<peergroup_record_db::store::MemoryStore> {
    let mut db = group().replica();
    db.apply(ops.to_vec(), t0().saturating_add(HOUR)).unwrap();
    db
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Against the model: after a sync both replicas hold exactly the merge of both.
    #[test]
    fn any_two_replicas_reconcile_to_the_same_set(seed in any::<u64>(), mask_a in any::<u64>(), mask_b in any::<u64>()) {
        let g = group();
        let ops = operations(g, seed);
        let pick = |mask: u64| -> Vec<Record> { ops.iter().enumerate().filter(|(i, _)| mask >> (i % 64) & 1 == 1).map(|(_, r)| r.clone()).collect() };
        let (in_a, in_b) = (pick(mask_a), pick(mask_b));
        let mut a = replica_with(&in_a);
        let mut b = replica_with(&in_b);
        sync(&mut a, &mut b);
        let mut model = Replica::new();
        for r in in_a.iter().chain(&in_b) {
            model.apply(r.clone());
        }
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(a.len(), model.len());
        for r in model.iter() {
            let stored = a.get_any(r.id).unwrap();
            prop_assert_eq!(stored.as_ref(), Some(r));
        }
    }
}
