//! PEERGROUPCONFIG: one member's configuration of one group, for moving it to another
//! machine.
//!
//! ```xml
//! <?xml version="1.0" encoding="utf-8"?><PEERGROUPCONFIG VERSION="1.0">
//!  <IDENTITYPEERNAME>…</IDENTITYPEERNAME><GROUPPEERNAME>…</GROUPPEERNAME>
//!  <CLOUDNAME>Global_</CLOUDNAME><SCOPE>GLOBAL</SCOPE><CLOUDFLAGS>0</CLOUDFLAGS>
//!  <GMC xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="bin.base64">…PKCS#7…</GMC>
//!  <GROUPKEY xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="bin.base64">…sealed…</GROUPKEY>
//! </PEERGROUPCONFIG>
//! ```
//!
//! `GROUPKEY` is present only when the exporter owns the group: the group's private key,
//! sealed under a password elsewhere (this crate carries the bytes opaquely). The group and
//! identity names must agree with the chain: `GROUPPEERNAME` is the chain's group and
//! `IDENTITYPEERNAME` the leaf's subject. `SCOPE` uses the invitation spelling (`GLOBAL`, …).

use peergroup_credential_roles::CertChain;
use peergroup_identity::PeerName;

use crate::chain::read_chain;
use crate::error::{Error, shorten};
use crate::reader::{SourceEncoding, check_size, decode, read_document};
use crate::values::{Cloud, read_peer_name};
use crate::writer::Writer;

const ROOT: &str = "PEERGROUPCONFIG";
const FIELDS: &[&str] = &[
    "IDENTITYPEERNAME",
    "GROUPPEERNAME",
    "CLOUDNAME",
    "SCOPE",
    "CLOUDFLAGS",
    "GMC",
    "GROUPKEY",
];

/// A parsed PEERGROUPCONFIG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// The member's identity peer name.
    pub identity: PeerName,
    /// The group peer name.
    pub group: PeerName,
    /// The PNRP cloud (kept for the Windows shape).
    pub cloud: Cloud,
    /// The member's chain GRC → … → its GMC.
    pub chain: CertChain,
    /// The sealed group private key, when the exporter owns the group (opaque here).
    pub group_key: Option<Vec<u8>>,
}

impl GroupConfig {
    /// A config for the leaf of `chain`, after checking the chain as parsing does. The
    /// identity and group names are taken from the chain.
    pub fn new(chain: CertChain, cloud: Cloud, group_key: Option<Vec<u8>>) -> Result<Self, Error> {
        crate::chain::check_structure(&chain).map_err(|e| Error::Chain {
            element: "GMC",
            source: e.into(),
        })?;
        Ok(GroupConfig {
            identity: chain.leaf().subject_peer().clone(),
            group: chain.group().clone(),
            cloud,
            chain,
            group_key,
        })
    }

    /// Parses a PEERGROUPCONFIG blob.
    pub fn parse(xml: &str) -> Result<Self, Error> {
        check_size(xml.len())?;
        Self::read(xml, SourceEncoding::Utf8)
    }

    /// Parses a PEERGROUPCONFIG blob from bytes (UTF-8, or UTF-16 with a byte order mark).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let (text, encoding) = decode(bytes)?;
        Self::read(&text, encoding)
    }

    fn read(xml: &str, encoding: SourceEncoding) -> Result<Self, Error> {
        let root = read_document(xml, encoding, &["GMC", "GROUPKEY"])?;
        let version = root.root_version(ROOT)?;
        if version != "1.0" {
            return Err(Error::UnsupportedVersion {
                element: ROOT,
                found: shorten(version),
                expected: "1.0",
            });
        }
        let fields = root.fields(ROOT, FIELDS)?;
        let identity = read_peer_name(fields.require("IDENTITYPEERNAME")?, "IDENTITYPEERNAME")?;
        let group = read_peer_name(fields.require("GROUPPEERNAME")?, "GROUPPEERNAME")?;
        let cloud = Cloud::read(&fields)?;
        let chain = read_chain(fields.require("GMC")?, "GMC")?;
        let group_key = fields
            .get("GROUPKEY")
            .map(|e| e.base64("GROUPKEY"))
            .transpose()?;
        if &group != chain.group() {
            return Err(Error::ChainMismatch {
                element: "GROUPPEERNAME",
                found: group.to_string(),
                expected: chain.group().to_string(),
            });
        }
        if &identity != chain.leaf().subject_peer() {
            return Err(Error::ChainMismatch {
                element: "IDENTITYPEERNAME",
                found: identity.to_string(),
                expected: chain.leaf().subject_peer().to_string(),
            });
        }
        Ok(GroupConfig {
            identity,
            group,
            cloud,
            chain,
            group_key,
        })
    }

    /// Writes the PEERGROUPCONFIG blob.
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new(ROOT, "1.0");
        w.text("IDENTITYPEERNAME", &self.identity.to_string());
        w.text("GROUPPEERNAME", &self.group.to_string());
        self.cloud.write(&mut w);
        w.base64("GMC", &self.chain.to_pkcs7());
        if let Some(key) = &self.group_key {
            w.base64("GROUPKEY", key);
        }
        w.finish(ROOT)
    }
}
