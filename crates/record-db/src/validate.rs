//! Validation of a received record, in three steps so signatures can be checked in batches:
//!
//! 1. [`check_structure`]: sizes (within [`MAX_RECORD_SIZE_LIMIT`], whatever the group's
//!    maximum: see there), times, flags, modifier consistency, attributes, id binding,
//!    expiry — no cryptography;
//! 2. [`resolve_signer`]: finds the certificate chain that signed it, checks it was valid and
//!    unrevoked when the record was signed and that the record lives inside it, or says the
//!    record must be deferred until that member's membership record arrives;
//! 3. the caller verifies the signature (alone or in a batch) and then [`authorize`] checks
//!    what the signer may do, including the rules of the reserved types.

use std::sync::Arc;

use peergroup_credential_roles::{
    Action, CertChain, RevocationSet, RevocationTarget, Role, authorize as policy,
};
use peergroup_identity::{PeerName, PublicKey, Timestamp};

use crate::error::ValidationError;
use crate::members::{MemberCert, MemberIndex};
use crate::record::{Record, RecordType};
use crate::reserved::{
    GroupProperties, MAX_RECORD_SIZE_LIMIT, MembershipPayload, RevocationPayload, kind_name,
};

/// What validation needs to know about the group and the moment.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The group peer name (records are signed for it).
    pub group: &'a PeerName,
    /// The group creator's identity (from the group root certificate).
    pub creator: &'a PeerName,
    /// Known member chains.
    pub members: &'a MemberIndex,
    /// Known revocations.
    pub revocations: &'a RevocationSet,
    /// The current time.
    pub now: Timestamp,
}

/// Structural checks that need no keys.
pub fn check_structure(r: &Record, ctx: &Context<'_>) -> Result<(), ValidationError> {
    if r.version == 0 {
        return Err(ValidationError::VersionZero);
    }
    if !r.flags.is_known() {
        return Err(ValidationError::UnknownFlags(r.flags.bits()));
    }
    if !(r.expires > r.last_modified && r.last_modified >= r.created) {
        return Err(ValidationError::TimesOutOfOrder {
            created: r.created,
            last_modified: r.last_modified,
            expires: r.expires,
        });
    }
    if r.is_deleted() && (!r.payload.is_empty() || !r.attributes.is_empty()) {
        return Err(ValidationError::DeletedWithData);
    }
    // The ceiling of every group, not the group's own maximum: that one may change, and a
    // record judged by it would be kept by a replica that got it before the properties
    // changed and refused by one that got it after. The group's maximum binds the records
    // made here ([`crate::Database::create`] and the other local changes).
    let max = MAX_RECORD_SIZE_LIMIT as usize;
    if r.data_size() > max {
        return Err(ValidationError::TooLarge {
            size: r.data_size(),
            max,
        });
    }
    match (r.version, &r.modified_by) {
        (1, Some(_)) => {
            return Err(ValidationError::ModifierMismatch {
                version: 1,
                what: "names a modifier",
            });
        }
        (1, None) if r.last_modified != r.created => {
            return Err(ValidationError::ModifierMismatch {
                version: 1,
                what: "has a last-modified time other than its creation time",
            });
        }
        (v, None) if v > 1 => {
            return Err(ValidationError::ModifierMismatch {
                version: v,
                what: "names no modifier",
            });
        }
        _ => {}
    }
    let serial_ok = |s: &[u8]| (1..=20).contains(&s.len());
    if !serial_ok(&r.security.creator_serial) || !serial_ok(&r.security.modifier_serial) {
        return Err(ValidationError::BadSerial);
    }
    if r.version == 1 && r.security.creator_serial != r.security.modifier_serial {
        return Err(ValidationError::BadSerial);
    }
    if !r.id.is_bound_to(&r.creator) {
        return Err(ValidationError::IdNotBound {
            id: r.id.to_string(),
            creator: r.creator.to_string(),
        });
    }
    check_attributes(&r.attributes)?;
    if r.expires <= ctx.now {
        return Err(ValidationError::Expired(r.expires));
    }
    Ok(())
}

/// Attribute XML must parse (and not use reserved names); empty means none.
fn check_attributes(xml: &str) -> Result<(), ValidationError> {
    if xml.is_empty() {
        return Ok(());
    }
    crate::search::Attributes::parse(xml)
        .map(|_| ())
        .map_err(|e| ValidationError::BadAttributes(e.to_string()))
}

/// Who signed a record, once resolved.
#[derive(Clone, Debug)]
pub enum Signer {
    /// A member whose chain is in the index.
    Member(Arc<MemberCert>),
    /// A membership record signed by its own subject: the chain comes with the record.
    SelfCertified(Arc<MemberCert>),
}

impl Signer {
    /// The signing member.
    pub fn cert(&self) -> &Arc<MemberCert> {
        match self {
            Signer::Member(c) | Signer::SelfCertified(c) => c,
        }
    }

    /// The key that must have signed the record.
    pub fn key(&self) -> &PublicKey {
        self.cert().valid.key()
    }
}

/// The outcome of [`resolve_signer`].
#[derive(Debug)]
pub enum Resolution {
    /// The signer is known and was a valid member when it signed.
    Known(Signer),
    /// The signer's certificate is not known yet: hold the record until it is.
    Defer,
}

/// Finds and checks the signer's chain.
pub fn resolve_signer(r: &Record, ctx: &Context<'_>) -> Result<Resolution, ValidationError> {
    let serial = &r.security.modifier_serial;
    let signer = match ctx.members.get(serial) {
        Some(c) => Signer::Member(c.clone()),
        None if r.record_type == RecordType::MEMBERSHIP && !r.is_deleted() => {
            // A member publishing its own certificate carries the chain that proves it.
            let chain = MembershipPayload::chain_from_payload(&r.payload)?;
            if chain.leaf().serial() != serial.as_slice() {
                return Ok(Resolution::Defer);
            }
            let mut scratch = MemberIndex::default();
            Signer::SelfCertified(scratch.insert(ctx.group, &chain)?)
        }
        None => return Ok(Resolution::Defer),
    };
    let cert = signer.cert();
    if cert.peer() != r.signer() {
        return Err(ValidationError::SignerMismatch(r.signer().to_string()));
    }
    let no_revocations = RevocationSet::new();
    let revocations = if judged_without_revocations(&r.record_type) {
        &no_revocations
    } else {
        ctx.revocations
    };
    cert.check_at(r.last_modified, revocations)?;
    let (nb, na) = (cert.valid.not_before(), cert.valid.not_after());
    if r.last_modified < nb || r.expires > na {
        return Err(ValidationError::OutsideMembership {
            last_modified: r.last_modified,
            expires: r.expires,
            not_before: nb,
            not_after: na,
        });
    }
    Ok(Resolution::Known(signer))
}

/// Whether records of this type are judged without the revocations: their signer's chain
/// must have been valid in time and allowed to make them when it signed, whether or not it
/// has been revoked since. Such records are never purged.
///
/// Revocation records: so the revocations a replica holds are the targets of every valid
/// revocation record it received, a set that only grows, the same on every replica whatever
/// order the records come in. Judged by the revocations, a revocation by an admin revoked
/// since — its own revocation included — was kept or purged depending on the order, and two
/// admins revoking each other could be settled either way. Refusing them protects nothing: a
/// revoked admin's key can date a revocation before its own.
///
/// Membership records: so every replica learns the same member chains from the same
/// records. A membership record only publishes a chain that is valid for the group by
/// itself; each record the member signs is still judged by the revocations when it was
/// signed. Judged by them, a membership record signed after its signer's revocation taught
/// the member's chain to a replica that got it before the revocation (which then stored the
/// member's earlier records) and not to one that got it after (which held them back).
pub(crate) fn judged_without_revocations(record_type: &RecordType) -> bool {
    *record_type == RecordType::REVOCATION || *record_type == RecordType::MEMBERSHIP
}

/// What the signer may do, including the reserved types' own rules.
pub fn authorize(r: &Record, signer: &Signer, ctx: &Context<'_>) -> Result<(), ValidationError> {
    admit(r, signer, ctx).map(|_| ())
}

/// What an accepted security record changes in what the replica knows, worked out (and
/// checked) while it is authorized, so taking it in cannot fail.
#[derive(Clone, Debug)]
pub(crate) enum Effect {
    /// Nothing beyond storing the record.
    None,
    /// A member chain, validated for the group.
    Member(Arc<MemberCert>),
    /// A revocation.
    Revocation(RevocationTarget),
    /// New group properties.
    Properties(GroupProperties),
}

/// [`authorize`], returning what the record changes once accepted. Every check that taking
/// the record in depends on is made here, the validation of a membership record's chain
/// included: a record that passes can be taken in without failing.
pub(crate) fn admit(
    r: &Record,
    signer: &Signer,
    ctx: &Context<'_>,
) -> Result<Effect, ValidationError> {
    let valid = &signer.cert().valid;
    let denied = |e: peergroup_credential_roles::Denied| ValidationError::NotAuthorized(e.0);
    let action = if r.version == 1 {
        Action::AddRecord
    } else if r.is_deleted() {
        Action::DeleteRecord {
            creator: &r.creator,
        }
    } else {
        Action::UpdateRecord {
            creator: &r.creator,
        }
    };
    policy(valid, action).map_err(denied)?;
    if !r.record_type.is_reserved() {
        return Ok(Effect::None);
    }
    let bad = |reason: String| ValidationError::BadReservedPayload {
        kind: kind_name(&r.record_type),
        reason,
    };
    match r.record_type {
        RecordType::GROUP_PROPERTIES => {
            policy(valid, Action::SetProperties).map_err(denied)?;
            if &r.creator != ctx.creator || r.id != GroupProperties::record_id(ctx.creator) {
                return Err(bad(
                    "the properties record belongs to the group creator".into()
                ));
            }
            if r.is_deleted() {
                return Err(bad("group properties cannot be deleted".into()));
            }
            let p = GroupProperties::from_payload(&r.payload)?;
            if &p.creator != ctx.creator {
                return Err(bad("the creator is immutable".into()));
            }
            Ok(Effect::Properties(p))
        }
        RecordType::MEMBERSHIP => {
            // A tombstone carries no chain: a replica that took in the record before it
            // learned the member, one that got the tombstone first never did, and the
            // member's records were stored by the one and held back for good by the other.
            // A membership ends with its certificate, or by revocation.
            if r.is_deleted() {
                return Err(bad(
                    "membership records cannot be deleted (a membership ends with its \
                     certificate, or by revocation)"
                        .into(),
                ));
            }
            let is_admin = valid.roles().contains(Role::Admin);
            let chain: CertChain = MembershipPayload::chain_from_payload(&r.payload)?;
            if chain.group() != ctx.group {
                return Err(bad("the certificate chain is for another group".into()));
            }
            let subject = chain.leaf().subject_peer();
            if subject != r.signer() && !is_admin {
                return Err(bad(format!(
                    "{} may publish only its own membership",
                    r.signer()
                )));
            }
            if r.id != MembershipPayload::record_id(&r.creator, chain.leaf().serial()) {
                return Err(bad("the record id does not match the certificate".into()));
            }
            // The chain the record carries must itself be valid for the group: a record
            // that names its signer but carries a broken chain is refused here, alone.
            let entry = match signer {
                Signer::SelfCertified(c) if c.valid.chain() == &chain => c.clone(),
                _ => ctx
                    .members
                    .validated(ctx.group, &chain)
                    .map_err(|e| bad(format!("invalid certificate chain: {e}")))?,
            };
            Ok(Effect::Member(entry))
        }
        RecordType::REVOCATION => {
            policy(valid, Action::Revoke).map_err(denied)?;
            if r.is_deleted() {
                return Err(bad("revocations cannot be deleted".into()));
            }
            // What a replica holds in memory is every revocation record's target: another
            // version would change the target or withdraw it, and what was purged in its name
            // would not come back.
            if r.version != 1 {
                return Err(bad("revocations cannot be changed".into()));
            }
            Ok(Effect::Revocation(
                RevocationPayload::from_payload(&r.payload)?.target,
            ))
        }
        RecordType::PRESENCE => {
            if r.signer() != &r.creator && !r.is_deleted() {
                return Err(bad("only the member itself publishes its presence".into()));
            }
            Ok(Effect::None)
        }
        _ => Err(bad(format!("record type {} is reserved", r.record_type))),
    }
}
