//! Misbehaving members: records the API would refuse are written straight into a member's
//! own database (past every local check), and the member then connects and offers them to
//! the others in synchronisation. Every other replica validates what it receives and refuses
//! them.

use peergroup::{
    ErrorKind, EventFilter, EventKind, EventStream, GroupEvent, GroupProperties, RecordId,
    RecordType, RecordUpdate,
};

use crate::support::*;

/// Waits until `g` has `n` neighbors, then watches `streams` for a while: none may report a
/// change to record `id`.
async fn refused_everywhere(
    g: &peergroup::Group,
    n: usize,
    streams: &mut [EventStream],
    id: RecordId,
) {
    until("the forger is connected to everyone", async || {
        match g.neighbor_connections().await.unwrap().len() {
            k if k >= n => Ok(()),
            k => Err(format!("{k} of {n} neighbors")),
        }
    })
    .await;
    for s in streams {
        expect_none(s, "acceptance of the forged record", |e| match e {
            GroupEvent::RecordChanged { record, .. } => record.id == id,
            GroupEvent::PropertyChanged(_) => true,
            _ => false,
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_properties_are_refused_by_every_replica() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob", "Carol"]).await;
        let group = net.name();
        let bob = &net.peers[1];
        let b = &net.groups[1];
        let original = b.properties().await.unwrap();
        let record = b
            .records(RecordType::GROUP_PROPERTIES)
            .await
            .unwrap()
            .pop()
            .unwrap();
        // Through the API: refused at once.
        let mut wanted = original.clone();
        wanted.comment = "Bob's group now".into();
        assert_eq!(
            kind_of(b.set_properties(wanted.clone()).await),
            ErrorKind::NotAuthorized
        );

        // Bob forges the next version of the properties record and slips it into his copy.
        b.close().await.unwrap();
        let forged = forge_version(&record, bob, &group, |r| r.payload = wanted.to_payload());
        inject(bob, &group, vec![forged.await]);
        let mut streams: Vec<EventStream> = [&net.groups[0], &net.groups[2]]
            .iter()
            .map(|g| {
                g.events(EventFilter::kinds([
                    EventKind::RecordChanged,
                    EventKind::PropertyChanged,
                ]))
            })
            .collect();
        let b = bob.open(&group).await;
        assert_eq!(
            b.properties().await.unwrap().comment,
            "Bob's group now",
            "the forgery is in Bob's own copy"
        );
        b.connect().await.unwrap();
        b.wait_ready(WAIT).await.unwrap();
        refused_everywhere(&b, 2, &mut streams, record.id).await;
        for g in [&net.groups[0], &net.groups[2]] {
            let props: GroupProperties = g.properties().await.unwrap();
            assert_eq!(props, original);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_update_of_another_members_record_is_refused_by_every_replica() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob", "Carol"]).await;
        let group = net.name();
        let (b, c) = (&net.groups[1], &net.groups[2]);
        let carol = &net.peers[2];
        let note = b
            .add_record(note_type(), "", b"Bob's words".to_vec(), HOUR)
            .await
            .unwrap();
        until("Carol has Bob's note", async || {
            c.record(note.id).await.is_ok()
        })
        .await;
        // Through the API: refused at once.
        let update = RecordUpdate {
            payload: Some(b"Carol's words".to_vec()),
            ..RecordUpdate::default()
        };
        assert_eq!(
            kind_of(c.update_record(note.id, update).await),
            ErrorKind::NotAuthorized
        );

        // Carol forges the update anyway and offers it.
        c.close().await.unwrap();
        let forged = forge_version(&note, carol, &group, |r| {
            r.payload = b"Carol's words".to_vec();
        });
        inject(carol, &group, vec![forged.await]);
        let mut streams: Vec<EventStream> = [&net.groups[0], &net.groups[1]]
            .iter()
            .map(|g| g.events(EventFilter::kinds([EventKind::RecordChanged])))
            .collect();
        let c = carol.open(&group).await;
        assert_eq!(c.record(note.id).await.unwrap().payload, b"Carol's words");
        c.connect().await.unwrap();
        c.wait_ready(WAIT).await.unwrap();
        refused_everywhere(&c, 2, &mut streams, note.id).await;
        for g in [&net.groups[0], &net.groups[1]] {
            let kept = g.record(note.id).await.unwrap();
            assert_eq!(kept, note, "the original stays");
        }
    })
    .await;
}
