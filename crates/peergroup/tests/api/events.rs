//! The event stream: filters by kind, record type and data type; neighbor connection
//! events; the end of the stream at close. What a stream that does not keep up costs (it
//! lags for group events, it slows direct data down) is in `bounds`.

use peergroup::{ChangeKind, ConnectionChange, DataType, EventFilter, EventKind, GroupEvent, Role};

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_by_kind_and_record_type() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob"]).await;
        let (a, b) = (&net.groups[0], &net.groups[1]);
        let mut everything = b.events(EventFilter::all());
        let mut notes_only =
            b.events(EventFilter::kinds([EventKind::RecordChanged]).record_types([note_type()]));
        let mut records = b.events(EventFilter::kinds([EventKind::RecordChanged]));
        let mut members_only = b.events(EventFilter::kinds([EventKind::MemberChanged]));

        let chat = a
            .add_record(chat_type(), "", b"chat".to_vec(), HOUR)
            .await
            .unwrap();
        let note = a
            .add_record(note_type(), "", b"note".to_vec(), HOUR)
            .await
            .unwrap();
        // The unfiltered stream and the record stream see both, in either order: the two
        // records may reach Bob by different paths (a push, a pull, the sync of a new link),
        // so the note can come first. (Waiting for the chat record and then the note hung
        // in a CI run that delivered them the other way round.)
        let mut seen = [[false; 2]; 2];
        let seen_both = tokio::time::timeout(WAIT - Duration::from_secs(5), async {
            for (s, seen) in [&mut everything, &mut records].into_iter().zip(&mut seen) {
                while seen.contains(&false) {
                    let which = expect(s, "a record", |e| match e {
                        GroupEvent::RecordChanged {
                            change: ChangeKind::Added,
                            record,
                        } => [chat.id, note.id].iter().position(|id| *id == record.id),
                        _ => None,
                    })
                    .await;
                    seen[which] = true;
                }
            }
        })
        .await;
        if seen_both.is_err() {
            panic!(
                "Bob's streams did not see both records ([chat, note] seen by the unfiltered \
                 stream and the record stream: {seen:?}); Alice's links: {:?}; Bob's: {:?}; \
                 chat and note records at Alice: {}, {}; at Bob: {}, {}",
                a.neighbor_connections().await,
                b.neighbor_connections().await,
                a.records(chat_type()).await.map_or(0, |r| r.len()),
                a.records(note_type()).await.map_or(0, |r| r.len()),
                b.records(chat_type()).await.map_or(0, |r| r.len()),
                b.records(note_type()).await.map_or(0, |r| r.len()),
            );
        }
        // The note stream sees the note first: the chat record was filtered out.
        let first = expect(&mut notes_only, "the note", |e| match e {
            GroupEvent::RecordChanged { record, .. } => Some(record.id),
            other => panic!("only record events pass: {other:?}"),
        })
        .await;
        assert_eq!(first, note.id);
        // The member stream saw no record events.
        expect_none(&mut members_only, "a non-member event", |e| {
            !matches!(e, GroupEvent::MemberChanged { .. })
        })
        .await;

        // The filter's own logic, event by event.
        let filter = EventFilter::kinds([EventKind::RecordChanged]).record_types([note_type()]);
        let as_event = |r: &peergroup::Record| GroupEvent::RecordChanged {
            change: ChangeKind::Added,
            record: Box::new(r.clone()),
        };
        assert!(filter.matches(&as_event(&note)));
        assert!(!filter.matches(&as_event(&chat)));
        assert!(!filter.matches(&GroupEvent::StatusChanged(b.status())));
        let lagged = GroupEvent::Lagged { missed: 3 };
        assert!(
            filter.matches(&lagged),
            "every subscriber hears that it lagged"
        );
        assert_eq!(lagged.kind(), None);
        assert_eq!(as_event(&note).kind(), Some(EventKind::RecordChanged));
        let data_filter = EventFilter::all().data_types([DataType::from(
            "{f12dc4c7-0857-4ca0-93fc-b1bb19a3d8c2}"
                .parse::<DataType>()
                .unwrap()
                .0,
        )]);
        assert!(
            data_filter.matches(&as_event(&chat)),
            "a data filter leaves records alone"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbor_connection_events() {
    bounded(async {
        let (alice, a) = creator("Alice", &peergroup::GroupSpec::new("Friends")).await;
        let mut links = a.events(EventFilter::kinds([EventKind::NeighborConnection]));
        let bob = Peer::start("Bob").await;
        let b = invite_and_connect(&a, alice.addr(), &bob, Role::Member).await;
        let (id, addr) = expect(&mut links, "Bob connected", |e| match e {
            GroupEvent::NeighborConnection {
                id,
                peer: Some(p),
                addr,
                change: ConnectionChange::Connected,
            } if *p == bob.id => Some((*id, *addr)),
            _ => None,
        })
        .await;
        assert!(addr.is_some_and(|a| a.ip().is_loopback()));
        let listed = a.neighbor_connections().await.unwrap();
        assert!(
            listed
                .iter()
                .any(|c| c.id == id && c.peer == bob.id && !c.direct)
        );
        b.close().await.unwrap();
        let why = expect(&mut links, "Bob disconnected", |e| match e {
            GroupEvent::NeighborConnection {
                id: i,
                change: ConnectionChange::Disconnected(why),
                ..
            } if *i == id => Some(why.clone()),
            _ => None,
        })
        .await;
        assert!(!why.is_empty());
        until("Alice has no neighbors", async || {
            match a.neighbor_connections().await.unwrap().len() {
                0 => Ok(()),
                n => Err(format!("{n} neighbor connection(s)")),
            }
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_ends_when_the_group_is_closed() {
    bounded(async {
        let (_alice, a) = creator("Alice", &peergroup::GroupSpec::new("Friends")).await;
        let mut all = a.events(EventFilter::all());
        let note = a
            .add_record(note_type(), "", b"last words".to_vec(), HOUR)
            .await
            .unwrap();
        a.close().await.unwrap();
        // What happened before the close is still delivered, then the stream ends.
        let ended = tokio::time::timeout(WAIT, async {
            let mut saw_note = false;
            while let Some(e) = all.next().await {
                if let GroupEvent::RecordChanged { record, .. } = &e {
                    saw_note |= record.id == note.id;
                }
            }
            saw_note
        })
        .await;
        let Ok(saw_note) = ended else {
            panic!("waited {WAIT:?} for the event stream to end after the close");
        };
        assert!(
            saw_note,
            "the stream ends after the last events, the note among them"
        );
        // A stream opened after the close ends at once.
        let mut late = a.events(EventFilter::all());
        match tokio::time::timeout(WAIT, late.next()).await {
            Ok(None) => {}
            Ok(Some(e)) => panic!("a stream opened after the close delivered {e:?}"),
            Err(_) => panic!("waited {WAIT:?} for a stream opened after the close to end"),
        }
    })
    .await;
}
