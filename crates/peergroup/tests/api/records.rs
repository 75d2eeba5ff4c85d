//! Records: add, update, delete, get, list, search; the rules (reserved types, size, expiry,
//! attributes, who may change what); expiry and autorefresh; what the others see.

use std::time::Duration;

use peergroup::{
    ChangeKind, ErrorKind, EventFilter, EventKind, GroupEvent, RecordType, RecordUpdate, Timestamp,
};

use crate::support::*;

const ATTRS: &str = r#"<attributes><attribute name="Topic" type="string">demo plans</attribute><attribute name="Priority" type="int">2</attribute></attributes>"#;
const QUERY: &str = r#"<peersearch><and><clause attrib="Topic" type="string">demo*</clause><clause attrib="Priority" type="int" compare="greaterorequal">2</clause></and></peersearch>"#;

/// The next record change seen on `stream` for record `id`.
async fn change_of(
    stream: &mut peergroup::EventStream,
    id: peergroup::RecordId,
    kind: ChangeKind,
) -> peergroup::Record {
    expect(stream, &format!("{kind:?} of {id}"), |e| match e {
        GroupEvent::RecordChanged { change, record } if record.id == id && *change == kind => {
            Some((**record).clone())
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_update_delete_are_seen_by_the_others() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob", "Carol"]).await;
        let (a, b, c) = (&net.groups[0], &net.groups[1], &net.groups[2]);
        let filter = || EventFilter::kinds([EventKind::RecordChanged]).record_types([note_type()]);
        let mut at_a = a.events(filter());
        let mut at_c = c.events(filter());

        let added = b
            .add_record(note_type(), ATTRS, b"Bob's note".to_vec(), HOUR)
            .await
            .unwrap();
        assert_eq!(added.creator, net.peers[1].id);
        assert_eq!(added.version, 1);
        assert_eq!(added.record_type, note_type());
        // The others' events carry the record itself.
        for s in [&mut at_a, &mut at_c] {
            let seen = change_of(s, added.id, ChangeKind::Added).await;
            assert_eq!(seen, added);
        }
        assert_eq!(c.record(added.id).await.unwrap(), added);
        assert_eq!(a.records(note_type()).await.unwrap(), vec![added.clone()]);

        // Update: new payload, attributes kept, expiry may grow but not shrink.
        let later = added.expires.saturating_add(HOUR);
        let updated = b
            .update_record(
                added.id,
                RecordUpdate {
                    payload: Some(b"Bob's note, v2".to_vec()),
                    expires: Some(later),
                    ..RecordUpdate::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.version, 2);
        assert_eq!(updated.expires, later);
        assert_eq!(updated.attributes, ATTRS);
        for s in [&mut at_a, &mut at_c] {
            let seen = change_of(s, added.id, ChangeKind::Updated).await;
            assert_eq!(seen.payload, b"Bob's note, v2");
        }
        assert_eq!(
            kind_of(
                b.update_record(
                    added.id,
                    RecordUpdate {
                        expires: Some(Timestamp::now()),
                        ..RecordUpdate::default()
                    },
                )
                .await
            ),
            ErrorKind::InvalidTimePeriod
        );

        // Another member may not change it; an admin may.
        assert_eq!(
            kind_of(
                c.update_record(
                    added.id,
                    RecordUpdate {
                        payload: Some(b"Carol was here".to_vec()),
                        ..RecordUpdate::default()
                    },
                )
                .await
            ),
            ErrorKind::NotAuthorized
        );
        assert_eq!(
            kind_of(c.delete_record(added.id).await),
            ErrorKind::NotAuthorized
        );
        let by_admin = a
            .update_record(
                added.id,
                RecordUpdate {
                    attributes: Some(String::new()),
                    ..RecordUpdate::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(by_admin.modified_by.as_ref(), Some(&net.peers[0].id));
        let seen = change_of(&mut at_c, added.id, ChangeKind::Updated).await;
        assert_eq!(seen.version, 3);

        // Delete: a tombstone; the record is gone everywhere.
        let tombstone = b.delete_record(added.id).await.unwrap();
        assert!(tombstone.is_deleted());
        for s in [&mut at_a, &mut at_c] {
            let seen = change_of(s, added.id, ChangeKind::Deleted).await;
            assert!(seen.is_deleted());
        }
        for g in &net.groups {
            assert_eq!(kind_of(g.record(added.id).await), ErrorKind::RecordNotFound);
            assert!(g.records(note_type()).await.unwrap().is_empty());
        }
        assert_eq!(
            kind_of(b.update_record(added.id, RecordUpdate::default()).await),
            ErrorKind::RecordNotFound
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_list_and_search() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob"]).await;
        let (a, b) = (&net.groups[0], &net.groups[1]);
        let note = a
            .add_record(note_type(), ATTRS, b"plans".to_vec(), HOUR)
            .await
            .unwrap();
        let other = a
            .add_record(
                note_type(),
                r#"<attributes><attribute name="Topic" type="string">other</attribute></attributes>"#,
                b"other".to_vec(),
                HOUR,
            )
            .await
            .unwrap();
        let chat = a
            .add_record(chat_type(), "", b"hi".to_vec(), HOUR)
            .await
            .unwrap();
        until("Bob has all three", async || {
            let notes = b.records(note_type()).await.unwrap().len();
            let chats = b.records(chat_type()).await.unwrap().len();
            if (notes, chats) == (2, 1) {
                Ok(())
            } else {
                Err(format!("{notes} notes and {chats} chat records at Bob"))
            }
        })
        .await;
        assert_eq!(b.record(chat.id).await.unwrap().payload, b"hi");
        let found = b.search(QUERY).await.unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id, note.id);
        let all = b
            .search(r#"<peersearch><clause attrib="Topic" type="string">*</clause></peersearch>"#)
            .await
            .unwrap();
        let mut ids: Vec<_> = all.iter().map(|r| r.id).collect();
        ids.sort();
        let mut want = vec![note.id, other.id];
        want.sort();
        assert_eq!(ids, want);
        // Unknown ids, bad queries.
        let unknown: peergroup::RecordId = peergroup::RecordId([7; 16]);
        assert_eq!(kind_of(b.record(unknown).await), ErrorKind::RecordNotFound);
        assert_eq!(
            kind_of(b.search("<peersearch><nonsense/></peersearch>").await),
            ErrorKind::InvalidSearch
        );
        assert_eq!(kind_of(b.search("not xml at all").await), ErrorKind::InvalidSearch);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_break_the_rules_are_refused() {
    bounded(async {
        let (_alice, a) = creator("Alice", &peergroup::GroupSpec::new("Friends")).await;
        // Reserved types, through both calls, even for the creator.
        for t in [
            RecordType::GROUP_PROPERTIES,
            RecordType::MEMBERSHIP,
            RecordType::REVOCATION,
            RecordType::PRESENCE,
            "00000500-0000-0000-0000-000000000000".parse().unwrap(),
        ] {
            assert_eq!(
                kind_of(a.add_record(t, "", b"x".to_vec(), HOUR).await),
                ErrorKind::NotAuthorized,
                "{t}"
            );
            assert_eq!(
                kind_of(a.add_refreshed_record(t, "", b"x".to_vec(), HOUR).await),
                ErrorKind::NotAuthorized,
                "{t}"
            );
        }
        // Over the group's maximum size (1 MiB by default).
        let max = a.properties().await.unwrap().max_record_size as usize;
        assert_eq!(
            kind_of(a.add_record(note_type(), "", vec![0; max + 1], HOUR).await),
            ErrorKind::MaxRecordSizeExceeded
        );
        a.add_record(note_type(), "", vec![0; max / 2], HOUR)
            .await
            .unwrap();
        // Attributes must parse.
        assert_eq!(
            kind_of(
                a.add_record(note_type(), "<attributes><oops", b"x".to_vec(), HOUR)
                    .await
            ),
            ErrorKind::InvalidAttributes
        );
        // Nothing broken was stored.
        assert_eq!(a.records(note_type()).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_records_expire_and_refreshed_records_stay() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob"]).await;
        let (a, b) = (&net.groups[0], &net.groups[1]);
        let mut at_b = b.events(EventFilter::kinds([EventKind::RecordChanged]));
        // Short, but long enough to reach Bob on a busy machine: a record already expired when
        // it arrives is refused, and then Bob would never see it expire. (Bob sweeps every
        // 10 s, so the expiry event comes 5 to 15 s after the add.)
        let short = a
            .add_record(
                note_type(),
                "",
                b"gone soon".to_vec(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        // Its expiry is shorter than the refresh margin, so it is refreshed at every round.
        let kept = a
            .add_refreshed_record(
                chat_type(),
                "",
                b"kept alive".to_vec(),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert!(kept.flags.is_autorefresh());
        change_of(&mut at_b, short.id, ChangeKind::Added).await;
        let expired = change_of(&mut at_b, short.id, ChangeKind::Expired).await;
        assert_eq!(expired.payload, b"gone soon");
        assert_eq!(kind_of(b.record(short.id).await), ErrorKind::RecordNotFound);
        until("the refreshed record is renewed at Bob", async || {
            match b.record(kept.id).await {
                Ok(r) if r.version > kept.version && r.expires > kept.expires => Ok(()),
                Ok(r) => Err(format!(
                    "version {} expiring {} (first: version {} expiring {})",
                    r.version, r.expires, kept.version, kept.expires
                )),
                Err(e) => Err(format!("{e}")),
            }
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_records_publishes_a_batch_all_or_none() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob"]).await;
        let (a, b) = (&net.groups[0], &net.groups[1]);
        let expires = Timestamp::now().saturating_add(HOUR);
        let note = |i: u8| peergroup::NewRecord {
            record_type: note_type(),
            attributes: String::new(),
            payload: vec![i; 16],
            expires,
            autorefresh: false,
        };
        let mut at_a =
            a.events(EventFilter::kinds([EventKind::RecordChanged]).record_types([note_type()]));
        let added = b.add_records((0..50).map(note).collect()).await.unwrap();
        assert_eq!(added.len(), 50);
        for (i, r) in added.iter().enumerate() {
            assert_eq!(r.payload, vec![i as u8; 16], "not in the order given");
            assert_eq!(r.creator, net.peers[1].id);
        }
        // The other member gets every one (checking each signature, which the author did not).
        let mut seen = std::collections::HashMap::new();
        while seen.len() < added.len() {
            let r = expect(&mut at_a, "the batch at the other member", |e| match e {
                GroupEvent::RecordChanged { change, record } if *change == ChangeKind::Added => {
                    Some((**record).clone())
                }
                _ => None,
            })
            .await;
            seen.insert(r.id, r);
        }
        for r in &added {
            assert_eq!(seen.get(&r.id), Some(r));
        }
        assert_eq!(a.records(note_type()).await.unwrap().len(), 50);

        // One bad record refuses the whole batch.
        let mut batch: Vec<_> = (50..60).map(note).collect();
        batch[3].attributes = "<attributes><oops".into();
        assert_eq!(
            kind_of(b.add_records(batch.clone()).await),
            ErrorKind::InvalidAttributes
        );
        batch[3] = note(53);
        batch[7].record_type = RecordType::PRESENCE;
        assert_eq!(
            kind_of(b.add_records(batch).await),
            ErrorKind::NotAuthorized
        );
        assert_eq!(b.records(note_type()).await.unwrap().len(), 50);
    })
    .await;
}
