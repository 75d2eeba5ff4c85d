//! How to start the infrastructure.

use std::net::SocketAddr;
use std::path::PathBuf;

use peergroup_identity::KdfParams;
use peergroup_membership::MeshConfig;
use peergroup_transport::TransportConfig;

/// How to start the infrastructure.
#[derive(Clone, Debug)]
pub struct InfrastructureConfig {
    /// Where identities, group credentials and databases live.
    pub data_dir: PathBuf,
    /// Addresses to accept connections on (port 0 picks one). Empty: do not listen (tools
    /// that only manage identities and groups).
    pub listen: Vec<SocketAddr>,
    /// When a port in `listen` is taken (another node on this machine, say), listen on a
    /// free port of the same addresses instead of failing. On by default (members find each
    /// other through presence and mDNS, not by a fixed port); turn it off when others are
    /// told this exact port.
    pub port_fallback: bool,
    /// Find members on the local network with mDNS, and be found.
    pub discovery: bool,
    /// Transport timeouts and limits.
    pub transport: TransportConfig,
    /// Mesh tuning.
    pub mesh: MeshConfig,
    /// Argon2id costs for password-protected exports (tests use cheap ones).
    pub kdf: KdfParams,
}

/// The port Windows grouping used (TCP 3587), our default.
pub const DEFAULT_PORT: u16 = 3587;

impl InfrastructureConfig {
    /// Defaults: listen on every IPv4 and IPv6 address on port 3587, discovery on.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        InfrastructureConfig {
            data_dir: data_dir.into(),
            listen: vec![
                SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
                SocketAddr::from(([0u16; 8], DEFAULT_PORT)),
            ],
            port_fallback: true,
            discovery: true,
            transport: TransportConfig::default(),
            mesh: MeshConfig::default(),
            kdf: KdfParams::DEFAULT,
        }
    }

    /// No listening, no discovery: for tools that only manage local data.
    pub fn offline(data_dir: impl Into<PathBuf>) -> Self {
        InfrastructureConfig {
            listen: Vec::new(),
            discovery: false,
            ..Self::new(data_dir)
        }
    }
}
