//! PEERIDENTITYINFO: the identity certificate an invitee sends to an inviter.
//!
//! ```xml
//! <?xml version="1.0" encoding="utf-8"?><PEERIDENTITYINFO VERSION="1.0"><IDC
//!  xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="bin.base64">…DER…</IDC></PEERIDENTITYINFO>
//! ```
//!
//! Windows puts a PKCS#7 around the certificate; peergroup carries the certificate's DER
//! alone. Nothing else may appear inside PEERIDENTITYINFO (MS-PPSEC: applications must not
//! add tags there).

use peergroup_identity::{IdentityCertificate, PeerName};

use crate::error::Error;
use crate::reader::{SourceEncoding, check_size, decode, read_document};
use crate::writer::Writer;

const ROOT: &str = "PEERIDENTITYINFO";

/// A parsed PEERIDENTITYINFO: a checked identity certificate (self-signed, its key owning
/// its peer name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityInfo {
    /// The identity certificate.
    pub certificate: IdentityCertificate,
}

impl IdentityInfo {
    /// Wraps a certificate.
    pub fn new(certificate: IdentityCertificate) -> Self {
        IdentityInfo { certificate }
    }

    /// The identity's peer name.
    pub fn peer_name(&self) -> &PeerName {
        self.certificate.peer_name()
    }

    /// The identity's friendly name.
    pub fn friendly_name(&self) -> &str {
        self.certificate.friendly_name()
    }

    /// Parses a PEERIDENTITYINFO blob.
    pub fn parse(xml: &str) -> Result<Self, Error> {
        check_size(xml.len())?;
        Self::read(xml, SourceEncoding::Utf8)
    }

    /// Parses a PEERIDENTITYINFO blob from bytes (UTF-8, or UTF-16 with a byte order mark).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let (text, encoding) = decode(bytes)?;
        Self::read(&text, encoding)
    }

    fn read(xml: &str, encoding: SourceEncoding) -> Result<Self, Error> {
        let root = read_document(xml, encoding, &["IDC"])?;
        let version = root.root_version(ROOT)?;
        if version != "1.0" {
            return Err(Error::UnsupportedVersion {
                element: ROOT,
                found: crate::error::shorten(version),
                expected: "1.0",
            });
        }
        let fields = root.fields(ROOT, &["IDC"])?;
        let der = fields.require("IDC")?.base64("IDC")?;
        let certificate =
            IdentityCertificate::from_der(&der).map_err(|source| Error::Certificate {
                element: "IDC",
                source,
            })?;
        Ok(IdentityInfo { certificate })
    }

    /// Writes the PEERIDENTITYINFO blob.
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new(ROOT, "1.0");
        w.base64("IDC", self.certificate.der());
        w.finish(ROOT)
    }
}
