//! Frames over real connections: round trips, limits, garbage, several groups on one
//! listener, closing, and a thousand frames each way.

use std::time::Instant;

use bytes::Bytes;
use peergroup_transport::testing::connect_raw;
use peergroup_transport::{CloseReason, Endpoint, FrameError, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_round_trip_both_ways() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, config()).await;
        let mut client = connect(addr, &f.bob, &trust).await;
        let mut server = accept(&ep).await;
        let max = client.max_data_len();
        let payloads = [
            Bytes::new(),
            Bytes::from_static(b"x"),
            Bytes::from(vec![0xa5; 70_000]),
            Bytes::from(vec![7; max]),
        ];
        for p in &payloads {
            client.send(p.clone()).await.unwrap();
            server.send(p.clone()).await.unwrap();
        }
        for (i, p) in payloads.iter().enumerate() {
            let what = format!("payload {i} ({} bytes)", p.len());
            assert_eq!(&recv(&mut server, &what).await, p);
            assert_eq!(&recv(&mut client, &what).await, p);
        }
        // One byte more than fits is the caller's mistake, refused before queueing.
        let err = client
            .send(Bytes::from(vec![0; max + 1]))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::TooLarge { .. }), "{err:?}");
        assert!(client.close_reason().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_closes_only_that_connection() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let mut small = config();
        small.max_frame = 64 * 1024;
        let (ep, addr) = server(&f.alice.creds, &trust, small).await;
        // Bob's side allows bigger frames than the server does.
        let mut big = config();
        big.max_frame = 1024 * 1024;
        let bob = Endpoint::connect(addr, &f.bob.creds, &trust, &big)
            .await
            .unwrap();
        let bob_at_server = accept(&ep).await;
        let mut carol = connect(addr, &f.carol, &trust).await;
        let mut carol_at_server = accept(&ep).await;

        bob.send(Bytes::from(vec![1; 100 * 1024])).await.unwrap();
        let reason = within(
            "the server to close Bob's connection for an oversized frame",
            bob_at_server.closed(),
        )
        .await;
        assert!(
            matches!(
                reason,
                CloseReason::Protocol(FrameError::TooLarge { max: 65_536, .. })
            ),
            "{reason:?}"
        );
        let reason = within("Bob's connection to close", bob.closed()).await;
        assert!(
            matches!(&reason, CloseReason::Peer(r) if r.contains("limit")),
            "{reason:?}"
        );

        // Carol's connection on the same endpoint is unaffected.
        carol.send(Bytes::from_static(b"still here")).await.unwrap();
        assert_eq!(
            recv(&mut carol_at_server, "Carol's frame").await,
            &b"still here"[..]
        );
        carol_at_server
            .send(Bytes::from_static(b"yes"))
            .await
            .unwrap();
        assert_eq!(recv(&mut carol, "the server's reply").await, &b"yes"[..]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_handshake_closes_only_that_connection() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, config()).await;
        let carol = connect(addr, &f.carol, &trust).await;
        let mut carol_at_server = accept(&ep).await;

        type Check = fn(&FrameError) -> bool;
        let cases: [(&[u8], Check); 3] = [
            // Version 9.
            (&[0, 0, 0, 3, 9, 9, 9], |e| {
                matches!(e, FrameError::UnknownVersion(9))
            }),
            // Version 1, an unknown variant.
            (&[0, 0, 0, 2, 1, 77], |e| {
                matches!(e, FrameError::Undecodable(_))
            }),
            // A ping with a byte too many.
            (&[0, 0, 0, 4, 1, 1, 5, 0], |e| {
                matches!(e, FrameError::TrailingBytes(1))
            }),
        ];
        for (garbage, expected) in cases {
            let mut raw = connect_raw(addr, &f.bob.creds, &trust, &config())
                .await
                .unwrap();
            let at_server = accept(&ep).await;
            raw.write_all(garbage).await.unwrap();
            raw.flush().await.unwrap();
            let what = format!("the server to close the connection that sent {garbage:?}");
            match within(&what, at_server.closed()).await {
                CloseReason::Protocol(e) => assert!(expected(&e), "{e:?}"),
                other => panic!("closed for {other:?}"),
            }
            // The server said why before hanging up: a Close frame, then the end.
            let mut reply = Vec::new();
            let _ = within(
                "the server's goodbye and the end of the stream",
                raw.read_to_end(&mut reply),
            )
            .await;
            assert!(reply.len() > 5 && reply[4] == 1, "reply {reply:?}");
        }

        carol.send(Bytes::from_static(b"ok")).await.unwrap();
        assert_eq!(
            recv(&mut carol_at_server, "Carol's frame").await,
            &b"ok"[..]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listener_serves_two_groups() {
    bounded(async {
        let f = Fixture::new();
        let (ta, tb) = (f.trust_a(), f.trust_b());
        let ep = Endpoint::bind(&["127.0.0.1:0".parse().unwrap()], config())
            .await
            .unwrap();
        ep.add_group(f.alice.creds.clone(), ta.clone()).unwrap();
        ep.add_group(f.mallory.creds.clone(), tb.clone()).unwrap();
        assert_eq!(ep.groups().len(), 2);
        let addr = ep.local_addrs()[0];

        let mut bob = connect(addr, &f.bob, &ta).await;
        let mut trent = connect(addr, &f.trent, &tb).await;
        assert_eq!(&bob.peer().peer, f.alice.peer());
        assert_eq!(&trent.peer().peer, f.mallory.peer());

        for _ in 0..2 {
            let mut c = accept(&ep).await;
            let (group, peer) = (c.peer().group.clone(), c.peer().peer.clone());
            if &group == f.a.group() {
                assert_eq!(&peer, f.bob.peer());
            } else {
                assert_eq!(&group, f.b.group());
                assert_eq!(&peer, f.trent.peer());
            }
            c.send(Bytes::from(group.to_string())).await.unwrap();
            // Keep the connection open until the client read the reply.
            tokio::spawn(async move { c.recv().await });
        }
        assert_eq!(
            recv(&mut bob, "group A's name").await,
            f.a.group().to_string().as_bytes()
        );
        assert_eq!(
            recv(&mut trent, "group B's name").await,
            f.b.group().to_string().as_bytes()
        );

        // Removing a group refuses new connections for it, not the other's.
        assert!(ep.remove_group(f.b.group()));
        let mut failures = ep.auth_failures();
        let err = Endpoint::connect(addr, &f.trent.creds, &tb, &config())
            .await
            .unwrap_err();
        assert_eq!(
            err.refusal_kind(),
            Some(peergroup_transport::RefusalKind::UnknownGroup)
        );
        expect_failure(
            &mut failures,
            peergroup_transport::RefusalKind::UnknownGroup,
        )
        .await;
        let _carol = connect(addr, &f.carol, &ta).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_and_drop_say_goodbye() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, config()).await;

        let client = connect(addr, &f.bob, &trust).await;
        let mut at_server = accept(&ep).await;
        client
            .send(Bytes::from_static(b"last words"))
            .await
            .unwrap();
        client.close("done here");
        assert_eq!(
            within("the client to close", client.closed()).await,
            CloseReason::Local("done here".into())
        );
        // What was queued before closing still arrives, then the goodbye.
        assert_eq!(
            recv(&mut at_server, "the frame queued before closing").await,
            &b"last words"[..]
        );
        assert_eq!(
            within("the end of the server's frames", at_server.recv()).await,
            None
        );
        assert_eq!(
            within("the server's side to close", at_server.closed()).await,
            CloseReason::Peer("done here".into())
        );
        let err = client.send(Bytes::from_static(b"late")).await.unwrap_err();
        assert!(
            matches!(err, TransportError::Closed(CloseReason::Local(_))),
            "{err:?}"
        );
        assert!(matches!(
            at_server.try_send(Bytes::new()),
            Err(TransportError::Closed(_))
        ));

        let client = connect(addr, &f.carol, &trust).await;
        let at_server = accept(&ep).await;
        let (sender, receiver) = client.split();
        let sender2 = sender.clone();
        drop(sender);
        drop(receiver);
        sender2
            .send(Bytes::from_static(b"a clone keeps it open"))
            .await
            .unwrap();
        drop(sender2);
        assert_eq!(
            within(
                "the server's side to close once every handle was dropped",
                at_server.closed()
            )
            .await,
            CloseReason::Peer("closed".into())
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_frames_of_one_kib_each_way() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, config()).await;
        let client = connect(addr, &f.bob, &trust).await;
        let server = accept(&ep).await;
        const N: usize = 1000;
        let frame = |i: usize| {
            let mut v = vec![(i % 251) as u8; 1024];
            v[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Bytes::from(v)
        };
        let started = Instant::now();
        let run = |conn: peergroup_transport::Connection| async move {
            let (tx, mut rx) = conn.split();
            let sending = tokio::spawn(async move {
                for i in 0..N {
                    tx.send(frame(i)).await.unwrap();
                }
                tx
            });
            for i in 0..N {
                let got = within(format!("frame {i} of {N}"), rx.recv()).await;
                assert_eq!(got, Some(frame(i)), "frame {i}");
            }
            sending.await.unwrap()
        };
        let (a, b) = tokio::join!(tokio::spawn(run(client)), tokio::spawn(run(server)));
        let (a, b) = (a.unwrap(), b.unwrap());
        let elapsed = started.elapsed();
        eprintln!(
            "1,000 frames of 1 KiB each way in {elapsed:?} ({:.1} MiB/s total)",
            (2 * N * 1024) as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
        );
        assert!(a.close_reason().is_none() && b.close_reason().is_none());
        assert!(elapsed < NO_HANG, "2,000 frames took {elapsed:?}");
    })
    .await;
}

/// A process that closes a connection and exits at once loses what was still queued; one
/// that waits for `finished` does not. The sender runs on its own runtime, dropped (every
/// task cancelled) as soon as `finished` returns. The server reads on its own runtime as the
/// frames come, so the goodbye ends when the server has read it and hung up too, not when the
/// goodbye's timeout gives up (how much a loaded machine writes before a timeout is not what
/// this test is about).
#[test]
fn finished_means_the_queued_frames_are_out() {
    const N: usize = 300;
    let frame = |i: usize| Bytes::from(vec![(i % 251) as u8; 1024]);
    let f = Fixture::new();
    let trust = f.trust_a();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (ep, addr) = server_rt.block_on(server(&f.alice.creds, &trust, config()));
    let received = server_rt.spawn(async move {
        let mut at_server = accept(&ep).await;
        let mut frames = Vec::new();
        while let Some(frame) = within(
            format!("frame {} or the end of the frames", frames.len()),
            at_server.recv(),
        )
        .await
        {
            frames.push(frame);
        }
        let reason = within("the server's side to close", at_server.closed()).await;
        (frames, reason)
    });
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(bounded(async {
        let client = connect(addr, &f.bob, &trust).await;
        for i in 0..N {
            client.send(frame(i)).await.unwrap();
        }
        client.close("bye");
        within("the client's goodbye to finish", client.finished()).await;
        assert_eq!(
            client.close_reason(),
            Some(CloseReason::Local("bye".into()))
        );
    }));
    drop(client_rt);
    let (frames, reason) = server_rt
        .block_on(bounded(received))
        .expect("the server's reader panicked");
    for i in 0..N {
        let got = frames
            .get(i)
            .unwrap_or_else(|| panic!("frame {i} lost: {} of {N} arrived", frames.len()));
        assert_eq!(got, &frame(i), "frame {i}");
    }
    assert_eq!(frames.len(), N, "more frames than were sent");
    assert_eq!(reason, CloseReason::Peer("bye".into()));
}
