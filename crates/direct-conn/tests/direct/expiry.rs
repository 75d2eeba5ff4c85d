//! Rights end on time: a direct connection closes when its member's certificate expires;
//! nothing the member sent after is delivered, nothing is sent to it after, and the events
//! say why. On the wall clock: Bob's certificate is issued to expire a few seconds after the
//! test starts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use peergroup_direct_conn::{DirectConnId, DirectConnections, DirectError, DirectEvent};
use peergroup_identity::Timestamp;

use crate::support::*;

/// How long Bob's membership lasts from the start of a test: long enough for two nodes to
/// start and link on a loaded machine (well under a second when quiet).
const LIFETIME: Duration = Duration::from_secs(6);

/// How often each side sends while the certificate runs out.
const TICK: Duration = Duration::from_millis(10);

/// Sends a message every [`TICK`], each carrying when its send started, until one is refused.
/// Returns when the accepted ones started, and the refusal.
async fn stamped_sends(
    direct: Arc<DirectConnections>,
    id: DirectConnId,
) -> (Vec<Timestamp>, DirectError) {
    let mut accepted = Vec::new();
    loop {
        let start = Timestamp::now();
        let data = Bytes::from(start.as_millis().to_be_bytes().to_vec());
        match direct.send(id, chat(), data).await {
            Ok(()) => accepted.push(start),
            Err(e) => return (accepted, e),
        }
        tokio::time::sleep(TICK).await;
    }
}

fn stamp(data: &[u8]) -> Timestamp {
    Timestamp::from_millis(u64::from_be_bytes(data.try_into().unwrap()))
}

/// Sets up Alice and Bob on the wall clock, Bob's certificate ending in [`LIFETIME`], with a
/// direct connection Bob opened; returns the nodes, the ids on Alice's and Bob's sides, and
/// when Bob's rights end.
async fn expiring_pair() -> (Node, Node, DirectConnId, DirectConnId, Timestamp) {
    let (f, ends) = Fixture::expiring(LIFETIME);
    let mut alice = Node::start(&f.alice, &f.wall_trust()).await;
    let mut bob = Node::start(&f.bob, &f.wall_trust()).await;
    let (b_id, a_id) = link(&mut bob, &mut alice).await;
    let now = Timestamp::now();
    assert!(
        now < ends,
        "setting up took until {now}, past Bob's expiry at {ends}: the machine is slower than \
         LIFETIME ({LIFETIME:?}) allows"
    );
    (alice, bob, a_id, b_id, ends)
}

/// Reads Alice's events on `a_id` until its `Disconnected`: every message delivered must have
/// been sent before `ends`. Returns how many were delivered and the reason.
async fn read_until_disconnected(
    alice: &mut Node,
    a_id: DirectConnId,
    ends: Timestamp,
) -> (usize, String) {
    let mut delivered = 0;
    loop {
        match alice.next().await {
            DirectEvent::Data { id, data, .. } if id == a_id => {
                let sent = stamp(&data);
                assert!(
                    sent <= ends,
                    "Alice was given a message Bob sent at {sent}, after his certificate \
                     expired at {ends} (message {delivered})"
                );
                delivered += 1;
            }
            DirectEvent::Disconnected { id, reason, .. } if id == a_id => {
                return (delivered, reason);
            }
            other => panic!(
                "Alice expected data or the Disconnected of {a_id} after {delivered} \
                 message(s), got {other:?}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closes_when_the_members_certificate_expires() {
    bounded(async {
        let (mut alice, mut bob, a_id, b_id, ends) = expiring_pair().await;
        // Both keep sending across the expiry; Alice reads as it comes.
        let bob_sends = tokio::spawn(stamped_sends(bob.direct.clone(), b_id));
        let alice_sends = tokio::spawn(stamped_sends(alice.direct.clone(), a_id));
        let (delivered, reason) = read_until_disconnected(&mut alice, a_id, ends).await;
        let closed = Timestamp::now();
        assert!(
            closed > ends,
            "Alice saw the close at {closed}, before Bob's expiry at {ends}"
        );
        assert!(
            reason.contains("the member's certificate expired"),
            "Alice's Disconnected should say why: {reason}"
        );
        assert!(delivered > 0, "nothing was delivered before the expiry");

        // Alice's sends were refused from the expiry on, never accepted after it.
        let (accepted, refusal) = within("Alice's sends to be refused", alice_sends)
            .await
            .unwrap();
        let late: Vec<_> = accepted.iter().filter(|t| **t > ends).collect();
        assert!(
            late.is_empty(),
            "Alice's sends started after the expiry at {ends} were accepted: {late:?}"
        );
        assert!(
            matches!(
                refusal,
                DirectError::Expired { .. } | DirectError::Closed { .. }
            ),
            "{refusal:?}"
        );

        // Bob is told (after what Alice sent him before), and his sends fail.
        let reason = loop {
            match bob.next().await {
                DirectEvent::Data { id, .. } if id == b_id => {}
                DirectEvent::Disconnected { id, reason, .. } if id == b_id => break reason,
                other => panic!("Bob expected data or the Disconnected of {b_id}, got {other:?}"),
            }
        };
        assert!(reason.contains("expired"), "Bob's Disconnected: {reason}");
        let (sent, _) = within("Bob's sends to fail", bob_sends).await.unwrap();
        eprintln!(
            "expiry at {ends}: Alice saw the close {} ms after it; Bob's sends accepted: {}, \
             delivered to Alice: {delivered}",
            closed.as_millis() - ends.as_millis(),
            sent.len()
        );

        // Nothing after, and nothing left.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let event = alice.events.try_recv();
        assert!(
            event.is_none(),
            "after the Disconnected, Alice saw {event:?}"
        );
        assert!(alice.direct.connections().is_empty());
        assert_eq!(alice.direct.counted(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_closes_at_the_expiry_even_while_the_owner_does_not_read() {
    bounded(async {
        let (mut alice, mut bob, a_id, b_id, ends) = expiring_pair().await;
        // Bob sends; Alice reads nothing, so her event queue fills and her connection waits
        // to hand over the next message when the certificate runs out.
        let bob_sends = tokio::spawn(stamped_sends(bob.direct.clone(), b_id));
        let reason = bob.disconnected(b_id).await;
        let closed = Timestamp::now();
        assert!(
            closed > ends,
            "Bob saw the close at {closed}, before his expiry at {ends}"
        );
        assert!(reason.contains("expired"), "Bob's Disconnected: {reason}");
        within("Bob's sends to fail", bob_sends).await.unwrap();

        // Now Alice reads: what was queued before the expiry, then why it closed.
        let (delivered, reason) = read_until_disconnected(&mut alice, a_id, ends).await;
        assert!(
            reason.contains("the member's certificate expired"),
            "Alice's Disconnected: {reason}"
        );
        eprintln!(
            "expiry at {ends}: Bob saw the close {} ms after it; {delivered} message(s) were \
             queued at Alice",
            closed.as_millis() - ends.as_millis()
        );
        assert!(alice.direct.connections().is_empty());
    })
    .await;
}
