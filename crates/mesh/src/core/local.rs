//! What the local member does: its own membership and presence records, and the records the
//! application creates, updates and deletes — each flooded to the neighbors at once.

use std::net::SocketAddr;
use std::time::Duration;

use peergroup_credential_roles::{CertChain, RevocationTarget};
use peergroup_identity::PeerName;
use peergroup_record_db::reserved::{GroupProperties, property_flags};
use peergroup_record_db::store::Store;
use peergroup_record_db::{
    Change, LocalSigner, NewRecord, Record, RecordId, RecordType, RecordUpdate, SignedRecords,
};

use super::Core;
use crate::message::Push;
use crate::presence::Presence;
use crate::time::Now;

impl<S: Store> Core<S> {
    pub(super) fn commit(&mut self, change: Change, now: Now) -> Record {
        let record = change.record.clone();
        self.flood_local(record.clone(), now);
        self.record_changes(vec![change]);
        record
    }

    /// Publishes the membership record (unless the group makes member data optional) and
    /// presence.
    pub(crate) fn publish_own_records(&mut self, now: Now) -> Result<(), crate::Error> {
        let props = self.db.properties();
        if props.flags & property_flags::MEMBER_DATA_OPTIONAL == 0 {
            let signer = LocalSigner {
                key: &self.me.key,
                chain: &self.me.chain,
            };
            if let Some(change) = self
                .db
                .publish_membership(signer, &self.me.chain, now.wall)?
            {
                self.commit(change, now);
            }
        }
        self.publish_presence(now)
    }

    /// Creates or refreshes this node's presence record with the current addresses.
    pub(crate) fn publish_presence(&mut self, now: Now) -> Result<(), crate::Error> {
        self.write_presence(now, false)
    }

    /// Publishes this node's presence again even if nothing in it changed: a new version
    /// counts the node back in where it was reported lost.
    pub(crate) fn republish_presence(&mut self, now: Now) -> Result<(), crate::Error> {
        self.write_presence(now, true)
    }

    fn write_presence(&mut self, now: Now, again: bool) -> Result<(), crate::Error> {
        if !self.presence_wanted() {
            return Ok(());
        }
        let props = self.db.properties();
        let presence = Presence {
            node: self.node,
            addresses: self.published_addrs(),
            attributes: self.presence.attributes.clone(),
        };
        let lifetime = Duration::from_secs(u64::from(props.presence_lifetime_secs));
        let expires = now
            .wall
            .saturating_add(lifetime)
            .min(self.me.chain.leaf().not_after());
        let id = Presence::record_id(self.peer(), self.node);
        let payload = presence.to_payload();
        let signer = LocalSigner {
            key: &self.me.key,
            chain: &self.me.chain,
        };
        let new = |payload| NewRecord {
            record_type: RecordType::PRESENCE,
            attributes: String::new(),
            payload,
            expires,
            autorefresh: true,
        };
        let change = match self.db.get_any(id)? {
            // Withdrawn by presence maintenance, published again.
            Some(existing) if existing.is_deleted() => {
                self.db.recreate(signer, id, new(payload), now.wall)?
            }
            Some(existing) if existing.payload == payload && !again => return Ok(()),
            Some(existing) => self.db.update(
                signer,
                id,
                RecordUpdate {
                    payload: Some(payload),
                    expires: Some(expires.max(existing.expires)),
                    attributes: None,
                },
                now.wall,
            )?,
            None => self.db.create_with_id(signer, id, new(payload), now.wall)?,
        };
        self.commit(change, now);
        Ok(())
    }

    /// Sets where this node accepts connections (published in its presence).
    pub fn set_listen_addrs(
        &mut self,
        addrs: Vec<SocketAddr>,
        now: Now,
    ) -> Result<(), crate::Error> {
        if addrs != self.neighbors.listen {
            self.neighbors.listen = addrs;
            self.publish_presence(now)?;
        }
        Ok(())
    }

    /// Notes that member `by` saw this node at `addr` (the address a server tells the
    /// client it saw it connect from). Once [`super::OBSERVED_CONFIRMATIONS`] members named
    /// the same address it is published in the presence with the listen addresses (see
    /// `observed.rs` for the bounds).
    pub fn note_observed_addr(
        &mut self,
        addr: SocketAddr,
        by: &PeerName,
        now: Now,
    ) -> Result<(), crate::Error> {
        if self.neighbors.listen.contains(&addr) || addr.ip().is_unspecified() {
            return Ok(());
        }
        if self.neighbors.observed.note(addr, by) {
            self.publish_presence(now)?;
        }
        Ok(())
    }

    /// Whether `addr` is ours: one we listen at, or one members saw us at.
    pub(crate) fn is_own_addr(&self, addr: &SocketAddr) -> bool {
        self.neighbors.listen.contains(addr) || self.neighbors.observed.confirmed().contains(addr)
    }

    /// The addresses the presence publishes: where we listen, then where members saw us.
    pub(crate) fn published_addrs(&self) -> Vec<SocketAddr> {
        let mut out = self.neighbors.listen.clone();
        for a in self.neighbors.observed.confirmed() {
            if !out.contains(a) {
                out.push(*a);
            }
        }
        out.truncate(crate::message::MAX_ADDRESSES);
        out
    }

    /// The addresses to give a newcomer (an invitation's bootstrap addresses), at most `max`.
    /// First ours, as the presence publishes them (where we listen, the router's forward,
    /// where members saw us); then the members we dialed at an address they listen at and
    /// reached directly: reachable from here, they are the members a newcomer behind a NAT
    /// can join through, and that can relay for it to us when we are behind one too
    /// (public addresses before private ones). When there are such members, ours take at
    /// most half the room.
    pub fn bootstrap_addrs(&self, max: usize) -> Vec<SocketAddr> {
        let mut reached: Vec<SocketAddr> = self
            .neighbors
            .established()
            .filter(|(_, l)| l.info.outbound && !l.info.relayed && l.listen.contains(&l.info.addr))
            .map(|(_, l)| l.info.addr)
            .collect();
        reached.sort_by_key(|a| (!is_public(a.ip()), *a));
        reached.dedup();
        let mut out = self.published_addrs();
        if !reached.is_empty() {
            out.truncate(max.div_ceil(2));
        }
        for a in reached {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out.truncate(max);
        out
    }

    /// Sets the application attributes published in this node's presence. The application
    /// wants its presence seen: from now on this node publishes it whatever the group's
    /// bound on presences (`max_presence`; Windows' Force Publish Presence).
    pub fn set_presence_attributes(
        &mut self,
        attributes: &str,
        now: Now,
    ) -> Result<(), crate::Error> {
        if attributes.len() > 4096 {
            return Err(crate::Error::Invalid(
                "presence attributes over 4096 bytes".into(),
            ));
        }
        self.presence.attributes = attributes.to_owned();
        self.presence.forced = true;
        self.publish_presence(now)
    }

    /// Re-publishes autorefresh records about to expire and sweeps expired ones (not while
    /// offline when the group defers expiration).
    pub(crate) fn refresh(&mut self, now: Now) -> Result<(), crate::Error> {
        // The next round is due whatever happens in this one.
        let round = super::presence_time::refresh_round(&mut self.rng);
        self.presence.next_refresh = now.mono.saturating_add(round);
        let props = self.db.properties();
        let lifetime = Duration::from_secs(u64::from(props.presence_lifetime_secs));
        let margin = (lifetime / 4).max(Duration::from_secs(20));
        let signer = LocalSigner {
            key: &self.me.key,
            chain: &self.me.chain,
        };
        // Our presence, not the one an earlier run of this member left (a crash leaves it,
        // under that run's node id) or another of its nodes publishes: those end with
        // their node.
        let own = Presence::record_id(self.peer(), self.node);
        let keep = |r: &Record| r.record_type != RecordType::PRESENCE || r.id == own;
        for change in self.db.refresh_where(signer, margin, now.wall, &keep)? {
            self.commit(change, now);
        }
        let defer =
            props.flags & property_flags::DEFER_EXPIRATION != 0 && !self.status.has_connections;
        if !defer {
            let expired = self.db.sweep(now.wall)?;
            self.record_changes(expired);
        }
        self.republish_if_reported_lost(now);
        self.maintain_presence(now);
        Ok(())
    }

    /// Publishes a record and floods it. Its id comes from the core's seed.
    pub fn create_record(&mut self, new: NewRecord, now: Now) -> Result<Record, crate::Error> {
        let nonce = self.ids.next_nonce();
        self.create_record_with_nonce(new, nonce, now)
    }

    /// Group commit: publishes each record on its own terms (a refusal refuses that record
    /// alone) with one durable commit for all that pass, and floods them. The answers come
    /// in the order of `news`; each stored record is durable when this returns. Ids come from
    /// the core's seed, as with [`Core::create_record`].
    pub fn create_records(
        &mut self,
        news: Vec<NewRecord>,
        now: Now,
    ) -> Vec<Result<Record, crate::Error>> {
        let peer = self.me.chain.leaf().subject_peer().clone();
        let news = news
            .into_iter()
            .map(|n| (RecordId::derive(&peer, self.ids.next_nonce()), n))
            .collect();
        let signer = LocalSigner {
            key: &self.me.key,
            chain: &self.me.chain,
        };
        let answers = self.db.create_each(signer, news, now.wall);
        answers
            .into_iter()
            .map(|a| Ok(self.commit(a?, now)))
            .collect()
    }

    /// Publishes a record under the id that `nonce` gives for this member
    /// ([`RecordId::derive`]) and floods it. [`Core::create_record`] takes the next from the
    /// core's seed; the simulator chooses its own.
    pub fn create_record_with_nonce(
        &mut self,
        new: NewRecord,
        nonce: [u8; 8],
        now: Now,
    ) -> Result<Record, crate::Error> {
        let signer = LocalSigner {
            key: &self.me.key,
            chain: &self.me.chain,
        };
        let id = RecordId::derive(self.me.chain.leaf().subject_peer(), nonce);
        let change = self.db.create_with_id(signer, id, new, now.wall)?;
        Ok(self.commit(change, now))
    }

    /// Stores records signed with this member's key ([`SignedRecords::sign`]) in one durable
    /// commit (all or none) and floods them. Returns them in the order they were signed.
    pub fn publish_signed(
        &mut self,
        batch: SignedRecords,
        now: Now,
    ) -> Result<Vec<Record>, crate::Error> {
        let changes = self.db.publish_signed(
            LocalSigner {
                key: &self.me.key,
                chain: &self.me.chain,
            },
            batch,
            now.wall,
        )?;
        let records: Vec<Record> = changes.iter().map(|c| c.record.clone()).collect();
        for r in &records {
            self.forward(r, r.item_key(), None, Push::Tree, now);
        }
        self.record_changes(changes);
        Ok(records)
    }

    /// Updates a record and floods the new version.
    pub fn update_record(
        &mut self,
        id: RecordId,
        update: RecordUpdate,
        now: Now,
    ) -> Result<Record, crate::Error> {
        let change = self.db.update(
            LocalSigner {
                key: &self.me.key,
                chain: &self.me.chain,
            },
            id,
            update,
            now.wall,
        )?;
        Ok(self.commit(change, now))
    }

    /// Deletes a record and floods the tombstone.
    pub fn delete_record(&mut self, id: RecordId, now: Now) -> Result<Record, crate::Error> {
        let change = self.db.delete(
            LocalSigner {
                key: &self.me.key,
                chain: &self.me.chain,
            },
            id,
            now.wall,
        )?;
        Ok(self.commit(change, now))
    }

    /// Changes the group properties (the creator only).
    pub fn set_properties(
        &mut self,
        props: &GroupProperties,
        now: Now,
    ) -> Result<Record, crate::Error> {
        let change = self.db.set_properties(
            LocalSigner {
                key: &self.me.key,
                chain: &self.me.chain,
            },
            props,
            now.wall,
        )?;
        Ok(self.commit(change, now))
    }

    /// Publishes a membership record for `chain` (an admin storing issued credentials).
    pub fn publish_credentials(
        &mut self,
        chain: &CertChain,
        now: Now,
    ) -> Result<Option<Record>, crate::Error> {
        let signer = LocalSigner {
            key: &self.me.key,
            chain: &self.me.chain,
        };
        Ok(self
            .db
            .publish_membership(signer, chain, now.wall)?
            .map(|c| self.commit(c, now)))
    }

    /// Revokes a member or certificate (admins only), and drops connections to it.
    pub fn revoke(
        &mut self,
        target: RevocationTarget,
        reason: &str,
        now: Now,
    ) -> Result<Record, crate::Error> {
        let change = self.db.revoke(
            LocalSigner {
                key: &self.me.key,
                chain: &self.me.chain,
            },
            target,
            reason,
            now.wall,
        )?;
        let record = self.commit(change, now);
        self.drop_revoked_neighbors(now);
        Ok(record)
    }

    /// Validates and stores records that arrived out of band, reporting the changes and
    /// flooding the new ones like records received from a neighbor. Returns how many were
    /// accepted.
    pub fn apply_records(&mut self, records: Vec<Record>, now: Now) -> Result<usize, crate::Error> {
        let mut report = self.db.apply(records, now.wall)?;
        let accepted = report.accepted().len();
        for (r, key) in report.accepted_keyed() {
            self.forward(r, key, None, Push::Tree, now);
        }
        self.record_changes(report.take_changes());
        Ok(accepted)
    }

    /// Replaces the local member's certificate chain (renewed credentials).
    pub fn set_credentials(&mut self, chain: CertChain, now: Now) -> Result<(), crate::Error> {
        self.db.learn_member(&chain)?;
        self.me.chain = chain;
        self.publish_own_records(now)
    }
}

/// Whether `ip` looks reachable from the internet: not loopback, private, shared (carrier
/// NAT), link-local, unique-local, documentation or unspecified. A guess for ordering only.
pub(crate) fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)))
        }
        std::net::IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}
