//! Our X.509 extensions, under the UUID arc `2.25.309153241466388463490775781528159792981`
//! (UUID e894bf9e-a499-48f3-9b85-85c3260e2f55, per ITU-T X.667). All are non-critical, so
//! tools that do not know them (OpenSSL) still verify our chains.
//!
//! | arc | name | DER value |
//! |---|---|---|
//! | `.1` | certificate type | ENUMERATED: 1 member (GMC), 2 group root (GRC) |
//! | `.2` | group peer name | UTF8String |
//! | `.3` | roles | SEQUENCE OF OCTET STRING (16-byte role GUIDs, RFC 4122 byte order) |
//! | `.4` | classifiers | SEQUENCE OF UTF8String |
//! | `.5` | group creator | UTF8String: the creator's identity peer name (GRC only) |

use peergroup_identity::der::{self, Reader, tag};
use peergroup_identity::x509::{Certificate, Extension};
use peergroup_identity::{Classifier, PeerName};
use uuid::Uuid;

use crate::role::{Role, RoleId, Roles};

/// The UUID arc's integer value.
pub const ARC: u128 = 309_153_241_466_388_463_490_775_781_528_159_792_981;

/// OID content octets of extension `n` under our arc.
pub fn oid(n: u128) -> Vec<u8> {
    der::oid_content(&[2, 25, ARC, n])
}

/// Extension numbers.
pub(crate) const CERT_TYPE: u128 = 1;
pub(crate) const GROUP_PEER_NAME: u128 = 2;
pub(crate) const ROLES: u128 = 3;
pub(crate) const CLASSIFIERS: u128 = 4;
pub(crate) const CREATOR: u128 = 5;

/// Certificate types (the Windows numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertType {
    /// A group member certificate (GMC).
    Member = 1,
    /// A group root certificate (GRC).
    Root = 2,
}

pub(crate) fn cert_type(t: CertType) -> Extension {
    Extension {
        oid: oid(CERT_TYPE),
        critical: false,
        value: der::tlv(tag::ENUMERATED, &[t as u8]),
    }
}

pub(crate) fn text(n: u128, s: &str) -> Extension {
    Extension {
        oid: oid(n),
        critical: false,
        value: der::utf8(s),
    }
}

pub(crate) fn roles(roles: Roles) -> Extension {
    let items: Vec<Vec<u8>> = roles
        .iter()
        .map(|r| der::octet_string(r.id().0.as_bytes()))
        .collect();
    let items: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    Extension {
        oid: oid(ROLES),
        critical: false,
        value: der::sequence(&items),
    }
}

pub(crate) fn classifiers(list: &[Classifier]) -> Extension {
    let items: Vec<Vec<u8>> = list.iter().map(|c| der::utf8(c.as_str())).collect();
    let items: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    Extension {
        oid: oid(CLASSIFIERS),
        critical: false,
        value: der::sequence(&items),
    }
}

fn value(cert: &Certificate, n: u128) -> Option<&[u8]> {
    cert.extension(&oid(n)).map(|e| e.value.as_slice())
}

fn malformed(what: &str) -> String {
    format!("malformed {what} extension")
}

pub(crate) fn read_cert_type(cert: &Certificate) -> Result<Option<CertType>, String> {
    let Some(v) = value(cert, CERT_TYPE) else {
        return Ok(None);
    };
    let mut r = Reader::new(v);
    let content = r
        .read(tag::ENUMERATED)
        .map_err(|_| malformed("certificate type"))?;
    r.finish().map_err(|_| malformed("certificate type"))?;
    match content {
        [1] => Ok(Some(CertType::Member)),
        [2] => Ok(Some(CertType::Root)),
        _ => Err("unknown certificate type".into()),
    }
}

pub(crate) fn read_text(cert: &Certificate, n: u128, what: &str) -> Result<Option<String>, String> {
    let Some(v) = value(cert, n) else {
        return Ok(None);
    };
    let mut r = Reader::new(v);
    let content = r.read(tag::UTF8_STRING).map_err(|_| malformed(what))?;
    r.finish().map_err(|_| malformed(what))?;
    String::from_utf8(content.to_vec())
        .map(Some)
        .map_err(|_| malformed(what))
}

pub(crate) fn read_peer_name(
    cert: &Certificate,
    n: u128,
    what: &str,
) -> Result<Option<PeerName>, String> {
    read_text(cert, n, what)?
        .map(|s| s.parse::<PeerName>().map_err(|e| format!("{what}: {e}")))
        .transpose()
}

pub(crate) fn read_roles(cert: &Certificate) -> Result<Roles, String> {
    let Some(v) = value(cert, ROLES) else {
        return Ok(Roles::EMPTY);
    };
    let mut outer = Reader::new(v);
    let mut r = Reader::new(outer.read(tag::SEQUENCE).map_err(|_| malformed("roles"))?);
    outer.finish().map_err(|_| malformed("roles"))?;
    let mut roles = Roles::EMPTY;
    while !r.is_empty() {
        let bytes = r.read(tag::OCTET_STRING).map_err(|_| malformed("roles"))?;
        let uuid = Uuid::from_slice(bytes).map_err(|_| malformed("roles"))?;
        let role = Role::from_id(RoleId(uuid)).ok_or_else(|| format!("unknown role {{{uuid}}}"))?;
        roles.insert(role);
    }
    Ok(roles)
}

pub(crate) fn read_classifiers(cert: &Certificate) -> Result<Vec<Classifier>, String> {
    let Some(v) = value(cert, CLASSIFIERS) else {
        return Ok(Vec::new());
    };
    let mut outer = Reader::new(v);
    let mut r = Reader::new(
        outer
            .read(tag::SEQUENCE)
            .map_err(|_| malformed("classifiers"))?,
    );
    outer.finish().map_err(|_| malformed("classifiers"))?;
    let mut out = Vec::new();
    while !r.is_empty() {
        let bytes = r
            .read(tag::UTF8_STRING)
            .map_err(|_| malformed("classifiers"))?;
        let s = std::str::from_utf8(bytes).map_err(|_| malformed("classifiers"))?;
        out.push(Classifier::new(s).map_err(|e| e.to_string())?);
        if out.len() > 64 {
            return Err("more than 64 classifiers".into());
        }
    }
    Ok(out)
}
