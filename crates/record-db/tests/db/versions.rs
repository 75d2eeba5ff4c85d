//! Several versions of one record reaching a replica together: the replica ends with the
//! greatest valid one, as a replica that got them one at a time does.

use std::time::Duration;

use peergroup_identity::Timestamp;
use peergroup_record_db::store::MemoryStore;
use peergroup_record_db::{ChangeKind, Database, Record, RecordId};

use crate::support::*;

fn now() -> Timestamp {
    t0().saturating_add(HOUR)
}

/// Version `version` of Bob's record `nonce`, made by `by` (Bob or another member).
fn version(g: &Group, by: &Member, nonce: u8, version: u32) -> Record {
    let bob = g.bob.peer().clone();
    let serial = g.bob.chain.leaf().serial().to_vec();
    forge(g.group(), by, |r| {
        r.creator = bob.clone();
        r.id = RecordId::derive(&bob, [nonce; 8]);
        r.security.creator_serial = serial;
        r.version = version;
        if version > 1 {
            r.modified_by = Some(by.peer().clone());
            r.last_modified = t0().saturating_add(Duration::from_secs(u64::from(version)));
        }
        r.payload = format!("v{version}").into_bytes();
    })
}

/// The stored version of every record, by id.
fn stored(db: &Database<MemoryStore>) -> Vec<(RecordId, u32)> {
    let mut out = Vec::new();
    db.for_each(&mut |r| out.push((r.id, r.version))).unwrap();
    out.sort();
    out
}

/// Versions held back for an unknown signer are retried together when its membership
/// record arrives: the greatest of each record is kept, whatever order they come back in
/// (the last one staged used to win).
#[test]
fn retried_versions_keep_the_greatest() {
    let g = Group::new();
    let mut author = g.replica();
    let membership = author
        .publish_membership(g.bob.signer(), &g.bob.chain, now())
        .unwrap()
        .unwrap()
        .record;
    let mut db = g.bare_replica();
    // Eight records, versions 3 first, then versions 2, each in its own batch: all held.
    for v in [3, 2] {
        let batch: Vec<Record> = (0..8).map(|n| version(&g, &g.bob, n, v)).collect();
        let report = db.apply(batch, now()).unwrap();
        assert_eq!(report.deferred, 8, "{report:?}");
    }
    let report = db.apply(vec![membership.clone()], now()).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let expected: Vec<(RecordId, u32)> = {
        let mut e: Vec<_> = (0..8)
            .map(|n| (RecordId::derive(g.bob.peer(), [n; 8]), 3))
            .chain([(membership.id, 1)])
            .collect();
        e.sort();
        e
    };
    assert_eq!(stored(&db), expected);
    // The application hears of each record once, as added, with its greatest version.
    let data: Vec<_> = report
        .changes
        .iter()
        .filter(|c| c.record.id != membership.id)
        .collect();
    assert_eq!(data.len(), 8, "{data:?}");
    assert!(
        data.iter()
            .all(|c| c.kind == ChangeKind::Added && c.record.version == 3),
        "{data:?}"
    );
    assert!(report.replaced.is_empty(), "{:?}", report.replaced);
    assert_eq!(report.accepted.len(), 9);
}
