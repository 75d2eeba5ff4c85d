//! The X.509 v3 certificates peergroup writes and reads.
//!
//! All of them use Ed25519 (RFC 8410). Names carry the friendly name as `CN` and the secure
//! peer name as `UID` (0.9.2342.19200300.100.1.1), so that `openssl x509 -text` shows both
//! and path building by name works. [`Certificate::parse`] turns untrusted DER into a checked
//! view; it does not decide whether the certificate is trusted (that is chain validation in
//! `peergroup-credential-roles`).

use std::fmt;

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::der;
use crate::error::Error;
use crate::key::{KeyPair, PublicKey, Signature};
use crate::time::Timestamp;

/// Content octets of the Ed25519 signature algorithm OID 1.3.101.112.
const ED25519_OID: [u8; 3] = [0x2b, 0x65, 0x70];
/// Content octets of commonName 2.5.4.3.
const CN_OID: [u8; 3] = [0x55, 0x04, 0x03];
/// Content octets of userId 0.9.2342.19200300.100.1.1.
const UID_OID: [u8; 10] = [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01];

/// Largest certificate we accept, in bytes.
pub const MAX_CERT_LEN: usize = 16 * 1024;

/// A certificate's subject or issuer: friendly name and (optionally) secure peer name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// The friendly name (`CN`).
    pub common_name: String,
    /// The secure peer name as text (`UID`), when the certificate names one.
    pub peer_name: Option<String>,
}

impl Name {
    /// DER encoding as an X.501 Name.
    pub fn to_der(&self) -> Vec<u8> {
        let attr = |oid: &[u8], value: &str| {
            let atv = der::sequence(&[&der::oid(oid), &der::utf8(value)]);
            der::set(&[&atv])
        };
        let cn = attr(&CN_OID, &self.common_name);
        match &self.peer_name {
            Some(p) => der::sequence(&[&cn, &attr(&UID_OID, p)]),
            None => der::sequence(&[&cn]),
        }
    }
}

/// One X.509 extension, ready to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// OID content octets (see [`der::oid_content`]).
    pub oid: Vec<u8>,
    /// Whether a verifier that does not know it must reject the certificate.
    pub critical: bool,
    /// The DER value inside the extension's OCTET STRING.
    pub value: Vec<u8>,
}

impl Extension {
    /// basicConstraints (critical): `cA` set for issuers.
    pub fn basic_constraints(ca: bool) -> Self {
        let value = if ca {
            der::sequence(&[&der::boolean(true)])
        } else {
            der::sequence(&[])
        };
        Extension {
            oid: vec![0x55, 0x1d, 0x13],
            critical: true,
            value,
        }
    }

    /// keyUsage (critical): digitalSignature, plus keyCertSign and cRLSign for issuers.
    pub fn key_usage(ca: bool) -> Self {
        // Bit 0 digitalSignature (0x80); bit 5 keyCertSign (0x04); bit 6 cRLSign (0x02).
        let value = if ca {
            der::tlv(der::tag::BIT_STRING, &[0x01, 0x86])
        } else {
            der::tlv(der::tag::BIT_STRING, &[0x07, 0x80])
        };
        Extension {
            oid: vec![0x55, 0x1d, 0x0f],
            critical: true,
            value,
        }
    }

    /// extKeyUsage: TLS client and server authentication (the certificates are TLS certs).
    pub fn tls_key_usage() -> Self {
        let server = der::oid(&der::oid_content(&[1, 3, 6, 1, 5, 5, 7, 3, 1]));
        let client = der::oid(&der::oid_content(&[1, 3, 6, 1, 5, 5, 7, 3, 2]));
        Extension {
            oid: vec![0x55, 0x1d, 0x25],
            critical: false,
            value: der::sequence(&[&server, &client]),
        }
    }

    /// subjectKeyIdentifier: the key's peer-name authority bytes.
    pub fn subject_key_id(key: &PublicKey) -> Self {
        let id = crate::peer_name::Authority::of(key);
        Extension {
            oid: vec![0x55, 0x1d, 0x0e],
            critical: false,
            value: der::octet_string(id.as_bytes()),
        }
    }

    /// authorityKeyIdentifier: the issuer key's peer-name authority bytes.
    pub fn authority_key_id(issuer: &PublicKey) -> Self {
        let id = crate::peer_name::Authority::of(issuer);
        let value = der::sequence(&[&der::tlv(0x80, id.as_bytes())]);
        Extension {
            oid: vec![0x55, 0x1d, 0x23],
            critical: false,
            value,
        }
    }
}

/// Everything that goes into a certificate before it is signed.
#[derive(Clone, Debug)]
pub struct Template {
    /// Serial number, 16 bytes (the top bit is cleared so the INTEGER stays positive).
    pub serial: [u8; 16],
    /// The issuer's name (the subject name of the issuing certificate).
    pub issuer: Name,
    /// The subject's name.
    pub subject: Name,
    /// Start of validity (whole seconds).
    pub not_before: Timestamp,
    /// End of validity (whole seconds, inclusive).
    pub not_after: Timestamp,
    /// The certified key.
    pub subject_key: PublicKey,
    /// Extensions, in order.
    pub extensions: Vec<Extension>,
}

impl Template {
    /// A random serial number with the sign bit cleared.
    pub fn random_serial() -> Result<[u8; 16], Error> {
        let mut s = [0u8; 16];
        crate::key::random_bytes(&mut s)?;
        s[0] &= 0x7f;
        s[0] |= 0x01; // never zero, never a shorter encoding
        Ok(s)
    }

    /// Encodes and signs the certificate with `issuer_key`, returning its DER.
    pub fn sign(&self, issuer_key: &KeyPair) -> Vec<u8> {
        let alg = ed25519_algorithm();
        let spki = der::sequence(&[&alg, &der::bit_string(self.subject_key.as_bytes())]);
        let validity = der::sequence(&[
            &der::x509_time(self.not_before),
            &der::x509_time(self.not_after),
        ]);
        let exts: Vec<Vec<u8>> = self
            .extensions
            .iter()
            .map(|e| {
                let oid = der::oid(&e.oid);
                let value = der::octet_string(&e.value);
                if e.critical {
                    der::sequence(&[&oid, &der::boolean(true), &value])
                } else {
                    der::sequence(&[&oid, &value])
                }
            })
            .collect();
        let exts: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
        let tbs = der::sequence(&[
            &der::explicit(0, &der::integer(2)),
            &der::unsigned_integer(&self.serial),
            &alg,
            &self.issuer.to_der(),
            &validity,
            &self.subject.to_der(),
            &spki,
            &der::explicit(3, &der::sequence(&exts)),
        ]);
        let sig = issuer_key.sign(&tbs);
        signed_certificate(&tbs, &sig)
    }
}

/// The AlgorithmIdentifier of Ed25519 (RFC 8410: the OID, no parameters).
fn ed25519_algorithm() -> Vec<u8> {
    der::sequence(&[&der::oid(&ED25519_OID)])
}

/// A certificate's DER from its signed part and the signature: the only encoding
/// [`Certificate::parse`] accepts.
fn signed_certificate(tbs: &[u8], signature: &Signature) -> Vec<u8> {
    der::sequence(&[
        tbs,
        &ed25519_algorithm(),
        &der::bit_string(signature.as_bytes()),
    ])
}

/// A parsed extension: OID content octets, criticality, value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedExtension {
    /// OID content octets.
    pub oid: Vec<u8>,
    /// The critical flag.
    pub critical: bool,
    /// The value inside the OCTET STRING.
    pub value: Vec<u8>,
}

/// A structurally valid Ed25519 X.509 v3 certificate. Nothing about trust is decided yet.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: std::ops::Range<usize>,
    serial: Vec<u8>,
    issuer: Name,
    subject: Name,
    not_before: Timestamp,
    not_after: Timestamp,
    public_key: PublicKey,
    signature: Signature,
    is_ca: bool,
    extensions: Vec<ParsedExtension>,
}

impl Certificate {
    /// Parses DER, refusing trailing bytes, other algorithms, v1/v2 certificates and names
    /// without a common name. What lies outside the signed part — the signature algorithm
    /// and the signature — must be encoded exactly as signing writes it (the Ed25519
    /// AlgorithmIdentifier, the same as the one inside the signed part, and a BIT STRING of
    /// the 64 signature bytes), so a certificate has one encoding: nobody can alter bytes
    /// the signature does not cover and get another certificate (another hash, another
    /// name for whatever keys on the bytes) that still verifies.
    pub fn parse(der_bytes: &[u8]) -> Result<Self, Error> {
        let bad = |why: String| Error::MalformedCertificate(why);
        if der_bytes.len() > MAX_CERT_LEN {
            return Err(bad(format!(
                "{} bytes is over the {MAX_CERT_LEN}-byte limit",
                der_bytes.len()
            )));
        }
        let (rest, cert) =
            X509Certificate::from_der(der_bytes).map_err(|e| bad(format!("not X.509 DER: {e}")))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the certificate".into()));
        }
        if cert.version().0 != 2 {
            return Err(bad("not an X.509 v3 certificate".into()));
        }
        if cert.signature_algorithm.algorithm.as_bytes() != ED25519_OID
            || cert.tbs_certificate.signature.algorithm.as_bytes() != ED25519_OID
        {
            return Err(Error::UnsupportedKey);
        }
        let public_key = PublicKey::from_spki_der(cert.public_key().raw)?;
        let signature = Signature::from_slice(&cert.signature_value.data)
            .map_err(|_| bad("signature is not 64 bytes".into()))?;
        let tbs_raw: &[u8] = cert.tbs_certificate.as_ref();
        // x509-parser accepts more than DER allows around the signed part (an algorithm
        // identifier whose OID tag was altered, for one).
        if signed_certificate(tbs_raw, &signature) != der_bytes {
            return Err(bad(
                "the signature algorithm or signature is not encoded as Ed25519 DER".into(),
            ));
        }
        if signed_algorithm(tbs_raw).map_err(|e| bad(e.to_string()))? != ed25519_algorithm() {
            return Err(bad(
                "the signed algorithm identifier is not encoded as Ed25519's".into(),
            ));
        }
        let start = tbs_raw.as_ptr() as usize - der_bytes.as_ptr() as usize;
        let tbs = start..start + tbs_raw.len();
        let secs = |t: i64| Timestamp::from_secs(u64::try_from(t).unwrap_or(0));
        let validity = cert.validity();
        let mut extensions = Vec::new();
        let mut is_ca = false;
        for ext in cert.extensions() {
            if ext.oid.as_bytes() == [0x55, 0x1d, 0x13] {
                match ext.parsed_extension() {
                    x509_parser::extensions::ParsedExtension::BasicConstraints(bc) => {
                        is_ca = bc.ca;
                    }
                    _ => return Err(bad("malformed basicConstraints".into())),
                }
            }
            extensions.push(ParsedExtension {
                oid: ext.oid.as_bytes().to_vec(),
                critical: ext.critical,
                value: ext.value.to_vec(),
            });
        }
        Ok(Certificate {
            der: der_bytes.to_vec(),
            tbs,
            serial: cert.raw_serial().to_vec(),
            issuer: parse_name(cert.issuer())?,
            subject: parse_name(cert.subject())?,
            not_before: secs(validity.not_before.timestamp()),
            not_after: secs(validity.not_after.timestamp()),
            public_key,
            signature,
            is_ca,
            extensions,
        })
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The serial number's INTEGER content bytes.
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The issuer name.
    pub fn issuer(&self) -> &Name {
        &self.issuer
    }

    /// The subject name.
    pub fn subject(&self) -> &Name {
        &self.subject
    }

    /// Start of validity.
    pub fn not_before(&self) -> Timestamp {
        self.not_before
    }

    /// End of validity (inclusive).
    pub fn not_after(&self) -> Timestamp {
        self.not_after
    }

    /// Whether `now` is inside the validity window.
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// The certified public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Whether basicConstraints says this certificate may issue.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// All extensions in order.
    pub fn extensions(&self) -> &[ParsedExtension] {
        &self.extensions
    }

    /// The value of the extension with OID content octets `oid`, if present.
    pub fn extension(&self, oid: &[u8]) -> Option<&ParsedExtension> {
        self.extensions.iter().find(|e| e.oid == oid)
    }

    /// Checks that `issuer` signed this certificate.
    pub fn verify_signed_by(&self, issuer: &PublicKey) -> Result<(), Error> {
        issuer.verify(&self.der[self.tbs.clone()], &self.signature)
    }

    /// The certificate as PEM text.
    pub fn to_pem(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("serial", &hex::encode(&self.serial))
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The signature AlgorithmIdentifier inside the signed part (`TBSCertificate`: version,
/// serial number, then the algorithm), as encoded.
fn signed_algorithm(tbs: &[u8]) -> Result<&[u8], Error> {
    let mut outer = der::Reader::new(tbs);
    let mut fields = der::Reader::new(outer.read(0x30)?);
    fields.read(0xa0)?;
    fields.read(0x02)?;
    fields.read_tlv(0x30)
}

fn parse_name(name: &x509_parser::x509::X509Name<'_>) -> Result<Name, Error> {
    let mut common_name = None;
    let mut peer_name = None;
    for attr in name.iter_attributes() {
        let slot = match attr.attr_type().as_bytes() {
            b if b == CN_OID => &mut common_name,
            b if b == UID_OID => &mut peer_name,
            _ => continue,
        };
        let value = attr
            .as_str()
            .map_err(|_| Error::MalformedCertificate("name attribute is not a string".into()))?;
        if slot.replace(value.to_owned()).is_some() {
            return Err(Error::MalformedCertificate(
                "name attribute repeated".into(),
            ));
        }
    }
    let common_name =
        common_name.ok_or_else(|| Error::MalformedCertificate("name has no common name".into()))?;
    Ok(Name {
        common_name,
        peer_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(subject: &KeyPair, issuer_name: &str) -> Template {
        Template {
            serial: Template::random_serial().unwrap(),
            issuer: Name {
                common_name: issuer_name.into(),
                peer_name: None,
            },
            subject: Name {
                common_name: "subject".into(),
                peer_name: Some("p.q".into()),
            },
            not_before: Timestamp::from_secs(1_700_000_000),
            not_after: Timestamp::MAX_X509,
            subject_key: subject.public(),
            extensions: vec![
                Extension::basic_constraints(false),
                Extension {
                    oid: der::oid_content(&[2, 25, u128::MAX - 5, 1]),
                    critical: false,
                    value: der::utf8("x"),
                },
            ],
        }
    }

    #[test]
    fn build_and_parse() {
        let issuer = KeyPair::from_test_seed(1);
        let subject = KeyPair::from_test_seed(2);
        let t = template(&subject, "issuer");
        let der = t.sign(&issuer);
        let cert = Certificate::parse(&der).unwrap();
        assert_eq!(cert.public_key(), &subject.public());
        assert_eq!(cert.subject(), &t.subject);
        assert_eq!(cert.issuer(), &t.issuer);
        assert_eq!(cert.not_before(), t.not_before);
        assert_eq!(cert.not_after(), t.not_after);
        assert!(!cert.is_ca());
        assert_eq!(
            cert.extension(&t.extensions[1].oid).unwrap().value,
            der::utf8("x")
        );
        cert.verify_signed_by(&issuer.public()).unwrap();
        assert!(cert.verify_signed_by(&subject.public()).is_err());
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let issuer = KeyPair::from_test_seed(1);
        let mut der = template(&issuer, "me").sign(&issuer);
        let pos = der.windows(7).position(|w| w == b"subject").unwrap();
        der[pos] = b'S';
        let cert = Certificate::parse(&der).unwrap();
        assert!(cert.verify_signed_by(&issuer.public()).is_err());
    }

    /// The bytes outside the signed part cannot be changed: each change would be another
    /// encoding of the same certificate that still verifies (a fuzzed password join
    /// accepted credentials whose outer algorithm identifier's OID tag was 0x07).
    #[test]
    fn only_the_signed_encoding_is_accepted() {
        let issuer = KeyPair::from_test_seed(1);
        let good = template(&issuer, "me").sign(&issuer);
        let cert = Certificate::parse(&good).unwrap();
        cert.verify_signed_by(&issuer.public()).unwrap();
        let alg = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
        let outer = good.windows(7).rposition(|w| w == alg).unwrap();
        let inner = good.windows(7).position(|w| w == alg).unwrap();
        assert!(inner < outer);
        let changed = |at: usize, byte: u8| {
            let mut der = good.clone();
            der[at] = byte;
            der
        };
        // The outer algorithm identifier: its OID's tag, its SEQUENCE's tag.
        for bad in [changed(outer + 2, 0x07), changed(outer, 0x31)] {
            assert!(
                matches!(
                    Certificate::parse(&bad),
                    Err(Error::MalformedCertificate(_))
                ),
                "{:?}",
                Certificate::parse(&bad)
            );
        }
        // The signature BIT STRING with unused bits.
        let unused = good.len() - 65;
        assert_eq!(good[unused], 0);
        assert!(Certificate::parse(&changed(unused, 0x01)).is_err());
        // The outer algorithm identifier with NULL parameters (lengths adjusted).
        let tbs = &good[cert.tbs.clone()];
        let with_null = der::sequence(&[
            tbs,
            &der::sequence(&[&der::oid(&ED25519_OID), &[0x05, 0x00]]),
            &der::bit_string(cert.signature.as_bytes()),
        ]);
        assert!(Certificate::parse(&with_null).is_err());
        // A signed part whose own algorithm identifier is not Ed25519's exact encoding (NULL
        // parameters) is refused, even signed, and with the same outside.
        let mut fields = der::Reader::new(der::Reader::new(tbs).read(0x30).unwrap());
        let mut parts: Vec<Vec<u8>> = Vec::new();
        while let Some(tag) = fields.peek_tag() {
            parts.push(fields.read_tlv(tag).unwrap().to_vec());
        }
        assert_eq!(parts[2], alg);
        parts[2] = der::sequence(&[&der::oid(&ED25519_OID), &[0x05, 0x00]]);
        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let tbs_null = der::sequence(&parts);
        let signed = signed_certificate(&tbs_null, &issuer.sign(&tbs_null));
        assert!(
            matches!(
                Certificate::parse(&signed),
                Err(Error::MalformedCertificate(_))
            ),
            "{:?}",
            Certificate::parse(&signed)
        );
    }

    #[test]
    fn rejects_garbage_and_trailing_bytes() {
        let issuer = KeyPair::from_test_seed(1);
        let mut der = template(&issuer, "me").sign(&issuer);
        assert!(Certificate::parse(&der[..der.len() - 1]).is_err());
        der.push(0);
        assert!(Certificate::parse(&der).is_err());
        assert!(Certificate::parse(b"").is_err());
        assert!(Certificate::parse(&[0x30, 0x80]).is_err());
    }
}
