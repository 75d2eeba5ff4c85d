//! Local changes: records this member creates, updates and deletes, signed with its key.
//!
//! Every local change is validated by the same code as a received record (all but the
//! signature check: the signature was made here a moment ago), then committed durably before
//! the call returns. One rule binds local changes only: new data (a new record, or an update
//! that changes its payload or attributes) must fit the group's maximum record size. A
//! received record is held to [`crate::reserved::MAX_RECORD_SIZE_LIMIT`] alone, so a record
//! made before the group lowered its maximum is kept by every replica, whenever the new
//! properties reach it.

use std::collections::HashMap;
use std::time::Duration;

use peergroup_credential_roles::{CertChain, RevocationTarget};
use peergroup_identity::{KeyPair, PeerName, PublicKey, Timestamp};

use super::apply::Origin;
use super::{Change, Database};
use crate::error::{Error, ValidationError};
use crate::record::{Record, RecordFlags, RecordId, RecordType, SecurityData};
use crate::reserved::{GroupProperties, MembershipPayload, RevocationPayload};
use crate::store::Store;

/// The local member: its identity key and the certificate chain certifying it.
#[derive(Clone, Copy, Debug)]
pub struct LocalSigner<'a> {
    /// The identity key (the chain's leaf certifies it).
    pub key: &'a KeyPair,
    /// The member's certificate chain.
    pub chain: &'a CertChain,
}

impl LocalSigner<'_> {
    /// Checks the policy for `action` before anything is signed, so the caller gets a clear
    /// "not authorized" rather than whatever rule the record would break first.
    fn may(
        &self,
        group: &PeerName,
        action: peergroup_credential_roles::Action<'_>,
        now: Timestamp,
    ) -> Result<(), Error> {
        let valid = self
            .chain
            .validate(
                group,
                now,
                &peergroup_credential_roles::RevocationSet::new(),
                Some(&self.key.public()),
            )
            .map_err(|e| Error::NotAuthorized(format!("own credentials: {e}")))?;
        peergroup_credential_roles::authorize(&valid, action).map_err(|d| Error::NotAuthorized(d.0))
    }

    fn peer(&self) -> &PeerName {
        self.chain.leaf().subject_peer()
    }

    fn serial(&self) -> Vec<u8> {
        self.chain.leaf().serial().to_vec()
    }

    fn sign(&self, mut r: Record, group: &PeerName) -> Record {
        r.security.signature = self.key.sign(&r.signed_bytes(group));
        r
    }
}

/// A record to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRecord {
    /// Its type.
    pub record_type: RecordType,
    /// Attribute XML, or empty.
    pub attributes: String,
    /// The data.
    pub payload: Vec<u8>,
    /// When it should disappear.
    pub expires: Timestamp,
    /// Re-publish automatically before it expires while this member is online.
    pub autorefresh: bool,
}

/// Changes to an existing record; `None` keeps the current value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordUpdate {
    /// New attribute XML.
    pub attributes: Option<String>,
    /// New data.
    pub payload: Option<Vec<u8>>,
    /// New expiry (may only move later).
    pub expires: Option<Timestamp>,
}

impl<S: Store> Database<S> {
    /// New data made here must fit the group's maximum record size (see the module
    /// documentation).
    fn check_group_size(&self, data_size: usize) -> Result<(), Error> {
        let max = self.max_record_size();
        if data_size > max {
            return Err(ValidationError::TooLarge {
                size: data_size,
                max,
            }
            .into());
        }
        Ok(())
    }

    /// Validates and durably stores a record made (and signed) here.
    fn commit_local(
        &mut self,
        signer: LocalSigner<'_>,
        record: Record,
        now: Timestamp,
    ) -> Result<Change, Error> {
        let id = record.id;
        self.commit_local_batch(signer, vec![record], now)?
            .pop()
            .ok_or_else(|| Error::InvalidArgument(format!("record {id} was not stored")))
    }

    /// Validates records made and signed here — every rule a received record meets except
    /// the signature check (see [`Origin::SignedHere`]) — and stores them in one durable
    /// commit, all or none. The changes come back in the order of `records`.
    fn commit_local_batch(
        &mut self,
        signer: LocalSigner<'_>,
        records: Vec<Record>,
        now: Timestamp,
    ) -> Result<Vec<Change>, Error> {
        self.learn_member(signer.chain)?;
        let order: HashMap<RecordId, usize> =
            records.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        let records = records
            .into_iter()
            .map(super::Received::unchecked)
            .collect();
        let (mut report, batch) = match self.stage(records, now, Origin::SignedHere) {
            Ok(staged) => staged,
            Err(e) => {
                self.abandon();
                return Err(e);
            }
        };
        let refused = match report.rejected.pop() {
            Some((_, ValidationError::NotAuthorized(why))) => Some(Error::NotAuthorized(why)),
            Some((_, e)) => Some(Error::Invalid(e)),
            None if report.changes_len() != order.len() => {
                let id = order.keys().find(|id| report.change_of(id).is_none());
                Some(Error::InvalidArgument(format!(
                    "record {} was not stored (an equal or newer version exists)",
                    id.map(ToString::to_string).unwrap_or_default()
                )))
            }
            None => None,
        };
        if let Some(e) = refused {
            // An accepted security record may already have changed what is held in memory.
            self.abandon();
            return Err(e);
        }
        let put = self.commit_staged(&report, batch)?;
        report.set_accepted(put);
        let mut changes = report.take_changes();
        changes.sort_by_key(|c| order.get(&c.record.id).copied().unwrap_or(usize::MAX));
        Ok(changes)
    }

    /// Publishes a new record. Returns the change (with the signed record) to flood.
    pub fn create(
        &mut self,
        signer: LocalSigner<'_>,
        new: NewRecord,
        now: Timestamp,
    ) -> Result<Change, Error> {
        let id = RecordId::random(signer.peer())?;
        self.create_with_id(signer, id, new, now)
    }

    /// Publishes several new records with one durable commit: all are stored or, when any is
    /// refused, none. The changes (with the signed records, to flood) come back in the order
    /// of `news`. Much cheaper per record than [`Database::create`] for bulk publishing: one
    /// fsync for the lot. [`SignedRecords::sign`] and [`Database::publish_signed`] do the
    /// same in two steps, so the signing can run elsewhere.
    pub fn create_many(
        &mut self,
        signer: LocalSigner<'_>,
        news: Vec<NewRecord>,
        now: Timestamp,
    ) -> Result<Vec<Change>, Error> {
        let batch = SignedRecords::sign(&self.group, signer, news, now)?;
        self.publish_signed(signer, batch, now)
    }

    /// Stores records signed by [`SignedRecords::sign`] with `signer`'s key for this group:
    /// every rule a received record meets is checked except the signatures, in one durable
    /// commit, all or none. The changes come back in the order the records were signed.
    pub fn publish_signed(
        &mut self,
        signer: LocalSigner<'_>,
        batch: SignedRecords,
        now: Timestamp,
    ) -> Result<Vec<Change>, Error> {
        if batch.group != self.group {
            return Err(Error::InvalidArgument(format!(
                "records signed for group {}, not {}",
                batch.group, self.group
            )));
        }
        if batch.key != signer.key.public() {
            return Err(Error::InvalidArgument(
                "records signed with another key than the publishing member's".into(),
            ));
        }
        for r in &batch.records {
            self.check_group_size(r.data_size())?;
        }
        self.commit_local_batch(signer, batch.records, now)
    }

    fn next_version(
        &self,
        signer: LocalSigner<'_>,
        id: RecordId,
        now: Timestamp,
    ) -> Result<Record, Error> {
        let stored = self
            .get(id)?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let mut r = stored.clone();
        follow(&mut r, &stored, signer, now)?;
        Ok(r)
    }

    /// Updates a record (the creator's own, or any record for an admin).
    pub fn update(
        &mut self,
        signer: LocalSigner<'_>,
        id: RecordId,
        update: RecordUpdate,
        now: Timestamp,
    ) -> Result<Change, Error> {
        let mut r = self.next_version(signer, id, now)?;
        if let Some(expires) = update.expires {
            if expires < r.expires {
                return Err(ValidationError::ExpiryShrinks {
                    old: r.expires,
                    new: expires,
                }
                .into());
            }
            r.expires = expires;
        }
        let new_data = update
            .attributes
            .as_ref()
            .is_some_and(|a| *a != r.attributes)
            || update.payload.as_ref().is_some_and(|p| *p != r.payload);
        if let Some(a) = update.attributes {
            r.attributes = a;
        }
        if let Some(p) = update.payload {
            r.payload = p;
        }
        // Data kept as it was (a longer life, a refresh) stays, whatever the group's
        // maximum has become since it was stored.
        if new_data {
            self.check_group_size(r.data_size())?;
        }
        let r = signer.sign(r, &self.group);
        self.commit_local(signer, r, now)
    }

    /// Deletes a record: a signed tombstone, kept until the record would have expired.
    pub fn delete(
        &mut self,
        signer: LocalSigner<'_>,
        id: RecordId,
        now: Timestamp,
    ) -> Result<Change, Error> {
        let mut r = self.next_version(signer, id, now)?;
        r.flags = r.flags.with_deleted(true);
        r.payload.clear();
        r.attributes.clear();
        let r = signer.sign(r, &self.group);
        self.commit_local(signer, r, now)
    }

    /// Re-publishes this member's autorefresh records that expire within `margin`, each with
    /// its original lifetime counted from now.
    pub fn refresh(
        &mut self,
        signer: LocalSigner<'_>,
        margin: Duration,
        now: Timestamp,
    ) -> Result<Vec<Change>, Error> {
        self.refresh_where(signer, margin, now, &|_| true)
    }

    /// As [`Database::refresh`], of the records `keep` accepts only (a node refreshes its
    /// own presence, not the presence another node of the same member published: one that
    /// crashed would otherwise stay present for as long as the member runs anywhere).
    pub fn refresh_where(
        &mut self,
        signer: LocalSigner<'_>,
        margin: Duration,
        now: Timestamp,
        keep: &dyn Fn(&Record) -> bool,
    ) -> Result<Vec<Change>, Error> {
        let horizon = now.saturating_add(margin);
        let mine: Vec<Record> = self
            .store
            .expiring(horizon)?
            .into_iter()
            .filter(|r| {
                r.flags.is_autorefresh()
                    && !r.is_deleted()
                    && &r.creator == signer.peer()
                    && keep(r)
            })
            .collect();
        // A record may not outlive its signer's membership: refreshing stops there (a
        // member whose certificate is about to end keeps what it has until then).
        let until = signer.chain.leaf().not_after();
        let mut out = Vec::new();
        for r in mine {
            let lifetime = r.expires.duration_since(r.last_modified);
            let expires = now.saturating_add(lifetime).max(r.expires).min(until);
            if expires <= r.expires || now >= until {
                continue;
            }
            let update = RecordUpdate {
                expires: Some(expires),
                ..RecordUpdate::default()
            };
            out.push(self.update(signer, r.id, update, now)?);
        }
        Ok(out)
    }

    /// Publishes a membership record for `chain` (this member's own, or — for an admin — a
    /// member's new credentials, which that member picks up on its next connect). Does
    /// nothing when an identical record is already stored.
    pub fn publish_membership(
        &mut self,
        signer: LocalSigner<'_>,
        chain: &CertChain,
        now: Timestamp,
    ) -> Result<Option<Change>, Error> {
        let id = MembershipPayload::record_id(signer.peer(), chain.leaf().serial());
        let payload = MembershipPayload::new(chain).to_payload();
        let lifetime = Duration::from_secs(u64::from(self.properties().member_data_lifetime_secs));
        let expires = now
            .saturating_add(lifetime)
            .min(chain.leaf().not_after())
            .min(signer.chain.leaf().not_after());
        if let Some(existing) = self.get(id)? {
            if existing.payload == payload && existing.expires >= expires {
                return Ok(None);
            }
            let update = RecordUpdate {
                payload: Some(payload),
                expires: Some(expires.max(existing.expires)),
                ..RecordUpdate::default()
            };
            return self.update(signer, id, update, now).map(Some);
        }
        let new = NewRecord {
            record_type: RecordType::MEMBERSHIP,
            attributes: String::new(),
            payload,
            expires,
            autorefresh: false,
        };
        self.create_with_id(signer, id, new, now).map(Some)
    }

    /// Sets the group properties (the creator only).
    pub fn set_properties(
        &mut self,
        signer: LocalSigner<'_>,
        props: &GroupProperties,
        now: Timestamp,
    ) -> Result<Change, Error> {
        signer.may(
            &self.group,
            peergroup_credential_roles::Action::SetProperties,
            now,
        )?;
        props.check().map_err(Error::InvalidArgument)?;
        if &props.creator != self.creator() {
            return Err(Error::InvalidArgument(
                "the group creator cannot be changed".into(),
            ));
        }
        let id = GroupProperties::record_id(self.creator());
        let payload = props.to_payload();
        let expires = signer.chain.leaf().not_after();
        if self.get(id)?.is_some() {
            let update = RecordUpdate {
                payload: Some(payload),
                ..RecordUpdate::default()
            };
            return self.update(signer, id, update, now);
        }
        let new = NewRecord {
            record_type: RecordType::GROUP_PROPERTIES,
            attributes: String::new(),
            payload,
            expires,
            autorefresh: false,
        };
        self.create_with_id(signer, id, new, now)
    }

    /// Revokes a peer or certificate (admins only).
    pub fn revoke(
        &mut self,
        signer: LocalSigner<'_>,
        target: RevocationTarget,
        reason: &str,
        now: Timestamp,
    ) -> Result<Change, Error> {
        let payload = RevocationPayload {
            target,
            reason: reason.to_owned(),
        }
        .to_payload();
        let new = NewRecord {
            record_type: RecordType::REVOCATION,
            attributes: String::new(),
            payload,
            expires: signer.chain.leaf().not_after(),
            autorefresh: false,
        };
        self.create(signer, new, now)
    }

    /// Publishes a new record under a chosen id (bound to the signer, as every id must be).
    pub fn create_with_id(
        &mut self,
        signer: LocalSigner<'_>,
        id: RecordId,
        new: NewRecord,
        now: Timestamp,
    ) -> Result<Change, Error> {
        self.check_group_size(new.payload.len() + new.attributes.len())?;
        let record = signed_new(&self.group, signer, id, new, now)?;
        self.commit_local(signer, record, now)
    }

    /// Publishes a record again under the id of one deleted earlier (a node's presence after
    /// presence maintenance withdrew it): the version after the tombstone, live again, with
    /// `new`'s data. The tombstone must be the signer's to replace, as any update.
    pub fn recreate(
        &mut self,
        signer: LocalSigner<'_>,
        id: RecordId,
        new: NewRecord,
        now: Timestamp,
    ) -> Result<Change, Error> {
        let stored = self
            .get_any(id)?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        if !stored.is_deleted() {
            return Err(Error::InvalidArgument(format!(
                "record {id} is not deleted: update it instead"
            )));
        }
        self.check_group_size(new.payload.len() + new.attributes.len())?;
        let mut r = unsigned_new(signer, id, new, now)?;
        follow(&mut r, &stored, signer, now)?;
        let r = signer.sign(r, &self.group);
        self.commit_local(signer, r, now)
    }

    /// Group commit: publishes each new record on its own terms, with one durable commit for
    /// all that pass. Every record gets its own answer, in the order of `news`: a record that
    /// breaks a rule is refused alone and the others are stored. The caller may acknowledge a
    /// stored record at once: it is durable when this returns. One fsync for the lot, as with
    /// [`Database::create_many`], which is all or none instead.
    pub fn create_each(
        &mut self,
        signer: LocalSigner<'_>,
        news: Vec<(RecordId, NewRecord)>,
        now: Timestamp,
    ) -> Vec<Result<Change, Error>> {
        let mut answers: Vec<Option<Result<Change, Error>>> = Vec::with_capacity(news.len());
        let mut signed = Vec::with_capacity(news.len());
        let mut slots = Vec::with_capacity(news.len());
        for (id, new) in news {
            let made = self
                .check_group_size(new.payload.len() + new.attributes.len())
                .and_then(|()| signed_new(&self.group, signer, id, new, now));
            match made {
                Ok(r) => {
                    slots.push(answers.len());
                    signed.push(r);
                    answers.push(None);
                }
                Err(e) => answers.push(Some(Err(e))),
            }
        }
        // All at once; if one of them broke a rule that only the store could tell (or the
        // store failed), each on its own below, so that one refusal does not refuse the rest.
        if signed.len() > 1
            && let Ok(changes) = self.commit_local_batch(signer, signed.clone(), now)
        {
            // In the order of `signed`, one change each.
            for (slot, change) in slots.iter().zip(changes) {
                answers[*slot] = Some(Ok(change));
            }
            signed.clear();
        }
        for (slot, r) in slots.iter().zip(signed) {
            answers[*slot] = Some(self.commit_local(signer, r, now));
        }
        answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| Err(Error::InvalidArgument("record was not stored".into())))
            })
            .collect()
    }
}

/// New records signed by a local member for one group, ready for
/// [`Database::publish_signed`]. Only [`SignedRecords::sign`] makes them and nothing can
/// change them after, so their signatures need no check when they are stored (a check costs
/// about what the signing did). Signing can run on any thread — the caller's own — while the
/// database, which does everything in one task, goes on with other work.
#[derive(Clone, Debug)]
pub struct SignedRecords {
    group: PeerName,
    key: PublicKey,
    records: Vec<Record>,
}

impl SignedRecords {
    /// Makes and signs version 1 of each record (ids consecutive from a random start: a
    /// batch's entries in every replica's id index share a few pages instead of each
    /// dirtying a random one, and they are as unlikely to meet another record's id as
    /// random ids are). Fails, signing nothing, when an expiry is not after `now`.
    pub fn sign(
        group: &PeerName,
        signer: LocalSigner<'_>,
        news: Vec<NewRecord>,
        now: Timestamp,
    ) -> Result<Self, Error> {
        if let Some(bad) = news.iter().find(|n| n.expires <= now) {
            return Err(expiry_not_in_future(bad.expires));
        }
        let mut start = [0u8; 8];
        peergroup_identity::random_bytes(&mut start)?;
        let start = u64::from_be_bytes(start);
        let mut records = Vec::with_capacity(news.len());
        for (i, new) in (0u64..).zip(news) {
            let id = RecordId::derive(signer.peer(), start.wrapping_add(i).to_be_bytes());
            records.push(signed_new(group, signer, id, new, now)?);
        }
        Ok(Self {
            group: group.clone(),
            key: signer.key.public(),
            records,
        })
    }

    /// The signed records, in the order they were given.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

fn expiry_not_in_future(expires: Timestamp) -> Error {
    Error::InvalidArgument(format!("expiry {expires} is not in the future"))
}

/// Version 1 of a new record, signed.
fn signed_new(
    group: &PeerName,
    signer: LocalSigner<'_>,
    id: RecordId,
    new: NewRecord,
    now: Timestamp,
) -> Result<Record, Error> {
    Ok(signer.sign(unsigned_new(signer, id, new, now)?, group))
}

/// Makes `r` the version after `stored` (a live record or a tombstone), modified by `signer`
/// at `now` (or just after `stored`'s last change, if the clock is behind it).
fn follow(
    r: &mut Record,
    stored: &Record,
    signer: LocalSigner<'_>,
    now: Timestamp,
) -> Result<(), Error> {
    r.version = stored
        .version
        .checked_add(1)
        .ok_or_else(|| Error::InvalidArgument("record version exhausted".into()))?;
    r.modified_by = Some(signer.peer().clone());
    r.last_modified = now.max(
        stored
            .last_modified
            .saturating_add(Duration::from_millis(1)),
    );
    r.security.modifier_serial = signer.serial();
    Ok(())
}

/// Version 1 of a new record, its signature left zero.
fn unsigned_new(
    signer: LocalSigner<'_>,
    id: RecordId,
    new: NewRecord,
    now: Timestamp,
) -> Result<Record, Error> {
    if new.expires <= now {
        return Err(expiry_not_in_future(new.expires));
    }
    let record = Record {
        record_type: new.record_type,
        id,
        version: 1,
        flags: RecordFlags::default().with_autorefresh(new.autorefresh),
        creator: signer.peer().clone(),
        modified_by: None,
        attributes: new.attributes,
        created: now,
        expires: new.expires,
        last_modified: now,
        payload: new.payload,
        security: SecurityData {
            creator_serial: signer.serial(),
            modifier_serial: signer.serial(),
            signature: peergroup_identity::Signature::from_bytes([0; 64]),
        },
    };
    Ok(record)
}
