//! Subscribing to a group's events with a filter, and what a small scripted session produces.
//!
//! Alice creates a group and subscribes twice: to every event, and to member and record
//! events for one record type only. Bob joins, publishes, updates and deletes a note and a
//! chat line, changes his presence, and leaves. The example prints both streams; each ends
//! when Alice closes the group.
//!
//! ```text
//! cargo run -p peergroup --example events
//! ```

use std::time::Duration;

use peergroup::{
    EventFilter, EventKind, EventStream, GroupEvent, GroupSpec, IdentityInfo, Infrastructure,
    InfrastructureConfig, KdfParams, RecordType, RecordUpdate, Role,
};

fn config(dir: &std::path::Path) -> InfrastructureConfig {
    InfrastructureConfig {
        listen: vec![([127, 0, 0, 1], 0).into()],
        discovery: false,
        kdf: KdfParams::INSECURE_FAST,
        ..InfrastructureConfig::new(dir)
    }
}

/// One line per event.
fn describe(e: &GroupEvent) -> String {
    match e {
        GroupEvent::StatusChanged(s) => format!(
            "status: listening={} connections={} synchronized={}",
            s.listening, s.has_connections, s.synchronized
        ),
        GroupEvent::PropertyChanged(p) => format!("properties: {:?}", p.friendly_name),
        GroupEvent::RecordChanged { change, record } => {
            // Reserved types (properties, membership, presence…) carry binary payloads.
            let payload = if record.record_type.is_reserved() {
                format!("{} bytes", record.payload.len())
            } else {
                format!("{:?}", String::from_utf8_lossy(&record.payload))
            };
            format!(
                "record {change:?}: type {} v{} by {}: {payload}",
                record.record_type, record.version, record.creator
            )
        }
        GroupEvent::MemberChanged { peer, change } => format!("member {change:?}: {peer}"),
        GroupEvent::NeighborConnection {
            id, peer, change, ..
        } => format!("neighbor #{} {change:?}: {peer:?}", id.0),
        GroupEvent::Lagged { missed } => format!("lagged: missed {missed}"),
        other => format!("{other:?}"),
    }
}

/// Prints everything `stream` yields until it ends, with a label.
fn print_all(label: &'static str, mut stream: EventStream) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut n = 0;
        while let Some(e) = stream.next().await {
            n += 1;
            println!("[{label}] {}", describe(&e));
        }
        println!("[{label}] (stream ended after {n} events)");
        n
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let home = tempfile::tempdir()?;
    let notes: RecordType = "5f0c3e9a-6b1d-4c2e-9a7f-1e2d3c4b5a60".parse()?;
    let chat: RecordType = "0d6a1f4e-8c1b-4a57-9e0a-3f3c2b1a0c00".parse()?;

    let alice_infra = Infrastructure::start(config(&home.path().join("alice"))).await?;
    let alice = alice_infra.identities().create("Alice", None).await?;
    let name = alice_infra
        .create_group(alice.peer_name(), &GroupSpec::new("Events demo"))
        .await?;
    let group = alice_infra.open_group(alice.peer_name(), &name).await?;

    // Subscribe before anything happens: streams see events from the moment they are made.
    let everything = print_all("all", group.events(EventFilter::all()));
    let notes_and_members = print_all(
        "notes+members",
        group.events(
            EventFilter::kinds([EventKind::MemberChanged, EventKind::RecordChanged])
                .record_types([notes]),
        ),
    );
    group.connect().await?;

    // Bob's part of the script.
    let bob_infra = Infrastructure::start(config(&home.path().join("bob"))).await?;
    let bob = bob_infra.identities().create("Bob", None).await?;
    let info = IdentityInfo::new(bob.certificate().clone()).to_xml();
    let invitation = group
        .create_invitation(&info, Role::Member, Duration::from_secs(86_400))
        .await?;
    let joined = bob_infra.join(bob.peer_name(), &invitation).await?;
    let bob_group = bob_infra.open_group(bob.peer_name(), &joined).await?;
    bob_group.connect().await?;
    bob_group.wait_ready(Duration::from_secs(30)).await?;

    let hour = Duration::from_secs(3600);
    let note = bob_group
        .add_record(notes, "", b"first draft".to_vec(), hour)
        .await?;
    bob_group
        .add_record(chat, "", b"hi all".to_vec(), hour)
        .await?;
    bob_group
        .update_record(
            note.id,
            RecordUpdate {
                payload: Some(b"second draft".to_vec()),
                ..RecordUpdate::default()
            },
        )
        .await?;
    bob_group.delete_record(note.id).await?;
    bob_group.set_presence_attributes("busy").await?;
    // Let the last changes reach Alice, then Bob leaves.
    tokio::time::sleep(Duration::from_millis(500)).await;
    bob_group.close().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Alice closes: both streams end after their last events.
    group.close().await?;
    let (all, filtered) = (everything.await?, notes_and_members.await?);
    println!("{all} events in all, {filtered} through the filter");
    bob_infra.shutdown().await;
    alice_infra.shutdown().await;
    Ok(())
}
