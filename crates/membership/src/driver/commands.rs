//! The application's side of a running group: commands to the driver task and their replies.

use std::net::SocketAddr;
use std::path::PathBuf;

use peergroup_credential_roles::{CertChain, RevocationTarget};
use peergroup_identity::PeerName;
use peergroup_record_db::reserved::GroupProperties;
use peergroup_record_db::store::Store;
use peergroup_record_db::{NewRecord, Record, RecordId, RecordType, RecordUpdate, SignedRecords};
use peergroup_transport::Connection;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::{Driver, Input};
use crate::Error;
use crate::core::{ConnId, Event, Member, Status};
use crate::peer_time::PeerTime;
use crate::stats::{Stats, SyncProgress};

type Reply<T> = oneshot::Sender<T>;

/// A request to the driver task.
#[non_exhaustive]
pub enum Command {
    /// Publish a record.
    Create(NewRecord, Reply<Result<Record, Error>>),
    /// Publish records signed here, in one commit, all or none.
    PublishSigned(SignedRecords, Reply<Result<Vec<Record>, Error>>),
    /// Update a record.
    Update(RecordId, RecordUpdate, Reply<Result<Record, Error>>),
    /// Delete a record.
    Delete(RecordId, Reply<Result<Record, Error>>),
    /// Read a record.
    Get(RecordId, Reply<Result<Option<Record>, Error>>),
    /// Records of a type.
    OfType(RecordType, Reply<Result<Vec<Record>, Error>>),
    /// Search.
    Search(String, Reply<Result<Vec<Record>, Error>>),
    /// The member list.
    Members(bool, Reply<Vec<Member>>),
    /// Established neighbors.
    Neighbors(Reply<Vec<(ConnId, PeerName, SocketAddr)>>),
    /// Addresses for a newcomer, at most this many.
    BootstrapAddrs(usize, Reply<Vec<SocketAddr>>),
    /// Dial these addresses now.
    Connect(Vec<SocketAddr>),
    /// Add candidate addresses.
    AddCandidates(Vec<SocketAddr>),
    /// Change the properties.
    SetProperties(GroupProperties, Reply<Result<Record, Error>>),
    /// Read the properties.
    Properties(Reply<GroupProperties>),
    /// Revoke.
    Revoke(RevocationTarget, String, Reply<Result<Record, Error>>),
    /// Publish another member's credentials.
    PublishCredentials(CertChain, Reply<Result<Option<Record>, Error>>),
    /// Replace our own credentials.
    SetCredentials(CertChain, Reply<Result<(), Error>>),
    /// Set presence attributes.
    SetPresenceAttributes(String, Reply<Result<(), Error>>),
    /// Punch a hole to a member through a common neighbor.
    Punch(PeerName, Reply<Result<u64, Error>>),
    /// Open a link to a member through a neighbor that relays it.
    Relay(PeerName, Reply<Result<crate::core::CircuitId, Error>>),
    /// Counters.
    Stats(Reply<Stats>),
    /// Progress of the running syncs.
    SyncProgress(Reply<SyncProgress>),
    /// Database digest and record count.
    Digest(Reply<([u8; 32], usize)>),
    /// The peer-time clock.
    PeerTime(Reply<PeerTime>),
    /// Export the database to a file.
    Export(PathBuf, Reply<Result<u64, Error>>),
    /// Go online: listen through this endpoint (if any) and dial these addresses.
    GoOnline(
        Option<std::sync::Arc<peergroup_transport::Endpoint>>,
        Vec<SocketAddr>,
        Reply<()>,
    ),
    /// Publish a record that arrived out of band (used by tests and tools).
    Apply(Vec<Record>, Reply<Result<usize, Error>>),
    /// Leave the group and stop.
    Close(Reply<()>),
}

/// A running group, as the application holds it. Cheap to clone; every clone talks to the
/// same driver task.
#[derive(Clone)]
pub struct GroupHandle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    status: watch::Receiver<Status>,
    inputs: mpsc::Sender<Input>,
    group: PeerName,
}

impl std::fmt::Debug for GroupHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupHandle")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

macro_rules! ask {
    ($self:ident, $variant:ident $(, $arg:expr)*) => {{
        let (tx, rx) = oneshot::channel();
        $self.commands.send(Command::$variant($($arg,)* tx)).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }};
}

impl GroupHandle {
    pub(super) fn new(
        commands: mpsc::Sender<Command>,
        events: broadcast::Sender<Event>,
        status: watch::Receiver<Status>,
        inputs: mpsc::Sender<Input>,
        group: PeerName,
    ) -> Self {
        GroupHandle {
            commands,
            events,
            status,
            inputs,
            group,
        }
    }

    /// The group.
    pub fn group(&self) -> &PeerName {
        &self.group
    }

    /// Events from now on. A subscriber that falls behind gets `Lagged(n)` from the channel
    /// and continues; it never slows the group down.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The current status.
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// A watch on the status.
    pub fn status_watch(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Hands over a connection the endpoint accepted for this group, with its first frame if
    /// a router already read it.
    pub fn incoming(&self, conn: Connection, first: Option<bytes::Bytes>) {
        if let Err(e) = self.inputs.try_send(Input::Incoming(conn, first))
            && let mpsc::error::TrySendError::Full(Input::Incoming(c, _))
            | mpsc::error::TrySendError::Closed(Input::Incoming(c, _)) = e
        {
            c.close("busy");
        }
    }

    /// Publishes a record.
    pub async fn create_record(&self, new: NewRecord) -> Result<Record, Error> {
        ask!(self, Create, new)?
    }

    /// Publishes records signed with this member's key ([`SignedRecords::sign`], which can
    /// run on the caller's threads) with one durable commit: all are stored and flooded or,
    /// when any is refused, none. Returns them in the order they were signed.
    pub async fn publish_signed(&self, batch: SignedRecords) -> Result<Vec<Record>, Error> {
        ask!(self, PublishSigned, batch)?
    }

    /// Updates a record.
    pub async fn update_record(&self, id: RecordId, update: RecordUpdate) -> Result<Record, Error> {
        ask!(self, Update, id, update)?
    }

    /// Deletes a record.
    pub async fn delete_record(&self, id: RecordId) -> Result<Record, Error> {
        ask!(self, Delete, id)?
    }

    /// A live record.
    pub async fn record(&self, id: RecordId) -> Result<Option<Record>, Error> {
        ask!(self, Get, id)?
    }

    /// Live records of a type.
    pub async fn records(&self, record_type: RecordType) -> Result<Vec<Record>, Error> {
        ask!(self, OfType, record_type)?
    }

    /// Live records matching a search query.
    pub async fn search(&self, query: String) -> Result<Vec<Record>, Error> {
        ask!(self, Search, query)?
    }

    /// The members (optionally only those present), the local member first.
    pub async fn members(&self, present_only: bool) -> Result<Vec<Member>, Error> {
        ask!(self, Members, present_only)
    }

    /// Established neighbor connections.
    pub async fn neighbors(&self) -> Result<Vec<(ConnId, PeerName, SocketAddr)>, Error> {
        ask!(self, Neighbors)
    }

    /// The addresses to give a newcomer (an invitation's), at most `max`: ours as the
    /// presence publishes them, then members we reached at their listen addresses (see
    /// [`Core::bootstrap_addrs`](crate::Core::bootstrap_addrs)).
    pub async fn bootstrap_addrs(&self, max: usize) -> Result<Vec<SocketAddr>, Error> {
        ask!(self, BootstrapAddrs, max)
    }

    /// Dials these addresses now.
    pub async fn connect(&self, addrs: Vec<SocketAddr>) -> Result<(), Error> {
        self.commands
            .send(Command::Connect(addrs))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Remembers addresses that may reach members.
    pub async fn add_candidates(&self, addrs: Vec<SocketAddr>) -> Result<(), Error> {
        self.commands
            .send(Command::AddCandidates(addrs))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Changes the group properties (the creator only).
    pub async fn set_properties(&self, props: GroupProperties) -> Result<Record, Error> {
        ask!(self, SetProperties, props)?
    }

    /// The group properties.
    pub async fn properties(&self) -> Result<GroupProperties, Error> {
        ask!(self, Properties)
    }

    /// Revokes a member or certificate (admins only).
    pub async fn revoke(&self, target: RevocationTarget, reason: String) -> Result<Record, Error> {
        ask!(self, Revoke, target, reason)?
    }

    /// Publishes a member's new credentials in the database.
    pub async fn publish_credentials(&self, chain: CertChain) -> Result<Option<Record>, Error> {
        ask!(self, PublishCredentials, chain)?
    }

    /// Replaces this member's own credentials.
    pub async fn set_credentials(&self, chain: CertChain) -> Result<(), Error> {
        ask!(self, SetCredentials, chain)?
    }

    /// Sets the attributes published in this node's presence.
    pub async fn set_presence_attributes(&self, attributes: String) -> Result<(), Error> {
        ask!(self, SetPresenceAttributes, attributes)?
    }

    /// Punches a hole to member `peer` through a neighbor both have: candidate addresses are
    /// exchanged through it, then both dial each other at once over QUIC (see the mesh's
    /// `core/punch.rs`). Returns the attempt's id; the link, when it forms, shows as a
    /// neighbor.
    pub async fn punch(&self, peer: PeerName) -> Result<u64, Error> {
        ask!(self, Punch, peer)?
    }

    /// Opens a link to member `peer` that a neighbor of both relays: the member TLS
    /// handshake runs end to end inside the relayed stream, so the relay carries ciphertext
    /// only (see the mesh's `core/relay.rs`). The link, when it forms, shows as a neighbor
    /// at the relay's address; a direct link to the same member later replaces it. Members
    /// open one by themselves when punching to a member failed.
    pub async fn relay(&self, peer: PeerName) -> Result<crate::core::CircuitId, Error> {
        ask!(self, Relay, peer)?
    }

    /// Flooding and sync counters.
    pub async fn stats(&self) -> Result<Stats, Error> {
        ask!(self, Stats)
    }

    /// How far the syncs running now have got.
    pub async fn sync_progress(&self) -> Result<SyncProgress, Error> {
        ask!(self, SyncProgress)
    }

    /// The database digest (equal on converged replicas) and record count. It sorts every
    /// record's key on the group's task (~0.1 s for a million records): to wait for records
    /// to arrive, poll [`GroupHandle::stats`]'s delivery counters and take the digest once.
    pub async fn digest(&self) -> Result<([u8; 32], usize), Error> {
        ask!(self, Digest)
    }

    /// The peer-time clock.
    pub async fn peer_time(&self) -> Result<PeerTime, Error> {
        ask!(self, PeerTime)
    }

    /// Exports the database to `path`.
    pub async fn export(&self, path: PathBuf) -> Result<u64, Error> {
        ask!(self, Export, path)?
    }

    /// Goes online: listens through `endpoint` (publishing its addresses) and dials `addrs`
    /// and the members it knows.
    pub async fn go_online(
        &self,
        endpoint: Option<std::sync::Arc<peergroup_transport::Endpoint>>,
        addrs: Vec<SocketAddr>,
    ) -> Result<(), Error> {
        ask!(self, GoOnline, endpoint, addrs)
    }

    /// Validates and stores records received out of band (an import, say); returns how many
    /// were accepted.
    pub async fn apply(&self, records: Vec<Record>) -> Result<usize, Error> {
        ask!(self, Apply, records)?
    }

    /// Leaves the group: deletes presence, says goodbye, persists, stops the driver.
    pub async fn close(&self) -> Result<(), Error> {
        ask!(self, Close)
    }
}

impl<S: Store + 'static> Driver<S> {
    /// Carries out `first` and, when it publishes a record, the `create_record` calls queued
    /// right behind it (up to [`GROUP_COMMIT_MAX`](super::GROUP_COMMIT_MAX)) with one durable
    /// commit; the command that ends the run follows in its turn, so commands keep their
    /// order. Returns true when the driver should stop.
    pub(super) fn commands(&mut self, first: Command, queue: &mut mpsc::Receiver<Command>) -> bool {
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            let stop = match cmd {
                Command::Create(new, reply) => {
                    let mut batch = vec![(new, reply)];
                    while batch.len() < super::GROUP_COMMIT_MAX {
                        match queue.try_recv() {
                            Ok(Command::Create(n, r)) => batch.push((n, r)),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    super::heavy(|| {
                        self.create_batch(batch);
                        self.settle();
                    });
                    false
                }
                cmd if super::is_quick(&cmd) => {
                    let stop = self.command(cmd);
                    self.settle();
                    stop
                }
                cmd => super::heavy(|| {
                    let stop = self.command(cmd);
                    self.settle();
                    stop
                }),
            };
            if stop {
                return true;
            }
        }
        false
    }

    /// Publishes records with one durable commit, answering each caller on its own.
    fn create_batch(&mut self, batch: Vec<(NewRecord, Reply<Result<Record, Error>>)>) {
        let now = self.now();
        let (news, replies): (Vec<NewRecord>, Vec<_>) = batch.into_iter().unzip();
        let answers = self.core.create_records(news, now);
        for (answer, reply) in answers.into_iter().zip(replies) {
            let _ = reply.send(answer);
        }
    }

    /// Carries out a command; returns true when the driver should stop.
    pub(super) fn command(&mut self, cmd: Command) -> bool {
        let now = self.now();
        let core = &mut self.core;
        match cmd {
            Command::Create(new, r) => drop(r.send(core.create_record(new, now))),
            Command::PublishSigned(batch, r) => drop(r.send(core.publish_signed(batch, now))),
            Command::Update(id, u, r) => drop(r.send(core.update_record(id, u, now))),
            Command::Delete(id, r) => drop(r.send(core.delete_record(id, now))),
            Command::Get(id, r) => drop(r.send(core.db().get(id).map_err(Error::from))),
            Command::OfType(t, r) => {
                drop(r.send(core.db().records_of_type(t).map_err(Error::from)))
            }
            Command::Search(q, r) => drop(r.send(core.db().search(&q).map_err(Error::from))),
            Command::Members(p, r) => drop(r.send(core.members(p))),
            Command::Neighbors(r) => drop(r.send(core.neighbors())),
            Command::BootstrapAddrs(max, r) => drop(r.send(core.bootstrap_addrs(max))),
            Command::Connect(addrs) => {
                for a in addrs {
                    core.connect_to(a, now);
                }
            }
            Command::AddCandidates(addrs) => core.add_candidates(&addrs),
            Command::SetProperties(p, r) => drop(r.send(core.set_properties(&p, now))),
            Command::Properties(r) => drop(r.send(core.db().properties())),
            Command::Revoke(t, why, r) => {
                let result = core.revoke(t.clone(), &why, now);
                if result.is_ok() {
                    self.config.trust.revoke(t, now.wall);
                }
                drop(r.send(result));
            }
            Command::PublishCredentials(c, r) => drop(r.send(core.publish_credentials(&c, now))),
            Command::SetCredentials(c, r) => drop(r.send(core.set_credentials(c, now))),
            Command::SetPresenceAttributes(a, r) => {
                drop(r.send(core.set_presence_attributes(&a, now)))
            }
            Command::Punch(p, r) => drop(r.send(core.punch(&p, now))),
            Command::Relay(p, r) => drop(r.send(core.relay(&p, None))),
            Command::Stats(r) => drop(r.send(core.stats().clone())),
            Command::SyncProgress(r) => drop(r.send(core.sync_progress())),
            Command::Digest(r) => drop(r.send((core.db().digest(), core.db().len()))),
            Command::PeerTime(r) => drop(r.send(core.peer_time())),
            Command::Export(p, r) => drop(r.send(core.db().export(&p).map_err(Error::from))),
            Command::GoOnline(endpoint, addrs, r) => {
                if let Some(ep) = endpoint {
                    self.watch_mapped(&ep);
                    self.config.endpoint = Some(ep);
                    self.publish_listen_addrs();
                }
                let core = &mut self.core;
                core.set_online(true, now);
                for a in addrs {
                    core.connect_to(a, now);
                }
                let _ = r.send(());
            }
            Command::Apply(records, r) => {
                let result = core.apply_records(records, now);
                let _ = r.send(result);
            }
            Command::Close(r) => {
                // Answered when the driver has flushed and stopped (see `Driver::run`).
                self.close_reply = Some(r);
                return true;
            }
        }
        false
    }
}
