//! A minimal two-peer group on loopback TLS, in one process: Alice creates a group and
//! invites Bob by his identity; Bob joins and connects; Alice publishes a record and Bob sees
//! it arrive; both close.
//!
//! ```text
//! cargo run -p peergroup --example two_peers
//! ```

use std::time::Duration;

use peergroup::{
    EventFilter, EventKind, GroupEvent, GroupSpec, IdentityInfo, Infrastructure,
    InfrastructureConfig, KdfParams, RecordType, Role,
};

/// Each peer has its own data directory and listens on a free loopback port; mDNS is off
/// (the invitation carries Alice's address). The cheap KDF keeps the example quick; real
/// applications keep the default.
fn config(dir: &std::path::Path) -> InfrastructureConfig {
    InfrastructureConfig {
        listen: vec![([127, 0, 0, 1], 0).into()],
        discovery: false,
        kdf: KdfParams::INSECURE_FAST,
        ..InfrastructureConfig::new(dir)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let home = tempfile::tempdir()?;

    // Alice: an infrastructure, an identity, a group; she goes online.
    let alice_infra = Infrastructure::start(config(&home.path().join("alice"))).await?;
    let alice = alice_infra.identities().create("Alice", None).await?;
    let group_name = alice_infra
        .create_group(alice.peer_name(), &GroupSpec::new("Friends"))
        .await?;
    let alice_group = alice_infra
        .open_group(alice.peer_name(), &group_name)
        .await?;
    alice_group.connect().await?;
    println!(
        "Alice created {group_name} and listens on {:?}",
        alice_infra.local_addrs()
    );

    // Bob: his own infrastructure and identity. He sends Alice his identity info.
    let bob_infra = Infrastructure::start(config(&home.path().join("bob"))).await?;
    let bob = bob_infra.identities().create("Bob", None).await?;
    let bob_info = IdentityInfo::new(bob.certificate().clone()).to_xml();

    // Alice invites him; the invitation carries her address.
    let invitation = alice_group
        .create_invitation(&bob_info, Role::Member, Duration::from_secs(86_400))
        .await?;

    // Bob joins, opens the group and connects; he is ready once synchronised with Alice.
    let joined = bob_infra.join(bob.peer_name(), &invitation).await?;
    let bob_group = bob_infra.open_group(bob.peer_name(), &joined).await?;
    bob_group.connect().await?;
    bob_group.wait_ready(Duration::from_secs(30)).await?;
    println!("Bob joined and is synchronised");

    // Bob watches for notes; Alice publishes one.
    let notes: RecordType = "5f0c3e9a-6b1d-4c2e-9a7f-1e2d3c4b5a60".parse()?;
    let mut events =
        bob_group.events(EventFilter::kinds([EventKind::RecordChanged]).record_types([notes]));
    let sent = alice_group
        .add_record(notes, "", b"hello, Bob".to_vec(), Duration::from_secs(3600))
        .await?;
    let arrived = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.next().await {
                Some(GroupEvent::RecordChanged { record, .. }) if record.id == sent.id => {
                    return Some(record);
                }
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await?
    .ok_or("Bob's group closed")?;
    println!(
        "Bob received {:?} from {}",
        String::from_utf8_lossy(&arrived.payload),
        arrived.creator
    );
    let members: Vec<String> = bob_group
        .members(true)
        .await?
        .into_iter()
        .map(|m| m.friendly_name)
        .collect();
    println!("present: {}", members.join(", "));

    // Both leave cleanly.
    bob_group.close().await?;
    alice_group.close().await?;
    bob_infra.shutdown().await;
    alice_infra.shutdown().await;
    println!("done");
    Ok(())
}
