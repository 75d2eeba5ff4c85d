//! The endpoint: listeners on IPv4 and/or IPv6, the groups they serve, incoming authenticated
//! connections, refusals as events; and outgoing connections.

mod dial;
mod listen;
pub(crate) mod pending;
mod punch;

pub use punch::PUNCH_FIRST_WORD;
mod quic_listen;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use peergroup_identity::PeerName;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::TransportConfig;
use crate::connection::{ByteGauge, Connection};
use crate::error::{AuthFailure, ConnectError, CredentialsError};
use crate::handshake::{ClientTweaks, ServedGroup};
use crate::join::JoinService;
use crate::naming::sni_name;
use crate::quic;
use crate::tls;
use crate::trust::{GroupCredentials, GroupTrust};
pub(crate) use dial::connect_tweaked;
pub use pending::HandshakeStats;

/// Refusal events kept for slow subscribers before the oldest are dropped.
const AUTH_FAILURE_BUFFER: usize = 256;

/// Listens for members of the groups it serves and hands out authenticated connections.
///
/// One endpoint serves any number of groups: a client names the group it wants by the TLS
/// server name ([`sni_name`]) and the endpoint answers with that group's credentials and
/// accepts only that group's members. Dropping the endpoint (or [`Endpoint::close`]) stops
/// listening; established connections live on until closed.
///
/// The listener accepts every TCP connection at once and never waits on handshakes in
/// progress: pending handshakes are bounded per source address and in total
/// ([`TransportConfig::max_handshakes_per_address`], [`TransportConfig::max_handshakes`]),
/// a newcomer over a bound takes the place of the oldest unfinished one (preferring one that
/// never sent a byte) or is closed at once, and a connection silent for
/// [`TransportConfig::first_byte_timeout`] is closed. [`Endpoint::handshake_stats`] counts it
/// all.
pub struct Endpoint {
    pub(crate) shared: Arc<Shared>,
    incoming: Mutex<mpsc::Receiver<Connection>>,
    local_addrs: Vec<SocketAddr>,
    /// The QUIC endpoints, one per listening address (empty without QUIC).
    quic: Vec<quinn::Endpoint>,
    shutdown: CancellationToken,
    /// The router's forward to us, when one was asked for and made.
    mapped: tokio::sync::watch::Receiver<Vec<SocketAddr>>,
}

pub(crate) struct Shared {
    config: TransportConfig,
    /// Served groups by SNI name.
    groups: RwLock<HashMap<String, Arc<ServedGroup>>>,
    /// Join policies by SNI name (only of served groups).
    joins: RwLock<HashMap<String, Arc<JoinService>>>,
    auth_failures: broadcast::Sender<AuthFailure>,
    /// Pending incoming handshakes.
    handshakes: listen::Handshakes,
    /// Bytes received and not yet read across this endpoint's connections.
    recv_budget: Arc<ByteGauge>,
}

type Joins = HashMap<String, Arc<JoinService>>;

impl Shared {
    pub(crate) fn read_joins(&self) -> std::sync::RwLockReadGuard<'_, Joins> {
        self.joins.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write_joins(&self) -> std::sync::RwLockWriteGuard<'_, Joins> {
        self.joins.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The group served under a server name, and its join policy.
    fn lookup(&self, sni: &str) -> Option<(Arc<ServedGroup>, Option<Arc<JoinService>>)> {
        let served = self
            .groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sni)
            .cloned()?;
        Some((served, self.read_joins().get(sni).cloned()))
    }
}

impl Endpoint {
    /// Listens on every address in `addrs` (IPv4 and/or IPv6; an IPv6 socket accepts IPv6
    /// only), over TCP and, unless [`TransportConfig::quic`] is off, over QUIC on the same
    /// UDP port. Port 0 picks a free port: later addresses with port 0 try the port the first
    /// one got, so one port can be advertised for both families and both transports. See
    /// [`Endpoint::local_addrs`] for what was bound.
    pub async fn bind(addrs: &[SocketAddr], config: TransportConfig) -> io::Result<Endpoint> {
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no address to listen on",
            ));
        }
        let config = config.normalized();
        let mut listeners = Vec::with_capacity(addrs.len());
        let mut chosen_port = None;
        let mut udp = Vec::new();
        for addr in addrs {
            let (listener, socket) = match chosen_port {
                Some(port) if addr.port() == 0 => {
                    bind_pair(SocketAddr::new(addr.ip(), port), config.quic)
                        .or_else(|_| bind_pair(*addr, config.quic))?
                }
                _ => bind_pair(*addr, config.quic)?,
            };
            let local = listener.local_addr()?;
            chosen_port.get_or_insert(local.port());
            listeners.push((TcpListener::from_std(listener)?, local));
            udp.extend(socket);
        }
        let shared = Arc::new(Shared {
            config: config.clone(),
            groups: RwLock::new(HashMap::new()),
            joins: RwLock::new(HashMap::new()),
            auth_failures: broadcast::Sender::new(AUTH_FAILURE_BUFFER),
            handshakes: listen::Handshakes::new(&config),
            recv_budget: ByteGauge::new(config.endpoint_recv_bytes),
        });
        let (incoming_tx, incoming_rx) = mpsc::channel(config.accept_queue);
        let shutdown = CancellationToken::new();
        let local_addrs: Vec<SocketAddr> = listeners.iter().map(|(_, a)| *a).collect();
        for (listener, local) in listeners {
            tracing::info!(addr = %local, "listening");
            tokio::spawn(listen::listen(
                listener,
                shared.clone(),
                incoming_tx.clone(),
                shutdown.clone(),
            ));
        }
        let mut quic = Vec::with_capacity(udp.len());
        for socket in udp {
            let server = quic_listen::base_server_config(&shared).map_err(io::Error::other)?;
            let endpoint = quic::endpoint(socket, Some(server))?;
            tracing::info!(addr = ?endpoint.local_addr().ok(), "listening (QUIC)");
            tokio::spawn(quic_listen::listen(
                endpoint.clone(),
                shared.clone(),
                incoming_tx.clone(),
                shutdown.clone(),
            ));
            quic.push(endpoint);
        }
        let (mapped_tx, mapped) = tokio::sync::watch::channel(Vec::new());
        // A node listening on loopback only has no router to ask.
        let routable = local_addrs
            .iter()
            .any(|a| a.is_ipv4() && !a.ip().is_loopback());
        if config.port_mapping && routable {
            let port = local_addrs[0].port();
            tokio::spawn(crate::portmap::keep(port, mapped_tx, shutdown.clone()));
        }
        Ok(Endpoint {
            shared,
            incoming: Mutex::new(incoming_rx),
            local_addrs,
            quic,
            shutdown,
            mapped,
        })
    }

    /// The addresses actually listened on (with the real ports).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The router's public address that forwards to us (UPnP-IGD), when
    /// [`TransportConfig::port_mapping`] is on and the router made one; a watch, since the
    /// mapping comes (or goes) later than the bind.
    pub fn mapped_addrs(&self) -> tokio::sync::watch::Receiver<Vec<SocketAddr>> {
        self.mapped.clone()
    }

    /// Where QUIC listens (the same ports as [`Endpoint::local_addrs`] until
    /// [`Endpoint::rebind_quic`]; empty without QUIC).
    pub fn quic_addrs(&self) -> Vec<SocketAddr> {
        self.quic
            .iter()
            .filter_map(|e| e.local_addr().ok())
            .collect()
    }

    /// Moves the QUIC endpoint of `addr`'s family to a new UDP socket on `addr` (the host's
    /// address changed, say): QUIC connections carry on from the new address (connection
    /// migration), and new ones arrive there. Returns the address bound.
    pub fn rebind_quic(&self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let endpoint = self.quic_for(addr).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no QUIC endpoint of the family of {addr}"),
            )
        })?;
        let socket = quic::bind_udp(addr)?;
        let bound = socket.local_addr()?;
        endpoint.rebind(socket)?;
        Ok(bound)
    }

    /// The QUIC endpoint of `addr`'s family.
    fn quic_for(&self, addr: SocketAddr) -> Option<&quinn::Endpoint> {
        self.quic
            .iter()
            .find(|e| e.local_addr().is_ok_and(|a| a.is_ipv4() == addr.is_ipv4()))
    }

    /// The configuration in use.
    pub fn config(&self) -> &TransportConfig {
        &self.shared.config
    }

    /// Serves `creds.group`: presents `creds` to clients asking for it and accepts the members
    /// `trust` accepts. Replaces an earlier registration of the same group.
    pub fn add_group(
        &self,
        creds: GroupCredentials,
        trust: GroupTrust,
    ) -> Result<(), CredentialsError> {
        check_pair(&creds, &trust)?;
        let served = Arc::new(ServedGroup {
            group: creds.group.clone(),
            certified: tls::certified_key(&creds),
            issuer: creds.chain.leaf().roles().is_issuer(),
            member: creds.peer().clone(),
            trust,
        });
        self.write_groups().insert(sni_name(&creds.group), served);
        Ok(())
    }

    /// Stops serving `group` for new connections (established ones stay), and clears its
    /// join policy. Says whether it was served.
    pub fn remove_group(&self, group: &PeerName) -> bool {
        let sni = sni_name(group);
        self.shared.write_joins().remove(&sni);
        self.write_groups().remove(&sni).is_some()
    }

    /// The group served under server name `sni`.
    pub(crate) fn served(&self, sni: &str) -> Option<Arc<ServedGroup>> {
        self.read_groups().get(sni).cloned()
    }

    /// The groups served.
    pub fn groups(&self) -> Vec<PeerName> {
        self.read_groups()
            .values()
            .map(|g| g.group.clone())
            .collect()
    }

    /// The next authenticated incoming connection (of any served group: see
    /// [`PeerInfo::group`](crate::PeerInfo::group)), or `None` once the endpoint is closed. Password joins
    /// ([`Endpoint::set_join_policy`]) are handled inside the endpoint and never show here.
    pub async fn accept(&self) -> Option<Connection> {
        let mut incoming = self.incoming.lock().await;
        tokio::select! {
            c = incoming.recv() => c,
            () = self.shutdown.cancelled() => None,
        }
    }

    /// Refusals of incoming connections from now on (also logged with `tracing::warn!`),
    /// password joins included (a wrong password, too many attempts, …, with the joiner's
    /// peer name in [`AuthFailure::peer`]). A subscriber that falls more than 256 events
    /// behind loses the oldest.
    pub fn auth_failures(&self) -> broadcast::Receiver<AuthFailure> {
        self.shared.auth_failures.subscribe()
    }

    /// Stops listening and ends [`Endpoint::accept`].
    pub fn close(&self) {
        self.shutdown.cancel();
    }

    /// The counters of incoming handshakes: pending now and at most, per source address at
    /// most, sockets held, evicted, refused, timed out silent.
    pub fn handshake_stats(&self) -> HandshakeStats {
        self.shared.handshakes.stats()
    }

    /// Bytes received and not yet read by the application across this endpoint's
    /// connections (bounded by [`TransportConfig::endpoint_recv_bytes`], plus one frame per
    /// connection).
    pub fn recv_queued_bytes(&self) -> usize {
        self.shared.recv_budget.queued()
    }

    /// Bytes of frames received so far on this endpoint's connections (those it accepted and
    /// those made with [`Endpoint::connect_to`] or a punch).
    pub fn received_bytes(&self) -> u64 {
        self.shared.recv_budget.charged()
    }

    /// Connects to `addr` as a member of `creds.group` with this endpoint's configuration;
    /// the connection's unread incoming data counts towards this endpoint's
    /// [`TransportConfig::endpoint_recv_bytes`].
    pub async fn connect_to(
        &self,
        addr: SocketAddr,
        creds: &GroupCredentials,
        trust: &GroupTrust,
    ) -> Result<Connection, ConnectError> {
        self.connect_to_over(addr, creds, trust, self.shared.config.dial)
            .await
    }

    /// [`Endpoint::connect_to`] over `dial`, whatever the configuration says (a hole punch
    /// dials QUIC from this endpoint's socket, whose mapping the other side was told).
    pub async fn connect_to_over(
        &self,
        addr: SocketAddr,
        creds: &GroupCredentials,
        trust: &GroupTrust,
        dial: crate::config::Dial,
    ) -> Result<Connection, ConnectError> {
        check_pair(creds, trust)?;
        let mut config = self.shared.config.clone();
        config.dial = dial;
        connect_tweaked(
            addr,
            creds,
            trust,
            &config,
            &ClientTweaks::default(),
            Some(self.shared.recv_budget.clone()),
            self.quic_for(addr).cloned(),
        )
        .await
    }

    /// Connects to `addr` as a member presenting `creds`, accepting a server that `trust`
    /// accepts, over the transport [`TransportConfig::dial`] says. Needs no listener (QUIC
    /// uses a UDP socket of its own). Bounded by the connect and handshake timeouts.
    pub async fn connect(
        addr: SocketAddr,
        creds: &GroupCredentials,
        trust: &GroupTrust,
        config: &TransportConfig,
    ) -> Result<Connection, ConnectError> {
        check_pair(creds, trust)?;
        connect_tweaked(
            addr,
            creds,
            trust,
            config,
            &ClientTweaks::default(),
            None,
            None,
        )
        .await
    }

    fn read_groups(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<ServedGroup>>> {
        self.shared
            .groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_groups(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<ServedGroup>>> {
        self.shared
            .groups
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addrs", &self.local_addrs)
            .field("groups", &self.groups())
            .finish_non_exhaustive()
    }
}

/// Credentials and trust must be for the same group and fit together.
pub(crate) fn check_pair(
    creds: &GroupCredentials,
    trust: &GroupTrust,
) -> Result<(), CredentialsError> {
    creds.check()?;
    if trust.group() != &creds.group {
        return Err(CredentialsError::TrustMismatch {
            trust: trust.group().clone(),
            credentials: creds.group.clone(),
        });
    }
    Ok(())
}

/// A TCP listener on `addr` and, with `quic`, a UDP socket on the same port. On port 0 the
/// listener picks the port; when the UDP side of it is taken, another is tried.
fn bind_pair(
    addr: SocketAddr,
    quic: bool,
) -> io::Result<(std::net::TcpListener, Option<std::net::UdpSocket>)> {
    const ATTEMPTS: usize = 8;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let tcp = bind_one(addr)?;
        if !quic {
            return Ok((tcp, None));
        }
        let port = tcp.local_addr()?.port();
        match quic::bind_udp(SocketAddr::new(addr.ip(), port)) {
            Ok(udp) => return Ok((tcp, Some(udp))),
            Err(e) if addr.port() == 0 && attempt < ATTEMPTS => {
                tracing::debug!(port, error = %e, "UDP port taken for QUIC; another port");
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot listen for QUIC on UDP {}:{port}: {e}", addr.ip()),
                ));
            }
        }
    }
}

/// A TCP listener on `addr`. Where the system has it, with `SO_REUSEPORT`, so that a TCP hole
/// punch can dial from the listening port (`punch.rs`); a port that another socket holds is
/// refused first, as without it (a second node does not share our port unnoticed).
fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let new = || -> io::Result<Socket> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        #[cfg(unix)]
        socket.set_reuse_address(true)?;
        Ok(socket)
    };
    let socket = new()?;
    #[cfg(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    ))]
    if addr.port() != 0 {
        // Taken? A socket without SO_REUSEPORT cannot bind where any other socket holds.
        new()?.bind(&addr.into())?;
    }
    #[cfg(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    ))]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
