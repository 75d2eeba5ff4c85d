//! The infrastructure: one per process and data directory (PeerGroupStartup / Shutdown).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock, Weak};

use peergroup_credential_roles::{GroupRoot, INFINITE, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, IdentityStore, PeerName, Timestamp};
use peergroup_invitation_xml::{GroupConfig, Invitation};
use peergroup_record_db::reserved::GroupProperties;
use peergroup_record_db::store::SqliteStore;
use peergroup_record_db::{Database, LocalSigner};
use peergroup_transport::Endpoint;

use crate::config::InfrastructureConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::group::Group;
use crate::identities::Identities;
use crate::node::{Node, Served};
use crate::storage::{self, Membership};

/// The peergroup infrastructure: identities, groups, the listening endpoint.
///
/// Cheap to clone. Start one per data directory with [`Infrastructure::start`] and stop it
/// with [`Infrastructure::shutdown`].
#[derive(Clone)]
pub struct Infrastructure {
    pub(crate) inner: Arc<Node>,
}

impl std::fmt::Debug for Infrastructure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Infrastructure")
            .field("data_dir", &self.inner.config.data_dir)
            .finish_non_exhaustive()
    }
}

/// A group an identity belongs to, as listed (PEER_NAME_PAIR of PeerEnumGroups, and more).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GroupSummary {
    /// The group peer name.
    pub group: PeerName,
    /// The group's friendly name.
    pub friendly_name: String,
    /// The member identity.
    pub identity: PeerName,
    /// The member's roles.
    pub roles: Vec<String>,
    /// Whether this identity holds the group key (it created the group).
    pub owner: bool,
    /// When the membership ends.
    pub valid_until: String,
}

/// What a new group looks like.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    /// The friendly name.
    pub friendly_name: String,
    /// The group peer name's classifier.
    pub classifier: String,
    /// A comment.
    pub comment: String,
    /// A password others may join with, and the role it grants.
    pub password: Option<(Vec<u8>, Role)>,
}

impl GroupSpec {
    /// A group with this friendly name and the default classifier.
    pub fn new(friendly_name: &str) -> Self {
        GroupSpec {
            friendly_name: friendly_name.to_owned(),
            classifier: "group".into(),
            comment: String::new(),
            password: None,
        }
    }
}

impl Infrastructure {
    /// Starts the infrastructure: opens the identity store and, unless the configuration
    /// says otherwise, binds the listening endpoint and starts discovery.
    pub async fn start(config: InfrastructureConfig) -> Result<Infrastructure> {
        peergroup_identity::fs::create_private_dir(&config.data_dir)?;
        // Before anything in it is read or written: one node per data directory.
        let lock = crate::lock::DirLock::acquire(&config.data_dir)?;
        let identities =
            IdentityStore::open(config.data_dir.join("identities"))?.with_kdf_params(config.kdf);
        let endpoint = if config.listen.is_empty() {
            None
        } else {
            Some(Arc::new(bind(&config).await?))
        };
        let discovery = if config.discovery && endpoint.is_some() {
            match peergroup_transport::Discovery::new() {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(error = %e, "mDNS discovery unavailable");
                    None
                }
            }
        } else {
            None
        };
        let inner = Arc::new(Node {
            config,
            api_identities: crate::identities::Identities::new(identities.clone()),
            identities,
            endpoint,
            routes: RwLock::new(BTreeMap::new()),
            open: Mutex::new(BTreeMap::new()),
            discovery: Mutex::new(discovery),
            _lock: lock,
        });
        if let Some(ep) = inner.endpoint.clone() {
            tokio::spawn(crate::router::accept_loop(ep, Arc::downgrade(&inner)));
        }
        Ok(Infrastructure { inner })
    }

    /// Stops listening and discovery. Open groups should be closed first (their drivers stop
    /// when their last handle is dropped).
    pub async fn shutdown(self) {
        if let Some(ep) = &self.inner.endpoint {
            ep.close();
        }
        if let Some(d) = self.inner.discovery.lock().ok().and_then(|mut d| d.take()) {
            let _ = d.shutdown();
        }
        let open: Vec<Arc<dyn Served>> = self
            .inner
            .open
            .lock()
            .map(|o| o.values().filter_map(Weak::upgrade).collect())
            .unwrap_or_default();
        for g in open {
            g.stop().await;
        }
    }

    /// The identities kept in the data directory (create, list, export, import…).
    pub fn identities(&self) -> &Identities {
        &self.inner.api_identities
    }

    /// An identity's PEERIDENTITYINFO, the XML to give someone who will invite it
    /// (PeerIdentityGetXML), in one call.
    pub async fn identity_info_xml(&self, identity: &PeerName) -> Result<String> {
        let id = self.identities().get(identity).await?;
        Ok(peergroup_invitation_xml::IdentityInfo::new(id.certificate().clone()).to_xml())
    }

    /// The endpoint's incoming handshakes and bytes received; `None` when it does not listen.
    pub fn transport_stats(&self) -> Option<TransportStats> {
        self.inner.endpoint.as_ref().map(|e| TransportStats {
            handshakes: e.handshake_stats(),
            unread_bytes: e.recv_queued_bytes(),
            received_bytes: e.received_bytes(),
        })
    }

    /// Where the endpoint listens (empty when it does not).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner
            .endpoint
            .as_ref()
            .map(|e| e.local_addrs().to_vec())
            .unwrap_or_default()
    }

    /// Creates a group owned by `identity`: a group key, its root certificate, an admin
    /// certificate for the creator, and the group's database with its properties record.
    /// Returns the group peer name.
    pub async fn create_group(&self, identity: &PeerName, spec: &GroupSpec) -> Result<PeerName> {
        let (identity, spec) = (identity.clone(), spec.clone());
        self.blocking(move |infra| infra.create_group_now(&identity, &spec))
            .await
    }

    fn create_group_now(&self, identity: &PeerName, spec: &GroupSpec) -> Result<PeerName> {
        let me = self.inner.identities.get(identity)?;
        let now = Timestamp::now();
        let root = GroupRoot::create(
            &spec.friendly_name,
            Classifier::new(&spec.classifier)?,
            me.peer_name(),
            now,
        )?;
        let chain = root.issue(&MemberRequest {
            subject_key: me.key().public(),
            subject_peer: me.peer_name().clone(),
            subject_friendly_name: me.friendly_name().to_owned(),
            roles: Roles::one(Role::Admin),
            classifiers: vec![],
            not_before: now,
            not_after: now.saturating_add(INFINITE),
        })?;
        let group = root.group().clone();
        let mut props = GroupProperties::new(&spec.friendly_name, me.peer_name().clone());
        props.comment = spec.comment.clone();
        if let Some((_, role)) = &spec.password {
            props.password_auth = true;
            props.password_role = Some(*role);
        }
        props
            .check()
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e))?;
        let path = storage::database_path(&self.inner.identities, me.peer_name(), &group);
        let mut db = Database::open(SqliteStore::open(&path)?, &chain)?;
        db.set_properties(
            LocalSigner {
                key: me.key(),
                chain: &chain,
            },
            &props,
            now,
        )?;
        db.publish_membership(
            LocalSigner {
                key: me.key(),
                chain: &chain,
            },
            &chain,
            now,
        )?;
        drop(db);
        let membership = Membership {
            identity: me.peer_name().clone(),
            chain,
            group_key: Some(peergroup_identity::KeyPair::from_secret(
                &root.key().secret(),
            )),
            addresses: Vec::new(),
            password: match &spec.password {
                Some((p, _)) => Some(crate::password::register(p, &group, self.inner.config.kdf)?),
                None => None,
            },
        };
        storage::save(&self.inner.identities, &membership, false)?;
        Ok(group)
    }

    /// Joins a group with a certificate invitation issued to `identity` (PeerGroupJoin).
    /// Tampered, expired and foreign invitations are refused; nothing is stored then.
    pub async fn join(&self, identity: &PeerName, invitation_xml: &str) -> Result<PeerName> {
        self.join_via(identity, invitation_xml, &[]).await
    }

    /// [`Infrastructure::join`], with member addresses besides the invitation's (tried first;
    /// an invitation made while its inviter was offline names none).
    pub async fn join_via(
        &self,
        identity: &PeerName,
        invitation_xml: &str,
        addresses: &[SocketAddr],
    ) -> Result<PeerName> {
        let (identity, xml, extra) = (
            identity.clone(),
            invitation_xml.to_owned(),
            addresses.to_vec(),
        );
        self.blocking(move |infra| infra.join_now(&identity, &xml, &extra))
            .await
    }

    fn join_now(
        &self,
        identity: &PeerName,
        invitation_xml: &str,
        extra: &[SocketAddr],
    ) -> Result<PeerName> {
        let me = self.inner.identities.get(identity)?;
        let invitation = Invitation::parse(invitation_xml)?;
        let Invitation::Certificate {
            chain, addresses, ..
        } = invitation
        else {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "this is a password invitation: join it with password_join and the group password",
            ));
        };
        storage::store_joined(
            &self.inner.identities,
            &me,
            chain,
            storage::with_extra(extra, addresses.as_slice()),
            None,
        )
    }

    /// Opens a group `identity` belongs to (PeerGroupOpen). The group is offline until
    /// [`Group::connect`]. Opening a group that is already open here is refused.
    pub async fn open_group(&self, identity: &PeerName, group: &PeerName) -> Result<Group> {
        Group::open(self.inner.clone(), identity, group).await
    }

    /// The groups `identity` belongs to (PeerEnumGroups), each named as its properties say
    /// now (a rename shows here).
    pub async fn groups(&self, identity: &PeerName) -> Result<Vec<GroupSummary>> {
        let identity = identity.clone();
        self.blocking(move |infra| infra.groups_now(&identity))
            .await
    }

    fn groups_now(&self, identity: &PeerName) -> Result<Vec<GroupSummary>> {
        self.inner.identities.get(identity)?;
        Ok(storage::list(&self.inner.identities, identity)
            .into_iter()
            .map(|m| {
                let leaf = m.chain.leaf();
                GroupSummary {
                    group: m.group().clone(),
                    friendly_name: storage::friendly_name(&self.inner.identities, &m),
                    identity: m.identity.clone(),
                    roles: leaf.roles().iter().map(|r| r.name().to_owned()).collect(),
                    owner: m.group_key.is_some(),
                    valid_until: leaf.not_after().to_rfc3339(),
                }
            })
            .collect())
    }

    /// Deletes `identity`'s local data for `group` (PeerGroupDelete). Refused while open.
    pub async fn delete_group(&self, identity: &PeerName, group: &PeerName) -> Result<()> {
        let (identity, group) = (identity.clone(), group.clone());
        self.blocking(move |infra| infra.delete_group_now(&identity, &group))
            .await
    }

    fn delete_group_now(&self, identity: &PeerName, group: &PeerName) -> Result<()> {
        if self.is_open(identity, group) {
            return Err(Error::new(
                ErrorKind::GroupInUse,
                format!("group {group} is open; close it first"),
            ));
        }
        storage::delete(&self.inner.identities, identity, group)
    }

    pub(crate) fn is_open(&self, identity: &PeerName, group: &PeerName) -> bool {
        self.inner
            .open
            .lock()
            .map(|o| {
                o.get(&(identity.clone(), group.clone()))
                    .is_some_and(|w| w.strong_count() > 0)
            })
            .unwrap_or(false)
    }

    /// Imports a database export into `identity`'s copy of `group` (PeerGroupImportDatabase):
    /// every record is validated again, exactly as if a member had sent it. Refused while the
    /// group is open, and without reading it when the file is larger than
    /// [`MAX_EXPORT_FILE_BYTES`](peergroup_record_db::export::MAX_EXPORT_FILE_BYTES) or not a
    /// regular file.
    ///
    /// The report names each refused record and why (each is also logged). With
    /// [`ImportMode::AllOrNothing`](peergroup_record_db::export::ImportMode) one refusal
    /// imports nothing (`committed` is false); with `Partial` the valid records are imported.
    /// Records already stored are never lost either way.
    pub async fn import_database(
        &self,
        identity: &PeerName,
        group: &PeerName,
        path: &std::path::Path,
        mode: peergroup_record_db::export::ImportMode,
    ) -> Result<peergroup_record_db::export::ImportReport> {
        let (identity, group, path) = (identity.clone(), group.clone(), path.to_owned());
        self.blocking(move |infra| infra.import_database_now(&identity, &group, &path, mode))
            .await
    }

    fn import_database_now(
        &self,
        identity: &PeerName,
        group: &PeerName,
        path: &std::path::Path,
        mode: peergroup_record_db::export::ImportMode,
    ) -> Result<peergroup_record_db::export::ImportReport> {
        if self.is_open(identity, group) {
            return Err(Error::new(
                ErrorKind::GroupInUse,
                "the group is open; close it before importing its database",
            ));
        }
        let m = storage::load(&self.inner.identities, identity, group)?;
        let db_path = storage::database_path(&self.inner.identities, identity, group);
        let mut db = Database::open(SqliteStore::open(&db_path)?, &m.chain)?;
        db.learn_member(&m.chain)?;
        let report = db.import(path, Timestamp::now(), mode)?;
        for refusal in &report.refused {
            tracing::warn!(
                file = %path.display(),
                record = %refusal.id,
                reason = %refusal.reason,
                committed = report.committed,
                "database import refused a record"
            );
        }
        Ok(report)
    }

    /// Exports `identity`'s membership of `group` as a password-protected PEERGROUPCONFIG
    /// (PeerGroupExportConfig): the chain and, for the creator, the group key sealed under
    /// `password` (Argon2id + XChaCha20-Poly1305).
    pub async fn export_config(
        &self,
        identity: &PeerName,
        group: &PeerName,
        password: &[u8],
    ) -> Result<String> {
        let (identity, group) = (identity.clone(), group.clone());
        let password = zeroize::Zeroizing::new(password.to_vec());
        self.blocking(move |infra| infra.export_config_now(&identity, &group, &password))
            .await
    }

    fn export_config_now(
        &self,
        identity: &PeerName,
        group: &PeerName,
        password: &[u8],
    ) -> Result<String> {
        let m = storage::load(&self.inner.identities, identity, group)?;
        let sealed = match &m.group_key {
            Some(k) => Some(peergroup_identity::seal_secret(
                k.secret().seed(),
                password,
                self.inner.config.kdf,
            )?),
            None => None,
        };
        let config = GroupConfig::new(
            m.chain.clone(),
            peergroup_invitation_xml::Cloud::global(),
            sealed,
        )?;
        Ok(config.to_xml())
    }

    /// Imports a PEERGROUPCONFIG (PeerGroupImportConfig) for an identity already in the
    /// store. Returns (identity, group). Refuses to overwrite unless `overwrite`.
    pub async fn import_config(
        &self,
        xml: &str,
        password: &[u8],
        overwrite: bool,
    ) -> Result<(PeerName, PeerName)> {
        let xml = xml.to_owned();
        let password = zeroize::Zeroizing::new(password.to_vec());
        self.blocking(move |infra| infra.import_config_now(&xml, &password, overwrite))
            .await
    }

    fn import_config_now(
        &self,
        xml: &str,
        password: &[u8],
        overwrite: bool,
    ) -> Result<(PeerName, PeerName)> {
        let config = GroupConfig::parse(xml)?;
        let me = self.inner.identities.get(&config.identity).map_err(|_| {
            Error::new(
                ErrorKind::IdentityNotFound,
                format!(
                    "identity {} is not in this store; import it first (identity import)",
                    config.identity
                ),
            )
        })?;
        if config.chain.leaf().public_key() != &me.key().public() {
            return Err(Error::new(
                ErrorKind::InvitationNotTrusted,
                "the configuration's certificate is for another key",
            ));
        }
        let group_key = match &config.group_key {
            None => None,
            Some(sealed) => {
                let seed = peergroup_identity::open_secret(sealed, password)?;
                let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| {
                    Error::new(ErrorKind::Corrupt, "the sealed group key is not 32 bytes")
                })?;
                let key = peergroup_identity::KeyPair::from_secret(
                    &peergroup_identity::SecretKey::from_seed(seed),
                );
                if &key.public() != config.chain.root().public_key() {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        "the group key does not match the group",
                    ));
                }
                Some(key)
            }
        };
        if self.is_open(me.peer_name(), &config.group) {
            return Err(Error::new(ErrorKind::GroupInUse, "the group is open"));
        }
        let m = Membership {
            identity: me.peer_name().clone(),
            chain: config.chain.clone(),
            group_key,
            addresses: Vec::new(),
            password: None,
        };
        storage::save(&self.inner.identities, &m, overwrite)?;
        Ok((me.peer_name().clone(), config.group))
    }

    /// Joins a password group: proves `password` to a member that knows it, online, and is
    /// issued a certificate (PeerGroupPasswordJoin). Returns the group peer name.
    pub async fn password_join(
        &self,
        identity: &PeerName,
        invitation_xml: &str,
        password: &[u8],
    ) -> Result<PeerName> {
        crate::password::join(&self.inner, identity, invitation_xml, password, &[]).await
    }

    /// [`Infrastructure::password_join`], proving the password to these members first (an
    /// invitation made while its inviter was offline names none).
    pub async fn password_join_via(
        &self,
        identity: &PeerName,
        invitation_xml: &str,
        password: &[u8],
        addresses: &[SocketAddr],
    ) -> Result<PeerName> {
        crate::password::join(&self.inner, identity, invitation_xml, password, addresses).await
    }

    /// Runs `f` off the async threads (it reads and writes the disk, or stretches a password).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Infrastructure) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let infra = self.clone();
        crate::blocking::run(move || f(&infra)).await
    }
}

/// The endpoint on the configured addresses; on free ports of them when a port is taken and
/// the configuration allows it.
async fn bind(config: &InfrastructureConfig) -> Result<Endpoint> {
    let failed = |listen: &[SocketAddr], e: std::io::Error| {
        Error::with_source(
            ErrorKind::Io,
            format!("cannot listen on {listen:?}: {e}"),
            e,
        )
    };
    match Endpoint::bind(&config.listen, config.transport.clone()).await {
        Ok(ep) => Ok(ep),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && config.port_fallback => {
            let free: Vec<SocketAddr> = config
                .listen
                .iter()
                .map(|a| SocketAddr::new(a.ip(), 0))
                .collect();
            tracing::info!(listen = ?config.listen, "the port is taken; listening on a free one");
            Endpoint::bind(&free, config.transport.clone())
                .await
                .map_err(|e| failed(&free, e))
        }
        Err(e) => Err(failed(&config.listen, e)),
    }
}

/// What [`Infrastructure::transport_stats`] reports of the endpoint.
#[derive(Clone, Debug, Default)]
pub struct TransportStats {
    /// Incoming handshakes: pending now, admitted, evicted, refused, closed silent.
    pub handshakes: crate::HandshakeStats,
    /// Bytes received and not yet read by the groups, all connections together.
    pub unread_bytes: usize,
    /// Bytes of frames received so far, all connections together.
    pub received_bytes: u64,
}
