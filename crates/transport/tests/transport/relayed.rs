//! Connections inside a relayed byte stream: the same member authentication and refusals
//! as over TCP, and the relay in the middle sees TLS records only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use peergroup_credential_roles::RevocationTarget;
use peergroup_transport::{
    ConnectError, Connection, GroupTrust, RefusalKind, Transport, accept_relayed, connect_relayed,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::support::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Two streams joined by a "relay" task that copies bytes both ways and keeps a copy of
/// everything it carried.
fn relayed_pair() -> (DuplexStream, DuplexStream, Arc<Mutex<Vec<u8>>>) {
    let (client, relay_a) = tokio::io::duplex(16 * 1024);
    let (relay_b, server) = tokio::io::duplex(16 * 1024);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (a_read, a_write) = tokio::io::split(relay_a);
    let (b_read, b_write) = tokio::io::split(relay_b);
    tokio::spawn(copy_half(a_read, b_write, seen.clone()));
    tokio::spawn(copy_half(b_read, a_write, seen.clone()));
    (client, server, seen)
}

async fn copy_half(
    mut from: tokio::io::ReadHalf<DuplexStream>,
    mut to: tokio::io::WriteHalf<DuplexStream>,
    seen: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        seen.lock().unwrap().extend_from_slice(&buf[..n]);
    }
    let _ = to.shutdown().await;
}

/// Runs both ends over a relayed pair: `client` with `client_trust` asks, `server` accepts
/// with `server_trust`.
async fn both_ends(
    client: &Member,
    client_trust: &GroupTrust,
    server: &Member,
    server_trust: &GroupTrust,
) -> (
    Result<Connection, ConnectError>,
    Result<Connection, ConnectError>,
    Arc<Mutex<Vec<u8>>>,
) {
    let (c_io, s_io, seen) = relayed_pair();
    let cfg = config();
    let (c, s) = tokio::join!(
        connect_relayed(c_io, addr(1), addr(9), &client.creds, client_trust, &cfg),
        accept_relayed(s_io, addr(2), addr(9), &server.creds, server_trust, &cfg),
    );
    (c, s, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_authenticate_end_to_end_through_a_relay() {
    bounded(async {
        let f = Fixture::new();
        let (c, s, seen) = both_ends(&f.bob, &f.trust_a(), &f.alice, &f.trust_a()).await;
        let (mut bob, mut alice) = (c.unwrap(), s.unwrap());
        assert_eq!(&bob.peer().peer, f.alice.peer());
        assert_eq!(&alice.peer().peer, f.bob.peer());
        assert_eq!(bob.peer().transport, Transport::Relayed);
        assert_eq!(alice.peer().transport, Transport::Relayed);
        assert_eq!(bob.peer().addr, addr(9), "the address shown is the relay's");
        assert_eq!(alice.peer().chain.key(), &f.bob.key().public());
        let secret = b"a secret only Alice may read";
        bob.send(Bytes::from_static(secret)).await.unwrap();
        assert_eq!(recv(&mut alice, "Bob's frame").await, &secret[..]);
        alice.send(Bytes::from_static(b"and back")).await.unwrap();
        assert_eq!(recv(&mut bob, "Alice's frame").await, &b"and back"[..]);
        // The relay carried ciphertext: neither the data nor anything else in clear.
        let carried = seen.lock().unwrap().clone();
        assert!(carried.len() > 1000, "the relay carried the handshake");
        assert!(
            !carried.windows(secret.len()).any(|w| w == secret),
            "the relay saw the data in clear"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_stream_refuses_who_a_direct_connection_refuses() {
    bounded(async {
        let f = Fixture::new();
        // A member of another group asking for ours.
        let (c, s, _) = both_ends(&f.mallory, &f.trust_b(), &f.alice, &f.trust_a()).await;
        assert!(c.is_err(), "a foreign group's member got in");
        let kind = match s {
            Err(ConnectError::NotAuthenticated(r)) => r.kind,
            other => panic!("expected our refusal, got {:?}", other.map(|_| ())),
        };
        assert_eq!(kind, RefusalKind::UnknownGroup);
        // A revoked member.
        let revoking = f.trust_a();
        revoking.revoke(RevocationTarget::Peer(f.carol.peer().clone()), t0());
        let (c, s, _) = both_ends(&f.carol, &f.trust_a(), &f.alice, &revoking).await;
        assert!(c.is_err(), "a revoked member got in");
        match s {
            Err(ConnectError::NotAuthenticated(r)) => assert_eq!(r.kind, RefusalKind::Revoked),
            other => panic!("expected a revocation refusal, got {:?}", other.map(|_| ())),
        }
        // The member being reached is checked too: a client refuses a revoked server.
        let (c, s, _) = both_ends(&f.bob, &revoking_of(&f, &f.alice), &f.alice, &f.trust_a()).await;
        match c {
            Err(ConnectError::NotAuthenticated(r)) => assert_eq!(r.kind, RefusalKind::Revoked),
            other => panic!("expected the client's refusal, got {:?}", other.map(|_| ())),
        }
        assert!(s.is_err());
        // A member revoked while its relayed connection is up is cut off.
        let live = f.trust_a();
        let (c, s, _) = both_ends(&f.bob, &f.trust_a(), &f.alice, &live).await;
        let (bob, _alice) = (c.unwrap(), s.unwrap());
        live.revoke(RevocationTarget::Peer(f.bob.peer().clone()), t0());
        within(
            "the revoked member's relayed connection closes",
            bob.closed(),
        )
        .await;
    })
    .await;
}

fn revoking_of(f: &Fixture, who: &Member) -> GroupTrust {
    let t = f.trust_a();
    t.revoke(RevocationTarget::Peer(who.peer().clone()), t0());
    t
}
