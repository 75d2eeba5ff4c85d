//! Every message of a sync is bounded: at most `MAX_SYNC_MESSAGE_BYTES`, except a `Records`
//! message carrying one larger record alone; a peer's message over the bounds ends the sync.

use peergroup_record_db::reconcile::{MAX_KEYS_PER_MESSAGE, Message, ReconcileError, Violation};
use peergroup_record_db::reserved::{GroupProperties, MAX_RECORD_SIZE_LIMIT};
use peergroup_record_db::store::Store;
use peergroup_record_db::sync::{
    BYTES_PER_MESSAGE, MAX_SYNC_MESSAGE_BYTES, RECORDS_PER_MESSAGE, SyncClass, SyncError,
    SyncMessage, SyncSession, SyncViolation,
};
use peergroup_record_db::{Database, codec};

use crate::support::*;

/// Syncs `a` with `b` (each applying what it receives), checking every message both send
/// against the bounds. Returns the largest message that is not one record alone.
fn sync_checked<S: Store, T: Store>(a: &mut Database<S>, b: &mut Database<T>) -> usize {
    let now = t0().saturating_add(HOUR);
    let mut sa = SyncSession::initiator();
    let mut sb = SyncSession::responder();
    let mut largest = 0;
    let mut check = |m: &SyncMessage| {
        let len = m.encoded_len();
        assert_eq!(len, postcard::to_allocvec(m).unwrap().len());
        match m {
            SyncMessage::Records { records, .. } if records.len() == 1 => {}
            _ => {
                assert!(
                    len <= MAX_SYNC_MESSAGE_BYTES,
                    "a sync message of {len} bytes"
                );
                largest = largest.max(len);
            }
        }
    };
    for _ in 0..10_000 {
        let mut moved = false;
        while let Some(m) = sa.poll_transmit(a).unwrap() {
            check(&m);
            sb.handle(m, b).unwrap();
            let got = sb.take_received();
            if !got.is_empty() {
                b.apply(got, now).unwrap();
            }
            moved = true;
        }
        while let Some(m) = sb.poll_transmit(b).unwrap() {
            check(&m);
            sa.handle(m, a).unwrap();
            let got = sa.take_received();
            if !got.is_empty() {
                a.apply(got, now).unwrap();
            }
            moved = true;
        }
        if sa.is_done() && sb.is_done() {
            return largest;
        }
        assert!(moved, "sync stalled");
    }
    panic!("sync did not finish");
}

#[test]
fn every_message_of_a_sync_fits_the_bound() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let mut a = g.replica();
    let mut p = GroupProperties::new("Test group", g.alice.peer().clone());
    p.max_record_size = MAX_RECORD_SIZE_LIMIT;
    a.set_properties(g.alice.signer(), &p, now).unwrap();
    let expires = now.saturating_add(DAY);
    for size in [700 * 1024, 400 * 1024, 2 * 1024 * 1024, 300 * 1024, 10] {
        a.create(g.bob.signer(), new_record(&vec![7; size], expires), now)
            .unwrap();
    }
    for i in 0..400u32 {
        a.create(g.carol.signer(), new_record(&i.to_be_bytes(), expires), now)
            .unwrap();
    }
    let mut b = g.replica();
    for i in 0..50u32 {
        b.create(g.bob.signer(), new_record(&i.to_le_bytes(), expires), now)
            .unwrap();
    }
    let largest = sync_checked(&mut a, &mut b);
    assert_eq!(a.digest(), b.digest(), "every record went across");
    assert!(
        largest > 700 * 1024,
        "records travelled together: {largest}"
    );
}

/// Several records over `BYTES_PER_MESSAGE` are a peer breaking the protocol (one larger
/// record alone is allowed: a record may be as large as the group allows).
#[test]
fn a_message_of_records_over_the_bound_is_refused() {
    let g = Group::new();
    let db = g.replica();
    let large = |seed: u8| {
        forge(g.group(), &g.bob, |r| {
            r.payload = vec![seed; 600 * 1024];
        })
    };
    let mut session = SyncSession::responder();
    let records = vec![large(1), large(2)];
    let bytes: usize = records.iter().map(codec::encoded_len).sum();
    assert!(bytes > BYTES_PER_MESSAGE);
    let message = SyncMessage::Records {
        class: SyncClass::Security,
        records,
    };
    match session.handle(message, &db) {
        Err(SyncError::TooLarge {
            bytes: got, limit, ..
        }) => {
            assert_eq!((got, limit), (bytes, BYTES_PER_MESSAGE));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }

    let mut session = SyncSession::responder();
    let alone = forge(g.group(), &g.bob, |r| {
        r.payload = vec![3; 2 * BYTES_PER_MESSAGE];
    });
    let message = SyncMessage::Records {
        class: SyncClass::Data,
        records: vec![alone],
    };
    assert!(message.encoded_len() > MAX_SYNC_MESSAGE_BYTES);
    // Not refused for its size (it is refused for its class, during the security class).
    assert!(matches!(
        session.handle(message, &db),
        Err(SyncError::Protocol(SyncViolation::WrongClass {
            got: SyncClass::Data,
            current: SyncClass::Security
        }))
    ));
}

/// A reconciliation message over its bounds ends the sync with the peer at fault.
#[test]
fn a_reconciliation_message_over_the_bound_is_refused() {
    let g = Group::new();
    let db = g.replica();
    let mut session = SyncSession::responder();
    let message = SyncMessage::Reconcile {
        class: SyncClass::Security,
        message: Message::StartKeys {
            version: peergroup_record_db::reconcile::PROTOCOL_VERSION,
            keys: (0..MAX_KEYS_PER_MESSAGE as u64 + 1).collect(),
        },
    };
    match session.handle(message, &db) {
        Err(SyncError::Reconcile(
            e @ ReconcileError::ProtocolViolation(Violation::KeyLimit { .. }),
        )) => {
            assert_eq!(e.fault(), peergroup_record_db::reconcile::Fault::Peer);
        }
        other => panic!("expected a key limit violation, got {other:?}"),
    }
}

/// A `Records` message whose signatures were checked before it reached the session (a
/// connection's reader does so, `SyncSession::handle_records`) meets the bounds any `Records`
/// message meets, and its records keep what the check found: a record altered on the way
/// fails the check and the database refuses it.
#[test]
fn checked_records_meet_the_same_bounds_and_keep_their_verdicts() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let expires = now.saturating_add(DAY);
    let mut a = g.replica();
    for i in 0..300u32 {
        a.create(g.bob.signer(), new_record(&i.to_be_bytes(), expires), now)
            .unwrap();
    }
    let mut b = g.replica();
    let keys = b.signer_keys();
    let (mut sa, mut sb) = (SyncSession::initiator(), SyncSession::responder());
    let (mut checked, mut altered) = (0, None);
    for _ in 0..10_000 {
        while let Some(m) = sa.poll_transmit(&a).unwrap() {
            match m {
                SyncMessage::Records { class, mut records } => {
                    if altered.is_none() && class == SyncClass::Data {
                        records[0].payload = b"altered on the way".to_vec();
                        altered = Some(records[0].id);
                    }
                    sb.handle_records(class, keys.check(records)).unwrap();
                }
                m => sb.handle(m, &b).unwrap(),
            }
            let got = sb.take_received_checked();
            // The item key comes with each record, computed where it was checked.
            assert!(got.iter().all(|r| r.item_key() == r.record().item_key()));
            checked += got
                .iter()
                .filter(|r| r.checked_with(&g.bob.key.public()))
                .count();
            if !got.is_empty() {
                let report = b.apply_received(got, now).unwrap();
                let refused: Vec<_> = report.rejected.iter().map(|(id, _)| *id).collect();
                assert!(refused.iter().all(|id| Some(*id) == altered), "{refused:?}");
            }
        }
        while let Some(m) = sb.poll_transmit(&b).unwrap() {
            sa.handle(m, &a).unwrap();
            assert!(sa.take_received().is_empty());
        }
        if sa.is_done() && sb.is_done() {
            break;
        }
    }
    assert!(sa.is_done() && sb.is_done(), "sync did not finish");
    assert_eq!(
        checked, 299,
        "every record but the altered one checked on arrival"
    );
    let altered = altered.expect("a Records message of the data class");
    assert!(
        b.get(altered).unwrap().is_none(),
        "the altered record was stored"
    );
    assert_eq!(b.len(), a.len() - 1);

    // The bounds of `handle`: too many records, another class than the current one, a
    // record of the other class.
    let many: Vec<_> = (0..=RECORDS_PER_MESSAGE as u64)
        .map(|i| forge(g.group(), &g.bob, |r| r.payload = i.to_be_bytes().to_vec()))
        .collect();
    let mut s = SyncSession::responder();
    assert!(matches!(
        s.handle_records(SyncClass::Security, keys.check(many)),
        Err(SyncError::Protocol(SyncViolation::TooManyRecords { .. }))
    ));
    let one = || keys.check(vec![forge(g.group(), &g.bob, |_| {})]);
    let mut s = SyncSession::responder();
    assert!(matches!(
        s.handle_records(SyncClass::Data, one()),
        Err(SyncError::Protocol(SyncViolation::WrongClass { .. }))
    ));
    let mut s = SyncSession::responder();
    assert!(matches!(
        s.handle_records(SyncClass::Security, one()),
        Err(SyncError::Protocol(SyncViolation::RecordOfWrongClass))
    ));
}
