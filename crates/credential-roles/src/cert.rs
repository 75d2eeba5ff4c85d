//! Group certificates: the group root certificate (GRC) and group member certificates (GMC).

use std::time::Duration;

use peergroup_identity::x509::{Certificate, Extension, Name, Template};
use peergroup_identity::{Classifier, KeyPair, PeerName, PublicKey, Timestamp};

use crate::error::Error;
use crate::ext::{self, CertType};
use crate::role::Roles;

/// "Infinite" validity, as Windows: a thousand years.
pub const INFINITE: Duration = Duration::from_secs(1000 * 365 * 86_400);

/// The classifier every member certificate carries unless told otherwise (as Windows).
pub const DEFAULT_MEMBER_CLASSIFIER: &str = "participant";

/// A parsed GRC or GMC: the certificate and what our extensions say.
///
/// Parsing checks only structure. Whether it is trusted is decided by
/// [`CertChain::validate`](crate::CertChain::validate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCertificate {
    cert: Certificate,
    kind: CertType,
    group: PeerName,
    subject_peer: PeerName,
    roles: Roles,
    classifiers: Vec<Classifier>,
    creator: Option<PeerName>,
}

impl GroupCertificate {
    /// Parses DER and reads our extensions.
    pub fn parse(der: &[u8]) -> Result<Self, String> {
        let cert = Certificate::parse(der).map_err(|e| e.to_string())?;
        Self::from_certificate(cert)
    }

    /// Reads our extensions from an already parsed certificate.
    pub fn from_certificate(cert: Certificate) -> Result<Self, String> {
        let kind = ext::read_cert_type(&cert)?.ok_or("not a group certificate (no type)")?;
        let group = ext::read_peer_name(&cert, ext::GROUP_PEER_NAME, "group peer name")?
            .ok_or("no group peer name")?;
        let subject_peer: PeerName = cert
            .subject()
            .peer_name
            .as_deref()
            .ok_or("subject has no peer name")?
            .parse()
            .map_err(|e| format!("subject peer name: {e}"))?;
        let roles = ext::read_roles(&cert)?;
        let classifiers = ext::read_classifiers(&cert)?;
        let creator = ext::read_peer_name(&cert, ext::CREATOR, "creator")?;
        match kind {
            CertType::Root if !roles.is_empty() => {
                return Err("a root certificate holds no roles".into());
            }
            CertType::Root if creator.is_none() => {
                return Err("root certificate names no creator".into());
            }
            CertType::Member if roles.is_empty() => {
                return Err("member certificate holds no roles".into());
            }
            CertType::Member if creator.is_some() => {
                return Err("member certificate names a creator".into());
            }
            _ => {}
        }
        if !cert.public_key().is_strong() {
            return Err("weak or invalid public key".into());
        }
        Ok(GroupCertificate {
            cert,
            kind,
            group,
            subject_peer,
            roles,
            classifiers,
            creator,
        })
    }

    /// The underlying certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// DER bytes.
    pub fn der(&self) -> &[u8] {
        self.cert.der()
    }

    /// Whether this is the group root certificate.
    pub fn is_root(&self) -> bool {
        self.kind == CertType::Root
    }

    /// The group this certificate belongs to.
    pub fn group(&self) -> &PeerName {
        &self.group
    }

    /// The subject: the group peer name for the root, the member's identity for a GMC.
    pub fn subject_peer(&self) -> &PeerName {
        &self.subject_peer
    }

    /// The subject's friendly name.
    pub fn subject_friendly_name(&self) -> &str {
        &self.cert.subject().common_name
    }

    /// The issuer's friendly name.
    pub fn issuer_friendly_name(&self) -> &str {
        &self.cert.issuer().common_name
    }

    /// The issuer's peer name, as written in the issuer field.
    pub fn issuer_peer(&self) -> Option<&str> {
        self.cert.issuer().peer_name.as_deref()
    }

    /// The roles (empty for the root, which may issue anything).
    pub fn roles(&self) -> Roles {
        self.roles
    }

    /// The classifiers.
    pub fn classifiers(&self) -> &[Classifier] {
        &self.classifiers
    }

    /// The group creator's identity peer name (root only).
    pub fn creator(&self) -> Option<&PeerName> {
        self.creator.as_ref()
    }

    /// The certified key.
    pub fn public_key(&self) -> &PublicKey {
        self.cert.public_key()
    }

    /// The serial number bytes.
    pub fn serial(&self) -> &[u8] {
        self.cert.serial()
    }

    /// Start of validity.
    pub fn not_before(&self) -> Timestamp {
        self.cert.not_before()
    }

    /// End of validity.
    pub fn not_after(&self) -> Timestamp {
        self.cert.not_after()
    }
}

/// Parameters for the group root certificate.
pub(crate) fn root_template(
    key: &KeyPair,
    group: &PeerName,
    friendly_name: &str,
    creator: &PeerName,
    now: Timestamp,
    serial: [u8; 16],
) -> Result<Template, Error> {
    peergroup_identity::check_friendly_name(friendly_name)?;
    let name = Name {
        common_name: friendly_name.to_owned(),
        peer_name: Some(group.to_string()),
    };
    let not_before = now.truncate_to_secs();
    Ok(Template {
        serial: positive_serial(serial),
        issuer: name.clone(),
        subject: name,
        not_before,
        not_after: not_before.saturating_add(INFINITE).min(Timestamp::MAX_X509),
        subject_key: key.public(),
        extensions: vec![
            Extension::basic_constraints(true),
            Extension::key_usage(true),
            Extension::subject_key_id(&key.public()),
            ext::cert_type(CertType::Root),
            ext::text(ext::GROUP_PEER_NAME, &group.to_string()),
            ext::text(ext::CREATOR, &creator.to_string()),
        ],
    })
}

/// What a member certificate is issued for.
#[derive(Clone, Debug)]
pub struct MemberRequest {
    /// The member's identity key (from its IDC).
    pub subject_key: PublicKey,
    /// The member's identity peer name (must be owned by `subject_key`).
    pub subject_peer: PeerName,
    /// The member's friendly name.
    pub subject_friendly_name: String,
    /// Roles to grant.
    pub roles: Roles,
    /// Classifiers; empty means [`DEFAULT_MEMBER_CLASSIFIER`].
    pub classifiers: Vec<Classifier>,
    /// Requested start of validity (clipped to the issuer's).
    pub not_before: Timestamp,
    /// Requested end of validity (clipped to the issuer's).
    pub not_after: Timestamp,
}

impl MemberRequest {
    /// A request for `identity` (its key, peer name and friendly name) with `roles`, valid from
    /// `not_before` to `not_after`, under the default member classifier.
    pub fn for_identity(
        identity: &peergroup_identity::Identity,
        roles: Roles,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Self {
        MemberRequest {
            subject_key: identity.key().public(),
            subject_peer: identity.peer_name().clone(),
            subject_friendly_name: identity.friendly_name().to_owned(),
            roles,
            classifiers: Vec::new(),
            not_before,
            not_after,
        }
    }
}

/// `serial` made a positive DER integer of full length: sign bit cleared, never zero (what
/// [`Template::random_serial`] gives, so chosen serials follow the same rule).
fn positive_serial(mut serial: [u8; 16]) -> [u8; 16] {
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    serial
}

pub(crate) fn member_template(
    issuer: &GroupCertificate,
    req: &MemberRequest,
    serial: [u8; 16],
) -> Result<Template, Error> {
    peergroup_identity::check_friendly_name(&req.subject_friendly_name)?;
    if req.roles.is_empty() {
        return Err(Error::NoRoles);
    }
    if !req.subject_peer.is_owned_by(&req.subject_key) {
        return Err(Error::KeyMismatch);
    }
    let not_before = req.not_before.max(issuer.not_before()).truncate_to_secs();
    let not_after = req.not_after.min(issuer.not_after()).truncate_to_secs();
    if not_before >= not_after {
        return Err(Error::InvalidTimePeriod(format!(
            "the certificate would be valid from {not_before} to {not_after} (the issuer's \
             validity is {} to {})",
            issuer.not_before(),
            issuer.not_after()
        )));
    }
    let classifiers = if req.classifiers.is_empty() {
        vec![Classifier::new(DEFAULT_MEMBER_CLASSIFIER)?]
    } else {
        req.classifiers.clone()
    };
    let ca = req.roles.is_issuer();
    Ok(Template {
        serial: positive_serial(serial),
        issuer: issuer.certificate().subject().clone(),
        subject: Name {
            common_name: req.subject_friendly_name.clone(),
            peer_name: Some(req.subject_peer.to_string()),
        },
        not_before,
        not_after,
        subject_key: req.subject_key,
        extensions: vec![
            Extension::basic_constraints(ca),
            Extension::key_usage(ca),
            Extension::tls_key_usage(),
            Extension::subject_key_id(&req.subject_key),
            Extension::authority_key_id(issuer.public_key()),
            ext::cert_type(CertType::Member),
            ext::text(ext::GROUP_PEER_NAME, &issuer.group().to_string()),
            ext::roles(req.roles),
            ext::classifiers(&classifiers),
        ],
    })
}
