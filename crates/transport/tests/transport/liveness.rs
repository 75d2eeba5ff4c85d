//! Idle timeout, keepalive, bounded queues, and revocation of live connections.

use std::time::Duration;

use bytes::Bytes;
use peergroup_credential_roles::{RevocationSet, RevocationTarget};
use peergroup_transport::{CloseReason, Dial, Endpoint, RefusalKind, TransportError};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        // The server gives up after 400 ms of silence and never pings first; the client
        // pings too rarely to matter.
        let mut strict = config();
        strict.idle_timeout = Duration::from_millis(400);
        strict.keepalive_interval = Duration::from_secs(60);
        let (ep, addr) = server(&f.alice.creds, &trust, strict.clone()).await;
        let mut lax = config();
        lax.keepalive_interval = Duration::from_secs(60);
        // Timed from before the connection exists, so the server's silence cannot have
        // started earlier (however late a loaded machine gets to `accept`).
        let started = tokio::time::Instant::now();
        let client = Endpoint::connect(addr, &f.bob.creds, &trust, &lax)
            .await
            .unwrap();
        let at_server = accept(&ep).await;
        let reason = within(
            "the server to close the silent connection",
            at_server.closed(),
        )
        .await;
        let waited = started.elapsed();
        assert_eq!(reason, CloseReason::IdleTimeout, "after {waited:?}");
        assert!(
            waited >= strict.idle_timeout,
            "a 400 ms idle timeout fired after {waited:?}"
        );
        assert!(
            waited < NO_HANG,
            "a 400 ms idle timeout fired after {waited:?}"
        );
        assert_eq!(
            within("the client's side to close", client.closed()).await,
            CloseReason::Peer("idle timeout".into())
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_keeps_an_idle_connection_open() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        // The idle timeout is fifteen ping intervals: only a pause of seconds, not load, lets
        // it fire between two pings.
        let mut cfg = config();
        cfg.idle_timeout = Duration::from_secs(3);
        cfg.keepalive_interval = Duration::from_millis(200);
        // Only the client pings; the server answers, and both stay alive.
        let mut server_cfg = cfg.clone();
        server_cfg.keepalive_interval = Duration::from_secs(60);
        let (ep, addr) = server(&f.alice.creds, &trust, server_cfg).await;
        let mut client = Endpoint::connect(addr, &f.bob.creds, &trust, &cfg)
            .await
            .unwrap();
        let mut at_server = accept(&ep).await;
        // More than twice the idle timeout without application data. (This sleep is the
        // test: time passing without data; nothing is expected to happen.)
        tokio::time::sleep(cfg.idle_timeout * 2 + Duration::from_millis(500)).await;
        assert_eq!(client.close_reason(), None);
        assert_eq!(at_server.close_reason(), None);
        client.send(Bytes::from_static(b"awake")).await.unwrap();
        assert_eq!(
            recv(&mut at_server, "the client's frame").await,
            &b"awake"[..]
        );
        at_server.send(Bytes::from_static(b"me too")).await.unwrap();
        assert_eq!(
            recv(&mut client, "the server's frame").await,
            &b"me too"[..]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_makes_try_send_fail_and_send_wait() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let mut server_cfg = config();
        server_cfg.recv_queue = 1;
        let (ep, addr) = server(&f.alice.creds, &trust, server_cfg).await;
        let mut client_cfg = config();
        client_cfg.send_queue = 4;
        let client = Endpoint::connect(addr, &f.bob.creds, &trust, &client_cfg)
            .await
            .unwrap();
        let mut at_server = accept(&ep).await;

        // The server application reads nothing: its queue fills, it stops reading the
        // socket, the kernel buffers fill, our writer blocks, our queue fills.
        let chunk = Bytes::from(vec![0x42; 1024 * 1024]);
        let mut sent = 0usize;
        let mut progress = tokio::time::Instant::now();
        let mut stuck = 0;
        // No progress for `STALL` and `STALL_LOOKS` looks: the pipeline is blocked end to end.
        while stuck < STALL_LOOKS || progress.elapsed() < STALL {
            match client.try_send(chunk.clone()) {
                Ok(()) => {
                    sent += 1;
                    stuck = 0;
                    progress = tokio::time::Instant::now();
                }
                Err(TransportError::QueueFull) => {
                    stuck += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
            assert!(sent < 500, "no backpressure after {sent} MiB");
        }
        eprintln!("backpressure after {sent} frames of 1 MiB");
        assert!(matches!(
            client.try_send(chunk.clone()),
            Err(TransportError::QueueFull)
        ));
        // `send` waits instead of failing or buffering…
        let pending = tokio::time::timeout(Duration::from_millis(300), client.send(chunk.clone()));
        let pending = pending.await;
        assert!(
            pending.is_err(),
            "send did not wait on a full queue: {pending:?}"
        );

        // …and completes once the reader catches up. Everything arrives, in order.
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while n < sent + 1 {
                let got = recv(&mut at_server, &format!("chunk {n} of {}", sent + 1)).await;
                assert_eq!(got.len(), 1024 * 1024);
                n += 1;
            }
            at_server
        });
        within(
            "the waiting send to complete once the server reads",
            client.send(chunk.clone()),
        )
        .await
        .unwrap();
        let at_server = within("the server to read every chunk", reader)
            .await
            .unwrap();
        assert!(client.close_reason().is_none() && at_server.close_reason().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_closes_a_live_connection() {
    bounded(async {
        for dial in DIALS {
            revocation_closes_over(dial).await;
        }
    })
    .await;
}

async fn revocation_closes_over(dial: Dial) {
    let f = Fixture::new();
    let trust = f.trust_a();
    let (ep, addr) = server(&f.alice.creds, &trust, config()).await;
    let bob = connect_over(dial, addr, &f.bob, &f.trust_a()).await;
    let bob_at_server = accept(&ep).await;
    let carol = connect_over(dial, addr, &f.carol, &f.trust_a()).await;
    let mut carol_at_server = accept(&ep).await;

    // The server learns Bob is revoked: his connection closes, Carol's stays.
    trust.revoke(RevocationTarget::Peer(f.bob.peer().clone()), t0());
    match within(
        "the server to close revoked Bob's connection",
        bob_at_server.closed(),
    )
    .await
    {
        CloseReason::Untrusted(r) => assert_eq!(r.kind, RefusalKind::Revoked),
        other => panic!("{other:?}"),
    }
    match within("Bob's side to close", bob.closed()).await {
        CloseReason::Peer(reason) => assert!(reason.contains("revoked"), "{reason}"),
        other => panic!("{other:?}"),
    }
    carol.send(Bytes::from_static(b"fine")).await.unwrap();
    assert_eq!(
        recv(&mut carol_at_server, "Carol's frame").await,
        &b"fine"[..]
    );

    // And he cannot come back.
    let err = Endpoint::connect(addr, &f.bob.creds, &f.trust_a(), &config_over(dial))
        .await
        .unwrap_err();
    assert_eq!(err.refusal_kind(), Some(RefusalKind::Revoked));

    // A client whose trust learns the server is revoked closes too.
    let client_trust = f.trust_a();
    let to_alice = connect_over(dial, addr, &f.carol, &client_trust).await;
    let _alice_side = accept(&ep).await;
    let mut set = RevocationSet::new();
    set.insert(RevocationTarget::Peer(f.alice.peer().clone()), t0());
    client_trust.set_revocations(set);
    match within(
        "Carol's side to close once Alice is revoked",
        to_alice.closed(),
    )
    .await
    {
        CloseReason::Untrusted(r) => assert_eq!(r.kind, RefusalKind::Revoked),
        other => panic!("{other:?}"),
    }
    assert!(carol.close_reason().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recheck_closes_connections_whose_membership_expired() {
    bounded(async {
        let f = Fixture::new();
        // A clock the test moves.
        let now = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(now().as_millis()));
        let clock_now = now.clone();
        let trust = peergroup_transport::GroupTrust::with_clock(
            f.a.group().clone(),
            std::sync::Arc::new(move || {
                peergroup_identity::Timestamp::from_millis(
                    clock_now.load(std::sync::atomic::Ordering::Relaxed),
                )
            }),
        );
        let (ep, addr) = server(&f.alice.creds, &trust, config()).await;
        let _bob = connect(addr, &f.bob, &f.trust_a()).await;
        let at_server = accept(&ep).await;
        now.store(
            t0().saturating_add(400 * DAY).as_millis(),
            std::sync::atomic::Ordering::Relaxed,
        );
        trust.recheck();
        match within(
            "the server to close Bob's expired connection",
            at_server.closed(),
        )
        .await
        {
            CloseReason::Untrusted(r) => assert_eq!(r.kind, RefusalKind::Expired),
            other => panic!("{other:?}"),
        }
    })
    .await;
}
