//! Certificate chains GRC → (issuing GMCs…) → leaf GMC: encoding, issuance, validation.

use std::collections::HashSet;

use peergroup_identity::der::{self, Reader, tag};
use peergroup_identity::x509::Template;
use peergroup_identity::{KeyPair, PeerName, PublicKey, Timestamp};

use crate::cert::{GroupCertificate, MemberRequest, member_template, root_template};
use crate::error::{ChainError, Error};
use crate::revocation::RevocationSet;
use crate::role::{Role, Roles};

/// The most certificates a chain may hold (as Windows).
pub const MAX_CHAIN_LEN: usize = 25;
/// The largest encoded chain we read, in bytes.
pub const MAX_CHAIN_BYTES: usize = 256 * 1024;

/// PKCS#7 signedData 1.2.840.113549.1.7.2 and data 1.2.840.113549.1.7.1 (OID content octets).
///
/// Written and read here, not with RustCrypto's `cms` crate: a certs-only SignedData is five
/// fixed fields around the certificates, while `cms` would decode each certificate with
/// `x509-cert`, a second X.509 parser beside `x509-parser` (which checks them), and bring the
/// `der`/`spki`/`x509-cert` stack into every build for it. `openssl pkcs7 -print_certs` reads
/// what [`CertChain::to_pkcs7`] writes (`cargo xtask interop`), and the reader takes exactly that
/// shape, bounded by [`MAX_CHAIN_BYTES`] and [`MAX_CHAIN_LEN`] (fuzz target `cert_chain`).
const OID_SIGNED_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];

/// A chain of group certificates, root first. Not yet trusted: see [`CertChain::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertChain {
    certs: Vec<GroupCertificate>,
}

impl CertChain {
    /// Parses a list of DER certificates (root first).
    pub fn from_ders<B: AsRef<[u8]>>(ders: &[B]) -> Result<Self, ChainError> {
        if ders.is_empty() {
            return Err(ChainError::Empty);
        }
        if ders.len() > MAX_CHAIN_LEN {
            return Err(ChainError::TooLong(ders.len()));
        }
        let certs = ders
            .iter()
            .enumerate()
            .map(|(index, d)| {
                GroupCertificate::parse(d.as_ref())
                    .map_err(|reason| ChainError::Malformed { index, reason })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CertChain { certs })
    }

    /// The certificates, root first.
    pub fn certificates(&self) -> &[GroupCertificate] {
        &self.certs
    }

    /// The group root certificate (first).
    pub fn root(&self) -> &GroupCertificate {
        &self.certs[0]
    }

    /// The last certificate: the member this chain speaks for.
    pub fn leaf(&self) -> &GroupCertificate {
        &self.certs[self.certs.len() - 1]
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Always false: a chain holds at least the root.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The group the root names.
    pub fn group(&self) -> &PeerName {
        self.root().group()
    }

    /// Encodes the chain as a PKCS#7 (RFC 2315) certs-only SignedData, root first, the
    /// format `openssl pkcs7 -inform DER -print_certs` reads.
    pub fn to_pkcs7(&self) -> Vec<u8> {
        let certs: Vec<&[u8]> = self.certs.iter().map(GroupCertificate::der).collect();
        let signed_data = der::sequence(&[
            &der::integer(1),
            &der::set(&[]),
            &der::sequence(&[&der::oid(&OID_DATA)]),
            &der::tlv(0xa0, &certs.concat()),
            &der::set(&[]),
        ]);
        der::sequence(&[&der::oid(&OID_SIGNED_DATA), &der::explicit(0, &signed_data)])
    }

    /// Reads a PKCS#7 certs-only SignedData written by [`CertChain::to_pkcs7`].
    pub fn from_pkcs7(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_CHAIN_BYTES {
            return Err(Error::MalformedChain(format!(
                "{} bytes is over the limit",
                bytes.len()
            )));
        }
        let bad = |e: peergroup_identity::Error| Error::MalformedChain(e.to_string());
        let mut outer = Reader::new(bytes);
        let mut ci = Reader::new(outer.read(tag::SEQUENCE).map_err(bad)?);
        outer.finish().map_err(bad)?;
        if ci.read(tag::OID).map_err(bad)? != OID_SIGNED_DATA {
            return Err(Error::MalformedChain("not PKCS#7 signedData".into()));
        }
        let mut explicit = Reader::new(ci.read(0xa0).map_err(bad)?);
        ci.finish().map_err(bad)?;
        let mut sd = Reader::new(explicit.read(tag::SEQUENCE).map_err(bad)?);
        explicit.finish().map_err(bad)?;
        sd.read(tag::INTEGER).map_err(bad)?;
        sd.read(tag::SET).map_err(bad)?;
        sd.read(tag::SEQUENCE).map_err(bad)?;
        let mut list = Reader::new(sd.read(0xa0).map_err(bad)?);
        if sd.peek_tag() == Some(0xa1) {
            sd.read(0xa1).map_err(bad)?;
        }
        sd.read(tag::SET).map_err(bad)?;
        sd.finish().map_err(bad)?;
        let mut ders = Vec::new();
        while !list.is_empty() {
            if ders.len() == MAX_CHAIN_LEN {
                return Err(ChainError::TooLong(ders.len() + 1).into());
            }
            ders.push(list.read_tlv(tag::SEQUENCE).map_err(bad)?);
        }
        Ok(CertChain::from_ders(&ders)?)
    }

    /// Issues a member certificate signed by this chain's leaf and returns the new chain.
    ///
    /// `issuer_key` must be the leaf's key; the leaf must be allowed to grant every requested
    /// role; the validity is clipped to the issuer's.
    pub fn issue(&self, issuer_key: &KeyPair, req: &MemberRequest) -> Result<CertChain, Error> {
        self.issue_with_serial(issuer_key, req, Template::random_serial()?)
    }

    /// Like [`CertChain::issue`] with a chosen serial number (its first bit is cleared and
    /// its lowest set, as for random ones), for callers that must be reproducible: the
    /// simulator derives every serial from its seed. A serial must not repeat under one
    /// issuer; [`CertChain::issue`] takes 127 random bits.
    pub fn issue_with_serial(
        &self,
        issuer_key: &KeyPair,
        req: &MemberRequest,
        serial: [u8; 16],
    ) -> Result<CertChain, Error> {
        let leaf = self.leaf();
        if leaf.public_key() != &issuer_key.public() {
            return Err(Error::KeyMismatch);
        }
        if self.len() >= MAX_CHAIN_LEN {
            return Err(ChainError::TooLong(self.len() + 1).into());
        }
        for role in req.roles.iter() {
            if !leaf.is_root() && !leaf.roles().can_issue(role) {
                return Err(Error::NotAuthorized(format!(
                    "a holder of {} may not grant the {role} role",
                    leaf.roles()
                )));
            }
        }
        let der = member_template(leaf, req, serial)?.sign(issuer_key);
        let cert = GroupCertificate::parse(&der).map_err(|reason| ChainError::Malformed {
            index: self.len(),
            reason,
        })?;
        let mut certs = self.certs.clone();
        certs.push(cert);
        Ok(CertChain { certs })
    }

    /// Checks every rule of a chain for `group` at `now`, with the revocations known.
    ///
    /// The root must be the group's GRC (self-signed, its key owning the group peer name);
    /// each later certificate a GMC signed by its parent, naming the same group, holding only
    /// roles its parent may grant, valid inside its parent's validity and at `now`; no key
    /// twice; at most 25 certificates; nothing revoked; and, when `leaf_key` is given, the
    /// leaf certifies that key (the TLS peer's key, say).
    pub fn validate(
        &self,
        group: &PeerName,
        now: Timestamp,
        revocations: &RevocationSet,
        leaf_key: Option<&PublicKey>,
    ) -> Result<ValidatedChain, ChainError> {
        self.check_structure_for(group)?;
        for (index, cert) in self.certs.iter().enumerate() {
            if now < cert.not_before() {
                return Err(ChainError::NotYetValid {
                    index,
                    not_before: cert.not_before(),
                });
            }
            if now > cert.not_after() {
                return Err(ChainError::Expired {
                    index,
                    not_after: cert.not_after(),
                });
            }
            if let Some(what) = revocations.revokes(cert) {
                return Err(ChainError::Revoked { index, what });
            }
        }
        let leaf = self.leaf();
        if let Some(k) = leaf_key
            && leaf.public_key() != k
        {
            return Err(ChainError::LeafKeyMismatch);
        }
        Ok(ValidatedChain {
            chain: self.clone(),
        })
    }

    /// Checks every rule that depends neither on time nor on revocations, for the group the
    /// root names: what can be known about a chain before deciding when it is used.
    pub fn check_structure(&self) -> Result<(), ChainError> {
        self.check_structure_for(self.group())
    }

    /// The rules that do not depend on time or revocations.
    fn check_structure_for(&self, group: &PeerName) -> Result<(), ChainError> {
        if self.certs.is_empty() {
            return Err(ChainError::Empty);
        }
        if self.certs.len() > MAX_CHAIN_LEN {
            return Err(ChainError::TooLong(self.certs.len()));
        }
        let root = self.root();
        if !root.is_root() {
            return Err(ChainError::RootNotGroupRoot);
        }
        if root.group() != group || root.subject_peer() != group {
            return Err(ChainError::WrongGroup {
                index: 0,
                expected: group.to_string(),
                found: root.group().to_string(),
            });
        }
        if !group.is_owned_by(root.public_key()) {
            return Err(ChainError::RootKeyMismatch);
        }
        if root.certificate().issuer() != root.certificate().subject()
            || root
                .certificate()
                .verify_signed_by(root.public_key())
                .is_err()
        {
            return Err(ChainError::RootNotSelfSigned);
        }
        let mut keys = HashSet::from([*root.public_key()]);
        for (index, pair) in self.certs.windows(2).enumerate() {
            let (parent, child) = (&pair[0], &pair[1]);
            let index = index + 1;
            if child.is_root() {
                return Err(ChainError::NotMemberCertificate(index));
            }
            if child.group() != group {
                return Err(ChainError::WrongGroup {
                    index,
                    expected: group.to_string(),
                    found: child.group().to_string(),
                });
            }
            if child.certificate().issuer() != parent.certificate().subject() {
                return Err(ChainError::IssuerNameMismatch(index));
            }
            if child
                .certificate()
                .verify_signed_by(parent.public_key())
                .is_err()
            {
                return Err(ChainError::BadSignature(index));
            }
            if !parent.is_root() && (!parent.roles().is_issuer() || !parent.certificate().is_ca()) {
                return Err(ChainError::IssuerMayNotIssue(index));
            }
            if let Some(role) = child
                .roles()
                .iter()
                .find(|r| !parent.is_root() && !parent.roles().can_issue(*r))
            {
                return Err(ChainError::RoleEscalation { index, role });
            }
            if child.certificate().is_ca() != child.roles().is_issuer() {
                return Err(ChainError::CaFlagMismatch(index));
            }
            if child.not_before() < parent.not_before() || child.not_after() > parent.not_after() {
                return Err(ChainError::ValidityNotNested(index));
            }
            if !keys.insert(*child.public_key()) {
                return Err(ChainError::Cycle(index));
            }
        }
        if self.certs.len() > 1
            && !self
                .leaf()
                .subject_peer()
                .is_owned_by(self.leaf().public_key())
        {
            return Err(ChainError::LeafPeerNameMismatch);
        }
        Ok(())
    }
}

/// A chain that passed [`CertChain::validate`]: what the rest of the code may trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedChain {
    chain: CertChain,
}

impl ValidatedChain {
    /// The chain.
    pub fn chain(&self) -> &CertChain {
        &self.chain
    }

    /// The group.
    pub fn group(&self) -> &PeerName {
        self.chain.group()
    }

    /// Whether the leaf is the group root itself (the holder of the group key).
    pub fn is_group_root(&self) -> bool {
        self.chain.len() == 1
    }

    /// The peer this chain speaks for: the member's identity (or the group for the root).
    pub fn peer(&self) -> &PeerName {
        self.chain.leaf().subject_peer()
    }

    /// The leaf's key.
    pub fn key(&self) -> &PublicKey {
        self.chain.leaf().public_key()
    }

    /// The leaf's roles (the root holds every power but no role).
    pub fn roles(&self) -> Roles {
        if self.is_group_root() {
            Role::ALL.into_iter().collect()
        } else {
            self.chain.leaf().roles()
        }
    }

    /// The group creator's identity peer name (from the root certificate).
    pub fn creator(&self) -> Option<&PeerName> {
        self.chain.root().creator()
    }

    /// When the leaf's membership ends.
    pub fn not_after(&self) -> Timestamp {
        self.chain.leaf().not_after()
    }

    /// When the leaf's membership starts.
    pub fn not_before(&self) -> Timestamp {
        self.chain.leaf().not_before()
    }
}

/// A group's root: the group key pair and its self-signed GRC.
#[derive(Debug)]
pub struct GroupRoot {
    key: KeyPair,
    chain: CertChain,
}

impl GroupRoot {
    /// Creates a group: a new key pair, a group peer name under `classifier`, and the GRC
    /// naming `creator` (the creator's identity peer name).
    pub fn create(
        friendly_name: &str,
        classifier: peergroup_identity::Classifier,
        creator: &PeerName,
        now: Timestamp,
    ) -> Result<Self, Error> {
        let key = KeyPair::generate()?;
        Self::with_key(key, friendly_name, classifier, creator, now)
    }

    /// Like [`GroupRoot::create`] with a given key (tests use deterministic keys).
    pub fn with_key(
        key: KeyPair,
        friendly_name: &str,
        classifier: peergroup_identity::Classifier,
        creator: &PeerName,
        now: Timestamp,
    ) -> Result<Self, Error> {
        Self::with_key_and_serial(
            key,
            friendly_name,
            classifier,
            creator,
            now,
            Template::random_serial()?,
        )
    }

    /// Like [`GroupRoot::with_key`] with a chosen serial number (see
    /// [`CertChain::issue_with_serial`]): the simulator's groups are reproducible from a seed.
    pub fn with_key_and_serial(
        key: KeyPair,
        friendly_name: &str,
        classifier: peergroup_identity::Classifier,
        creator: &PeerName,
        now: Timestamp,
        serial: [u8; 16],
    ) -> Result<Self, Error> {
        let group = PeerName::new(&key.public(), classifier);
        let der = root_template(&key, &group, friendly_name, creator, now, serial)?.sign(&key);
        let chain = CertChain::from_ders(&[der])?;
        Ok(GroupRoot { key, chain })
    }

    /// Pairs a stored group key with its GRC.
    pub fn from_parts(key: KeyPair, chain: CertChain) -> Result<Self, Error> {
        if chain.len() != 1 || chain.root().public_key() != &key.public() {
            return Err(Error::KeyMismatch);
        }
        Ok(GroupRoot { key, chain })
    }

    /// The group peer name.
    pub fn group(&self) -> &PeerName {
        self.chain.group()
    }

    /// The GRC alone, as a chain.
    pub fn chain(&self) -> &CertChain {
        &self.chain
    }

    /// The group key.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// Issues a member certificate directly under the root.
    pub fn issue(&self, req: &MemberRequest) -> Result<CertChain, Error> {
        self.chain.issue(&self.key, req)
    }
}
