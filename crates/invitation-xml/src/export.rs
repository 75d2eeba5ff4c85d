//! PEERIDENTITYEXPORT: an identity sealed under a password, for moving it to another machine.
//!
//! ```xml
//! <?xml version="1.0" encoding="utf-8"?><PEERIDENTITYEXPORT VERSION="1.0">
//!  <PEERNAME>…peer name…</PEERNAME><DATA xmlns:dt="urn:schemas-microsoft-com:datatypes"
//!  dt:dt="bin.base64">…sealed bytes…</DATA></PEERIDENTITYEXPORT>
//! ```
//!
//! The sealed bytes come from `IdentityStore::export` and go back through
//! `IdentityStore::import`, which checks them against `PEERNAME`; this crate only wraps and
//! unwraps them. Windows carried a password-protected PFX in `DATA`.

use peergroup_identity::PeerName;

use crate::error::{Error, shorten};
use crate::reader::{SourceEncoding, check_size, decode, read_document};
use crate::values::read_peer_name;
use crate::writer::Writer;

const ROOT: &str = "PEERIDENTITYEXPORT";

/// A parsed PEERIDENTITYEXPORT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityExport {
    /// The exported identity's peer name, as the exporter claims it.
    pub peer_name: PeerName,
    /// The sealed identity (opaque here).
    pub data: Vec<u8>,
}

impl IdentityExport {
    /// Parses a PEERIDENTITYEXPORT blob.
    pub fn parse(xml: &str) -> Result<Self, Error> {
        check_size(xml.len())?;
        Self::read(xml, SourceEncoding::Utf8)
    }

    /// Parses a PEERIDENTITYEXPORT blob from bytes (UTF-8, or UTF-16 with a byte order mark).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let (text, encoding) = decode(bytes)?;
        Self::read(&text, encoding)
    }

    fn read(xml: &str, encoding: SourceEncoding) -> Result<Self, Error> {
        let root = read_document(xml, encoding, &["DATA"])?;
        let version = root.root_version(ROOT)?;
        if version != "1.0" {
            return Err(Error::UnsupportedVersion {
                element: ROOT,
                found: shorten(version),
                expected: "1.0",
            });
        }
        let fields = root.fields(ROOT, &["PEERNAME", "DATA"])?;
        let peer_name = read_peer_name(fields.require("PEERNAME")?, "PEERNAME")?;
        let data = fields.require("DATA")?.base64("DATA")?;
        Ok(IdentityExport { peer_name, data })
    }

    /// Writes the PEERIDENTITYEXPORT blob.
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new(ROOT, "1.0");
        w.text("PEERNAME", &self.peer_name.to_string());
        w.base64("DATA", &self.data);
        w.finish(ROOT)
    }
}
