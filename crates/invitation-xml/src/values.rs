//! Values shared by the blobs: cloud (name, scope, flags), friendly names, bootstrap
//! addresses, and how each is read from and written to elements.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use peergroup_identity::PeerName;
use serde::Serialize;

use crate::error::{Error, shorten};
use crate::reader::{Element, is_xml_char};
use crate::tree::Fields;
use crate::writer::Writer;

/// The most bootstrap addresses a blob may carry.
pub const MAX_ADDRESSES: usize = 64;
/// The longest cloud name, in characters (Windows: 256 with the terminator).
pub const MAX_CLOUD_NAME: usize = 255;

/// The PNRP scope of a cloud (`dwScope`). peergroup has no PNRP; the value is carried so that
/// blobs keep the Windows shape and Windows invitations read faithfully.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Scope {
    /// `GLOBAL` (PEER_GROUP_SCOPE_GLOBAL, 1).
    #[serde(rename = "GLOBAL")]
    Global,
    /// `SITELOCAL` (2).
    #[serde(rename = "SITELOCAL")]
    SiteLocal,
    /// `LINKLOCAL` (3).
    #[serde(rename = "LINKLOCAL")]
    LinkLocal,
}

impl Scope {
    /// The text in the `SCOPE` element.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "GLOBAL",
            Scope::SiteLocal => "SITELOCAL",
            Scope::LinkLocal => "LINKLOCAL",
        }
    }

    /// The Windows `dwScope` number.
    pub const fn windows_value(self) -> u32 {
        match self {
            Scope::Global => 1,
            Scope::SiteLocal => 2,
            Scope::LinkLocal => 3,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;
    /// Reads exactly `GLOBAL`, `SITELOCAL` or `LINKLOCAL` (as Windows writes them).
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "GLOBAL" => Ok(Scope::Global),
            "SITELOCAL" => Ok(Scope::SiteLocal),
            "LINKLOCAL" => Ok(Scope::LinkLocal),
            _ => Err(Error::Scope { found: shorten(s) }),
        }
    }
}

/// A cloud name: at most [`MAX_CLOUD_NAME`] characters, none of them control characters or
/// characters XML cannot hold. It may be empty and keeps surrounding spaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CloudName(String);

impl CloudName {
    /// Checks and wraps a cloud name.
    pub fn new(name: &str) -> Result<Self, Error> {
        if name.chars().count() > MAX_CLOUD_NAME || !is_plain_text(name) {
            return Err(Error::InvalidCloudName(shorten(name)));
        }
        Ok(CloudName(name.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CloudName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The PNRP cloud a group was published in: `CLOUDNAME`, `SCOPE` and `CLOUDFLAGS`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Cloud {
    /// The cloud name, such as `Global_` or `LinkLocal_ff00::%10/8`.
    pub name: CloudName,
    /// The scope.
    pub scope: Scope,
    /// The cloud flags (a DWORD; Windows writes 0 or 1).
    pub flags: u32,
}

impl Cloud {
    /// The cloud peergroup writes: `Global_`, global scope, no flags.
    pub fn global() -> Self {
        Cloud {
            name: CloudName("Global_".to_owned()),
            scope: Scope::Global,
            flags: 0,
        }
    }

    /// Reads `CLOUDNAME`, `SCOPE` and `CLOUDFLAGS` from `fields`.
    pub(crate) fn read(fields: &Fields<'_>) -> Result<Self, Error> {
        let name = fields.require("CLOUDNAME")?.text()?;
        let name = CloudName::new(name).map_err(|_| Error::Value {
            element: "CLOUDNAME",
            found: shorten(name),
            reason: "expected at most 255 characters without control characters",
        })?;
        let scope = fields.require("SCOPE")?.text()?.parse()?;
        let flags = read_flags(fields.require("CLOUDFLAGS")?.text()?)?;
        Ok(Cloud { name, scope, flags })
    }

    /// Writes `CLOUDNAME`, `SCOPE` and `CLOUDFLAGS`.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.text("CLOUDNAME", self.name.as_str());
        w.text("SCOPE", self.scope.as_str());
        w.text("CLOUDFLAGS", &self.flags.to_string());
    }
}

impl Default for Cloud {
    fn default() -> Self {
        Cloud::global()
    }
}

fn read_flags(text: &str) -> Result<u32, Error> {
    let bad = || Error::Value {
        element: "CLOUDFLAGS",
        found: shorten(text),
        reason: "expected a decimal number from 0 to 4294967295",
    };
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// A friendly name that can be written to XML: what
/// [`check_friendly_name`](peergroup_identity::check_friendly_name) accepts (1 to 255
/// characters, no control characters), less the two characters XML cannot hold (U+FFFE,
/// U+FFFF). Surrounding spaces are kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct FriendlyName(String);

impl FriendlyName {
    /// Checks and wraps a friendly name.
    pub fn new(name: &str) -> Result<Self, Error> {
        if peergroup_identity::check_friendly_name(name).is_err() || !is_plain_text(name) {
            return Err(Error::InvalidFriendlyName(shorten(name)));
        }
        Ok(FriendlyName(name.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FriendlyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` has no control characters and only characters XML can hold.
fn is_plain_text(s: &str) -> bool {
    s.chars().all(|c| !c.is_control() && is_xml_char(c))
}

/// Bootstrap addresses of members to dial (peergroup's own addition to the Windows blobs):
/// at most [`MAX_ADDRESSES`], IPv4 or IPv6. An IPv6 scope id is kept (`[fe80::1%12]:3587`);
/// the flow label is not carried and is always zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Addresses(Vec<SocketAddr>);

impl Addresses {
    /// No addresses.
    pub const fn empty() -> Self {
        Addresses(Vec::new())
    }

    /// Checks the count and wraps the list (clearing IPv6 flow labels).
    pub fn new(addresses: Vec<SocketAddr>) -> Result<Self, Error> {
        if addresses.len() > MAX_ADDRESSES {
            return Err(Error::TooManyAddresses {
                count: addresses.len(),
                limit: MAX_ADDRESSES,
            });
        }
        let addresses = addresses
            .into_iter()
            .map(|a| match a {
                SocketAddr::V6(mut v6) => {
                    v6.set_flowinfo(0);
                    SocketAddr::V6(v6)
                }
                v4 => v4,
            })
            .collect();
        Ok(Addresses(addresses))
    }

    /// The addresses, in order.
    pub fn as_slice(&self) -> &[SocketAddr] {
        &self.0
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads an optional `<ADDRESSES><ADDRESS>…</ADDRESS>…</ADDRESSES>` (no attributes, only
    /// `ADDRESS` children, each a socket address such as `192.0.2.1:3587` or
    /// `[2001:db8::1]:3587`).
    pub(crate) fn read(element: Option<&Element>) -> Result<Self, Error> {
        let Some(element) = element else {
            return Ok(Addresses::empty());
        };
        element.check_attributes(&[])?;
        element.check_no_text()?;
        if element.children.len() > MAX_ADDRESSES {
            return Err(Error::TooManyAddresses {
                count: element.children.len(),
                limit: MAX_ADDRESSES,
            });
        }
        let mut out = Vec::with_capacity(element.children.len());
        for child in &element.children {
            if child.name != "ADDRESS" {
                return Err(Error::UnknownElement {
                    element: shorten(&child.name),
                    parent: "ADDRESSES".to_owned(),
                });
            }
            let text = child.text()?;
            let address = text.parse().map_err(|_| Error::Value {
                element: "ADDRESS",
                found: shorten(text),
                reason: "expected an IPv4 address and port (192.0.2.1:3587) or a bracketed \
                         IPv6 address and port ([2001:db8::1]:3587)",
            })?;
            out.push(address);
        }
        Addresses::new(out)
    }

    /// Writes the `ADDRESSES` element, or nothing when there are none.
    pub(crate) fn write(&self, w: &mut Writer) {
        if self.0.is_empty() {
            return;
        }
        w.open("ADDRESSES");
        for a in &self.0 {
            w.text("ADDRESS", &a.to_string());
        }
        w.close("ADDRESSES");
    }
}

impl TryFrom<Vec<SocketAddr>> for Addresses {
    type Error = Error;
    fn try_from(addresses: Vec<SocketAddr>) -> Result<Self, Error> {
        Addresses::new(addresses)
    }
}

impl<'a> IntoIterator for &'a Addresses {
    type Item = &'a SocketAddr;
    type IntoIter = std::slice::Iter<'a, SocketAddr>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// How an invitation lets its holder in (`PEER_GROUP_AUTH_SCHEME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthScheme {
    /// The invitation carries a member certificate chain issued to the invitee.
    Certificate,
    /// The invitee proves a password online and is issued a certificate then.
    Password,
}

/// Reads a secure peer name from a text element.
pub(crate) fn read_peer_name(element: &Element, name: &'static str) -> Result<PeerName, Error> {
    element.text()?.parse().map_err(|source| Error::PeerName {
        element: name,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_text() {
        for s in [Scope::Global, Scope::SiteLocal, Scope::LinkLocal] {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
        }
        for bad in ["global", "GLOBAL ", "", "LOCAL"] {
            assert!(matches!(bad.parse::<Scope>(), Err(Error::Scope { .. })));
        }
    }

    #[test]
    fn flags_text() {
        assert_eq!(read_flags("0").unwrap(), 0);
        assert_eq!(read_flags("4294967295").unwrap(), u32::MAX);
        for bad in ["", "-1", "+1", " 1", "4294967296", "0x1", "99999999999"] {
            assert!(read_flags(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        CloudName::new("").unwrap();
        CloudName::new("LinkLocal_ff00::%10/8").unwrap();
        CloudName::new(&"c".repeat(255)).unwrap();
        assert!(CloudName::new(&"c".repeat(256)).is_err());
        assert!(CloudName::new("a\nb").is_err());
        assert!(CloudName::new("a\u{fffe}").is_err());
        FriendlyName::new(" <&> \"x\" ").unwrap();
        assert!(FriendlyName::new("").is_err());
        assert!(FriendlyName::new("a\u{ffff}").is_err());
        assert!(FriendlyName::new("a\tb").is_err());
    }

    #[test]
    fn addresses_are_bounded_and_lose_flow_labels() {
        let many = vec!["192.0.2.1:1".parse().unwrap(); MAX_ADDRESSES + 1];
        assert!(matches!(
            Addresses::new(many),
            Err(Error::TooManyAddresses { count: 65, .. })
        ));
        let v6 = SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            3587,
            99,
            12,
        ));
        let a = Addresses::new(vec![v6]).unwrap();
        assert_eq!(a.as_slice()[0].to_string(), "[fe80::1%12]:3587");
        let SocketAddr::V6(stored) = a.as_slice()[0] else {
            panic!("not v6")
        };
        assert_eq!(stored.flowinfo(), 0);
    }
}
