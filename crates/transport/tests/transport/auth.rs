//! Mutual authentication: who gets in, who is refused, and that both sides learn why.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use peergroup_credential_roles::RevocationTarget;
use peergroup_transport::testing::ClientTweaks;
use peergroup_transport::{
    ConnectError, Dial, Endpoint, GroupCredentials, Phase, RefusalKind, Transport, naming,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

async fn mutual_auth_on(bind: SocketAddr) {
    for dial in DIALS {
        mutual_auth_over(bind, dial).await;
    }
}

async fn mutual_auth_over(bind: SocketAddr, dial: Dial) {
    let f = Fixture::new();
    let trust = f.trust_a();
    let ep = match Endpoint::bind(&[bind], config()).await {
        Ok(ep) => ep,
        // IPv6 is half of what the transport listens on: a machine without an IPv6 loopback
        // cannot check it, and says so by failing.
        Err(e) => panic!("bind {bind}: {e} (an IPv6 loopback, ::1, is needed for this test)"),
    };
    ep.add_group(f.alice.creds.clone(), trust.clone()).unwrap();
    let addr = ep.local_addrs()[0];
    assert_ne!(addr.port(), 0);
    assert_eq!(addr.ip(), bind.ip());

    let mut client = connect_over(dial, addr, &f.bob, &trust).await;
    let mut server = accept(&ep).await;
    let transport = match dial {
        Dial::Quic => Transport::Quic,
        _ => Transport::Tcp,
    };
    assert_eq!(client.peer().transport, transport);
    assert_eq!(server.peer().transport, transport);
    // The server told the client where it saw it come from (its reflexive address).
    assert_eq!(client.peer().observed_addr, Some(server.peer().addr));
    assert_eq!(server.peer().observed_addr, None);

    // Each side knows who the other is, from the validated chain.
    assert_eq!(&client.peer().peer, f.alice.peer());
    assert_eq!(&client.peer().group, f.a.group());
    assert_eq!(client.peer().addr, addr);
    assert!(
        client
            .peer()
            .roles()
            .contains(peergroup_credential_roles::Role::Admin)
    );
    assert_eq!(&server.peer().peer, f.bob.peer());
    assert_eq!(&server.peer().group, f.a.group());
    assert_eq!(server.peer().addr, client.peer().local_addr);
    assert_eq!(server.peer().chain.key(), &f.bob.key().public());

    client.send(Bytes::from_static(b"hi alice")).await.unwrap();
    assert_eq!(recv(&mut server, "Bob's frame").await, &b"hi alice"[..]);
    server.send(Bytes::from_static(b"hi bob")).await.unwrap();
    assert_eq!(recv(&mut client, "Alice's frame").await, &b"hi bob"[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_auth_ipv4() {
    bounded(mutual_auth_on("127.0.0.1:0".parse().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_auth_ipv6() {
    bounded(mutual_auth_on("[::1]:0".parse().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_v4_and_v6_shares_a_port() {
    bounded(async {
        let addrs = ["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        let ep = match Endpoint::bind(&addrs, config()).await {
            Ok(ep) => ep,
            Err(e) => panic!("bind {addrs:?}: {e} (an IPv6 loopback, ::1, is needed)"),
        };
        let local = ep.local_addrs();
        assert_eq!(local.len(), 2);
        assert!(local[0].is_ipv4() && local[1].is_ipv6());
        assert_eq!(local[0].port(), local[1].port());
        // QUIC listens on the same ports, over UDP.
        assert_eq!(ep.quic_addrs(), local);
        assert!(Endpoint::bind(&[], config()).await.is_err());
    })
    .await;
}

/// Runs a refused connection over each transport: the client's errors (TCP's first) and
/// the server's reported reason, the same on both.
async fn refused(
    creds: &GroupCredentials,
    client_trust: &peergroup_transport::GroupTrust,
    tweaks: ClientTweaks,
    server_kind: RefusalKind,
) -> Vec<ConnectError> {
    let mut errors = Vec::new();
    for dial in DIALS {
        let f = Fixture::new();
        let server_trust = f.trust_a();
        server_trust.revoke(RevocationTarget::Peer(f.carol.peer().clone()), t0());
        let (ep, addr) = server(&f.alice.creds, &server_trust, config()).await;
        let mut failures = ep.auth_failures();
        let err = connect_tweaked_over(dial, addr, creds, client_trust, tweaks.clone())
            .await
            .expect_err("connection should be refused");
        let failure = expect_failure(&mut failures, server_kind).await;
        assert!(!failure.reason.detail.is_empty(), "over {dial:?}");
        errors.push(err);
    }
    errors
}

fn refused_as(errors: &[ConnectError], kind: RefusalKind) {
    assert_eq!(errors.len(), DIALS.len());
    for (err, dial) in errors.iter().zip(DIALS) {
        assert!(
            matches!(err, ConnectError::Refused { kind: Some(k), .. } if *k == kind),
            "client-side error over {dial:?}: {err:?}, expected refused by peer: {kind}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_with_only_an_identity_certificate_is_refused() {
    bounded(async {
        let f = Fixture::new();
        let eve = GroupCredentials {
            group: f.a.group().clone(),
            key: f.eve_key.clone(),
            chain: f.bob.creds.chain.clone(),
        };
        let tweaks = ClientTweaks {
            certificates: Some(vec![f.eve_idc.clone()]),
            ..Default::default()
        };
        let err = refused(&eve, &f.trust_a(), tweaks, RefusalKind::NotMember).await;
        refused_as(&err, RefusalKind::NotMember);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_root_certificate_alone_is_not_a_member() {
    bounded(async {
        let f = Fixture::new();
        // The group key holder presenting the GRC alone: a valid chain, but no member.
        let root = GroupCredentials {
            group: f.a.group().clone(),
            key: std::sync::Arc::new(peergroup_identity::KeyPair::from_test_seed(100)),
            chain: f.a.chain().clone(),
        };
        let err = refused(
            &root,
            &f.trust_a(),
            ClientTweaks::default(),
            RefusalKind::NotMember,
        )
        .await;
        refused_as(&err, RefusalKind::NotMember);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stolen_chain_without_its_key_is_refused() {
    bounded(async {
        let f = Fixture::new();
        // Eve presents Bob's chain but can only sign with her own key.
        let thief = GroupCredentials {
            group: f.a.group().clone(),
            key: f.eve_key.clone(),
            chain: f.bob.creds.chain.clone(),
        };
        let err = refused(
            &thief,
            &f.trust_a(),
            ClientTweaks::default(),
            RefusalKind::BadSignature,
        )
        .await;
        refused_as(&err, RefusalKind::BadSignature);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_member_is_refused() {
    bounded(async {
        let f = Fixture::new();
        let err = refused(
            &f.dave.creds,
            &f.trust_a(),
            ClientTweaks::default(),
            RefusalKind::Expired,
        )
        .await;
        refused_as(&err, RefusalKind::Expired);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_member_is_refused() {
    bounded(async {
        let f = Fixture::new();
        let err = refused(
            &f.carol.creds,
            &f.trust_a(),
            ClientTweaks::default(),
            RefusalKind::Revoked,
        )
        .await;
        refused_as(&err, RefusalKind::Revoked);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_of_another_group_is_refused() {
    bounded(async {
        let f = Fixture::new();
        // Mallory (group B) accepts group A's server and asks for group A.
        let err = refused(
            &f.mallory.creds,
            &f.trust_a(),
            ClientTweaks::default(),
            RefusalKind::WrongGroup,
        )
        .await;
        refused_as(&err, RefusalKind::WrongGroup);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_without_certificate_is_refused() {
    bounded(async {
        let f = Fixture::new();
        let tweaks = ClientTweaks {
            no_certificate: true,
            ..Default::default()
        };
        let err = refused(
            &f.bob.creds,
            &f.trust_a(),
            tweaks,
            RefusalKind::NoCertificate,
        )
        .await;
        refused_as(&err, RefusalKind::NoCertificate);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_mismatch_is_refused() {
    bounded(async {
        let f = Fixture::new();
        for alpn in [
            vec![b"http/1.1".to_vec()],
            vec![b"peergroup/2".to_vec()],
            vec![],
        ] {
            let tweaks = ClientTweaks {
                alpn: Some(alpn),
                ..Default::default()
            };
            let err = refused(&f.bob.creds, &f.trust_a(), tweaks, RefusalKind::BadAlpn).await;
            refused_as(&err, RefusalKind::BadAlpn);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sni_is_refused() {
    bounded(async {
        let f = Fixture::new();
        for sni in [
            format!("{}.pg.invalid", "0".repeat(32)),
            naming::sni_name(f.b.group()),
            "example.com".to_owned(),
        ] {
            let tweaks = ClientTweaks {
                sni: Some(sni),
                ..Default::default()
            };
            let err = refused(
                &f.bob.creds,
                &f.trust_a(),
                tweaks,
                RefusalKind::UnknownGroup,
            )
            .await;
            refused_as(&err, RefusalKind::UnknownGroup);
        }
    })
    .await;
}

/// A plain TCP client: the server refuses it as not TLS and hangs up.
async fn plain_tcp(bytes: &[u8]) {
    let f = Fixture::new();
    let (ep, addr) = server(&f.alice.creds, &f.trust_a(), config()).await;
    let mut failures = ep.auth_failures();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let failure = expect_failure(&mut failures, RefusalKind::NotTls).await;
    assert_eq!(failure.addr, tcp.local_addr().unwrap());
    assert_eq!(failure.group, None);
    // The client gets at most a TLS alert record, then the end of the stream.
    let mut reply = Vec::new();
    let read = tokio::time::timeout(WAIT, tcp.read_to_end(&mut reply)).await;
    assert!(
        read.is_ok(),
        "waited {WAIT:?} for the server to hang up; it did not (read so far: {reply:?})"
    );
    assert!(reply.is_empty() || reply[0] == 21, "reply {reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_client_is_refused() {
    bounded(plain_tcp(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_are_refused() {
    bounded(async {
        // A TLS handshake record header followed by nonsense.
        plain_tcp(&[22, 3, 1, 0, 8, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]).await;
        plain_tcp(&[0xff; 64]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_times_out_in_the_handshake() {
    bounded(async {
        let f = Fixture::new();
        let mut cfg = config();
        cfg.handshake_timeout = Duration::from_millis(300);
        let (ep, addr) = server(&f.alice.creds, &f.trust_a(), cfg).await;
        let mut failures = ep.auth_failures();
        let _tcp = TcpStream::connect(addr).await.unwrap();
        expect_failure(&mut failures, RefusalKind::HandshakeTimeout).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_refuses_an_expired_server() {
    bounded(async {
        let f = Fixture::new();
        let (_ep, addr) = server(&f.dave.creds, &f.trust_a(), config()).await;
        for dial in DIALS {
            let err = Endpoint::connect(addr, &f.bob.creds, &f.trust_a(), &config_over(dial))
                .await
                .unwrap_err();
            assert!(
                matches!(&err, ConnectError::NotAuthenticated(r) if r.kind == RefusalKind::Expired),
                "over {dial:?}: {err:?}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_refuses_a_revoked_server() {
    bounded(async {
        let f = Fixture::new();
        let (ep, addr) = server(&f.alice.creds, &f.trust_a(), config()).await;
        let mut failures = ep.auth_failures();
        let trust = f.trust_a();
        trust.revoke(RevocationTarget::Peer(f.alice.peer().clone()), t0());
        for dial in DIALS {
            let err = Endpoint::connect(addr, &f.bob.creds, &trust, &config_over(dial))
                .await
                .unwrap_err();
            assert_eq!(
                err.refusal_kind(),
                Some(RefusalKind::Revoked),
                "{dial:?}: {err:?}"
            );
            assert!(matches!(err, ConnectError::NotAuthenticated(_)));
        }
        // The server was refused, it refused no one. (Nothing to wait for: a moment for a
        // wrongly reported refusal to show up; on a loaded machine this passes more easily.)
        tokio::time::sleep(Duration::from_millis(200)).await;
        let reported = failures.try_recv();
        assert!(reported.is_err(), "the server reported {reported:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_refuses_a_server_of_another_group() {
    bounded(async {
        let f = Fixture::new();
        // The server presents group B's credentials for group A's name.
        let ep = Endpoint::bind(&["127.0.0.1:0".parse().unwrap()], config())
            .await
            .unwrap();
        ep.add_group(f.mallory.creds.clone(), f.trust_b()).unwrap();
        let addr = ep.local_addrs()[0];
        let tweaks = ClientTweaks {
            sni: Some(naming::sni_name(f.b.group())),
            ..Default::default()
        };
        for dial in DIALS {
            let err = connect_tweaked_over(dial, addr, &f.bob.creds, &f.trust_a(), tweaks.clone())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, ConnectError::NotAuthenticated(r) if r.kind == RefusalKind::WrongGroup),
                "over {dial:?}: {err:?}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_credentials_are_a_caller_error() {
    bounded(async {
        let f = Fixture::new();
        let (_ep, addr) = server(&f.alice.creds, &f.trust_a(), config()).await;
        let err = Endpoint::connect(addr, &f.mallory.creds, &f.trust_a(), &config())
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::Credentials(_)), "{err:?}");
        let wrong_key = GroupCredentials {
            key: f.eve_key.clone(),
            ..f.bob.creds.clone()
        };
        assert!(wrong_key.check().is_err());
        let ep = Endpoint::bind(&["127.0.0.1:0".parse().unwrap()], config())
            .await
            .unwrap();
        assert!(ep.add_group(wrong_key, f.trust_a()).is_err());
        assert!(ep.add_group(f.bob.creds.clone(), f.trust_b()).is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_timeout_against_a_silent_server() {
    bounded(async {
        let f = Fixture::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let mut cfg = config();
        cfg.handshake_timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = Endpoint::connect(addr, &f.bob.creds, &f.trust_a(), &cfg)
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(err, ConnectError::Timeout(Phase::Handshake)),
            "{err:?} after {took:?}"
        );
        assert!(
            took >= cfg.handshake_timeout && took < NO_HANG,
            "a 300 ms handshake timeout fired after {took:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_is_bounded() {
    bounded(async {
        let f = Fixture::new();
        // A listener that never accepts, with a full backlog: further SYNs are dropped.
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        socket.listen(0).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        // Fill the backlog; a filler that does not get in within 200 ms is not needed (the
        // backlog is full, or the kernel drops SYNs: either way what the test wants).
        let mut fillers = Vec::new();
        for _ in 0..4 {
            if let Ok(Ok(s)) =
                tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
            {
                fillers.push(s);
            }
        }
        let mut cfg = config();
        cfg.connect_timeout = Duration::from_millis(300);
        cfg.handshake_timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = Endpoint::connect(addr, &f.bob.creds, &f.trust_a(), &cfg)
            .await
            .unwrap_err();
        let took = started.elapsed();
        // Whichever phase the kernel leaves us hanging in, we give up in time.
        assert!(
            matches!(err, ConnectError::Timeout(_)),
            "{err:?} after {took:?}"
        );
        assert!(
            took >= Duration::from_millis(300) && took < NO_HANG,
            "300 ms connect and handshake timeouts fired after {took:?}"
        );
    })
    .await;
}
