//! The merge rule is a join: commutative, associative, idempotent; and any delivery order,
//! with duplicates and any batching, of a random set of signed operations gives the same
//! replica.

use peergroup_record_db::merge::Replica;
use peergroup_record_db::{Record, RecordId};
use proptest::prelude::*;

use crate::support::*;

/// A small deterministic generator (proptest gives the seed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random signed operations on up to four records: creations, updates and deletes by the
/// creator or an admin, including conflicting versions with the same number.
pub(crate) fn operations(g: &Group, seed: u64) -> Vec<Record> {
    let mut rng = Rng(seed);
    let mut ops = Vec::new();
    let people = [&g.alice, &g.bob, &g.carol];
    for i in 0..1 + rng.below(4) {
        let creator = people[rng.below(3) as usize];
        let base = forge(g.group(), creator, |r| {
            r.id = RecordId::derive(creator.peer(), i.to_be_bytes());
            r.payload = format!("v1 of {i}").into_bytes();
        });
        ops.push(base.clone());
        for _ in 0..rng.below(6) {
            let by = if rng.below(2) == 0 { creator } else { &g.alice };
            let version = 2 + rng.below(3) as u32;
            let deleted = rng.below(5) == 0;
            let mut r = base.clone();
            r.version = version;
            r.modified_by = Some(by.peer().clone());
            r.last_modified = t0().saturating_add(std::time::Duration::from_secs(
                u64::from(version) * 10 + rng.below(3),
            ));
            r.security.modifier_serial = by.chain.leaf().serial().to_vec();
            r.flags = r.flags.with_deleted(deleted);
            if deleted {
                r.payload.clear();
            } else {
                r.payload = format!("v{version} by {} #{}", by.peer(), rng.next()).into_bytes();
            }
            ops.push(resign(g.group(), by, r));
        }
    }
    ops
}

fn replica_of(ops: &[Record]) -> Replica {
    let mut r = Replica::new();
    for op in ops {
        r.apply(op.clone());
    }
    r
}

pub(crate) fn group() -> &'static Group {
    static G: std::sync::OnceLock<Group> = std::sync::OnceLock::new();
    G.get_or_init(Group::new)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn merge_is_commutative_associative_idempotent(seed in any::<u64>(), split in any::<[u8; 3]>()) {
        let g = group();
        let ops = operations(g, seed);
        let part = |k: u8| -> Vec<Record> { ops.iter().enumerate().filter(|(i, _)| (*i as u8).wrapping_mul(31).wrapping_add(k).is_multiple_of(3)).map(|(_, r)| r.clone()).collect() };
        let (a, b, c) = (replica_of(&part(split[0])), replica_of(&part(split[1])), replica_of(&part(split[2])));
        let mut ab = a.clone(); ab.merge(b.clone());
        let mut ba = b.clone(); ba.merge(a.clone());
        prop_assert_eq!(&ab, &ba);
        let mut ab_c = ab.clone(); ab_c.merge(c.clone());
        let mut bc = b.clone(); bc.merge(c.clone());
        let mut a_bc = a.clone(); a_bc.merge(bc);
        prop_assert_eq!(&ab_c, &a_bc);
        let mut aa = a.clone(); aa.merge(a.clone());
        prop_assert_eq!(&aa, &a);
    }

    #[test]
    fn any_delivery_order_converges(seed in any::<u64>(), order in proptest::collection::vec(any::<u32>(), 1..60), cuts in proptest::collection::vec(1usize..8, 1..10)) {
        let g = group();
        let ops = operations(g, seed);
        // Every operation at least once, plus duplicates, in a random order.
        let mut delivery: Vec<Record> = ops.clone();
        delivery.extend(order.iter().map(|i| ops[*i as usize % ops.len()].clone()));
        let mut keyed: Vec<(u32, Record)> = delivery.into_iter().enumerate().map(|(i, r)| (order.get(i % order.len()).copied().unwrap_or(0).rotate_left(i as u32), r)).collect();
        keyed.sort_by_key(|(k, _)| *k);
        let delivery: Vec<Record> = keyed.into_iter().map(|(_, r)| r).collect();

        let now = t0().saturating_add(HOUR);
        let mut in_order = g.replica();
        in_order.apply(ops.clone(), now).unwrap();
        let mut shuffled = g.replica();
        let mut rest = delivery.as_slice();
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            let report = shuffled.apply(rest[..n].to_vec(), now).unwrap();
            prop_assert!(report.rejected.is_empty(), "{:?}", report.rejected);
            rest = &rest[n..];
            i += 1;
        }
        prop_assert_eq!(in_order.digest(), shuffled.digest());
        let model = replica_of(&ops);
        prop_assert_eq!(shuffled.len(), model.len());
        for r in model.iter() {
            let stored = shuffled.get_any(r.id).unwrap();
            prop_assert_eq!(stored.as_ref(), Some(r));
        }
    }
}
