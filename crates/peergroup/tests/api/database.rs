//! Database export and import, and the digest replicas compare.

use peergroup::{ErrorKind, Role};
use peergroup_record_db::export::ImportMode;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_into_a_closed_group() {
    bounded(async {
        let (alice, a) = creator("Alice", &peergroup::GroupSpec::new("Friends")).await;
        let note = a
            .add_record(note_type(), "", b"from the export".to_vec(), HOUR)
            .await
            .unwrap();
        let file = alice.dir.path().join("friends.pgdb");
        let written = a.export_database(&file).await.unwrap();
        assert!(
            written >= 3,
            "properties, membership, presence, note: {written}"
        );
        assert_eq!(written as usize, a.digest().await.unwrap().1);

        // Bob joined but never connected: his copy is empty.
        let bob = Peer::start("Bob").await;
        let invitation = a
            .create_invitation(&bob.info_xml().await, Role::Member, DAY)
            .await
            .unwrap();
        let name = bob.infra.join(&bob.id, &invitation).await.unwrap();
        let b = bob.open(&name).await;
        assert_eq!(kind_of(b.record(note.id).await), ErrorKind::RecordNotFound);

        // Not while it is open.
        assert_eq!(
            kind_of(
                bob.infra
                    .import_database(&bob.id, &name, &file, ImportMode::AllOrNothing)
                    .await
            ),
            ErrorKind::GroupInUse
        );
        b.close().await.unwrap();
        let before = stored_digest(&bob, &name).await;

        // A damaged file is refused and changes nothing.
        let mut bytes = std::fs::read(&file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        let damaged = bob.dir.path().join("damaged.pgdb");
        std::fs::write(&damaged, &bytes).unwrap();
        assert_eq!(
            kind_of(
                bob.infra
                    .import_database(&bob.id, &name, &damaged, ImportMode::AllOrNothing)
                    .await
            ),
            ErrorKind::Corrupt
        );
        let truncated = bob.dir.path().join("truncated.pgdb");
        std::fs::write(&truncated, &bytes[..middle]).unwrap();
        assert_eq!(
            kind_of(
                bob.infra
                    .import_database(&bob.id, &name, &truncated, ImportMode::AllOrNothing)
                    .await
            ),
            ErrorKind::Corrupt
        );
        assert_eq!(stored_digest(&bob, &name).await, before, "nothing changed");

        // The real file imports, every record validated again.
        let report = bob
            .infra
            .import_database(&bob.id, &name, &file, ImportMode::AllOrNothing)
            .await
            .unwrap();
        assert!(report.committed && report.refused.is_empty(), "{report:?}");
        assert!(report.accepted >= 3, "{report:?}");
        let b = bob.open(&name).await;
        assert_eq!(b.record(note.id).await.unwrap().payload, b"from the export");
        assert_eq!(b.properties().await.unwrap().friendly_name, "Friends");

        // A group Bob is not a member of cannot be imported into.
        assert_eq!(
            kind_of(
                bob.infra
                    .import_database(&bob.id, &bob.id, &file, ImportMode::AllOrNothing)
                    .await
            ),
            ErrorKind::GroupNotFound
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_agree_on_converged_replicas() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob", "Carol"]).await;
        for (i, g) in net.groups.iter().enumerate() {
            g.add_record(note_type(), "", format!("note {i}").into_bytes(), HOUR)
                .await
                .unwrap();
        }
        until("every replica has the same digest", async || {
            let mut digests = Vec::new();
            for g in &net.groups {
                digests.push(g.digest().await.unwrap());
            }
            if digests.iter().all(|d| *d == digests[0]) {
                Ok(())
            } else {
                let counts: Vec<usize> = digests.iter().map(|d| d.1).collect();
                Err(format!("digests differ; record counts {counts:?}"))
            }
        })
        .await;
        let (_, count) = net.groups[0].digest().await.unwrap();
        // Properties, three memberships, three presences, three notes.
        assert!(count >= 10, "{count}");
        for g in &net.groups {
            assert_eq!(g.records(note_type()).await.unwrap().len(), 3);
        }
    })
    .await;
}
