//! What QUIC adds beside TCP: a connection that survives an address change, and dialing
//! QUIC first with TCP as the fallback. (The handshake and its refusals run on both
//! transports in `auth`; revocation in `liveness`.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peergroup_transport::{Dial, Endpoint, TCP_FALLBACK_DELAY, Transport};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_connection_survives_an_address_change() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let (ep, addr) = server(&f.alice.creds, &trust, config()).await;
        // Bob dials from an endpoint of his own, whose UDP socket will move.
        let bob_ep = Endpoint::bind(&["127.0.0.1:0".parse().unwrap()], config_over(Dial::Quic))
            .await
            .unwrap();
        let mut bob = bob_ep.connect_to(addr, &f.bob.creds, &trust).await.unwrap();
        let mut at_alice = accept(&ep).await;
        assert_eq!(bob.peer().transport, Transport::Quic);
        let before = bob_ep.quic_addrs()[0];
        assert_eq!(at_alice.peer().addr, before, "Alice sees Bob's QUIC socket");
        bob.send(Bytes::from_static(b"from the old address"))
            .await
            .unwrap();
        assert_eq!(
            recv(&mut at_alice, "Bob's first frame").await,
            &b"from the old address"[..]
        );

        // The address changes: a new socket, a new port.
        let after = bob_ep.rebind_quic("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(after.port(), before.port());
        assert_eq!(bob_ep.quic_addrs(), vec![after]);

        // The same connection carries on, both ways.
        bob.send(Bytes::from_static(b"from the new address"))
            .await
            .unwrap();
        assert_eq!(
            recv(&mut at_alice, "Bob's frame after the move").await,
            &b"from the new address"[..]
        );
        at_alice
            .send(Bytes::from_static(b"heard you"))
            .await
            .unwrap();
        assert_eq!(recv(&mut bob, "Alice's answer").await, &b"heard you"[..]);
        assert!(bob.close_reason().is_none() && at_alice.close_reason().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_first_connects_over_quic_where_it_is_served() {
    bounded(async {
        let f = Fixture::new();
        let (ep, addr) = server(&f.alice.creds, &f.trust_a(), config()).await;
        let bob = connect_over(Dial::QuicThenTcp, addr, &f.bob, &f.trust_a()).await;
        let at_alice = accept(&ep).await;
        assert_eq!(bob.peer().transport, Transport::Quic);
        assert_eq!(at_alice.peer().transport, Transport::Quic);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_first_falls_back_to_tcp_where_quic_is_not_served() {
    bounded(async {
        let f = Fixture::new();
        let mut tcp_only = config();
        tcp_only.quic = false;
        let (ep, addr) = server(&f.alice.creds, &f.trust_a(), tcp_only).await;
        assert!(ep.quic_addrs().is_empty(), "{:?}", ep.quic_addrs());
        let started = Instant::now();
        let mut bob = connect_over(Dial::QuicThenTcp, addr, &f.bob, &f.trust_a()).await;
        let took = started.elapsed();
        let mut at_alice = accept(&ep).await;
        assert_eq!(bob.peer().transport, Transport::Tcp);
        assert!(took >= TCP_FALLBACK_DELAY, "TCP went first after {took:?}");
        bob.send(Bytes::from_static(b"over tcp")).await.unwrap();
        assert_eq!(recv(&mut at_alice, "Bob's frame").await, &b"over tcp"[..]);
        at_alice.send(Bytes::from_static(b"ok")).await.unwrap();
        assert_eq!(recv(&mut bob, "Alice's frame").await, &b"ok"[..]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_handshake_against_a_silent_server_times_out() {
    bounded(async {
        let f = Fixture::new();
        // A UDP socket that reads nothing and answers nothing.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let mut cfg = config_over(Dial::Quic);
        cfg.handshake_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let err = Endpoint::connect(addr, &f.bob.creds, &f.trust_a(), &cfg)
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(err, peergroup_transport::ConnectError::Timeout(_)),
            "{err:?} after {took:?}"
        );
        assert!(took >= cfg.handshake_timeout && took < NO_HANG, "{took:?}");
    })
    .await;
}

/// Accepts any server certificate: the stalled clients below never get that far.
#[derive(Debug)]
struct AnyServer;

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("no TLS 1.2".into()))
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        vec![rustls::SignatureScheme::ED25519]
    }
}

/// Sends `n` QUIC Initials to `to` from one UDP socket on 127.0.0.1, each a real ClientHello
/// for group `sni` with our ALPN (made by quinn's sans-IO core), and never anything after:
/// handshakes that stall on the server. Returns the socket (dropping it changes nothing).
fn stalled_initials(to: SocketAddr, sni: &str, n: usize) -> std::net::UdpSocket {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer))
        .with_no_client_auth();
    tls.alpn_protocols = vec![peergroup_transport::ALPN.to_vec()];
    let crypto = quinn_proto::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let client = quinn_proto::ClientConfig::new(Arc::new(crypto));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..n {
        let mut endpoint = quinn_proto::Endpoint::new(
            Arc::new(quinn_proto::EndpointConfig::default()),
            None,
            false,
            None,
        );
        let now = std::time::Instant::now();
        let (_, mut conn) = endpoint.connect(now, client.clone(), to, sni).unwrap();
        let mut buf = Vec::new();
        let transmit = conn.poll_transmit(now, 1, &mut buf).unwrap();
        socket.send_to(&buf[..transmit.size], to).unwrap();
    }
    socket
}

/// QUIC handshakes are pending handshakes like TCP ones: a flood of Initials that never
/// finish from one address holds at most the per-address bound, the oldest giving way to
/// the newest, and a member still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_quic_handshakes_are_bounded_per_address() {
    bounded(async {
        let f = Fixture::new();
        let trust = f.trust_a();
        let mut cfg = config();
        // Nothing times out during the test: every close comes from a bound.
        cfg.handshake_timeout = 4 * WAIT;
        cfg.first_byte_timeout = 4 * WAIT;
        cfg.max_handshakes = 64;
        cfg.max_handshakes_per_address = 4;
        let (ep, addr) = server(&f.alice.creds, &trust, cfg).await;
        let sni = peergroup_transport::naming::sni_name(f.a.group());
        const FLOOD: usize = 40;
        let _attacker = stalled_initials(addr, &sni, FLOOD);
        let started = Instant::now();
        let stats = loop {
            let s = ep.handshake_stats();
            if s.admitted >= FLOOD as u64 {
                break s;
            }
            assert!(
                started.elapsed() < WAIT,
                "the endpoint's counters say {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(stats.pending <= 4, "{stats:?}");
        assert!(stats.peak_per_address <= 4, "{stats:?}");
        assert!(stats.evicted >= (FLOOD - 4) as u64, "{stats:?}");

        // A member from the same address takes the place of the oldest stalled one.
        let bob = connect_over(Dial::Quic, addr, &f.bob, &trust).await;
        let mut at_alice = accept(&ep).await;
        bob.send(Bytes::from_static(b"through the flood"))
            .await
            .unwrap();
        assert_eq!(
            recv(&mut at_alice, "Bob's frame").await,
            &b"through the flood"[..]
        );
        let after = ep.handshake_stats();
        assert!(after.peak_per_address <= 4, "{after:?}");
    })
    .await;
}
