//! Every message of a sync is bounded: at most `MAX_SYNC_MESSAGE_BYTES`, except a `Records`
//! message carrying one larger record alone; a peer's message over the bounds ends the sync.

use peergroup_record_db::reconcile::{MAX_KEYS_PER_MESSAGE, Message, ReconcileError, Violation};
use peergroup_record_db::reserved::{GroupProperties, MAX_RECORD_SIZE_LIMIT};
use peergroup_record_db::store::Store;
use peergroup_record_db::sync::{
    BYTES_PER_MESSAGE, MAX_SYNC_MESSAGE_BYTES, SyncClass, SyncError, SyncMessage, SyncSession,
    SyncViolation,
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
