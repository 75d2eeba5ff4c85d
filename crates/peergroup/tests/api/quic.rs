//! A group whose members dial only QUIC: the mesh (formation, presence, records) and
//! direct connections run over it as over TCP.

use bytes::Bytes;
use peergroup::{ChangeKind, DataType, Dial, EventFilter, EventKind, GroupEvent, GroupSpec, Role};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_and_direct_connections_run_over_quic() {
    bounded(async {
        let quic_only = |c: &mut peergroup::InfrastructureConfig| c.transport.dial = Dial::Quic;
        let alice = Peer::start_with("Alice", quic_only).await;
        let bob = Peer::start_with("Bob", quic_only).await;
        let name = alice
            .infra
            .create_group(&alice.id, &GroupSpec::new("Over QUIC"))
            .await
            .unwrap();
        let a = alice.open(&name).await;
        a.connect().await.unwrap();
        a.wait_ready(WAIT).await.unwrap();
        // Bob joins and synchronises through a QUIC connection to Alice's port.
        let b = invite_and_connect(&a, alice.addr(), &bob, Role::Member).await;
        until("both see both present", async || {
            a.members(true).await.unwrap().len() == 2 && b.members(true).await.unwrap().len() == 2
        })
        .await;

        // A record Bob publishes reaches Alice.
        let mut at_alice = a.events(EventFilter::kinds([EventKind::RecordChanged]));
        let id = b
            .add_record(chat_type(), "", b"over quic".to_vec(), HOUR)
            .await
            .unwrap()
            .id;
        expect(&mut at_alice, "Bob's record at Alice", |e| match e {
            GroupEvent::RecordChanged {
                change: ChangeKind::Added,
                record,
            } if record.id == id => Some(()),
            _ => None,
        })
        .await;
        assert_eq!(a.record(id).await.unwrap().payload, b"over quic".to_vec());

        // A direct connection, both ways.
        let note: DataType = "5ca1ab1e-0000-4000-8000-00000000d17e".parse().unwrap();
        let mut alice_data = a.events(EventFilter::kinds([EventKind::IncomingData]));
        let mut bob_events = b.events(EventFilter::kinds([
            EventKind::DirectConnection,
            EventKind::IncomingData,
        ]));
        let conn = a.open_direct_wait(&bob.id).await.unwrap();
        a.send_data(conn, note, Bytes::from_static(b"hello Bob"))
            .await
            .unwrap();
        let at_bob = expect(&mut bob_events, "Alice's data at Bob", |e| match e {
            GroupEvent::IncomingData { id, data, .. } if &data[..] == b"hello Bob" => Some(*id),
            _ => None,
        })
        .await;
        b.send_data(at_bob, note, Bytes::from_static(b"hello Alice"))
            .await
            .unwrap();
        expect(&mut alice_data, "Bob's answer", |e| match e {
            GroupEvent::IncomingData { data, .. } if &data[..] == b"hello Alice" => Some(()),
            _ => None,
        })
        .await;
    })
    .await;
}
