//! Queues bounded in bytes, pushed past over real connections: the receive queue per
//! connection and per endpoint (reading stops; nothing is dropped), the send queue, and the
//! frame limit a group sets (refused from the length prefix, on new and live connections).

use std::time::Duration;

use bytes::Bytes;
use peergroup_transport::testing::connect_raw;
use peergroup_transport::{
    CloseReason, Connection, DEFAULT_ENDPOINT_RECV_BYTES, DEFAULT_MAX_FRAME,
    DEFAULT_RECV_QUEUE_BYTES, Endpoint, FrameError, TransportError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// Sends `chunk` with `try_send` until the pipeline is blocked end to end (no progress for
/// [`STALL`] through [`STALL_LOOKS`] looks); the number of frames sent. Fails if more than
/// `most` frames go through: then nothing pushed back.
async fn push_until_blocked(conn: &Connection, chunk: &Bytes, most: usize) -> usize {
    let mut sent = 0usize;
    let mut progress = tokio::time::Instant::now();
    let mut stuck = 0;
    while stuck < STALL_LOOKS || progress.elapsed() < STALL {
        match conn.try_send(chunk.clone()) {
            Ok(()) => {
                sent += 1;
                stuck = 0;
                progress = tokio::time::Instant::now();
            }
            Err(TransportError::QueueFull) => {
                stuck += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("sending frame {sent}: {e}"),
        }
        assert!(
            sent <= most,
            "no backpressure after {sent} frames of {} bytes",
            chunk.len()
        );
    }
    sent
}

/// Reads `n` frames of `len` bytes, each starting with its sequence number.
async fn read_all(conn: &mut Connection, n: usize, len: usize) {
    read_numbered(conn, 0..n, len).await;
}

/// Reads the frames numbered `range` (of `len` bytes), in order.
async fn read_numbered(conn: &mut Connection, range: std::ops::Range<usize>, len: usize) {
    let n = range.end;
    for i in range {
        let got = recv(conn, &format!("frame {i} of {n}")).await;
        assert_eq!(got.len(), len, "frame {i}");
        assert_eq!(got[..8], (i as u64).to_be_bytes(), "frame {i} out of order");
    }
}

/// A `len`-byte frame starting with `i`.
fn numbered(i: usize, len: usize) -> Bytes {
    let mut v = vec![0x5a; len];
    v[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Bytes::from(v)
}

/// Sends numbered frames until blocked (see [`push_until_blocked`]); how many.
async fn push_numbered_until_blocked(conn: &Connection, len: usize, most: usize) -> usize {
    let mut sent = 0usize;
    let mut progress = tokio::time::Instant::now();
    let mut stuck = 0;
    while stuck < STALL_LOOKS || progress.elapsed() < STALL {
        match conn.try_send(numbered(sent, len)) {
            Ok(()) => {
                sent += 1;
                stuck = 0;
                progress = tokio::time::Instant::now();
            }
            Err(TransportError::QueueFull) => {
                stuck += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("sending frame {sent}: {e}"),
        }
        assert!(
            sent <= most,
            "no backpressure after {sent} frames of {len} bytes"
        );
    }
    sent
}

const KIB: usize = 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receive_queue_is_bounded_in_bytes_and_drops_nothing() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let mut cfg = config();
        cfg.recv_queue = 100_000;
        cfg.recv_queue_bytes = 256 * KIB;
        let (ep, addr) = server(&f.alice.creds, &trust, cfg).await;
        let client = connect(addr, &f.bob, &trust).await;
        let mut at_server = accept(&ep).await;
        let len = 32 * KIB;
        // The server application reads nothing.
        let sent = push_numbered_until_blocked(&client, len, 5_000).await;
        let queued = at_server.recv_queued_bytes();
        eprintln!(
            "receive queue: {queued} bytes held of a 256 KiB bound after {sent} frames of 32 KiB"
        );
        assert!(
            queued > 0 && queued < 256 * KIB + len,
            "the receive queue holds {queued} bytes; the bound is 256 KiB plus one frame"
        );
        assert_eq!(ep.recv_queued_bytes(), queued);
        // Nothing was dropped: every frame arrives, in order, once the application reads.
        read_all(&mut at_server, sent, len).await;
        assert_eq!(at_server.recv_queued_bytes(), 0);
        assert_eq!(ep.recv_queued_bytes(), 0);
        assert!(client.close_reason().is_none() && at_server.close_reason().is_none());
    })
    .await;
}

/// Polls until the server holds `bytes` unread, or fails after 10 s.
async fn until_queued(conn: &Connection, bytes: usize, what: &str) {
    let start = tokio::time::Instant::now();
    while conn.recv_queued_bytes() != bytes {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: {} bytes queued, not {bytes}",
            conn.recv_queued_bytes()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_receive_queue_is_refilled_a_quarter_at_a_time() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let mut cfg = config();
        cfg.recv_queue = 8;
        let (ep, addr) = server(&f.alice.creds, &trust, cfg).await;
        let client = connect(addr, &f.bob, &trust).await;
        let mut at_server = accept(&ep).await;
        let len = KIB;
        for i in 0..40 {
            client.send(numbered(i, len)).await.expect("send");
        }
        until_queued(&at_server, 8 * len, "the full queue").await;
        // One place free: the connection does not read for it alone...
        assert_eq!(
            recv(&mut at_server, "frame 0").await[..8],
            0u64.to_be_bytes()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(at_server.recv_queued_bytes(), 7 * len, "read for one place");
        // ...but for a quarter of the queue, at once.
        assert_eq!(
            recv(&mut at_server, "frame 1").await[..8],
            1u64.to_be_bytes()
        );
        until_queued(&at_server, 8 * len, "refilled").await;
        // Nothing lost or reordered.
        read_numbered(&mut at_server, 2..40, len).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_bounds_bytes_unread_across_connections_yet_an_empty_queue_reads() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let mut cfg = config();
        cfg.recv_queue = 100_000;
        cfg.recv_queue_bytes = 1024 * KIB;
        cfg.endpoint_recv_bytes = 256 * KIB;
        let (ep, addr) = server(&f.alice.creds, &trust, cfg).await;
        let len = 32 * KIB;
        let mut pairs = Vec::new();
        for who in [&f.bob, &f.carol, &f.bob] {
            let client = connect(addr, who, &trust).await;
            let at_server = accept(&ep).await;
            pairs.push((client, at_server));
        }
        let mut sent = Vec::new();
        for (client, _) in &pairs {
            sent.push(push_numbered_until_blocked(client, len, 5_000).await);
        }
        let total = ep.recv_queued_bytes();
        let each: Vec<usize> = pairs.iter().map(|(_, s)| s.recv_queued_bytes()).collect();
        eprintln!("endpoint: {total} bytes unread (bound 256 KiB), per connection {each:?}");
        assert_eq!(total, each.iter().sum::<usize>());
        assert!(
            total < 256 * KIB + 3 * len,
            "{total} bytes unread across the endpoint; the bound is 256 KiB plus a frame per \
             connection"
        );
        // A connection whose queue is empty still gets its frame through.
        let mut late = connect(addr, &f.carol, &trust).await;
        let mut at_server = accept(&ep).await;
        late.send(Bytes::from_static(b"me too")).await.unwrap();
        assert_eq!(
            recv(
                &mut at_server,
                "a frame on a fresh connection while the endpoint is full"
            )
            .await,
            &b"me too"[..]
        );
        at_server.send(Bytes::from_static(b"ok")).await.unwrap();
        assert_eq!(recv(&mut late, "the reply").await, &b"ok"[..]);
        // Nothing was dropped anywhere.
        for (n, (_, at_server)) in pairs.iter_mut().enumerate() {
            read_all(at_server, sent[n], len).await;
        }
        assert_eq!(ep.recv_queued_bytes(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_frames_from_four_connections_are_held_one_per_connection() {
    bounded(async {
        // The case of the issue: four connections pushing 16 MiB frames at a node that does
        // not read. Before, each could queue 64 of them (1 GiB); now the default bounds hold.
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, config()).await;
        let mut conns = Vec::new();
        for _ in 0..4 {
            let client = connect(addr, &f.bob, &trust).await;
            conns.push((client, accept(&ep).await));
        }
        let chunk = Bytes::from(vec![7u8; conns[0].0.max_data_len()]);
        assert!(chunk.len() > DEFAULT_MAX_FRAME - 16);
        for (client, _) in &conns {
            push_until_blocked(client, &chunk, 64).await;
        }
        let total = ep.recv_queued_bytes();
        let each: Vec<usize> = conns.iter().map(|(_, s)| s.recv_queued_bytes()).collect();
        eprintln!("four connections of 16 MiB frames: {total} bytes unread, {each:?}");
        for (n, held) in each.iter().enumerate() {
            assert!(
                *held < DEFAULT_RECV_QUEUE_BYTES + chunk.len(),
                "connection {n} holds {held} bytes unread"
            );
        }
        assert!(
            total < DEFAULT_ENDPOINT_RECV_BYTES + 4 * chunk.len(),
            "{total} bytes unread across the endpoint"
        );
        for (client, mut at_server) in conns {
            let got = recv(&mut at_server, "a 16 MiB frame").await;
            assert_eq!(got.len(), chunk.len());
            drop(client);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_queue_is_bounded_in_bytes() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let mut server_cfg = config();
        server_cfg.recv_queue = 1;
        let (ep, addr) = server(&f.alice.creds, &trust, server_cfg).await;
        let mut client_cfg = config();
        client_cfg.send_queue = 100_000;
        client_cfg.send_queue_bytes = 256 * KIB;
        let client = Endpoint::connect(addr, &f.bob.creds, &trust, &client_cfg)
            .await
            .unwrap();
        let mut at_server = accept(&ep).await;
        let len = 32 * KIB;
        let sent = push_numbered_until_blocked(&client, len, 5_000).await;
        let queued = client.send_queued_bytes();
        eprintln!("send queue: {queued} bytes held of a 256 KiB bound after {sent} frames");
        assert!(
            queued >= 256 * KIB && queued < 256 * KIB + len,
            "the send queue holds {queued} bytes; it fills to 256 KiB plus at most one frame"
        );
        // `send` waits rather than queueing more.
        let waiting =
            tokio::time::timeout(Duration::from_millis(300), client.send(numbered(sent, len)))
                .await;
        assert!(
            waiting.is_err(),
            "send did not wait on a full queue: {waiting:?}"
        );
        let reader = tokio::spawn(async move {
            read_all(&mut at_server, sent + 1, len).await;
            at_server
        });
        within(
            "the waiting send to complete once the server reads",
            client.send(numbered(sent, len)),
        )
        .await
        .unwrap();
        let at_server = within("the server to read every frame", reader)
            .await
            .unwrap();
        assert!(client.close_reason().is_none() && at_server.close_reason().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_frame_limit_refuses_a_frame_from_its_length_prefix() {
    bounded(async {
        let f = Fixture::new();
        // The server's group takes frames of at most 64 KiB; the configuration allows 16 MiB.
        let server_trust = f.trust_a();
        server_trust.set_max_frame(Some(64 * KIB));
        let (ep, addr) = server(&f.alice.creds, &server_trust, config()).await;
        let client_trust = f.trust_a();
        let mut raw = connect_raw(addr, &f.bob.creds, &client_trust, &config())
            .await
            .unwrap();
        let at_server = accept(&ep).await;
        assert_eq!(at_server.max_frame(), 64 * KIB);
        assert!(at_server.max_data_len() < 64 * KIB);
        // Only the length prefix of a 1 MiB frame: the rest never comes, nothing is buffered.
        raw.write_all(&(1024 * 1024u32).to_be_bytes())
            .await
            .unwrap();
        raw.flush().await.unwrap();
        let reason = within(
            "the server to close the connection over the 4-byte prefix of a 1 MiB frame",
            at_server.closed(),
        )
        .await;
        assert_eq!(
            reason,
            CloseReason::Protocol(FrameError::TooLarge {
                len: 1024 * 1024,
                max: 64 * KIB
            })
        );
        assert_eq!(at_server.recv_queued_bytes(), 0);
        // The client is told why, in a Close frame.
        let mut wire = Vec::new();
        let _ = within("the server's goodbye", raw.read_to_end(&mut wire)).await;
        let text = String::from_utf8_lossy(&wire);
        assert!(
            text.contains("over the 65536-byte limit"),
            "the goodbye says {text:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowering_a_group_frame_limit_applies_to_live_connections() {
    bounded(async {
        let f = Fixture::new();
        let server_trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &server_trust, config()).await;
        let client_trust = f.trust_a();
        let client = Endpoint::connect(addr, &f.bob.creds, &client_trust, &config())
            .await
            .unwrap();
        let mut at_server = accept(&ep).await;
        let big = Bytes::from(vec![1u8; 100 * KIB]);
        client.send(big.clone()).await.unwrap();
        assert_eq!(
            recv(&mut at_server, "a 100 KiB frame").await.len(),
            100 * KIB
        );

        // The group's limit drops to 64 KiB on the server's side while its reader waits: the
        // next frame over it closes the connection, with the reason.
        server_trust.set_max_frame(Some(64 * KIB));
        assert_eq!(server_trust.max_frame(), Some(64 * KIB));
        assert_eq!(at_server.max_frame(), 64 * KIB);
        client.send(big.clone()).await.unwrap();
        let reason = within(
            "the server to close over a 100 KiB frame",
            at_server.closed(),
        )
        .await;
        assert!(
            matches!(
                reason,
                CloseReason::Protocol(FrameError::TooLarge { max, .. }) if max == 64 * KIB
            ),
            "{reason:?}"
        );
        let reason = within("the client to be told", client.closed()).await;
        assert!(
            matches!(&reason, CloseReason::Peer(r) if r.contains("65536-byte limit")),
            "{reason:?}"
        );

        // On the sending side the same limit is a caller's mistake, refused before queueing.
        let client = Endpoint::connect(addr, &f.carol.creds, &client_trust, &config())
            .await
            .unwrap();
        let _at_server = accept(&ep).await;
        client_trust.set_max_frame(Some(64 * KIB));
        let err = client.send(big).await.unwrap_err();
        assert!(
            matches!(err, TransportError::TooLarge { max, .. } if max < 64 * KIB),
            "{err:?}"
        );
        assert!(client.close_reason().is_none());
        // Lifting it restores the configuration's limit.
        client_trust.set_max_frame(None);
        assert_eq!(client.max_frame(), DEFAULT_MAX_FRAME);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_can_lower_its_own_frame_limit_below_the_groups() {
    bounded(async {
        let f = Fixture::new();
        let server_trust = f.trust_a();
        server_trust.set_max_frame(Some(256 * KIB));
        let (ep, addr) = server(&f.alice.creds, &server_trust, config()).await;
        let client_trust = f.trust_a();
        let client = Endpoint::connect(addr, &f.bob.creds, &client_trust, &config())
            .await
            .unwrap();
        let mut at_server = accept(&ep).await;
        let other = Endpoint::connect(addr, &f.carol.creds, &client_trust, &config())
            .await
            .unwrap();
        let mut other_at_server = accept(&ep).await;
        // One connection takes at most 64 KiB; it can never rise above the group's 256 KiB.
        at_server.set_max_frame(Some(64 * KIB));
        assert_eq!(at_server.max_frame(), 64 * KIB);
        at_server.set_max_frame(Some(100 * 1024 * KIB));
        assert_eq!(at_server.max_frame(), 256 * KIB);
        at_server.set_max_frame(Some(64 * KIB));
        let frame = Bytes::from(vec![3u8; 100 * KIB]);
        // Its own sends are held to it too: a caller's mistake, refused before queueing.
        let err = at_server.send(frame.clone()).await.unwrap_err();
        assert!(matches!(err, TransportError::TooLarge { .. }), "{err:?}");
        // The other connection of the group still takes 100 KiB.
        other.send(frame.clone()).await.unwrap();
        assert_eq!(
            recv(&mut other_at_server, "100 KiB on the other connection")
                .await
                .len(),
            100 * KIB
        );
        client.send(frame).await.unwrap();
        let reason = within(
            "the server to close the connection over a 100 KiB frame",
            at_server.closed(),
        )
        .await;
        assert!(
            matches!(
                reason,
                CloseReason::Protocol(FrameError::TooLarge { max, .. }) if max == 64 * KIB
            ),
            "{reason:?}"
        );
        assert_eq!(at_server.recv().await, None);
        assert!(other_at_server.close_reason().is_none());
    })
    .await;
}
