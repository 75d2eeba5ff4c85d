//! Local changes: records this member creates, updates and deletes, signed with its key.
//!
//! Every local change is validated by the same code as a received record, then committed
//! durably before the call returns.

use std::time::Duration;

use peergroup_credential_roles::{CertChain, RevocationTarget};
use peergroup_identity::{KeyPair, PeerName, Timestamp};

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
    /// Validates, signs-checks and durably stores a record made here.
    fn commit_local(
        &mut self,
        signer: LocalSigner<'_>,
        record: Record,
        now: Timestamp,
    ) -> Result<Change, Error> {
        self.learn_member(signer.chain)?;
        let id = record.id;
        let mut report = self.apply(vec![record], now)?;
        if let Some((_, e)) = report.rejected.pop() {
            return Err(match e {
                ValidationError::NotAuthorized(why) => Error::NotAuthorized(why),
                e => Error::Invalid(e),
            });
        }
        report.changes.pop().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "record {id} was not stored (an equal or newer version exists)"
            ))
        })
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

    fn next_version(
        &self,
        signer: LocalSigner<'_>,
        id: &RecordId,
        now: Timestamp,
    ) -> Result<Record, Error> {
        let stored = self
            .get(id)?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        let mut r = stored.clone();
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
        Ok(r)
    }

    /// Updates a record (the creator's own, or any record for an admin).
    pub fn update(
        &mut self,
        signer: LocalSigner<'_>,
        id: &RecordId,
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
        if let Some(a) = update.attributes {
            r.attributes = a;
        }
        if let Some(p) = update.payload {
            r.payload = p;
        }
        let r = signer.sign(r, &self.group);
        self.commit_local(signer, r, now)
    }

    /// Deletes a record: a signed tombstone, kept until the record would have expired.
    pub fn delete(
        &mut self,
        signer: LocalSigner<'_>,
        id: &RecordId,
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
        let horizon = now.saturating_add(margin);
        let mine: Vec<Record> = self
            .store
            .expiring(horizon)?
            .into_iter()
            .filter(|r| r.flags.is_autorefresh() && !r.is_deleted() && &r.creator == signer.peer())
            .collect();
        let mut out = Vec::new();
        for r in mine {
            let lifetime = r.expires.duration_since(r.last_modified);
            let update = RecordUpdate {
                expires: Some(now.saturating_add(lifetime).max(r.expires)),
                ..RecordUpdate::default()
            };
            out.push(self.update(signer, &r.id, update, now)?);
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
        if let Some(existing) = self.get(&id)? {
            if existing.payload == payload && existing.expires >= expires {
                return Ok(None);
            }
            let update = RecordUpdate {
                payload: Some(payload),
                expires: Some(expires.max(existing.expires)),
                ..RecordUpdate::default()
            };
            return self.update(signer, &id, update, now).map(Some);
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
        if self.get(&id)?.is_some() {
            let update = RecordUpdate {
                payload: Some(payload),
                ..RecordUpdate::default()
            };
            return self.update(signer, &id, update, now);
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
        if new.expires <= now {
            return Err(Error::InvalidArgument(format!(
                "expiry {} is not in the future",
                new.expires
            )));
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
        let record = signer.sign(record, &self.group);
        self.commit_local(signer, record, now)
    }
}
