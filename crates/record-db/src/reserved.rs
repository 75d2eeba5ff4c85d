//! Payloads of the reserved record types: group properties, membership, revocation.
//!
//! Each is postcard with a leading version byte, like records themselves.

use peergroup_credential_roles::{CertChain, RevocationTarget, Role};
use peergroup_identity::PeerName;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::record::{RecordId, RecordType};

const PAYLOAD_VERSION: u8 = 1;

/// Version 2 of the group properties payload: version 1's fields, then
/// [`GroupProperties::max_presence`]. A group publishing every node's presence (the only kind
/// version 1 knew) still writes version 1, which every release reads.
const PROPERTIES_V2: u8 = 2;

/// The largest frame the transport carries: `peergroup_transport::config::DEFAULT_MAX_FRAME`
/// (16 MiB). This crate does not depend on the transport; the two must stay equal, so that
/// every record a group accepts can travel (a mesh flood or a sync message carrying it
/// alone is one frame).
pub const FRAME_LIMIT: usize = 16 * 1024 * 1024;

/// The room a frame keeps for everything but a record's data (payload and attributes, what
/// [`GroupProperties::max_record_size`] counts): the record's other fields — type, id,
/// version, flags, two peer names of at most 190 bytes, three times, two serials of at most
/// 20 bytes, the signature, postcard lengths: under 1 KiB, pinned by a test — and the mesh
/// or sync message around it (a few bytes). 64 KiB leaves ample margin for both.
pub const RECORD_OVERHEAD_ALLOWANCE: u32 = 64 * 1024;

/// The largest maximum record size a group may set: what one transport frame carries
/// ([`FRAME_LIMIT`]) less [`RECORD_OVERHEAD_ALLOWANCE`], 16,711,680 bytes. Windows allowed 60
/// MB, but a record larger than a frame would be accepted here and never replicate.
pub const MAX_RECORD_SIZE_LIMIT: u32 = FRAME_LIMIT as u32 - RECORD_OVERHEAD_ALLOWANCE;

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_extend(v, vec![PAYLOAD_VERSION]).unwrap_or_else(|_| vec![PAYLOAD_VERSION])
}

fn decode<'a, T: Deserialize<'a>>(
    kind: &'static str,
    bytes: &'a [u8],
) -> Result<T, ValidationError> {
    let bad = |reason: String| ValidationError::BadReservedPayload { kind, reason };
    let (&v, body) = bytes
        .split_first()
        .ok_or_else(|| bad("empty payload".into()))?;
    if v != PAYLOAD_VERSION {
        return Err(bad(format!("unknown payload version {v}")));
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| bad(e.to_string()))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes".into()));
    }
    Ok(value)
}

/// Bits of [`GroupProperties::flags`] (the Windows PEER_GROUP_PROPERTY_FLAGS).
pub mod property_flags {
    /// Member data is published only when the member acts.
    pub const MEMBER_DATA_OPTIONAL: u32 = 0x1;
    /// Members do not publish presence.
    pub const DISABLE_PRESENCE: u32 = 0x2;
    /// Records do not expire while the member is offline.
    pub const DEFER_EXPIRATION: u32 = 0x4;
}

/// The group's properties, kept in one creator-signed record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupProperties {
    /// The group's friendly name.
    pub friendly_name: String,
    /// A comment.
    pub comment: String,
    /// The creator's identity peer name (immutable: must match the group root certificate).
    pub creator: PeerName,
    /// Presence record lifetime in seconds (at least 300).
    pub presence_lifetime_secs: u32,
    /// Lifetime of member data (membership records) in seconds.
    pub member_data_lifetime_secs: u32,
    /// Maximum payload plus attribute bytes of a record (1024 to
    /// [`MAX_RECORD_SIZE_LIMIT`]).
    pub max_record_size: u32,
    /// [`property_flags`] bits.
    pub flags: u32,
    /// Whether members may join with a password.
    pub password_auth: bool,
    /// The role a password join grants.
    pub password_role: Option<Role>,
    /// How many nodes' presence the group should hold (Windows' Max Presence Records):
    /// [`Self::ALL_PRESENCE`] publishes every node's, 0 only the presence applications force,
    /// any other value is the number each node's presence maintenance aims for
    /// (docs/presence-at-scale.md). Not in version 1 payloads, which read as
    /// [`Self::ALL_PRESENCE`].
    #[serde(skip, default = "all_presence")]
    pub max_presence: u32,
}

fn all_presence() -> u32 {
    GroupProperties::ALL_PRESENCE
}

impl GroupProperties {
    /// Default presence lifetime (Windows: 300 s).
    pub const DEFAULT_PRESENCE_LIFETIME: u32 = 300;
    /// Default member data lifetime (Windows: 28 days).
    pub const DEFAULT_MEMBER_DATA_LIFETIME: u32 = 2_419_200;
    /// Default maximum record size: 1 MiB.
    pub const DEFAULT_MAX_RECORD_SIZE: u32 = 1024 * 1024;
    /// Windows' largest maximum record size (60 MB), for reference only: no group may set
    /// more than [`MAX_RECORD_SIZE_LIMIT`] (what a transport frame carries). Use that.
    pub const MAX_MAX_RECORD_SIZE: u32 = 60 * 1024 * 1024;
    /// [`Self::max_presence`] for "every node publishes its presence" (Windows: −1).
    pub const ALL_PRESENCE: u32 = u32::MAX;
    /// [`Self::max_presence`] of a new group: a group with fewer nodes online behaves as if
    /// every node published; a larger one holds about this many presences (a sample, plus
    /// the ones applications force), so what each node stores and receives for presence
    /// stays flat as the group grows.
    pub const DEFAULT_MAX_PRESENCE: u32 = 1024;

    /// Defaults for a new group.
    pub fn new(friendly_name: &str, creator: PeerName) -> Self {
        GroupProperties {
            friendly_name: friendly_name.to_owned(),
            comment: String::new(),
            creator,
            presence_lifetime_secs: Self::DEFAULT_PRESENCE_LIFETIME,
            member_data_lifetime_secs: Self::DEFAULT_MEMBER_DATA_LIFETIME,
            max_record_size: Self::DEFAULT_MAX_RECORD_SIZE,
            flags: 0,
            password_auth: false,
            password_role: None,
            max_presence: Self::DEFAULT_MAX_PRESENCE,
        }
    }

    /// Checks the ranges.
    pub fn check(&self) -> Result<(), String> {
        peergroup_identity::check_friendly_name(&self.friendly_name).map_err(|e| e.to_string())?;
        if self.comment.chars().count() > 255 {
            return Err("comment is longer than 255 characters".into());
        }
        if self.presence_lifetime_secs < 300 {
            return Err("presence lifetime must be at least 300 seconds".into());
        }
        if !(8 * 3600..=10 * 365 * 86_400).contains(&self.member_data_lifetime_secs) {
            return Err("member data lifetime must be between 8 hours and 10 years".into());
        }
        if !(1024..=MAX_RECORD_SIZE_LIMIT).contains(&self.max_record_size) {
            return Err(format!(
                "max record size must be between 1024 and {MAX_RECORD_SIZE_LIMIT} bytes \
                 (16 MiB, the largest transport frame, less 64 KiB for the rest of the \
                 record): {} is out of range",
                self.max_record_size
            ));
        }
        if self.flags & !0x7 != 0 {
            return Err(format!("unknown property flags {:#x}", self.flags));
        }
        if self.password_auth != self.password_role.is_some() {
            return Err("a password group needs a password role, and only it".into());
        }
        Ok(())
    }

    /// The payload bytes: version 1 when every node publishes presence, else version 2.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut out = encode(self);
        if self.max_presence == Self::ALL_PRESENCE {
            return out;
        }
        if let Some(v) = out.first_mut() {
            *v = PROPERTIES_V2;
        }
        postcard::to_extend(&self.max_presence, out).unwrap_or_default()
    }

    /// Reads and checks a payload (version 1 or 2).
    pub fn from_payload(bytes: &[u8]) -> Result<Self, ValidationError> {
        const KIND: &str = "group properties";
        let p = match bytes.split_first() {
            Some((&PROPERTIES_V2, body)) => {
                let bad = |e: postcard::Error| ValidationError::BadReservedPayload {
                    kind: KIND,
                    reason: e.to_string(),
                };
                let (mut p, rest): (GroupProperties, _) =
                    postcard::take_from_bytes(body).map_err(bad)?;
                let (max, rest): (u32, _) = postcard::take_from_bytes(rest).map_err(bad)?;
                if !rest.is_empty() {
                    return Err(ValidationError::BadReservedPayload {
                        kind: KIND,
                        reason: "trailing bytes".into(),
                    });
                }
                p.max_presence = max;
                p
            }
            _ => decode::<GroupProperties>(KIND, bytes)?,
        };
        p.check()
            .map_err(|reason| ValidationError::BadReservedPayload {
                kind: "group properties",
                reason,
            })?;
        Ok(p)
    }

    /// The fixed id of the properties record.
    pub fn record_id(creator: &PeerName) -> RecordId {
        RecordId::derive(creator, *b"grpprops")
    }
}

/// A membership record's payload: a member's certificate chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipPayload {
    /// PKCS#7 chain, root first.
    pub chain: Vec<u8>,
}

impl MembershipPayload {
    /// Wraps a chain.
    pub fn new(chain: &CertChain) -> Self {
        MembershipPayload {
            chain: chain.to_pkcs7(),
        }
    }

    /// The payload bytes.
    pub fn to_payload(&self) -> Vec<u8> {
        encode(self)
    }

    /// Reads a payload and parses the chain (not yet validated).
    pub fn chain_from_payload(bytes: &[u8]) -> Result<CertChain, ValidationError> {
        // Parsed once while remembered (see `crate::memo`).
        crate::memo::PARSED_CHAINS.get_or(peergroup_identity::sha256(bytes), || {
            let p: MembershipPayload = decode("membership", bytes)?;
            CertChain::from_pkcs7(&p.chain).map_err(|e| ValidationError::BadReservedPayload {
                kind: "membership",
                reason: e.to_string(),
            })
        })
    }

    /// The id of the membership record for a certificate with `serial`, published by `creator`.
    pub fn record_id(creator: &PeerName, serial: &[u8]) -> RecordId {
        let d = peergroup_identity::sha256(serial);
        let mut r = [0u8; 8];
        r.copy_from_slice(&d[..8]);
        RecordId::derive(creator, r)
    }
}

/// A revocation record's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationPayload {
    /// What is revoked.
    pub target: RevocationTarget,
    /// Why (free text, may be empty).
    pub reason: String,
}

impl RevocationPayload {
    /// The payload bytes.
    pub fn to_payload(&self) -> Vec<u8> {
        encode(self)
    }

    /// Reads a payload.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, ValidationError> {
        let p: RevocationPayload = decode("revocation", bytes)?;
        if p.reason.len() > 1024 {
            return Err(ValidationError::BadReservedPayload {
                kind: "revocation",
                reason: "reason longer than 1024 bytes".into(),
            });
        }
        Ok(p)
    }
}

/// Which reserved type, for messages.
pub(crate) fn kind_name(t: &RecordType) -> &'static str {
    match *t {
        RecordType::GROUP_PROPERTIES => "group properties",
        RecordType::MEMBERSHIP => "membership",
        RecordType::REVOCATION => "revocation",
        RecordType::PRESENCE => "presence",
        _ => "reserved",
    }
}
