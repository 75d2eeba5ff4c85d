//! An attacking member: its credentials, raw TLS connections to the node through the
//! transport, the mesh protocol spoken by hand (hello, welcome, floods), signed records.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use peergroup_credential_roles::CertChain;
use peergroup_identity::{KeyPair, PeerName, Timestamp};
use peergroup_membership::{MeshMessage, NodeId};
use peergroup_record_db::{LocalSigner, NewRecord, Record, RecordType, SignedRecords};
use peergroup_transport::frame::{Frame, LENGTH_PREFIX, decode_body, encode_body};
use peergroup_transport::{
    Connection, ConnectionReceiver, Endpoint, GroupCredentials, GroupTrust, TransportConfig,
};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::watch;

use crate::waits::HANDSHAKE_WAIT;

/// A random `u64` from the system's generator.
pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // A failing system generator leaves zeros: the suite's randomness only needs variety.
    let _ = peergroup_identity::random_bytes(&mut b);
    u64::from_le_bytes(b)
}

/// A fast generator for bulk random data (splitmix64).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// A generator seeded from the system's.
    pub(crate) fn new() -> Self {
        Rng(random_u64())
    }

    /// The next value.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `n` random bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// A mesh message as a frame's data.
pub(crate) fn encode(msg: &MeshMessage) -> Bytes {
    Bytes::from(msg.encode())
}

/// A member the node's admin invited, speaking for itself.
pub(crate) struct Attacker {
    /// What the suite calls it.
    pub(crate) label: String,
    /// Its credentials for TLS.
    pub(crate) creds: GroupCredentials,
    /// Whom it accepts (the group's members).
    pub(crate) trust: GroupTrust,
    /// Its key.
    pub(crate) key: Arc<KeyPair>,
    /// Its chain (from the invitation).
    pub(crate) chain: CertChain,
    /// The group.
    pub(crate) group: PeerName,
}

/// A mesh link to the node, after its welcome.
pub(crate) struct Neighbor {
    /// The connection.
    pub(crate) conn: Connection,
    /// The welcome's peer time.
    pub(crate) peer_time: Timestamp,
}

impl Attacker {
    /// Its peer name.
    pub(crate) fn peer(&self) -> &PeerName {
        self.creds.peer()
    }

    /// When its membership ends (the earliest `not_after` of its chain).
    pub(crate) fn expires(&self) -> Timestamp {
        self.chain
            .certificates()
            .iter()
            .map(|c| c.not_after())
            .min()
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// An authenticated connection to `addr`, bounded by [`HANDSHAKE_WAIT`].
    pub(crate) async fn connect(&self, addr: SocketAddr) -> Result<Connection> {
        let config = TransportConfig::default();
        match tokio::time::timeout(
            HANDSHAKE_WAIT,
            Endpoint::connect(addr, &self.creds, &self.trust, &config),
        )
        .await
        {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => bail!("{} could not connect to {addr}: {e}", self.label),
            Err(_) => bail!(
                "{} could not connect to {addr} within {HANDSHAKE_WAIT:?}",
                self.label
            ),
        }
    }

    /// An authenticated connection to `addr` from a socket bound to `from` (an attacker on
    /// an address of its own, as on the internet), bounded by [`HANDSHAKE_WAIT`]. The member
    /// handshake runs over the bound socket with
    /// [`connect_relayed`](peergroup_transport::connect_relayed), which takes any stream;
    /// the node sees an ordinary TCP connection from `from`.
    pub(crate) async fn connect_from(&self, from: IpAddr, addr: SocketAddr) -> Result<Connection> {
        let attempt = async {
            let socket = if from.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(from, 0))?;
            let stream = socket.connect(addr).await?;
            let local = stream.local_addr()?;
            peergroup_transport::connect_relayed(
                stream,
                local,
                addr,
                &self.creds,
                &self.trust,
                &TransportConfig::default(),
            )
            .await
            .map_err(anyhow::Error::from)
        };
        match tokio::time::timeout(HANDSHAKE_WAIT, attempt).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => bail!(
                "{} could not connect to {addr} from {from}: {e:#}",
                self.label
            ),
            Err(_) => bail!(
                "{} could not connect to {addr} from {from} within {HANDSHAKE_WAIT:?}",
                self.label
            ),
        }
    }

    /// Connects as a mesh neighbor: hello, and the node's welcome.
    pub(crate) async fn neighbor(&self, addr: SocketAddr) -> Result<Neighbor> {
        let mut conn = self.connect(addr).await?;
        let hello = MeshMessage::Hello {
            node: NodeId(random_u64()),
            listen: Vec::new(),
        };
        conn.send(encode(&hello))
            .await
            .with_context(|| format!("{}: sending the hello", self.label))?;
        let answer = match tokio::time::timeout(HANDSHAKE_WAIT, conn.recv()).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => bail!(
                "{}: the node closed the connection instead of answering the hello ({})",
                self.label,
                conn.close_reason()
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            ),
            Err(_) => bail!(
                "{}: no answer to the hello within {HANDSHAKE_WAIT:?}",
                self.label
            ),
        };
        match MeshMessage::decode(&answer) {
            Ok(MeshMessage::Welcome { peer_time, .. }) => Ok(Neighbor { conn, peer_time }),
            Ok(MeshMessage::Refuse { reason, .. }) => {
                bail!("{}: the node refused the hello: {reason:?}", self.label)
            }
            Ok(other) => bail!(
                "{}: expected a welcome after the hello, the node sent {}",
                self.label,
                other.kind()
            ),
            Err(e) => bail!(
                "{}: the node's answer to the hello does not decode: {e}",
                self.label
            ),
        }
    }

    /// Signs `news` as version 1 records of this member, now.
    pub(crate) fn sign(&self, news: Vec<NewRecord>) -> Result<Vec<Record>> {
        let signer = LocalSigner {
            key: &self.key,
            chain: &self.chain,
        };
        let signed = SignedRecords::sign(&self.group, signer, news, Timestamp::now())
            .map_err(|e| anyhow::anyhow!("{}: signing records: {e}", self.label))?;
        Ok(signed.records().to_vec())
    }

    /// `record` signed again by this member, after the caller changed it.
    pub(crate) fn resign(&self, mut record: Record) -> Record {
        record.security.signature = self.key.sign(&record.signed_bytes(&self.group));
        record
    }

    /// `n` records of `record_type` with payloads `payload(i)`, living `lifetime` (cut at
    /// the membership's end).
    pub(crate) fn records(
        &self,
        record_type: RecordType,
        lifetime: Duration,
        attributes: &str,
        payloads: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<Vec<Record>> {
        let expires = Timestamp::now()
            .saturating_add(lifetime)
            .min(self.expires());
        self.sign(
            payloads
                .into_iter()
                .map(|payload| NewRecord {
                    record_type,
                    attributes: attributes.to_owned(),
                    payload,
                    expires,
                    autorefresh: false,
                })
                .collect(),
        )
    }
}

/// What a drained connection delivered.
#[derive(Clone, Debug, Default)]
pub(crate) struct Drained {
    /// Frames received.
    pub(crate) frames: u64,
    /// Of which `Graft`s.
    pub(crate) grafts: u64,
}

/// Reads and counts what the node sends on `receiver` until it closes or `stop` is set, so
/// the node's queue towards us never fills.
pub(crate) fn spawn_drain(
    mut receiver: ConnectionReceiver,
    mut stop: watch::Receiver<bool>,
    total: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Drained> {
    tokio::spawn(async move {
        let mut d = Drained::default();
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return d,
                frame = receiver.recv() => {
                    let Some(frame) = frame else { return d };
                    d.frames += 1;
                    total.fetch_add(1, Ordering::Relaxed);
                    if let Ok(MeshMessage::Graft { .. }) = MeshMessage::decode(&frame) {
                        d.grafts += 1;
                    }
                }
            }
        }
    })
}

/// A whole frame as the transport writes it (length prefix, version, postcard), carrying
/// `data`.
pub(crate) fn data_frame(data: &[u8]) -> Result<Vec<u8>> {
    let body = encode_body(&Frame::Data(Bytes::copy_from_slice(data)))
        .map_err(|e| anyhow::anyhow!("encoding a frame: {e}"))?;
    let len = u32::try_from(body.len()).context("frame over 4 GiB")?;
    let mut out = Vec::with_capacity(LENGTH_PREFIX + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads one frame from a raw stream (at most `max` bytes of body).
pub(crate) async fn read_frame(stream: &mut (impl AsyncRead + Unpin), max: usize) -> Result<Frame> {
    let mut prefix = [0u8; LENGTH_PREFIX];
    stream.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        bail!("the node announced a frame of {len} bytes (we accept {max})");
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    decode_body(&body).map_err(|e| anyhow::anyhow!("a frame from the node does not decode: {e}"))
}
