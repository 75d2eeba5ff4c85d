//! An open group: connect, records, members, status, properties, time, invitations,
//! credentials, revocation, events.

mod direct;
mod serve;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peergroup_credential_roles::{
    Action, CertChain, MemberRequest, RevocationSet, RevocationTarget, Role, Roles, authorize,
};
use peergroup_identity::{KeyPair, PeerName, Timestamp};
use peergroup_invitation_xml::{Addresses, Cloud, FriendlyName, IdentityInfo, Invitation};
use peergroup_membership::driver::{self, DriverConfig, GroupHandle};
use peergroup_membership::stats::Stats as GroupStats;
use peergroup_membership::{Core, Event, LocalMember, Member, NodeId, SyncProgress};
use peergroup_record_db::reserved::{GroupProperties, MembershipPayload};
use peergroup_record_db::store::SqliteStore;
use peergroup_record_db::{
    Database, NewRecord, Record, RecordId, RecordType, RecordUpdate, SignedRecords,
};
use peergroup_transport::{GroupCredentials, GroupTrust};
use tokio::sync::broadcast;

use crate::Status;
use crate::error::{Error, ErrorKind, Result};
use crate::events::hub::Hub;
use crate::events::{ConnectionChange, ConnectionId, EventFilter, EventStream, GroupEvent};
use crate::node::{Node, Served};
use crate::registration::Registration;
use crate::storage::{self, Membership};

/// How long a connect waits for stored renewed credentials that start in the near future
/// (a renewal issued within a second of the certificate it replaces starts a second later).
const RENEWAL_START_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct GroupInner {
    /// The node serving it (identities, configuration, endpoint, discovery).
    pub(crate) host: Arc<Node>,
    pub(crate) identity: PeerName,
    pub(crate) group: PeerName,
    pub(crate) key: Arc<KeyPair>,
    pub(crate) membership: Mutex<Membership>,
    pub(crate) handle: GroupHandle,
    /// Where events wait for the subscribers, bounded in count and in bytes.
    pub(crate) events: Arc<Hub>,
    pub(crate) trust: GroupTrust,
    pub(crate) connected: AtomicBool,
    /// Set by [`Group::close`]: every later operation fails with [`ErrorKind::Closed`].
    pub(crate) user_closed: AtomicBool,
    /// Set once the group is closed and every event from before has been forwarded: event
    /// streams end then.
    pub(crate) closed: tokio::sync::watch::Sender<bool>,
    /// Tells the event forwarder that the driver has stopped.
    pub(crate) stopped: Arc<tokio::sync::Notify>,
    pub(crate) node: NodeId,
    pub(crate) direct: crate::direct::Direct,
    /// The group's registration with the node while connected: dropping it (at close, or
    /// with the last handle) takes back the route, the endpoint's server name and join
    /// policy, and the mDNS advertisement.
    pub(crate) registration: Mutex<Option<Registration>>,
}

/// An open group (the HGROUP of Windows). Cheap to clone.
#[derive(Clone)]
pub struct Group {
    pub(crate) inner: Arc<GroupInner>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("group", &self.inner.group)
            .field("identity", &self.inner.identity)
            .finish_non_exhaustive()
    }
}

/// Reserved record types are the infrastructure's: applications may not publish them.
fn check_not_reserved(record_type: RecordType) -> Result<()> {
    if record_type.is_reserved() {
        return Err(Error::new(
            ErrorKind::NotAuthorized,
            format!("record type {record_type} is reserved"),
        ));
    }
    Ok(())
}

/// What an application sees: nothing listens for a group that is not connected (the core
/// counts a creator as listening from the start, but the endpoint takes connections for the
/// group only between `connect` and `close`).
fn visible_status(mut s: Status, connected: bool) -> Status {
    if !connected {
        s.listening = false;
    }
    s
}

/// A core's seed (its mesh decisions and record ids) from the operating system.
fn random_seed() -> Result<peergroup_membership::rng::Seed> {
    let mut seed = [0u8; 32];
    peergroup_identity::random_bytes(&mut seed)?;
    Ok(peergroup_membership::rng::Seed(seed))
}

fn random_u64() -> Result<u64> {
    let mut b = [0u8; 8];
    peergroup_identity::random_bytes(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

impl Group {
    pub(crate) async fn open(
        host: Arc<Node>,
        identity: &PeerName,
        group: &PeerName,
    ) -> Result<Group> {
        let key_of = |id: &peergroup_identity::Identity| KeyPair::from_secret(&id.key().secret());
        let me = host.identities.get(identity)?;
        let membership = storage::load(&host.identities, identity, group)?;
        {
            let open = host
                .open
                .lock()
                .map_err(|_| Error::new(ErrorKind::Io, "lock poisoned"))?;
            if open
                .get(&(identity.clone(), group.clone()))
                .is_some_and(|w| w.strong_count() > 0)
            {
                return Err(Error::new(
                    ErrorKind::GroupInUse,
                    format!("group {group} is already open for {identity}"),
                ));
            }
        }
        let now = Timestamp::now();
        let path = storage::database_path(&host.identities, identity, group);
        let db = Database::open(SqliteStore::open(&path)?, &membership.chain)?;
        let node = NodeId(random_u64()?);
        let local = LocalMember {
            key: key_of(&me),
            chain: membership.chain.clone(),
        };
        let mut core = Core::new(
            db,
            local,
            node,
            host.config.mesh.clone(),
            random_seed()?,
            now.into(),
        )?;
        core.set_online(false, now.into());
        core.add_candidates(&membership.addresses);
        let key = Arc::new(key_of(&me));
        let creds = GroupCredentials::new(group.clone(), key.clone(), membership.chain.clone())
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvitationNotTrusted,
                    format!("stored credentials: {e}"),
                )
            })?;
        let trust = GroupTrust::new(group.clone());
        trust.set_revocations(core.db().revocations().clone());
        let handle = driver::spawn(
            core,
            DriverConfig {
                transport: host.config.transport.clone(),
                endpoint: None,
                credentials: creds.clone(),
                trust: trust.clone(),
                clock: Arc::new(Timestamp::now),
                min_group_frame: crate::limits::FRAME_LIMIT,
            },
        );
        let events = Arc::new(Hub::default());
        let direct = crate::direct::Direct::new(
            creds,
            trust.clone(),
            host.config.transport.clone(),
            events.clone(),
        );
        let inner = Arc::new(GroupInner {
            host: host.clone(),
            identity: identity.clone(),
            group: group.clone(),
            key,
            membership: Mutex::new(membership),
            handle,
            events,
            trust,
            connected: AtomicBool::new(false),
            user_closed: AtomicBool::new(false),
            closed: tokio::sync::watch::Sender::new(false),
            stopped: Arc::new(tokio::sync::Notify::new()),
            node,
            direct,
            registration: Mutex::new(None),
        });
        tokio::spawn(forward_events(
            Arc::downgrade(&inner),
            inner.handle.events(),
            inner.stopped.clone(),
        ));
        if let Ok(mut open) = host.open.lock() {
            let served: std::sync::Weak<dyn Served> = Arc::downgrade(&inner) as _;
            open.insert((identity.clone(), group.clone()), served);
        }
        Ok(Group { inner })
    }

    /// The group peer name.
    pub fn peer_name(&self) -> &PeerName {
        &self.inner.group
    }

    /// The local member's identity.
    pub fn identity(&self) -> &PeerName {
        &self.inner.identity
    }

    /// This participation's node id.
    pub fn node_id(&self) -> u64 {
        self.inner.node.0
    }

    /// The member's roles in the group.
    pub fn roles(&self) -> Roles {
        self.inner
            .membership
            .lock()
            .map(|m| m.chain.leaf().roles())
            .unwrap_or_default()
    }

    fn chain(&self) -> Result<CertChain> {
        Ok(self
            .inner
            .membership
            .lock()
            .map_err(|_| Error::new(ErrorKind::Io, "lock poisoned"))?
            .chain
            .clone())
    }

    /// Goes online (PeerGroupConnect): listens (when the infrastructure does), advertises on
    /// the local network, and dials the members it knows (invitation addresses, presence
    /// records, mDNS). Returns at once; watch [`Group::status`] or the events, or use
    /// [`Group::wait_ready`]. A member whose stored credentials were renewed by an admin picks
    /// them up here.
    pub async fn connect(&self) -> Result<()> {
        self.connect_to(Vec::new()).await
    }

    /// Goes online and dials these addresses too (PeerGroupConnectByAddress).
    pub async fn connect_to(&self, addrs: Vec<SocketAddr>) -> Result<()> {
        self.check_open()?;
        self.pick_up_credentials().await?;
        let endpoint = self.inner.host.endpoint.clone();
        // A second connect replaces the registration: the old one goes first, so dropping it
        // does not take back what the new one registers.
        self.take_registration();
        if endpoint.is_some() {
            let creds = GroupCredentials::new(
                self.inner.group.clone(),
                self.inner.key.clone(),
                self.chain()?,
            )
            .map_err(|e| Error::new(ErrorKind::InvitationNotTrusted, e.to_string()))?;
            let served: std::sync::Weak<dyn Served> = Arc::downgrade(&self.inner) as _;
            let mut registration =
                Registration::register(&self.inner.host, served, creds, self.inner.trust.clone())?;
            self.install_join_policy().await?;
            if let (Ok(guard), Some(ep)) = (self.inner.host.discovery.lock(), &endpoint)
                && let (Some(d), Some(port)) = (
                    guard.as_ref(),
                    ep.local_addrs().first().map(SocketAddr::port),
                )
            {
                registration.advertise(d, port, crate::node::node_tag(self.inner.node.0));
                self.browse(d);
            }
            if let Ok(mut slot) = self.inner.registration.lock() {
                *slot = Some(registration);
            }
        }
        let mut dial = self
            .inner
            .membership
            .lock()
            .map(|m| m.addresses.clone())
            .unwrap_or_default();
        dial.extend(addrs);
        self.inner.handle.go_online(endpoint, dial).await?;
        let was = self.status();
        self.inner.connected.store(true, Ordering::SeqCst);
        let now = self.status();
        if now != was {
            let _ = self.inner.events.send(GroupEvent::StatusChanged(now));
        }
        Ok(())
    }

    /// Waits until the group is synchronised and has a connection (or is the creator, which is
    /// ready alone), up to `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Status> {
        let mut watch = self.inner.handle.status_watch();
        let ready = |s: &Status| s.synchronized && (s.has_connections || s.listening);
        let wait = async {
            loop {
                let s = *watch.borrow_and_update();
                if ready(&s) {
                    return s;
                }
                if watch.changed().await.is_err() {
                    return s;
                }
            }
        };
        let connected = self.is_connected();
        tokio::time::timeout(timeout, wait)
            .await
            .map(|s| visible_status(s, connected))
            .map_err(|_| {
                Error::new(
                    ErrorKind::ConnectionFailed,
                    format!("the group was not ready within {timeout:?}: no member reachable"),
                )
            })
    }

    /// Whether [`Group::connect`] was called.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::SeqCst)
    }

    /// Leaves the group (PeerGroupClose): deletes this node's presence, says goodbye to the
    /// neighbors, persists the database and peer time, closes direct connections.
    pub async fn close(&self) -> Result<()> {
        self.inner.user_closed.store(true, Ordering::SeqCst);
        self.inner.direct.close_all();
        self.take_registration();
        let _ = self.inner.handle.close().await;
        self.inner.stopped.notify_one();
        if let Ok(mut open) = self.inner.host.open.lock() {
            open.remove(&(self.inner.identity.clone(), self.inner.group.clone()));
        }
        self.inner.connected.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Takes back the group's registration with the node, if any (see [`Registration`]).
    fn take_registration(&self) {
        let registration = self
            .inner
            .registration
            .lock()
            .ok()
            .and_then(|mut r| r.take());
        drop(registration);
    }

    /// The status flags (PeerGroupGetStatus).
    pub fn status(&self) -> Status {
        visible_status(self.inner.handle.status(), self.is_connected())
    }

    /// Events matching `filter` from now on (PeerGroupRegisterEvent). Drop the stream to
    /// unregister.
    ///
    /// Read it: what waits for a stream is bounded, and what happens at the bound depends
    /// on the kind of event.
    ///
    /// - Group events (records, members, status, properties, neighbors, failures) are never
    ///   waited for. They are kept in a ring the group's streams share, at most
    ///   [`EventStream::BUFFER_EVENTS`] events and [`EventStream::BUFFER_BYTES`] bytes; a
    ///   stream that falls further behind loses the oldest and receives
    ///   [`GroupEvent::Lagged`] with how many of the events its filter takes it missed.
    /// - Direct-connection events ([`GroupEvent::DirectConnection`],
    ///   [`GroupEvent::IncomingData`]) are never lost. Each stream whose filter takes them has
    ///   its own queue of at most [`EventStream::DIRECT_EVENTS`] events and
    ///   [`EventStream::DIRECT_BYTES`] bytes, and while it is full, direct data waits for
    ///   it: the direct connections stop reading and the sending member's
    ///   [`Group::send_data`] waits. So a stream that takes direct events and is never read
    ///   (`EventFilter::all()` forgotten in a variable, say) stops direct data for the whole
    ///   group once its queue is full; memory stays bounded, but nothing more arrives until it
    ///   is read or dropped. Filter out what you will not read (a stream whose filter does not
    ///   take data is never waited for), drop a stream you are done with (it stops counting at
    ///   once), and do not wait on `send_data` in the task that reads the stream.
    pub fn events(&self, filter: EventFilter) -> EventStream {
        EventStream::new(
            self.inner.events.clone(),
            self.inner.closed.subscribe(),
            filter,
        )
    }

    /// Bytes of events waiting for this group's streams now: the shared ring and every
    /// stream's direct queue (see [`Group::events`] for the bounds).
    pub fn buffered_event_bytes(&self) -> usize {
        self.inner.events.buffered_bytes()
    }

    // --- Records ----------------------------------------------------------------------------

    /// Fails with [`ErrorKind::Closed`] once [`Group::close`] was called.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.user_closed.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Closed, "the group is closed"));
        }
        Ok(())
    }

    fn check_ready_to_publish(&self) -> Result<()> {
        self.check_open()?;
        let s = self.status();
        if !s.synchronized && !s.ever_synchronized {
            return Err(Error::new(
                ErrorKind::GroupNotReady,
                "the group has never been synchronised: connect once before publishing records",
            ));
        }
        Ok(())
    }

    /// Publishes a record (PeerGroupAddRecord) and floods it. `lifetime` counts from now.
    pub async fn add_record(
        &self,
        record_type: RecordType,
        attributes: &str,
        payload: Vec<u8>,
        lifetime: Duration,
    ) -> Result<Record> {
        self.publish(record_type, attributes, payload, lifetime, false)
            .await
    }

    /// Publishes a record kept alive while this member is online (autorefresh).
    pub async fn add_refreshed_record(
        &self,
        record_type: RecordType,
        attributes: &str,
        payload: Vec<u8>,
        lifetime: Duration,
    ) -> Result<Record> {
        self.publish(record_type, attributes, payload, lifetime, true)
            .await
    }

    /// Publishes several records with one durable commit and floods them: all are stored or,
    /// when any is refused, none. Returns them, signed, in the order given. For bulk
    /// publishing this is much cheaper than one [`Group::add_record`] per record (one fsync
    /// and one round through the group's task for the lot).
    pub async fn add_records(&self, records: Vec<NewRecord>) -> Result<Vec<Record>> {
        self.check_ready_to_publish()?;
        for r in &records {
            check_not_reserved(r.record_type)?;
        }
        // Signing costs about as much as checking a signature: do it on a blocking thread,
        // not in the group's task (which then only validates, stores and floods).
        let key = self.inner.key.clone();
        let chain = self.chain()?;
        let group = self.inner.group.clone();
        let signed = tokio::task::spawn_blocking(move || {
            let signer = peergroup_record_db::LocalSigner {
                key: &key,
                chain: &chain,
            };
            SignedRecords::sign(&group, signer, records, Timestamp::now())
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("signing records: {e}")))??;
        Ok(self.inner.handle.publish_signed(signed).await?)
    }

    async fn publish(
        &self,
        record_type: RecordType,
        attributes: &str,
        payload: Vec<u8>,
        lifetime: Duration,
        autorefresh: bool,
    ) -> Result<Record> {
        self.check_ready_to_publish()?;
        check_not_reserved(record_type)?;
        let new = NewRecord {
            record_type,
            attributes: attributes.to_owned(),
            payload,
            expires: Timestamp::now().saturating_add(lifetime),
            autorefresh,
        };
        Ok(self.inner.handle.create_record(new).await?)
    }

    /// Updates a record (PeerGroupUpdateRecord): the creator's own, or any record for an admin.
    pub async fn update_record(&self, id: RecordId, update: RecordUpdate) -> Result<Record> {
        Ok(self.inner.handle.update_record(id, update).await?)
    }

    /// Deletes a record (PeerGroupDeleteRecord): a signed tombstone.
    pub async fn delete_record(&self, id: RecordId) -> Result<Record> {
        Ok(self.inner.handle.delete_record(id).await?)
    }

    /// A record by id (PeerGroupGetRecord).
    pub async fn record(&self, id: RecordId) -> Result<Record> {
        self.inner
            .handle
            .record(id)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::RecordNotFound, format!("record {id} not found")))
    }

    /// The live records of a type (PeerGroupEnumRecords).
    pub async fn records(&self, record_type: RecordType) -> Result<Vec<Record>> {
        Ok(self.inner.handle.records(record_type).await?)
    }

    /// Records matching a Windows search query (PeerGroupSearchRecords).
    pub async fn search(&self, query_xml: &str) -> Result<Vec<Record>> {
        Ok(self.inner.handle.search(query_xml.to_owned()).await?)
    }

    /// Exports the database to a file (PeerGroupExportDatabase).
    pub async fn export_database(&self, path: &Path) -> Result<u64> {
        Ok(self.inner.handle.export(path.to_path_buf()).await?)
    }

    // --- Members, properties, time ------------------------------------------------------------

    /// The members (PeerGroupEnumMembers): all, or only those present; the local member first.
    /// In a group with more nodes online than its `max_presence` (default 1,024), "present"
    /// covers the nodes that publish their presence: a sample of about that many, and those
    /// whose application set presence attributes.
    pub async fn members(&self, present_only: bool) -> Result<Vec<Member>> {
        Ok(self.inner.handle.members(present_only).await?)
    }

    /// The group properties (PeerGroupGetProperties).
    pub async fn properties(&self) -> Result<GroupProperties> {
        Ok(self.inner.handle.properties().await?)
    }

    /// Changes the group properties (PeerGroupSetProperties): the creator only. The creator and
    /// the password settings are fixed at creation; changing them is refused.
    pub async fn set_properties(&self, props: GroupProperties) -> Result<Record> {
        let current = self.properties().await?;
        if props.creator != current.creator
            || props.password_auth != current.password_auth
            || props.password_role != current.password_role
        {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "the creator and the password settings cannot be changed",
            ));
        }
        Ok(self.inner.handle.set_properties(props).await?)
    }

    /// Sets the attributes this node publishes with its presence. The node publishes its
    /// presence from then on whatever the group's bound on presences
    /// ([`GroupProperties::max_presence`](crate::GroupProperties::max_presence); Windows'
    /// Force Publish Presence).
    pub async fn set_presence_attributes(&self, attributes: &str) -> Result<()> {
        Ok(self
            .inner
            .handle
            .set_presence_attributes(attributes.to_owned())
            .await?)
    }

    /// Local UTC → the group's peer time (PeerGroupUniversalTimeToPeerTime).
    pub async fn to_peer_time(&self, utc: Timestamp) -> Result<Timestamp> {
        Ok(self.inner.handle.peer_time().await?.to_peer(utc))
    }

    /// The group's peer time → local UTC (PeerGroupPeerTimeToUniversalTime).
    pub async fn from_peer_time(&self, peer_time: Timestamp) -> Result<Timestamp> {
        Ok(self.inner.handle.peer_time().await?.to_local(peer_time))
    }

    /// How far the syncs running now have got: records received and expected. Use it for a
    /// progress display while a member catches up with a large group (see
    /// [`Status::synchronized`]).
    pub async fn sync_progress(&self) -> Result<SyncProgress> {
        Ok(self.inner.handle.sync_progress().await?)
    }

    /// The group's counters since it was opened: floods sent and received, deliveries by
    /// flood and by sync, syncs, refusals, hole punches and relays (what `peergroup run
    /// --metrics` serves).
    pub async fn stats(&self) -> Result<GroupStats> {
        Ok(self.inner.handle.stats().await?)
    }

    /// A digest of the database (equal on converged replicas) and its record count.
    pub async fn digest(&self) -> Result<([u8; 32], usize)> {
        Ok(self.inner.handle.digest().await?)
    }

    // --- Invitations, credentials, revocation ------------------------------------------------

    /// The addresses an invitation carries: where we listen and members saw us, then the
    /// members we reached at their listen addresses (a newcomer behind a NAT joins through
    /// them; see [`GroupHandle::bootstrap_addrs`](peergroup_membership::driver::GroupHandle::bootstrap_addrs)), then
    /// the endpoint's own addresses if the mesh has not published them yet.
    async fn my_addresses(&self) -> Vec<SocketAddr> {
        let max = peergroup_invitation_xml::MAX_ADDRESSES;
        let mut addrs = self
            .inner
            .handle
            .bootstrap_addrs(max)
            .await
            .unwrap_or_default();
        let local = self
            .inner
            .host
            .endpoint
            .as_ref()
            .map(|e| peergroup_membership::driver::publishable_addrs(e.local_addrs()))
            .unwrap_or_default();
        for a in local {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        addrs.truncate(max);
        addrs
    }

    fn validated(&self) -> Result<peergroup_credential_roles::ValidatedChain> {
        let chain = self.chain()?;
        Ok(chain.validate(
            &self.inner.group,
            Timestamp::now(),
            &self.inner.trust.revocations(),
            Some(&self.inner.key.public()),
        )?)
    }

    /// Invites the identity described by `identity_info_xml` (its PEERIDENTITYINFO) with
    /// `role`, valid for `lifetime` (PeerGroupCreateInvitation). Refused unless this member
    /// may grant that role. Returns the PEERINVITATION.
    pub async fn create_invitation(
        &self,
        identity_info_xml: &str,
        role: Role,
        lifetime: Duration,
    ) -> Result<String> {
        let info = IdentityInfo::parse(identity_info_xml)?;
        authorize(&self.validated()?, Action::Invite(role))?;
        let chain = self.issue_to(
            *info.certificate.public_key(),
            info.peer_name().clone(),
            info.friendly_name().to_owned(),
            Roles::one(role),
            Timestamp::now(),
            lifetime,
        )?;
        let invitation = Invitation::new_certificate(
            chain,
            Cloud::global(),
            Addresses::new(self.my_addresses().await)?,
        )?;
        Ok(invitation.to_xml())
    }

    fn issue_to(
        &self,
        subject_key: peergroup_identity::PublicKey,
        subject_peer: PeerName,
        subject_friendly_name: String,
        roles: Roles,
        not_before: Timestamp,
        lifetime: Duration,
    ) -> Result<CertChain> {
        let chain = self.chain()?;
        Ok(chain.issue(
            &self.inner.key,
            &MemberRequest {
                subject_key,
                subject_peer,
                subject_friendly_name,
                roles,
                classifiers: vec![],
                not_before,
                not_after: not_before.saturating_add(lifetime),
            },
        )?)
    }

    /// A password invitation (PeerGroupCreatePasswordInvitation): the group's names and member
    /// addresses, no secret. Refused for a group without a password.
    ///
    /// A member whose stored password secret is from an earlier version (SPAKE2's, which
    /// cannot be converted) gets [`ErrorKind::PasswordNotRegistered`]: its invitation would
    /// send joiners to a member that cannot take their joins. [`Group::set_password`] fixes it.
    pub async fn create_password_invitation(&self) -> Result<String> {
        let props = self.properties().await?;
        if !props.password_auth {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "this group has no password",
            ));
        }
        let stored = self
            .inner
            .membership
            .lock()
            .map_err(|_| Error::new(ErrorKind::Io, "lock poisoned"))?
            .password
            .clone();
        if let Some(stored) = stored {
            crate::password::decode_record(&stored)?;
        }
        let invitation = Invitation::new_password(
            self.inner.group.clone(),
            FriendlyName::new(&props.friendly_name)?,
            Cloud::global(),
            Addresses::new(self.my_addresses().await)?,
        );
        Ok(invitation.to_xml())
    }

    /// Gives this member the group password (admins and inviting members of a password
    /// group): registers it (OPAQUE, one Argon2id evaluation at the infrastructure's cost),
    /// replaces the record in the member's credentials file, and takes password joins with it
    /// at once when connected. The password itself is not stored. This is how a member whose
    /// record an earlier version stored ([`ErrorKind::PasswordNotRegistered`]) takes joins
    /// again; it does not change the password other members hold (each registers its own).
    pub async fn set_password(&self, password: &[u8]) -> Result<()> {
        self.check_open()?;
        if password.is_empty() {
            return Err(Error::new(ErrorKind::InvalidArgument, "an empty password"));
        }
        if !self.properties().await?.password_auth {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "this group has no password",
            ));
        }
        if !self.chain()?.leaf().roles().is_issuer() {
            return Err(Error::new(
                ErrorKind::NotAuthorized,
                "only admins and inviting members take password joins",
            ));
        }
        let (password, group, kdf) = (
            zeroize::Zeroizing::new(password.to_vec()),
            self.inner.group.clone(),
            self.inner.host.config.kdf,
        );
        let record =
            tokio::task::spawn_blocking(move || crate::password::register(&password, &group, kdf))
                .await
                .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))??;
        {
            let mut m = self
                .inner
                .membership
                .lock()
                .map_err(|_| Error::new(ErrorKind::Io, "lock poisoned"))?;
            let old = m.password.replace(record);
            if let Err(e) = storage::save(&self.inner.host.identities, &m, true) {
                m.password = old;
                return Err(e);
            }
        }
        if self.inner.connected.load(Ordering::SeqCst) {
            self.install_join_policy().await?;
        }
        Ok(())
    }

    /// Issues new credentials to a member (PeerGroupIssueCredentials): admins only. `roles`
    /// defaults to its current roles, `lifetime` to the length of its current certificate.
    /// With `store`, the certificate is published in the group database and the member picks it
    /// up when it next connects. Returns a PEERINVITATION carrying the new chain.
    pub async fn issue_credentials(
        &self,
        subject: &PeerName,
        roles: Option<Roles>,
        lifetime: Option<Duration>,
        store: bool,
    ) -> Result<String> {
        let valid = self.validated()?;
        let current = self.member_chain(subject).await?;
        let roles = roles.unwrap_or_else(|| current.leaf().roles());
        for role in roles.iter() {
            authorize(&valid, Action::IssueCredentials(role))?;
        }
        let leaf = current.leaf();
        let lifetime =
            lifetime.unwrap_or_else(|| leaf.not_after().duration_since(leaf.not_before()));
        // A renewal starts after the current certificate did (Windows required it).
        let not_before =
            Timestamp::now().max(leaf.not_before().saturating_add(Duration::from_secs(1)));
        let chain = self.issue_to(
            *leaf.public_key(),
            leaf.subject_peer().clone(),
            leaf.subject_friendly_name().to_owned(),
            roles,
            not_before,
            lifetime,
        )?;
        if store {
            self.inner.handle.publish_credentials(chain.clone()).await?;
        }
        let invitation = Invitation::new_certificate(
            chain,
            Cloud::global(),
            Addresses::new(self.my_addresses().await)?,
        )?;
        Ok(invitation.to_xml())
    }

    /// The newest certificate chain the group database holds for `peer`.
    async fn member_chain(&self, peer: &PeerName) -> Result<CertChain> {
        let mut best: Option<CertChain> = None;
        for r in self.records_reserved(RecordType::MEMBERSHIP).await? {
            if let Ok(chain) = MembershipPayload::chain_from_payload(&r.payload)
                && chain.leaf().subject_peer() == peer
                && best
                    .as_ref()
                    .is_none_or(|b| chain.leaf().not_before() > b.leaf().not_before())
            {
                best = Some(chain);
            }
        }
        best.ok_or_else(|| {
            Error::new(
                ErrorKind::IdentityNotFound,
                format!("no certificate of {peer} is known in this group"),
            )
        })
    }

    async fn records_reserved(&self, t: RecordType) -> Result<Vec<Record>> {
        Ok(self.inner.handle.records(t).await?)
    }

    /// Adopts renewed credentials an admin stored for us, if any.
    async fn pick_up_credentials(&self) -> Result<()> {
        let current = self.chain()?;
        let mine = match self.member_chain(&self.inner.identity).await {
            Ok(c) => c,
            Err(_) => return Ok(()),
        };
        let newer = mine.leaf().not_before() > current.leaf().not_before()
            && mine.leaf().public_key() == &self.inner.key.public();
        if !newer {
            return Ok(());
        }
        // A renewal starts a second after the certificate it replaces (see
        // `issue_credentials`): one issued moments ago may not be valid yet. Wait for it
        // rather than connect with the old one and leave it for the next connect.
        let starts = mine.leaf().not_before();
        let now = Timestamp::now();
        if starts > now && starts.duration_since(now) <= RENEWAL_START_WAIT {
            tokio::time::sleep(starts.duration_since(now) + Duration::from_millis(10)).await;
        }
        if mine
            .validate(
                &self.inner.group,
                Timestamp::now(),
                &RevocationSet::new(),
                Some(&self.inner.key.public()),
            )
            .is_err()
        {
            return Ok(());
        }
        self.inner.handle.set_credentials(mine.clone()).await?;
        let mut m = self
            .inner
            .membership
            .lock()
            .map_err(|_| Error::new(ErrorKind::Io, "lock poisoned"))?;
        m.chain = mine;
        storage::save(&self.inner.host.identities, &m, true)?;
        Ok(())
    }

    /// Revokes a member (all its certificates) or one certificate: admins only. Every member
    /// refuses it at the handshake from then on, rejects its new records (records it made
    /// before stay), and closes live connections to it.
    pub async fn revoke(&self, target: RevocationTarget, reason: &str) -> Result<Record> {
        authorize(&self.validated()?, Action::Revoke)?;
        Ok(self.inner.handle.revoke(target, reason.to_owned()).await?)
    }

    /// Established neighbor connections (PeerGroupEnumConnections with the neighbor flag).
    pub async fn neighbor_connections(&self) -> Result<Vec<crate::ConnectionInfo>> {
        Ok(self
            .inner
            .handle
            .neighbors()
            .await?
            .into_iter()
            .map(|(c, peer, addr)| crate::ConnectionInfo {
                id: ConnectionId(c.0),
                peer,
                addr,
                direct: false,
            })
            .collect())
    }
}

/// What the forwarder reads from the driver: an event, or how many it missed.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "handed straight on, never stored: boxing would allocate once per event"
)]
enum Forwarded {
    Event(Event),
    Missed(u64),
}

/// Maps the driver's events to group events until the group is gone. Once told the driver
/// has stopped (`close`), forwards what is left and marks the group closed, which ends the
/// event streams.
async fn forward_events(
    group: std::sync::Weak<GroupInner>,
    rx: broadcast::Receiver<Event>,
    stopped: Arc<tokio::sync::Notify>,
) {
    if !forward_loop(rx, stopped, |f| forward(&group, f)).await {
        // The group is gone (dropped without `close`): so are its streams.
        return;
    }
    if let Some(g) = group.upgrade() {
        g.events.close();
        g.closed.send_replace(true);
    }
}

/// Hands `sink` every driver event, and every count of events lost when the forwarder fell
/// behind the driver's channel, until the driver stops. True when it stopped; false as soon
/// as `sink` says the group is gone.
async fn forward_loop(
    mut rx: broadcast::Receiver<Event>,
    stopped: Arc<tokio::sync::Notify>,
    mut sink: impl FnMut(Forwarded) -> bool,
) -> bool {
    loop {
        let next = tokio::select! {
            biased;
            r = rx.recv() => match r {
                Ok(e) => Forwarded::Event(e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "group event forwarder lagged");
                    Forwarded::Missed(n)
                }
                Err(broadcast::error::RecvError::Closed) => return true,
            },
            () = stopped.notified() => return drain(&mut rx, &mut sink),
        };
        if !sink(next) {
            return false;
        }
    }
}

/// Hands `sink` what the driver's channel holds now, lost counts included. False as soon as
/// `sink` says the group is gone.
fn drain(rx: &mut broadcast::Receiver<Event>, sink: &mut impl FnMut(Forwarded) -> bool) -> bool {
    loop {
        let next = match rx.try_recv() {
            Ok(e) => Forwarded::Event(e),
            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "group event forwarder lagged");
                Forwarded::Missed(n)
            }
            Err(_) => return true,
        };
        if !sink(next) {
            return false;
        }
    }
}

/// Forwards one driver event as group events; false when the group is gone.
fn forward(group: &std::sync::Weak<GroupInner>, f: Forwarded) -> bool {
    let Some(g) = group.upgrade() else {
        return false;
    };
    let e = match f {
        Forwarded::Event(e) => e,
        Forwarded::Missed(n) => {
            g.events.lagged(n);
            return true;
        }
    };
    let send = |ev: GroupEvent| {
        g.events.send(ev);
    };
    match e {
        Event::Record(change) => {
            if change.record.record_type == RecordType::GROUP_PROPERTIES
                && !change.record.is_deleted()
                && let Ok(p) = GroupProperties::from_payload(&change.record.payload)
            {
                send(GroupEvent::PropertyChanged(Box::new(p)));
            }
            send(GroupEvent::RecordChanged {
                change: change.kind,
                record: Box::new(change.record),
            });
        }
        Event::Member { peer, change } => send(GroupEvent::MemberChanged { peer, change }),
        Event::Status(s) => send(GroupEvent::StatusChanged(visible_status(
            s,
            g.connected.load(Ordering::SeqCst),
        ))),
        Event::Neighbor {
            conn,
            peer,
            addr,
            change,
        } => {
            let change = match change {
                peergroup_membership::NeighborChange::Connected => ConnectionChange::Connected,
                peergroup_membership::NeighborChange::Disconnected(why) => {
                    ConnectionChange::Disconnected(why.to_string())
                }
            };
            send(GroupEvent::NeighborConnection {
                id: ConnectionId(conn.0),
                peer: Some(peer),
                addr: Some(addr),
                change,
            });
        }
        Event::ConnectFailed { addr, reason } => send(GroupEvent::ConnectionFailed {
            addr: Some(addr),
            reason,
        }),
        Event::Synced { .. } => {}
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use super::*;

    fn failed(i: u16) -> Event {
        Event::ConnectFailed {
            addr: SocketAddr::from(([127, 0, 0, 1], i)),
            reason: format!("attempt {i}"),
        }
    }

    fn port(f: &Forwarded) -> Option<u16> {
        match f {
            Forwarded::Event(Event::ConnectFailed { addr, .. }) => Some(addr.port()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_forwarder_behind_the_driver_reports_what_it_missed() {
        let (tx, rx) = broadcast::channel(4);
        for i in 0..10 {
            tx.send(failed(i)).unwrap();
        }
        let stopped = Arc::new(tokio::sync::Notify::new());
        stopped.notify_one();
        let mut seen = Vec::new();
        assert!(
            forward_loop(rx, stopped, |f| {
                seen.push(f);
                true
            })
            .await
        );
        assert!(matches!(seen[0], Forwarded::Missed(6)), "{seen:?}");
        let ports: Vec<_> = seen[1..].iter().map(port).collect();
        assert_eq!(ports, [6, 7, 8, 9].map(Some));
    }

    #[test]
    fn draining_after_the_stop_reports_what_it_missed_too() {
        let (tx, mut rx) = broadcast::channel(2);
        for i in 0..5 {
            tx.send(failed(i)).unwrap();
        }
        let mut seen = Vec::new();
        assert!(drain(&mut rx, &mut |f| {
            seen.push(f);
            true
        }));
        assert!(matches!(seen[0], Forwarded::Missed(3)), "{seen:?}");
        assert_eq!(seen.len(), 3);
        // A gone group stops it at once.
        tx.send(failed(9)).unwrap();
        tx.send(failed(10)).unwrap();
        let mut calls = 0;
        assert!(!drain(&mut rx, &mut |_| {
            calls += 1;
            false
        }));
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn lost_driver_events_reach_every_subscriber_as_lagged() {
        let hub = Arc::new(Hub::default());
        let (closed_tx, _) = tokio::sync::watch::channel(false);
        let mut records = EventStream::new(
            hub.clone(),
            closed_tx.subscribe(),
            EventFilter::kinds([crate::EventKind::RecordChanged]),
        );
        let mut failures = EventStream::new(
            hub.clone(),
            closed_tx.subscribe(),
            EventFilter::kinds([crate::EventKind::ConnectionFailed]),
        );
        let (tx, rx) = broadcast::channel(4);
        for i in 0..10 {
            tx.send(failed(i)).unwrap();
        }
        let stopped = Arc::new(tokio::sync::Notify::new());
        stopped.notify_one();
        forward_loop(rx, stopped, |f| {
            match f {
                Forwarded::Missed(n) => hub.lagged(n),
                Forwarded::Event(Event::ConnectFailed { addr, reason }) => {
                    hub.send(GroupEvent::ConnectionFailed {
                        addr: Some(addr),
                        reason,
                    });
                }
                Forwarded::Event(other) => panic!("{other:?}"),
            }
            true
        })
        .await;
        closed_tx.send_replace(true);
        assert_eq!(records.next().await, Some(GroupEvent::Lagged { missed: 6 }));
        assert_eq!(records.next().await, None);
        assert_eq!(
            failures.next().await,
            Some(GroupEvent::Lagged { missed: 6 })
        );
        for i in 6..10 {
            assert!(
                matches!(failures.next().await, Some(GroupEvent::ConnectionFailed { addr: Some(a), .. }) if a.port() == i)
            );
        }
        assert_eq!(failures.next().await, None);
    }
}
