//! PEERINVITATION: what an invitee needs to join a group, in two kinds.
//!
//! A **certificate** invitation (`VERSION="1.0"`) carries the chain GRC → … → GMC issued to
//! the invitee:
//!
//! ```xml
//! <PEERINVITATION VERSION="1.0"><CLOUDNAME>Global_</CLOUDNAME><SCOPE>GLOBAL</SCOPE>
//!  <CLOUDFLAGS>0</CLOUDFLAGS><GMC xmlns:dt="urn:schemas-microsoft-com:datatypes"
//!  dt:dt="bin.base64">…PKCS#7…</GMC><ADDRESSES><ADDRESS>192.0.2.1:3587</ADDRESS>
//!  </ADDRESSES></PEERINVITATION>
//! ```
//!
//! A **password** invitation (`VERSION="1.1"`) names the group and holds no secret: the
//! joiner proves the password online. Real Windows HomeGroup invitations are of this kind.
//!
//! ```xml
//! <PEERINVITATION VERSION="1.1"><CLOUDNAME>LinkLocal_ff00::%10/8</CLOUDNAME>
//!  <SCOPE>LINKLOCAL</SCOPE><CLOUDFLAGS>1</CLOUDFLAGS><GROUPPEERNAME>2bcb…79.HomeGroupPeerGroupClassifier
//!  </GROUPPEERNAME><GROUPFRIENDLYNAME>HomeGroup Peer Group</GROUPFRIENDLYNAME></PEERINVITATION>
//! ```
//!
//! Elements come in this order: `CLOUDNAME`, `SCOPE`, `CLOUDFLAGS`, then `GMC` or
//! `GROUPPEERNAME` and `GROUPFRIENDLYNAME`, then peergroup's optional `ADDRESSES`. A
//! certificate invitation with `VERSION="1.1"` (as later Windows versions write) is read
//! too; a password invitation needs 1.1. Anything else is refused.

use peergroup_credential_roles::CertChain;
use peergroup_identity::PeerName;

use crate::chain::read_chain;
use crate::error::{Error, shorten};
use crate::info::InvitationInfo;
use crate::reader::{SourceEncoding, check_size, decode, read_document};
use crate::values::{Addresses, AuthScheme, Cloud, FriendlyName, read_peer_name};
use crate::writer::Writer;

const ROOT: &str = "PEERINVITATION";
const FIELDS: &[&str] = &[
    "CLOUDNAME",
    "SCOPE",
    "CLOUDFLAGS",
    "GMC",
    "GROUPPEERNAME",
    "GROUPFRIENDLYNAME",
    "ADDRESSES",
];

/// A parsed invitation.
///
/// Parsing checks the chain's structure but not its validity in time or revocation: call
/// [`CertChain::validate`] for that. Build certificate invitations with
/// [`Invitation::new_certificate`] so the chain is checked the same way before it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invitation {
    /// A certificate invitation (`PEER_GROUP_GMC_AUTHENTICATION`).
    Certificate {
        /// The PNRP cloud (kept for the Windows shape).
        cloud: Cloud,
        /// The chain GRC → … → the invitee's GMC.
        chain: CertChain,
        /// Members to dial.
        addresses: Addresses,
    },
    /// A password invitation (`PEER_GROUP_PASSWORD_AUTHENTICATION`).
    Password {
        /// The PNRP cloud (kept for the Windows shape).
        cloud: Cloud,
        /// The group peer name.
        group: PeerName,
        /// The group's friendly name.
        group_friendly_name: FriendlyName,
        /// Members to dial.
        addresses: Addresses,
    },
}

impl Invitation {
    /// A certificate invitation, after checking the chain's structure as parsing does.
    pub fn new_certificate(
        chain: CertChain,
        cloud: Cloud,
        addresses: Addresses,
    ) -> Result<Self, Error> {
        crate::chain::check_structure(&chain).map_err(|e| Error::Chain {
            element: "GMC",
            source: e.into(),
        })?;
        Ok(Invitation::Certificate {
            cloud,
            chain,
            addresses,
        })
    }

    /// A password invitation.
    pub fn new_password(
        group: PeerName,
        group_friendly_name: FriendlyName,
        cloud: Cloud,
        addresses: Addresses,
    ) -> Self {
        Invitation::Password {
            cloud,
            group,
            group_friendly_name,
            addresses,
        }
    }

    /// Parses a PEERINVITATION blob.
    pub fn parse(xml: &str) -> Result<Self, Error> {
        check_size(xml.len())?;
        Self::read(xml, SourceEncoding::Utf8)
    }

    /// Parses a PEERINVITATION blob from bytes (UTF-8, or UTF-16 with a byte order mark, as
    /// Windows tools often save them).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let (text, encoding) = decode(bytes)?;
        Self::read(&text, encoding)
    }

    fn read(xml: &str, encoding: SourceEncoding) -> Result<Self, Error> {
        let root = read_document(xml, encoding, &["GMC"])?;
        let version = root.root_version(ROOT)?;
        if version != "1.0" && version != "1.1" {
            return Err(Error::UnsupportedVersion {
                element: ROOT,
                found: shorten(version),
                expected: "1.0 or 1.1",
            });
        }
        let fields = root.fields(ROOT, FIELDS)?;
        let cloud = Cloud::read(&fields)?;
        let password_element = ["GROUPPEERNAME", "GROUPFRIENDLYNAME"]
            .into_iter()
            .find(|e| fields.get(e).is_some());
        let invitation = if let Some(gmc) = fields.get("GMC") {
            if let Some(element) = password_element {
                return Err(Error::MixedInvitation { element });
            }
            Invitation::Certificate {
                cloud,
                chain: read_chain(gmc, "GMC")?,
                addresses: Addresses::read(fields.get("ADDRESSES"))?,
            }
        } else if password_element.is_none() {
            return Err(Error::MissingElement {
                element: "GMC",
                parent: ROOT,
            });
        } else if version != "1.1" {
            return Err(Error::UnsupportedVersion {
                element: ROOT,
                found: shorten(version),
                expected: "1.1 for a password invitation",
            });
        } else {
            let group = read_peer_name(fields.require("GROUPPEERNAME")?, "GROUPPEERNAME")?;
            let name = fields.require("GROUPFRIENDLYNAME")?.text()?;
            let group_friendly_name = FriendlyName::new(name).map_err(|_| Error::Value {
                element: "GROUPFRIENDLYNAME",
                found: shorten(name),
                reason: "expected 1 to 255 characters without control characters",
            })?;
            Invitation::Password {
                cloud,
                group,
                group_friendly_name,
                addresses: Addresses::read(fields.get("ADDRESSES"))?,
            }
        };
        Ok(invitation)
    }

    /// Writes the PEERINVITATION blob: `VERSION="1.0"` for a certificate invitation,
    /// `"1.1"` for a password invitation.
    pub fn to_xml(&self) -> String {
        match self {
            Invitation::Certificate {
                cloud,
                chain,
                addresses,
            } => {
                let mut w = Writer::new(ROOT, "1.0");
                cloud.write(&mut w);
                w.base64("GMC", &chain.to_pkcs7());
                addresses.write(&mut w);
                w.finish(ROOT)
            }
            Invitation::Password {
                cloud,
                group,
                group_friendly_name,
                addresses,
            } => {
                let mut w = Writer::new(ROOT, "1.1");
                cloud.write(&mut w);
                w.text("GROUPPEERNAME", &group.to_string());
                w.text("GROUPFRIENDLYNAME", group_friendly_name.as_str());
                addresses.write(&mut w);
                w.finish(ROOT)
            }
        }
    }

    /// How the invitation authenticates its holder.
    pub fn auth_scheme(&self) -> AuthScheme {
        match self {
            Invitation::Certificate { .. } => AuthScheme::Certificate,
            Invitation::Password { .. } => AuthScheme::Password,
        }
    }

    /// The group peer name.
    pub fn group(&self) -> &PeerName {
        match self {
            Invitation::Certificate { chain, .. } => chain.group(),
            Invitation::Password { group, .. } => group,
        }
    }

    /// The cloud.
    pub fn cloud(&self) -> &Cloud {
        match self {
            Invitation::Certificate { cloud, .. } | Invitation::Password { cloud, .. } => cloud,
        }
    }

    /// The bootstrap addresses.
    pub fn addresses(&self) -> &Addresses {
        match self {
            Invitation::Certificate { addresses, .. } | Invitation::Password { addresses, .. } => {
                addresses
            }
        }
    }

    /// The chain, for a certificate invitation.
    pub fn chain(&self) -> Option<&CertChain> {
        match self {
            Invitation::Certificate { chain, .. } => Some(chain),
            Invitation::Password { .. } => None,
        }
    }

    /// What Windows' `PEER_INVITATION_INFO` holds, derived from the blob.
    pub fn info(&self) -> InvitationInfo {
        InvitationInfo::of(self)
    }
}
