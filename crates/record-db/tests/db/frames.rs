//! A record a group accepts is one that replicates: no group may allow records larger than
//! a transport frame carries, and no sync message is larger than a frame.

use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
use peergroup_record_db::reserved::{
    FRAME_LIMIT, GroupProperties, MAX_RECORD_SIZE_LIMIT, RECORD_OVERHEAD_ALLOWANCE,
};
use peergroup_record_db::store::{Batch, MemoryStore, Store};
use peergroup_record_db::sync::{BYTES_PER_MESSAGE, SyncClass, SyncMessage, SyncSession};
use peergroup_record_db::{Database, Error, Record, RecordId, RecordType, ValidationError, codec};

use crate::support::*;

fn properties(g: &Group, max_record_size: u32) -> GroupProperties {
    let mut p = GroupProperties::new("Test group", g.alice.peer().clone());
    p.max_record_size = max_record_size;
    p
}

#[test]
fn properties_above_what_a_frame_carries_are_refused() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    assert_eq!(MAX_RECORD_SIZE_LIMIT as usize, FRAME_LIMIT - 64 * 1024);
    assert!(properties(&g, MAX_RECORD_SIZE_LIMIT).check().is_ok());
    let e = properties(&g, MAX_RECORD_SIZE_LIMIT + 1)
        .check()
        .unwrap_err();
    assert!(e.contains("transport frame"), "{e}");
    // The windows maximum is refused too.
    assert!(
        properties(&g, GroupProperties::MAX_MAX_RECORD_SIZE)
            .check()
            .is_err()
    );

    // Set here: refused as the caller's mistake, nothing stored.
    let mut db = g.replica();
    let err = db
        .set_properties(
            g.alice.signer(),
            &properties(&g, MAX_RECORD_SIZE_LIMIT + 1),
            now,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(ref m) if m.contains("16711680")),
        "{err}"
    );
    assert!(!db.has_properties());
    db.set_properties(
        g.alice.signer(),
        &properties(&g, MAX_RECORD_SIZE_LIMIT),
        now,
    )
    .unwrap();
    assert_eq!(db.properties().max_record_size, MAX_RECORD_SIZE_LIMIT);

    // Received: the record is refused with the reason.
    let forged = forge(g.group(), &g.alice, |r| {
        r.record_type = RecordType::GROUP_PROPERTIES;
        r.id = GroupProperties::record_id(g.alice.peer());
        r.payload = properties(&g, 60 * 1024 * 1024).to_payload();
    });
    let mut other = g.replica();
    let report = other.apply(vec![forged], now).unwrap();
    assert!(
        matches!(
            report.rejected.as_slice(),
            [(_, ValidationError::BadReservedPayload { kind: "group properties", reason })]
                if reason.contains("transport frame")
        ),
        "{:?}",
        report.rejected
    );
}

/// The longest peer name there is.
fn longest_peer(seed: u64) -> PeerName {
    let classifier = "c".repeat(Classifier::MAX_LEN);
    PeerName::new(
        &KeyPair::from_test_seed(seed).public(),
        Classifier::new(&classifier).unwrap(),
    )
}

#[test]
fn a_record_of_the_largest_size_fits_in_a_frame() {
    let creator = longest_peer(1);
    let last = Timestamp::from_millis(u64::MAX / 2);
    let r = Record {
        record_type: RecordType::PRESENCE,
        id: RecordId::derive(&creator, [0xff; 8]),
        version: u32::MAX,
        flags: Default::default(),
        creator,
        modified_by: Some(longest_peer(2)),
        attributes: String::new(),
        created: last,
        expires: last,
        last_modified: last,
        payload: vec![0xff; MAX_RECORD_SIZE_LIMIT as usize],
        security: peergroup_record_db::SecurityData {
            creator_serial: vec![0xff; 20],
            modifier_serial: vec![0xff; 20],
            signature: peergroup_identity::Signature::from_bytes([0xff; 64]),
        },
    };
    let overhead = codec::encoded_len(&r) - r.data_size();
    assert!(
        overhead <= 1024,
        "a record's fields besides its data: {overhead} bytes"
    );
    for message in [
        SyncMessage::Records {
            class: SyncClass::Data,
            records: vec![r.clone()],
        },
        SyncMessage::Records {
            class: SyncClass::Security,
            records: vec![r],
        },
    ] {
        let len = postcard::to_allocvec(&message).unwrap().len();
        assert!(len <= FRAME_LIMIT, "{len}");
        assert!(len <= MAX_RECORD_SIZE_LIMIT as usize + RECORD_OVERHEAD_ALLOWANCE as usize);
    }
}

#[test]
fn sync_messages_fit_in_a_frame() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let mut a = g.replica();
    a.set_properties(
        g.alice.signer(),
        &properties(&g, MAX_RECORD_SIZE_LIMIT),
        now,
    )
    .unwrap();
    let expires = now.saturating_add(DAY);
    let large = MAX_RECORD_SIZE_LIMIT as usize;
    for size in [900 * 1024, 900 * 1024, large, 200 * 1024, large, 10] {
        a.create(g.bob.signer(), new_record(&vec![7; size], expires), now)
            .unwrap();
    }
    for i in 0..300u32 {
        a.create(g.carol.signer(), new_record(&i.to_be_bytes(), expires), now)
            .unwrap();
    }
    let mut b = g.replica();
    let largest = sync_within_frames(&mut a, &mut b, now);
    assert_eq!(a.digest(), b.digest(), "every record went across");
    assert!(largest > large, "the largest records travelled: {largest}");
}

/// A record stored under an older, larger limit (no replica accepts it now) is not sent:
/// it would not fit in a frame.
#[test]
fn records_larger_than_any_group_allows_are_not_sent() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let legacy = forge(g.group(), &g.bob, |r| {
        r.payload = vec![1; FRAME_LIMIT + 1];
    });
    let mut store = MemoryStore::new();
    store
        .commit(&Batch {
            put: vec![legacy.clone()],
            ..Batch::default()
        })
        .unwrap();
    let mut a = g.replica_on(store);
    a.create(
        g.bob.signer(),
        new_record(b"small", now.saturating_add(DAY)),
        now,
    )
    .unwrap();
    let mut b = g.replica();
    sync_within_frames(&mut a, &mut b, now);
    assert_eq!(b.len(), 1, "the small record went across");
    assert!(b.get(legacy.id).unwrap().is_none());
}

/// Syncs `a` to `b`, checking every message `a` sends fits in a frame and that a message of
/// several records holds at most [`BYTES_PER_MESSAGE`]. Returns the largest message.
fn sync_within_frames<S: Store, T: Store>(
    a: &mut Database<S>,
    b: &mut Database<T>,
    now: Timestamp,
) -> usize {
    let mut sa = SyncSession::initiator();
    let mut sb = SyncSession::responder();
    let mut largest = 0;
    for _ in 0..10_000 {
        let mut moved = false;
        while let Some(m) = sa.poll_transmit(a).unwrap() {
            let len = postcard::to_allocvec(&m).unwrap().len();
            largest = largest.max(len);
            assert!(len <= FRAME_LIMIT, "a sync message of {len} bytes");
            if let SyncMessage::Records { records, .. } = &m
                && records.len() > 1
            {
                let bytes: usize = records.iter().map(codec::encoded_len).sum();
                assert!(
                    bytes <= BYTES_PER_MESSAGE,
                    "{} records, {bytes} bytes",
                    records.len()
                );
            }
            sb.handle(m, b).unwrap();
            let got = sb.take_received();
            if !got.is_empty() {
                let report = b.apply(got, now).unwrap();
                assert!(report.rejected.is_empty(), "{:?}", report.rejected);
            }
            moved = true;
        }
        while let Some(m) = sb.poll_transmit(b).unwrap() {
            sa.handle(m, a).unwrap();
            moved = true;
        }
        if sa.is_done() && sb.is_done() {
            break;
        }
        assert!(moved, "sync stalled");
    }
    assert!(sa.is_done() && sb.is_done());
    largest
}

/// The group's maximum record size binds records made here, when they are created or their
/// data changes; a received record is held to [`MAX_RECORD_SIZE_LIMIT`] only. Judging it by
/// the group's limit made replicas diverge: a record over a new, smaller limit was kept by
/// a replica that got it before the properties changed and refused by one that got it after.
#[test]
fn the_group_limit_binds_local_records_and_every_replica_keeps_received_ones() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let expires = now.saturating_add(DAY);
    let mut author = g.replica();
    let big = author
        .create(g.bob.signer(), new_record(&[7; 2000], expires), now)
        .unwrap()
        .record;
    let props = author
        .set_properties(g.alice.signer(), &properties(&g, 1024), now)
        .unwrap()
        .record;
    let mut before = g.replica();
    before.apply(vec![big.clone()], now).unwrap();
    before.apply(vec![props.clone()], now).unwrap();
    let mut after = g.replica();
    after.apply(vec![props], now).unwrap();
    assert_eq!(after.properties().max_record_size, 1024);
    let report = after.apply(vec![big.clone()], now).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(after.get(big.id).unwrap().as_ref(), Some(&big));
    assert_eq!(before.digest(), after.digest(), "replicas diverged");

    // Here, the group's limit binds new records and new data.
    let too_large = |e: Error| {
        matches!(
            e,
            Error::Invalid(ValidationError::TooLarge {
                size: 1025,
                max: 1024
            })
        )
    };
    let e = after
        .create(g.bob.signer(), new_record(&[0; 1025], expires), now)
        .unwrap_err();
    assert!(too_large(e));
    let e = after
        .create_many(g.bob.signer(), vec![new_record(&[0; 1025], expires)], now)
        .unwrap_err();
    assert!(too_large(e));
    let e = after
        .update(
            g.bob.signer(),
            big.id,
            peergroup_record_db::RecordUpdate {
                payload: Some(vec![1; 1025]),
                ..Default::default()
            },
            now,
        )
        .unwrap_err();
    assert!(too_large(e));
    // A change that leaves the data alone (a longer life, as an autorefresh makes) is not
    // refused for data stored under the older limit, nor is a delete.
    let longer = after
        .update(
            g.bob.signer(),
            big.id,
            peergroup_record_db::RecordUpdate {
                expires: Some(expires.saturating_add(HOUR)),
                ..Default::default()
            },
            now,
        )
        .unwrap()
        .record;
    assert_eq!(longer.payload.len(), 2000);
    let report = before.apply(vec![longer.clone()], now).unwrap();
    assert_eq!(report.accepted(), vec![longer]);
    after.delete(g.bob.signer(), big.id, now).unwrap();

    // A received record is refused only over what any group may allow.
    let huge = forge(g.group(), &g.bob, |r| {
        r.payload = vec![0; MAX_RECORD_SIZE_LIMIT as usize + 1];
    });
    let report = after.apply(vec![huge], now).unwrap();
    assert!(
        matches!(
            report.rejected.as_slice(),
            [(_, ValidationError::TooLarge { max, .. })] if *max == MAX_RECORD_SIZE_LIMIT as usize
        ),
        "{:?}",
        report.rejected
    );
}
