//! The record: what members publish into a group's shared database.

use std::fmt;
use std::str::FromStr;

use peergroup_identity::{PeerName, Signature, Timestamp, sha256};
use serde::{Deserialize, Serialize};
use uuid::{Uuid, uuid};

/// A record type: a GUID chosen by the application (or one of the reserved types).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordType(pub Uuid);

impl RecordType {
    /// Group properties (friendly name, lifetimes, limits…), signed by the group creator.
    pub const GROUP_PROPERTIES: RecordType =
        RecordType(uuid!("02000000-0000-0000-0000-000000000000"));
    /// A member's certificate chain, published by the member or by an admin.
    pub const MEMBERSHIP: RecordType = RecordType(uuid!("01000000-0000-0000-0000-000000000000"));
    /// A revocation of a member or certificate, signed by an admin.
    pub const REVOCATION: RecordType = RecordType(uuid!("03000000-0000-0000-0000-000000000000"));
    /// A member's presence (node, addresses), published by the member itself.
    pub const PRESENCE: RecordType = RecordType(uuid!("00000400-0000-0000-0000-000000000000"));

    /// Whether this type is reserved for the infrastructure: the four above and every GUID
    /// whose last twelve bytes are zero and first four are below `0x1000_0000`.
    pub fn is_reserved(&self) -> bool {
        let b = self.0.as_bytes();
        b[4..].iter().all(|x| *x == 0) && b[0] < 0x10
    }

    /// The name of a reserved type this crate knows ("group properties", "membership",
    /// "revocation", "presence"), for listings.
    pub fn reserved_name(&self) -> Option<&'static str> {
        match *self {
            Self::GROUP_PROPERTIES => Some("group properties"),
            Self::MEMBERSHIP => Some("membership"),
            Self::REVOCATION => Some("revocation"),
            Self::PRESENCE => Some("presence"),
            _ => None,
        }
    }

    /// Whether records of this type are security records, synchronised before all others.
    pub fn is_security(&self) -> bool {
        matches!(
            *self,
            Self::GROUP_PROPERTIES | Self::MEMBERSHIP | Self::REVOCATION
        )
    }
}

impl fmt::Debug for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordType({{{}}})", self.0)
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.0)
    }
}

/// Text that is not a record type.
#[derive(Debug, thiserror::Error)]
#[error(
    "{input:?} is not a record type: a GUID like 5ca1ab1e-0000-4000-8000-00000000beef is expected ({source})"
)]
pub struct RecordTypeError {
    /// What was given (its first 64 characters).
    pub input: String,
    /// What the GUID parser found wrong.
    #[source]
    pub source: uuid::Error,
}

impl FromStr for RecordType {
    type Err = RecordTypeError;
    fn from_str(s: &str) -> Result<Self, RecordTypeError> {
        Uuid::parse_str(s.trim_matches(|c| c == '{' || c == '}'))
            .map(RecordType)
            .map_err(|source| RecordTypeError {
                input: s.chars().take(64).collect(),
                source,
            })
    }
}

/// A record id: 16 bytes, the second half bound to the creator's peer name.
///
/// `id = r ‖ (h ⊕ r)` where `r` is 8 random (or chosen) bytes and `h` the first 8 bytes of
/// SHA-256 of the creator's peer name, so anyone can check that an id belongs to its claimed
/// creator and nobody can make records under someone else's ids (MS-PPGRH §3.1.7.2 did the
/// same with MD5).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordId(pub [u8; 16]);

impl RecordId {
    /// The id with nonce `r` for `creator`.
    pub fn derive(creator: &PeerName, r: [u8; 8]) -> Self {
        let h = creator_hash(creator);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&r);
        for i in 0..8 {
            id[8 + i] = h[i] ^ r[i];
        }
        RecordId(id)
    }

    /// A fresh random id for `creator`.
    pub fn random(creator: &PeerName) -> Result<Self, peergroup_identity::Error> {
        let mut r = [0u8; 8];
        peergroup_identity::random_bytes(&mut r)?;
        Ok(Self::derive(creator, r))
    }

    /// Whether this id was made for `creator`.
    pub fn is_bound_to(&self, creator: &PeerName) -> bool {
        let h = creator_hash(creator);
        (0..8).all(|i| self.0[8 + i] == h[i] ^ self.0[i])
    }

    /// The GUID form.
    pub fn as_uuid(&self) -> Uuid {
        Uuid::from_bytes(self.0)
    }
}

fn creator_hash(creator: &PeerName) -> [u8; 8] {
    let d = sha256(NameText::of(creator).as_bytes());
    let mut h = [0u8; 8];
    h.copy_from_slice(&d[..8]);
    h
}

/// A peer name's text form, exactly what its `Display` writes (40 lowercase hex digits, a
/// dot, the classifier), built on the stack: hashing, signing and encoding a record need
/// the text of its names, and going through the formatting machinery (postcard formats a
/// `Display` value twice, once to count its length) cost a measurable part of applying a
/// received record.
pub(crate) struct NameText {
    buf: [u8; PeerName::MAX_LEN],
    len: usize,
}

impl NameText {
    /// The text of `name`.
    pub(crate) fn of(name: &PeerName) -> Self {
        let mut buf = [0u8; PeerName::MAX_LEN];
        let classifier = name.classifier().as_str().as_bytes();
        let len = 41 + classifier.len();
        // A classifier is at most `Classifier::MAX_LEN` bytes, so the name fits; were that
        // ever not so, the name would be cut short rather than the program stopped.
        let fits = hex::encode_to_slice(name.authority().as_bytes(), &mut buf[..40]).is_ok()
            && len <= buf.len();
        buf[40] = b'.';
        if fits {
            buf[41..len].copy_from_slice(classifier);
        }
        NameText {
            buf,
            len: if fits { len } else { 41 },
        }
    }

    /// The text's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text (ASCII: hex digits, a dot and a classifier's characters).
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl Serialize for NameText {
    /// As the name itself serializes (`collect_str` of its `Display`): a string.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Peer name fields written through [`NameText`]: the same output as `PeerName`'s own
/// `Serialize` (a string), without formatting it twice.
mod name_field {
    use peergroup_identity::PeerName;
    use serde::ser::Serializer;

    use super::NameText;

    pub(super) fn serialize<S: Serializer>(name: &PeerName, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(NameText::of(name).as_str())
    }

    pub(super) fn serialize_option<S: Serializer>(
        name: &Option<PeerName>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match name {
            Some(n) => s.serialize_some(&NameText::of(n)),
            None => s.serialize_none(),
        }
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({{{}}})", self.as_uuid())
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.as_uuid())
    }
}

/// Text that is not a record id.
#[derive(Debug, thiserror::Error)]
#[error(
    "{input:?} is not a record id: a GUID like {{5ca1ab1e-0000-4000-8000-00000000beef}} is expected ({source})"
)]
pub struct RecordIdError {
    /// What was given (its first 64 characters).
    pub input: String,
    /// What the GUID parser found wrong.
    #[source]
    pub source: uuid::Error,
}

impl FromStr for RecordId {
    type Err = RecordIdError;
    fn from_str(s: &str) -> Result<Self, RecordIdError> {
        Uuid::parse_str(s.trim_matches(|c| c == '{' || c == '}'))
            .map(|u| RecordId(*u.as_bytes()))
            .map_err(|source| RecordIdError {
                input: s.chars().take(64).collect(),
                source,
            })
    }
}

/// Record flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordFlags(u8);

impl RecordFlags {
    /// The record is a deletion tombstone (set by the database, not by applications).
    pub const DELETED: u8 = 0x02;
    /// The record is re-published before it expires while its owner is online.
    pub const AUTOREFRESH: u8 = 0x01;

    /// Flags from bits; unknown bits are kept so they round-trip but fail validation.
    pub const fn from_bits(bits: u8) -> Self {
        RecordFlags(bits)
    }

    /// The bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the tombstone bit is set.
    pub const fn is_deleted(self) -> bool {
        self.0 & Self::DELETED != 0
    }

    /// Whether the autorefresh bit is set.
    pub const fn is_autorefresh(self) -> bool {
        self.0 & Self::AUTOREFRESH != 0
    }

    /// With the tombstone bit set or cleared.
    pub const fn with_deleted(self, on: bool) -> Self {
        if on {
            RecordFlags(self.0 | Self::DELETED)
        } else {
            RecordFlags(self.0 & !Self::DELETED)
        }
    }

    /// With the autorefresh bit set or cleared.
    pub const fn with_autorefresh(self, on: bool) -> Self {
        if on {
            RecordFlags(self.0 | Self::AUTOREFRESH)
        } else {
            RecordFlags(self.0 & !Self::AUTOREFRESH)
        }
    }

    /// Whether only known bits are set.
    pub const fn is_known(self) -> bool {
        self.0 & !(Self::DELETED | Self::AUTOREFRESH) == 0
    }
}

/// Who signed a record, and with which certificates.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecurityData {
    /// Serial number of the creator's GMC when it made version 1.
    #[serde(with = "bytes_field")]
    pub creator_serial: Vec<u8>,
    /// Serial number of the GMC whose key signed this version.
    #[serde(with = "bytes_field")]
    pub modifier_serial: Vec<u8>,
    /// Ed25519 signature by the modifier's GMC key over [`Record::signed_bytes`].
    pub signature: Signature,
}

impl fmt::Debug for SecurityData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityData")
            .field("creator_serial", &hex::encode(&self.creator_serial))
            .field("modifier_serial", &hex::encode(&self.modifier_serial))
            .field("signature", &self.signature)
            .finish()
    }
}

/// A record, exactly as it is signed, sent and stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Record {
    /// The record type.
    pub record_type: RecordType,
    /// The id (bound to `creator`).
    pub id: RecordId,
    /// 1 when created, +1 for every update or the delete.
    pub version: u32,
    /// Deleted, autorefresh.
    pub flags: RecordFlags,
    /// The member that created the record.
    #[serde(serialize_with = "name_field::serialize")]
    pub creator: PeerName,
    /// The member that made this version, when it is not version 1.
    #[serde(serialize_with = "name_field::serialize_option")]
    pub modified_by: Option<PeerName>,
    /// Attribute XML (`<attributes>…</attributes>`), or empty.
    pub attributes: String,
    /// When version 1 was made.
    pub created: Timestamp,
    /// When the record stops existing (expiry only ever grows across versions).
    pub expires: Timestamp,
    /// When this version was made.
    pub last_modified: Timestamp,
    /// Application data.
    #[serde(with = "bytes_field")]
    pub payload: Vec<u8>,
    /// Serials and signature.
    pub security: SecurityData,
}

/// Byte fields as serde byte strings. postcard writes a byte string exactly as it writes a
/// sequence of `u8` (a varint length, then the bytes), so the canonical encoding and the
/// signed bytes are unchanged; but the bytes are copied at once instead of going through one
/// serializer call per byte (validating and storing 1 KiB records in memory got 5.6% faster:
/// `record_db/validate_apply_1KiB_x1000_memory`).
mod bytes_field {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::ser::Serializer;

    pub(super) fn serialize<T, S>(v: &T, s: S) -> Result<S::Ok, S::Error>
    where
        T: AsRef<[u8]> + ?Sized,
        S: Serializer,
    {
        s.serialize_bytes(v.as_ref())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_bytes(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        // Self-describing formats may present bytes as a sequence of numbers.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

/// Domain separation for record signatures.
const SIGNING_CONTEXT: &[u8] = b"peergroup record signature v1\0";

impl Record {
    /// The member that signed this version: `modified_by`, else `creator`.
    pub fn signer(&self) -> &PeerName {
        self.modified_by.as_ref().unwrap_or(&self.creator)
    }

    /// Whether this is a deletion tombstone.
    pub fn is_deleted(&self) -> bool {
        self.flags.is_deleted()
    }

    /// The bytes the modifier signs: a context string, the group peer name, and the canonical
    /// encoding of every field but the signature.
    pub fn signed_bytes(&self, group: &PeerName) -> Vec<u8> {
        #[derive(Serialize)]
        struct Unsigned<'a> {
            #[serde(serialize_with = "name_field::serialize")]
            group: &'a PeerName,
            record_type: &'a RecordType,
            id: &'a RecordId,
            version: u32,
            flags: RecordFlags,
            #[serde(serialize_with = "name_field::serialize")]
            creator: &'a PeerName,
            #[serde(serialize_with = "name_field::serialize_option")]
            modified_by: &'a Option<PeerName>,
            attributes: &'a str,
            created: Timestamp,
            expires: Timestamp,
            last_modified: Timestamp,
            #[serde(serialize_with = "bytes_field::serialize")]
            payload: &'a [u8],
            #[serde(serialize_with = "bytes_field::serialize")]
            creator_serial: &'a [u8],
            #[serde(serialize_with = "bytes_field::serialize")]
            modifier_serial: &'a [u8],
        }
        let unsigned = Unsigned {
            group,
            record_type: &self.record_type,
            id: &self.id,
            version: self.version,
            flags: self.flags,
            creator: &self.creator,
            modified_by: &self.modified_by,
            attributes: &self.attributes,
            created: self.created,
            expires: self.expires,
            last_modified: self.last_modified,
            payload: &self.payload,
            creator_serial: &self.security.creator_serial,
            modifier_serial: &self.security.modifier_serial,
        };
        // One buffer, sized for the body (three names at most, with their lengths; serials,
        // times, ids and lengths within the last 128 bytes), after the context string.
        let mut out = Vec::with_capacity(
            SIGNING_CONTEXT.len()
                + self.payload.len()
                + self.attributes.len()
                + 3 * (PeerName::MAX_LEN + 2)
                + 128,
        );
        out.extend_from_slice(SIGNING_CONTEXT);
        // Serialising plain data into a Vec cannot fail.
        postcard::to_extend(&unsigned, out).unwrap_or_else(|_| SIGNING_CONTEXT.to_vec())
    }

    /// The 64-bit key that stands for this exact version in set reconciliation.
    pub fn item_key(&self) -> u64 {
        let mut buf = [0u8; 16 + 4 + 64];
        buf[..16].copy_from_slice(&self.id.0);
        buf[16..20].copy_from_slice(&self.version.to_be_bytes());
        buf[20..].copy_from_slice(self.security.signature.as_bytes());
        let d = sha256(&buf);
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    /// The 64-bit key of this exact record, every field included (the first 8 bytes of
    /// SHA-256 of its canonical encoding): what the deferred table holds a record by. Two
    /// records may share an item key — a forgery copies a version's id, version and
    /// signature with other content — and until the signer is known nothing tells which
    /// is genuine, so both are held.
    pub fn content_key(&self) -> u64 {
        content_key_of(&crate::codec::encode(self))
    }

    /// Size counted against the group's maximum record size: payload plus attributes.
    pub fn data_size(&self) -> usize {
        self.payload.len() + self.attributes.len()
    }
}

/// [`Record::content_key`] of a record from its canonical encoding.
pub(crate) fn content_key_of(encoded: &[u8]) -> u64 {
    let d = sha256(encoded);
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use peergroup_identity::{Classifier, KeyPair};

    fn peer(n: u64) -> PeerName {
        PeerName::new(
            &KeyPair::from_test_seed(n).public(),
            Classifier::new("p").unwrap(),
        )
    }

    #[test]
    fn ids_are_bound_to_their_creator() {
        let (a, b) = (peer(1), peer(2));
        let id = RecordId::random(&a).unwrap();
        assert!(id.is_bound_to(&a));
        assert!(!id.is_bound_to(&b));
        let mut forged = id;
        forged.0[15] ^= 1;
        assert!(!forged.is_bound_to(&a));
        assert_eq!(id.to_string().parse::<RecordId>().unwrap(), id);
    }

    /// The item key is part of the wire protocol (`IHave`, reconciliation) and of every
    /// stored database: SHA-256 of id ‖ version (big-endian) ‖ signature, first 8 bytes.
    #[test]
    fn item_key_is_pinned() {
        let r = Record {
            record_type: RecordType::PRESENCE,
            id: RecordId([1; 16]),
            version: 7,
            flags: RecordFlags::default(),
            creator: peer(1),
            modified_by: None,
            attributes: String::new(),
            created: Timestamp::from_millis(0),
            expires: Timestamp::from_millis(1),
            last_modified: Timestamp::from_millis(0),
            payload: vec![3; 10],
            security: SecurityData {
                creator_serial: vec![4],
                modifier_serial: vec![4],
                signature: Signature::from_bytes([2; 64]),
            },
        };
        assert_eq!(r.item_key(), 0xfe93_be53_a0a6_ec85);
    }

    /// Names are written through [`NameText`]: the same text, the same bytes, as the names'
    /// own `Display` and `Serialize`.
    #[test]
    fn name_text_is_the_display_form() {
        let long = format!("{}.{}", "ab".repeat(20), "x".repeat(Classifier::MAX_LEN));
        for n in [peer(1), peer(2), long.parse::<PeerName>().unwrap()] {
            let text = NameText::of(&n);
            assert_eq!(text.as_str(), n.to_string());
            assert_eq!(
                postcard::to_allocvec(&text).unwrap(),
                postcard::to_allocvec(&n).unwrap()
            );
        }
    }

    /// The canonical encoding and the signed bytes are what serializing the names through
    /// their own `Serialize` gave.
    #[test]
    fn encoding_and_signed_bytes_are_unchanged() {
        #[derive(Serialize)]
        struct Plain<'a> {
            record_type: &'a RecordType,
            id: &'a RecordId,
            version: u32,
            flags: RecordFlags,
            creator: &'a PeerName,
            modified_by: &'a Option<PeerName>,
            attributes: &'a str,
            created: Timestamp,
            expires: Timestamp,
            last_modified: Timestamp,
            payload: &'a [u8],
            creator_serial: &'a [u8],
            modifier_serial: &'a [u8],
        }
        fn plain(r: &Record) -> Plain<'_> {
            Plain {
                record_type: &r.record_type,
                id: &r.id,
                version: r.version,
                flags: r.flags,
                creator: &r.creator,
                modified_by: &r.modified_by,
                attributes: &r.attributes,
                created: r.created,
                expires: r.expires,
                last_modified: r.last_modified,
                payload: &r.payload,
                creator_serial: &r.security.creator_serial,
                modifier_serial: &r.security.modifier_serial,
            }
        }
        let group = peer(9);
        for modified_by in [None, Some(peer(2))] {
            let r = Record {
                record_type: RecordType::PRESENCE,
                id: RecordId::derive(&peer(1), [5; 8]),
                version: if modified_by.is_some() { 2 } else { 1 },
                flags: RecordFlags::default(),
                creator: peer(1),
                modified_by,
                attributes: "<attributes/>".into(),
                created: Timestamp::from_millis(10),
                expires: Timestamp::from_millis(1000),
                last_modified: Timestamp::from_millis(20),
                payload: vec![3; 300],
                security: SecurityData {
                    creator_serial: vec![4],
                    modifier_serial: vec![6, 7],
                    signature: Signature::from_bytes([2; 64]),
                },
            };
            let p = plain(&r);
            let mut encoded = vec![crate::codec::FORMAT_VERSION];
            encoded.extend(postcard::to_allocvec(&(&p, &r.security.signature)).unwrap());
            assert_eq!(crate::codec::encode(&r), encoded);
            assert_eq!(crate::codec::encoded_len(&r), encoded.len());
            let mut signed = SIGNING_CONTEXT.to_vec();
            signed.extend(postcard::to_allocvec(&(&group, &p)).unwrap());
            assert_eq!(r.signed_bytes(&group), signed);
            // The id binding hashes the creator's text.
            let h = sha256(r.creator.to_string().as_bytes());
            assert_eq!(creator_hash(&r.creator), h[..8]);
        }
    }

    #[test]
    fn reserved_types() {
        for t in [
            RecordType::GROUP_PROPERTIES,
            RecordType::MEMBERSHIP,
            RecordType::REVOCATION,
            RecordType::PRESENCE,
        ] {
            assert!(t.is_reserved());
        }
        assert!(
            !"4f0e1c1a-55b2-4e0c-9d8e-1a2b3c4d5e6f"
                .parse::<RecordType>()
                .unwrap()
                .is_reserved()
        );
        assert!(RecordType::MEMBERSHIP.is_security() && !RecordType::PRESENCE.is_security());
    }

    #[test]
    fn byte_fields_encode_as_a_sequence_of_u8_would() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Plain(Vec<u8>);
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Fast(#[serde(with = "bytes_field")] Vec<u8>);
        for len in [0usize, 1, 127, 128, 300, 16_384, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let plain = postcard::to_allocvec(&Plain(bytes.clone())).unwrap();
            let fast = postcard::to_allocvec(&Fast(bytes.clone())).unwrap();
            assert_eq!(plain, fast, "length {len}");
            assert_eq!(postcard::from_bytes::<Fast>(&plain).unwrap(), Fast(bytes));
        }
    }

    #[test]
    fn flags() {
        let f = RecordFlags::default()
            .with_deleted(true)
            .with_autorefresh(true);
        assert!(f.is_deleted() && f.is_autorefresh() && f.is_known());
        assert!(!f.with_deleted(false).is_deleted());
        assert!(!RecordFlags::from_bits(0x80).is_known());
    }
}

#[cfg(test)]
mod record_type_tests {
    use super::*;

    #[test]
    fn a_record_type_that_is_not_a_guid_says_what_is_expected() {
        let e = "hello".parse::<RecordType>().unwrap_err().to_string();
        assert!(
            e.starts_with("\"hello\" is not a record type: a GUID like"),
            "{e}"
        );
        let e = "hello".parse::<RecordId>().unwrap_err().to_string();
        assert!(
            e.starts_with("\"hello\" is not a record id: a GUID like"),
            "{e}"
        );
        let t: RecordType = "{5ca1ab1e-0000-4000-8000-00000000beef}".parse().unwrap();
        assert_eq!(t.to_string(), "{5ca1ab1e-0000-4000-8000-00000000beef}");
        assert_eq!(RecordType::PRESENCE.reserved_name(), Some("presence"));
        assert_eq!(t.reserved_name(), None);
    }
}
