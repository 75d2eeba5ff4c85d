//! The member list: membership records (who belongs) plus presence records (who is online),
//! and the member events derived from their changes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use peergroup_credential_roles::{CertChain, Roles};
use peergroup_identity::PeerName;
use peergroup_record_db::reserved::MembershipPayload;
use peergroup_record_db::store::Store;
use peergroup_record_db::{Change, ChangeKind, Database, RecordType};

use super::{ConnId, Core, Event, LocalMember};
use crate::message::{MeshMessage, NodeId};
use crate::presence::Presence;
use crate::time::Now;

/// What happened to a member (the Windows PEER_MEMBER_CHANGE_TYPE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Came online (its first presence appeared).
    Connected,
    /// Went offline (its last presence went away).
    Disconnected,
    /// Its presence or credentials changed.
    Updated,
    /// Became a member (its first membership record arrived).
    Joined,
    /// Is no longer a member (revoked, or its membership withdrawn).
    Left,
}

/// A member as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's identity.
    pub peer: PeerName,
    /// Its friendly name (from its certificate).
    pub friendly_name: String,
    /// Its roles.
    pub roles: Roles,
    /// Whether it is online.
    pub present: bool,
    /// Its online nodes with their addresses.
    pub nodes: Vec<(NodeId, Vec<SocketAddr>)>,
    /// Presence attributes of its most recent node.
    pub attributes: String,
    /// Whether it is the local member.
    pub local: bool,
    /// Whether it has been revoked.
    pub revoked: bool,
}

#[derive(Clone, Debug, Default)]
struct Entry {
    friendly_name: String,
    roles: Roles,
    members: BTreeSet<peergroup_record_db::RecordId>,
    presence: BTreeMap<NodeId, Presence>,
}

/// Members by peer name.
///
/// A node's presence record says it is online until the record expires (minutes). A node
/// that was our neighbor and whose connection broke without a goodbye (killed, crashed, cut
/// off) is *lost*: its presence no longer counts here, so its member shows as gone at once,
/// until the node is our neighbor again or publishes a newer presence. (Members that were not
/// our neighbors still learn it only when the presence expires.)
#[derive(Clone, Debug, Default)]
pub(crate) struct MemberView {
    entries: BTreeMap<PeerName, Entry>,
    /// Nodes lost (see above).
    lost: BTreeSet<NodeId>,
}

impl Entry {
    /// The nodes that count as online: those with a presence record that are not lost.
    fn online<'a>(
        &'a self,
        lost: &'a BTreeSet<NodeId>,
    ) -> impl Iterator<Item = (&'a NodeId, &'a Presence)> {
        self.presence.iter().filter(|(n, _)| !lost.contains(n))
    }
}

impl MemberView {
    pub(crate) fn rebuild<S: Store>(
        &mut self,
        db: &Database<S>,
        me: &LocalMember,
    ) -> Result<(), peergroup_record_db::Error> {
        self.entries.clear();
        self.lost.clear();
        self.note_chain(&me.chain, None);
        for r in db.records_of_type(RecordType::MEMBERSHIP)? {
            if let Ok(chain) = MembershipPayload::chain_from_payload(&r.payload) {
                self.note_chain(&chain, Some(r.id));
            }
        }
        for r in db.records_of_type(RecordType::PRESENCE)? {
            if let Some(p) = Presence::of(&r) {
                self.entries
                    .entry(r.creator.clone())
                    .or_default()
                    .presence
                    .insert(p.node, p);
            }
        }
        Ok(())
    }

    /// Records a chain; returns whether the member is new.
    fn note_chain(
        &mut self,
        chain: &CertChain,
        record: Option<peergroup_record_db::RecordId>,
    ) -> bool {
        let leaf = chain.leaf();
        let entry = self.entries.entry(leaf.subject_peer().clone()).or_default();
        let new = entry.members.is_empty() && entry.friendly_name.is_empty();
        entry.friendly_name = leaf.subject_friendly_name().to_owned();
        entry.roles = leaf.roles();
        if let Some(id) = record {
            entry.members.insert(id);
        }
        new
    }

    /// Updates the view for a database change; returns the member events it causes.
    pub(crate) fn on_change<S: Store>(
        &mut self,
        change: &Change,
        db: &Database<S>,
    ) -> Vec<(PeerName, MemberChange)> {
        let r = &change.record;
        let mut out = Vec::new();
        match r.record_type {
            RecordType::PRESENCE => {
                let peer = r.creator.clone();
                let entry = self.entries.entry(peer.clone()).or_default();
                let was_present = entry.online(&self.lost).next().is_some();
                match (change.kind, Presence::of(r)) {
                    (ChangeKind::Added | ChangeKind::Updated, Some(p)) => {
                        // A newer presence: the node is alive after all.
                        let found = self.lost.remove(&p.node);
                        let replaced = entry.presence.insert(p.node, p.clone());
                        if !was_present {
                            out.push((peer, MemberChange::Connected));
                        } else if found || replaced.as_ref() != Some(&p) {
                            out.push((peer, MemberChange::Updated));
                        }
                    }
                    _ => {
                        let id = r.id;
                        let lost = &mut self.lost;
                        entry.presence.retain(|node, _| {
                            let keep = Presence::record_id(&peer, *node) != id;
                            if !keep {
                                lost.remove(node);
                            }
                            keep
                        });
                        if was_present && entry.online(&self.lost).next().is_none() {
                            out.push((peer, MemberChange::Disconnected));
                        }
                    }
                }
            }
            RecordType::MEMBERSHIP => match change.kind {
                ChangeKind::Added | ChangeKind::Updated => {
                    if let Ok(chain) = MembershipPayload::chain_from_payload(&r.payload) {
                        let peer = chain.leaf().subject_peer().clone();
                        let new = self.note_chain(&chain, Some(r.id));
                        out.push((
                            peer,
                            if new {
                                MemberChange::Joined
                            } else {
                                MemberChange::Updated
                            },
                        ));
                    }
                }
                ChangeKind::Deleted | ChangeKind::Expired => {
                    let mut gone = Vec::new();
                    for (peer, e) in self.entries.iter_mut() {
                        if e.members.remove(&r.id) && e.members.is_empty() {
                            gone.push(peer.clone());
                        }
                    }
                    out.extend(gone.into_iter().map(|p| (p, MemberChange::Left)));
                }
            },
            RecordType::REVOCATION if change.kind == ChangeKind::Added => {
                for (peer, _) in db.revocations().peers() {
                    if self.entries.contains_key(peer) {
                        out.push((peer.clone(), MemberChange::Left));
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// Our link to `node` of `peer` broke without a goodbye: the node is lost (see the type's
    /// docs). Returns the member's event if it is gone now.
    pub(crate) fn node_lost(&mut self, peer: &PeerName, node: NodeId) -> Option<MemberChange> {
        let entry = self.entries.get(peer)?;
        if !entry.presence.contains_key(&node) || self.lost.contains(&node) {
            return None;
        }
        self.lost.insert(node);
        entry
            .online(&self.lost)
            .next()
            .is_none()
            .then_some(MemberChange::Disconnected)
    }

    /// Whether `node` counts as lost.
    pub(crate) fn is_lost(&self, node: NodeId) -> bool {
        self.lost.contains(&node)
    }

    /// Members with a node online (the local member among them).
    pub(crate) fn present_peers(&self) -> impl Iterator<Item = &PeerName> {
        self.entries
            .iter()
            .filter(|(_, e)| e.online(&self.lost).next().is_some())
            .map(|(p, _)| p)
    }

    /// The presences held that count as online, of every node but `except` (the local one),
    /// at most `per_member` of each member: what presence maintenance weighs against the
    /// group's bound.
    pub(crate) fn online_nodes_except(&self, except: NodeId, per_member: usize) -> usize {
        self.entries
            .values()
            .map(|e| {
                e.online(&self.lost)
                    .filter(|(n, _)| **n != except)
                    .take(per_member)
                    .count()
            })
            .sum()
    }

    /// `node` of `peer` is our neighbor: if it was lost, it counts again. Returns the
    /// member's event if it is back.
    pub(crate) fn node_found(&mut self, peer: &PeerName, node: NodeId) -> Option<MemberChange> {
        if !self.lost.remove(&node) {
            return None;
        }
        let entry = self.entries.get(peer)?;
        let others = entry
            .online(&self.lost)
            .filter(|(n, _)| **n != node)
            .count();
        (others == 0).then_some(MemberChange::Connected)
    }

    pub(crate) fn list<S: Store>(
        &self,
        db: &Database<S>,
        me: &PeerName,
        present_only: bool,
    ) -> Vec<Member> {
        let mut out: Vec<Member> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.friendly_name.is_empty())
            .map(|(peer, e)| Member {
                peer: peer.clone(),
                friendly_name: e.friendly_name.clone(),
                roles: e.roles,
                present: e.online(&self.lost).next().is_some() || peer == me,
                nodes: e
                    .online(&self.lost)
                    .map(|(n, p)| (*n, p.addresses.clone()))
                    .collect(),
                attributes: e
                    .online(&self.lost)
                    .last()
                    .map(|(_, p)| p.attributes.clone())
                    .unwrap_or_default(),
                local: peer == me,
                revoked: db.revocations().peer_revoked_at(peer).is_some(),
            })
            .filter(|m| !present_only || m.present)
            .collect();
        // The local member first, as Windows.
        out.sort_by(|a, b| {
            (!a.local, &a.friendly_name, &a.peer).cmp(&(!b.local, &b.friendly_name, &b.peer))
        });
        out
    }
}

/// A node reported lost publishes its presence again at most this often, so that a member
/// that reports it falsely, again and again, costs it one record per interval.
pub const LOST_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

impl<S: Store> Core<S> {
    /// Counts `node` of `peer` lost (a link to it broke without a goodbye, here or, for
    /// `from`, at a neighbor) and, if it was not lost yet, tells every other neighbor, so a
    /// crash is known group-wide in a few hops, not only when its presence expires. A
    /// neighbor linked to the node itself passes the report to the node instead (see
    /// [`Core::on_lost`]). Returns the member's event if it is gone now.
    pub(crate) fn mark_lost(
        &mut self,
        peer: &PeerName,
        node: NodeId,
        from: Option<ConnId>,
    ) -> Option<MemberChange> {
        // Lost already, or still linked here by another connection: nothing to do.
        if self.presence.members.is_lost(node) || self.linked_to(node).is_some() {
            return None;
        }
        let change = self.presence.members.node_lost(peer, node);
        if !self.presence.members.is_lost(node) {
            return change; // No presence of that node here: nothing to withdraw or tell.
        }
        let to: Vec<ConnId> = self
            .neighbors
            .established()
            .map(|(c, _)| c)
            .filter(|c| Some(*c) != from)
            .collect();
        for c in to {
            self.send(
                c,
                MeshMessage::Lost {
                    peer: peer.clone(),
                    node,
                },
            );
        }
        change
    }

    /// A neighbor reports `node` of `peer` lost. Our own node publishes its presence again
    /// (at most once per [`LOST_REFRESH_INTERVAL`]; a report within it is answered when it
    /// ends), which counts it back in wherever it was counted out. A node we are linked to
    /// is alive as far as we know: the report goes to it (to refresh) and no further. Any
    /// other is counted lost and the report passed on.
    pub(crate) fn on_lost(&mut self, conn: ConnId, peer: PeerName, node: NodeId, now: Now) {
        if node == self.node {
            self.presence.reported_lost = true;
            self.republish_if_reported_lost(now);
            return;
        }
        if let Some(c) = self.linked_to(node) {
            if c != conn {
                self.send(c, MeshMessage::Lost { peer, node });
            }
            return;
        }
        if let Some(change) = self.mark_lost(&peer, node, Some(conn)) {
            self.events.push_back(Event::Member { peer, change });
        }
    }

    /// An established link to `node`, if there is one.
    fn linked_to(&self, node: NodeId) -> Option<ConnId> {
        self.neighbors
            .established()
            .find(|(_, l)| l.node == Some(node))
            .map(|(c, _)| c)
    }

    /// Publishes our presence again if we were reported lost, unless we did so within
    /// [`LOST_REFRESH_INTERVAL`]; then the refresh timer comes back for it when allowed.
    pub(crate) fn republish_if_reported_lost(&mut self, now: Now) {
        if !self.presence.reported_lost {
            return;
        }
        let due = self
            .presence
            .republished
            .map_or(now.mono, |at| at.saturating_add(LOST_REFRESH_INTERVAL));
        if now.mono < due {
            self.presence.next_refresh = self.presence.next_refresh.min(due);
            return;
        }
        self.presence.reported_lost = false;
        self.presence.republished = Some(now.mono);
        if let Err(e) = self.republish_presence(now) {
            tracing::debug!("presence not published again: {e}");
        }
    }

    /// The members: everyone with a membership record (or known chain) and everyone present;
    /// the local member first.
    pub fn members(&self, present_only: bool) -> Vec<Member> {
        self.presence
            .members
            .list(&self.db, self.peer(), present_only)
    }
}
