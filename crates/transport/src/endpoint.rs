//! The endpoint: listeners on IPv4 and/or IPv6, the groups they serve, incoming authenticated
//! connections, refusals as events; and outgoing connections.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use peergroup_identity::PeerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::TransportConfig;
use crate::connection::{self, Connection, PeerInfo};
use crate::error::{AuthFailure, ConnectError, CredentialsError};
use crate::handshake::{self, AcceptError, ClientTweaks, Incoming, ServedGroup};
use crate::join::{self, JoinService};
use crate::naming::sni_name;
use crate::tls;
use crate::trust::{GroupCredentials, GroupTrust};

/// Refusal events kept for slow subscribers before the oldest are dropped.
const AUTH_FAILURE_BUFFER: usize = 256;

/// Listens for members of the groups it serves and hands out authenticated connections.
///
/// One endpoint serves any number of groups: a client names the group it wants by the TLS
/// server name ([`sni_name`]) and the endpoint answers with that group's credentials and
/// accepts only that group's members. Dropping the endpoint (or [`Endpoint::close`]) stops
/// listening; established connections live on until closed.
pub struct Endpoint {
    pub(crate) shared: Arc<Shared>,
    incoming: Mutex<mpsc::Receiver<Connection>>,
    local_addrs: Vec<SocketAddr>,
    shutdown: CancellationToken,
}

pub(crate) struct Shared {
    config: TransportConfig,
    /// Served groups by SNI name.
    groups: RwLock<HashMap<String, Arc<ServedGroup>>>,
    /// Join policies by SNI name (only of served groups).
    joins: RwLock<HashMap<String, Arc<JoinService>>>,
    auth_failures: broadcast::Sender<AuthFailure>,
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
    /// only). Port 0 picks a free port: later addresses with port 0 try the port the first
    /// one got, so one port can be advertised for both families. See
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
        for addr in addrs {
            let listener = match chosen_port {
                Some(port) if addr.port() == 0 => {
                    bind_one(SocketAddr::new(addr.ip(), port)).or_else(|_| bind_one(*addr))?
                }
                _ => bind_one(*addr)?,
            };
            let local = listener.local_addr()?;
            chosen_port.get_or_insert(local.port());
            listeners.push((TcpListener::from_std(listener)?, local));
        }
        let shared = Arc::new(Shared {
            config: config.clone(),
            groups: RwLock::new(HashMap::new()),
            joins: RwLock::new(HashMap::new()),
            auth_failures: broadcast::Sender::new(AUTH_FAILURE_BUFFER),
        });
        let (incoming_tx, incoming_rx) = mpsc::channel(config.accept_queue);
        let shutdown = CancellationToken::new();
        let handshakes = Arc::new(Semaphore::new(config.max_handshakes));
        let local_addrs = listeners.iter().map(|(_, a)| *a).collect();
        for (listener, local) in listeners {
            tracing::info!(addr = %local, "listening");
            tokio::spawn(listen(
                listener,
                shared.clone(),
                incoming_tx.clone(),
                handshakes.clone(),
                shutdown.clone(),
            ));
        }
        Ok(Endpoint {
            shared,
            incoming: Mutex::new(incoming_rx),
            local_addrs,
            shutdown,
        })
    }

    /// The addresses actually listened on (with the real ports).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
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
    /// [`PeerInfo::group`]), or `None` once the endpoint is closed. Password joins
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

    /// Connects to `addr` as a member of `creds.group` with this endpoint's configuration.
    pub async fn connect_to(
        &self,
        addr: SocketAddr,
        creds: &GroupCredentials,
        trust: &GroupTrust,
    ) -> Result<Connection, ConnectError> {
        Self::connect(addr, creds, trust, &self.shared.config).await
    }

    /// Connects to `addr` as a member presenting `creds`, accepting a server that `trust`
    /// accepts. Needs no listener. Bounded by the connect and handshake timeouts.
    pub async fn connect(
        addr: SocketAddr,
        creds: &GroupCredentials,
        trust: &GroupTrust,
        config: &TransportConfig,
    ) -> Result<Connection, ConnectError> {
        check_pair(creds, trust)?;
        connect_tweaked(addr, creds, trust, config, &ClientTweaks::default()).await
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
fn check_pair(creds: &GroupCredentials, trust: &GroupTrust) -> Result<(), CredentialsError> {
    creds.check()?;
    if trust.group() != &creds.group {
        return Err(CredentialsError::TrustMismatch {
            trust: trust.group().clone(),
            credentials: creds.group.clone(),
        });
    }
    Ok(())
}

/// The client side, with test knobs; no consistency check between `creds` and `trust`.
pub(crate) async fn connect_tweaked(
    addr: SocketAddr,
    creds: &GroupCredentials,
    trust: &GroupTrust,
    config: &TransportConfig,
    tweaks: &ClientTweaks,
) -> Result<Connection, ConnectError> {
    let config = config.normalized();
    let connected = handshake::connect(addr, creds, trust, &config, tweaks).await?;
    let info = PeerInfo {
        peer: connected.chain.peer().clone(),
        group: trust.group().clone(),
        addr,
        local_addr: connected.local_addr,
        chain: connected.chain,
    };
    tracing::debug!(peer = %info.peer, %addr, "connected");
    Ok(connection::spawn(
        connected.tls,
        info,
        trust.clone(),
        &config,
    ))
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

async fn listen(
    listener: TcpListener,
    shared: Arc<Shared>,
    incoming: mpsc::Sender<Connection>,
    handshakes: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    loop {
        // At most `max_handshakes` in flight (or waiting for `accept`); the rest wait in
        // the kernel's backlog.
        let permit = tokio::select! {
            () = shutdown.cancelled() => return,
            p = handshakes.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (tcp, addr) = tokio::select! {
            () = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep listening.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let incoming = incoming.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = serve(tcp, addr, &shared, &incoming) => {}
            }
        });
    }
}

/// One incoming connection: handshake, then delivery to `accept` or a refusal event.
async fn serve(
    tcp: TcpStream,
    addr: SocketAddr,
    shared: &Shared,
    incoming: &mpsc::Sender<Connection>,
) {
    let _ = tcp.set_nodelay(true);
    let lookup = |sni: &str| shared.lookup(sni);
    match handshake::accept(tcp, lookup, &shared.config).await {
        Ok(Incoming::Join(joining)) => {
            // Handled here, never delivered through `accept`.
            join::server::run(joining, addr, &shared.config, &shared.auth_failures).await;
        }
        Ok(Incoming::Member(accepted)) => {
            let info = PeerInfo {
                peer: accepted.chain.peer().clone(),
                group: accepted.group.group.clone(),
                addr,
                local_addr: accepted.local_addr,
                chain: accepted.chain,
            };
            tracing::debug!(peer = %info.peer, %addr, group = %info.group, "accepted");
            let conn = connection::spawn(
                accepted.tls,
                info,
                accepted.group.trust.clone(),
                &shared.config,
            );
            // If the endpoint is gone the connection is dropped, which closes it.
            let _ = incoming.send(conn).await;
        }
        Err(AcceptError::Refused { reason, group }) => {
            match &group {
                Some(g) => tracing::warn!(peer = %addr, group = %g, %reason, "refused connection"),
                None => tracing::warn!(peer = %addr, %reason, "refused connection"),
            }
            let _ = shared.auth_failures.send(AuthFailure {
                addr,
                group,
                peer: None,
                reason,
            });
        }
        Err(AcceptError::PeerRefused { group, alert }) => {
            tracing::info!(peer = %addr, %group, %alert, "the client refused our credentials");
        }
    }
}
