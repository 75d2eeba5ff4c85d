//! A fixed group for the structured fuzz targets, so fuzz input becomes validly signed
//! records: a group root and members on deterministic test keys, and the pieces an input
//! picks from (who signs, what type, attributes, payload, lifetime) with how each becomes a
//! signed [`Record`] — or a deliberately broken one.
//!
//! Certificates get random serial numbers when they are issued (once per process), so a
//! crash that depends on the order of two serials may need a few runs to reproduce.

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
use peergroup_record_db::members::MemberIndex;
use peergroup_record_db::search::Attributes;
use peergroup_record_db::{Record, RecordFlags, RecordId, RecordType, SecurityData};

/// The instant every certificate starts; authoring clocks start a minute later.
pub(super) const T0: Timestamp = Timestamp::from_secs(1_800_000_000);
/// How long Dave's certificate lasts (the others last a year).
pub(super) const DAVE_LIFETIME: Duration = Duration::from_secs(600);

/// Who signs (or is the subject of) a record.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Who {
    /// The group creator, an admin issued by the root; known to every replica from the start.
    Admin,
    /// A member issued by the admin; known from the start.
    Alice,
    /// An inviting member issued by the admin; learned from membership records only.
    Bob,
    /// A member issued by Bob (a chain of three); learned from membership records only.
    Carol,
    /// A member whose certificate ends ten minutes after [`T0`]; known from the start.
    Dave,
    /// A second certificate for Alice's key and peer name; learned from records only.
    Alice2,
    /// An admin of another group: never a member here.
    Eve,
}

impl Who {
    pub(super) const ALL: [Who; 7] = [
        Who::Admin,
        Who::Alice,
        Who::Bob,
        Who::Carol,
        Who::Dave,
        Who::Alice2,
        Who::Eve,
    ];
}

/// One identity with its certificate chain.
pub(super) struct Member {
    pub(super) key: KeyPair,
    pub(super) chain: CertChain,
}

impl Member {
    pub(super) fn peer(&self) -> &PeerName {
        self.chain.leaf().subject_peer()
    }

    pub(super) fn serial(&self) -> Vec<u8> {
        self.chain.leaf().serial().to_vec()
    }

    pub(super) fn not_after(&self) -> Timestamp {
        self.chain.leaf().not_after()
    }
}

/// The group, its members, and what every replica knows at the start.
pub(super) struct Fixture {
    pub(super) root: CertChain,
    pub(super) group: PeerName,
    pub(super) other_group: PeerName,
    members: Vec<Member>,
    /// Admin, Alice and Dave, validated once.
    pub(super) known: MemberIndex,
    /// Three application record types.
    pub(super) app_types: [RecordType; 3],
    /// A reserved type with no meaning.
    pub(super) reserved_type: RecordType,
}

impl Fixture {
    pub(super) fn get() -> Option<&'static Fixture> {
        static F: OnceLock<Option<Fixture>> = OnceLock::new();
        F.get_or_init(Fixture::build).as_ref()
    }

    pub(super) fn member(&self, who: Who) -> &Member {
        let i = Who::ALL.iter().position(|w| *w == who).unwrap_or(0);
        &self.members[i]
    }

    /// The member whose certificate has `serial`.
    pub(super) fn by_serial(&self, serial: &[u8]) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.chain.leaf().serial() == serial)
    }

    fn build() -> Option<Fixture> {
        let key = KeyPair::from_test_seed;
        let name =
            |n: u64, c: &str| Some(PeerName::new(&key(n).public(), Classifier::new(c).ok()?));
        let admin_peer = name(1, "admin")?;
        let root = GroupRoot::with_key(
            key(100),
            "Fuzz group",
            Classifier::new("fuzz").ok()?,
            &admin_peer,
            T0,
        )
        .ok()?;
        let year = T0.saturating_add(Duration::from_secs(365 * 86_400));
        let request = |n: u64, peer: &PeerName, role, not_after| MemberRequest {
            subject_key: key(n).public(),
            subject_peer: peer.clone(),
            subject_friendly_name: peer.classifier().to_string(),
            roles: Roles::one(role),
            classifiers: vec![],
            not_before: T0,
            not_after,
        };
        let alice_peer = name(2, "alice")?;
        let admin = root
            .issue(&request(1, &admin_peer, Role::Admin, year))
            .ok()?;
        let alice = admin
            .issue(&key(1), &request(2, &alice_peer, Role::Member, year))
            .ok()?;
        let bob_peer = name(3, "bob")?;
        let bob = admin
            .issue(&key(1), &request(3, &bob_peer, Role::InvitingMember, year))
            .ok()?;
        let carol = bob
            .issue(&key(3), &request(4, &name(4, "carol")?, Role::Member, year))
            .ok()?;
        let dave_end = T0.saturating_add(DAVE_LIFETIME);
        let dave = admin
            .issue(
                &key(1),
                &request(5, &name(5, "dave")?, Role::Member, dave_end),
            )
            .ok()?;
        let alice2 = admin
            .issue(&key(1), &request(2, &alice_peer, Role::Member, year))
            .ok()?;
        let eve_peer = name(6, "eve")?;
        let other = GroupRoot::with_key(
            key(200),
            "Other group",
            Classifier::new("other").ok()?,
            &eve_peer,
            T0,
        )
        .ok()?;
        let eve = other
            .issue(&request(6, &eve_peer, Role::Admin, year))
            .ok()?;
        let group = root.group().clone();
        let mut known = MemberIndex::default();
        for chain in [&admin, &alice, &dave] {
            known.insert(&group, chain).ok()?;
        }
        let members = [
            (1, admin),
            (2, alice),
            (3, bob),
            (4, carol),
            (5, dave),
            (2, alice2),
            (6, eve),
        ]
        .into_iter()
        .map(|(n, chain)| Member { key: key(n), chain })
        .collect();
        let parse = |s: &str| s.parse::<RecordType>().ok();
        Some(Fixture {
            root: root.chain().clone(),
            group,
            other_group: other.group().clone(),
            members,
            known,
            app_types: [
                parse("5eed0001-0000-4000-8000-000000000001")?,
                parse("5eed0002-0000-4000-8000-000000000002")?,
                parse("5eed0003-0000-4000-8000-000000000003")?,
            ],
            reserved_type: parse("09000000-0000-0000-0000-000000000000")?,
        })
    }
}

/// Signs `record` as `key` for `group`.
pub(super) fn sign(record: &mut Record, key: &KeyPair, group: &PeerName) {
    record.security.signature = key.sign(&record.signed_bytes(group));
}

/// Application record types, and two reserved ones (presence, and one nobody may use).
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(super) enum Kind {
    /// One of three application types.
    App(u8),
    /// A presence record.
    Presence,
    /// A reserved type with no meaning (always refused).
    Reserved,
}

impl Kind {
    pub(super) fn record_type(self, f: &Fixture) -> RecordType {
        match self {
            Kind::App(n) => f.app_types[usize::from(n) % f.app_types.len()],
            Kind::Presence => RecordType::PRESENCE,
            Kind::Reserved => f.reserved_type,
        }
    }
}

/// Short text from the input (at most 24 characters).
#[derive(Clone, Debug)]
pub(super) struct Text(pub(super) String);

impl<'a> Arbitrary<'a> for Text {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let s: &str = u.arbitrary()?;
        Ok(Text(s.chars().take(24).collect()))
    }
}

/// A record's attributes.
#[derive(Arbitrary, Clone, Debug)]
pub(super) enum Attrs {
    /// None.
    None,
    /// One integer attribute.
    Int(u8, i32),
    /// One string attribute (escaped as XML needs).
    Text(u8, Text),
    /// Arbitrary text as the attribute XML (seldom valid).
    Raw(Text),
}

impl Attrs {
    pub(super) fn xml(&self) -> String {
        const NAMES: [&str; 3] = ["Topic", "Count", "Owner"];
        let name = |n: &u8| NAMES[usize::from(*n) % NAMES.len()];
        let built = match self {
            Attrs::None => return String::new(),
            Attrs::Int(n, v) => Attributes::new().with_int(name(n), i64::from(*v)),
            Attrs::Text(n, t) => Attributes::new().with_string(name(n), &t.0),
            Attrs::Raw(t) => return t.0.clone(),
        };
        built.map(|a| a.to_xml()).unwrap_or_default()
    }
}

/// A record's payload.
#[derive(Arbitrary, Clone, Debug)]
pub(super) enum Payload {
    /// A few bytes.
    Bytes(Vec<u8>),
    /// `len % 3000` copies of a byte: around the smallest maximum record size (1 KiB).
    Fill(u16, u8),
}

impl Payload {
    pub(super) fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Bytes(b) => b.iter().copied().take(64).collect(),
            Payload::Fill(len, b) => vec![*b; usize::from(*len) % 3000],
        }
    }
}

/// How long a record lives from when it is signed.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(super) enum Life {
    /// Seconds.
    Secs(u16),
    /// Hours.
    Hours(u8),
    /// Until the signer's certificate ends.
    CertEnd,
    /// One second past the end of the signer's certificate (outside its membership).
    PastCert,
}

impl Life {
    pub(super) fn expires(self, at: Timestamp, signer: &Member) -> Timestamp {
        match self {
            Life::Secs(s) => at.saturating_add(Duration::from_secs(u64::from(s))),
            Life::Hours(h) => at.saturating_add(Duration::from_secs(3600 * u64::from(h))),
            Life::CertEnd => signer.not_after(),
            Life::PastCert => signer.not_after().saturating_add(Duration::from_secs(1)),
        }
    }
}

/// A fresh version 1 record by `by`, signed.
pub(super) fn new_record(
    f: &Fixture,
    by: &Member,
    record_type: RecordType,
    nonce: [u8; 8],
    at: Timestamp,
    expires: Timestamp,
) -> Record {
    let mut r = Record {
        record_type,
        id: RecordId::derive(by.peer(), nonce),
        version: 1,
        flags: RecordFlags::default(),
        creator: by.peer().clone(),
        modified_by: None,
        attributes: String::new(),
        created: at,
        expires,
        last_modified: at,
        payload: Vec::new(),
        security: SecurityData {
            creator_serial: by.serial(),
            modifier_serial: by.serial(),
            signature: peergroup_identity::Signature::from_bytes([0; 64]),
        },
    };
    sign(&mut r, &by.key, &f.group);
    r
}

/// The next version of `base` by `by` at `at` (not yet signed: the caller changes it, then
/// signs).
pub(super) fn next_version(base: &Record, by: &Member, step: u8, at: Timestamp) -> Option<Record> {
    let mut r = base.clone();
    r.version = base.version.checked_add(1 + u32::from(step % 4))?;
    r.modified_by = Some(by.peer().clone());
    r.security.modifier_serial = by.serial();
    r.last_modified = at.max(base.last_modified);
    Some(r)
}

/// Ways to break a signed record. Each makes a record no replica may ever store.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(super) enum Corruption {
    /// Flip a bit of the signature.
    SignatureBit(u8),
    /// Change a payload byte after signing.
    PayloadByte(u8),
    /// Change the attributes after signing.
    Attributes,
    /// Move the last-modified time after signing.
    LastModified,
    /// Move the expiry after signing.
    Expires,
    /// Bump the version after signing.
    Version,
    /// Sign with another member's key (the serial still names the original signer).
    WrongKey(Who),
    /// Sign for another group.
    OtherGroup,
    /// Name another member as the signer, signed by the original one.
    ClaimSigner(Who),
    /// Name another member's certificate serial, keeping the signature.
    SerialOf(Who),
    /// Signed by Dave a second after his certificate ended.
    ExpiredChain,
    /// Signed by Alice a second before her certificate started.
    NotYetValid,
}

impl Corruption {
    /// `base` broken this way, or `None` when this way would leave it valid or unchanged.
    pub(super) fn apply(self, f: &Fixture, base: &Record, nonce: u8) -> Option<Record> {
        let mut r = base.clone();
        let signer = f.by_serial(&base.security.modifier_serial);
        match self {
            Corruption::SignatureBit(i) => {
                let mut sig = *r.security.signature.as_bytes();
                sig[usize::from(i) % 64] ^= 1 << (i % 8);
                r.security.signature = peergroup_identity::Signature::from_bytes(sig);
            }
            Corruption::PayloadByte(i) => match r.payload.len() {
                0 => r.payload.push(i),
                n => r.payload[usize::from(i) % n] ^= 0x55,
            },
            Corruption::Attributes => r.attributes.push(' '),
            Corruption::LastModified => {
                r.last_modified = r.last_modified.saturating_add(Duration::from_millis(1));
            }
            Corruption::Expires => r.expires = r.expires.saturating_add(Duration::from_millis(1)),
            Corruption::Version => r.version = r.version.checked_add(1)?,
            Corruption::WrongKey(who) => {
                let other = f.member(who);
                if signer.is_some_and(|s| s.key.public() == other.key.public()) {
                    return None;
                }
                sign(&mut r, &other.key, &f.group);
            }
            Corruption::OtherGroup => sign(&mut r, &signer?.key, &f.other_group),
            Corruption::ClaimSigner(who) => {
                let other = f.member(who).peer().clone();
                if &other == r.signer() {
                    return None;
                }
                match r.modified_by {
                    Some(_) => r.modified_by = Some(other),
                    None => r.creator = other,
                }
                if let Some(s) = signer {
                    sign(&mut r, &s.key, &f.group);
                }
            }
            Corruption::SerialOf(who) => {
                r.security.modifier_serial = f.member(who).serial();
                if r.version == 1 {
                    r.security.creator_serial = f.member(who).serial();
                }
            }
            Corruption::ExpiredChain | Corruption::NotYetValid => {
                let (who, at) = match self {
                    Corruption::ExpiredChain => (
                        Who::Dave,
                        T0.saturating_add(DAVE_LIFETIME)
                            .saturating_add(Duration::from_secs(1)),
                    ),
                    _ => (Who::Alice, T0.saturating_sub(Duration::from_secs(1))),
                };
                let by = f.member(who);
                let mut out = new_record(
                    f,
                    by,
                    base.record_type,
                    [b'x', nonce, 0, 0, 0, 0, 0, 1],
                    at,
                    at.saturating_add(Duration::from_secs(86_400 * 30)),
                );
                out.payload = base.payload.clone();
                sign(&mut out, &by.key, &f.group);
                return Some(out);
            }
        }
        (r != *base).then_some(r)
    }
}
