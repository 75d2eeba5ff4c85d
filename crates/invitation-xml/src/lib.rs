//! Out-of-band XML blobs for [peergroup](https://github.com/peergroup/peergroup): what people
//! send each other by mail, chat or file to invite, join and move identities and groups.
//!
//! The blobs keep the element names of Windows Peer-to-Peer Grouping:
//!
//! | blob | type | what it carries |
//! |---|---|---|
//! | `PEERIDENTITYINFO` | [`IdentityInfo`] | an identity certificate, sent by an invitee to an inviter |
//! | `PEERINVITATION` | [`Invitation`] | a certificate chain for the invitee, or (password kind) the group's names |
//! | `PEERIDENTITYEXPORT` | [`IdentityExport`] | an identity sealed under a password |
//! | `PEERGROUPCONFIG` | [`GroupConfig`] | a member's chain for a group, and the sealed group key for its owner |
//!
//! Writers produce `<?xml version="1.0" encoding="utf-8"?>` and the root, compactly. Parsers
//! are strict and bounded, because blobs come from strangers: at most [`MAX_INPUT_BYTES`],
//! [`MAX_DEPTH`] levels, [`MAX_ELEMENTS`] elements, [`MAX_ATTRIBUTES`] attributes on an
//! element, [`MAX_TEXT_BYTES`] of text in a non-base64 element, [`MAX_ADDRESSES`] addresses;
//! no DTD, no entities but the predefined ones and character references, no processing
//! instructions, nothing after the root; every format is closed (an unknown element or
//! attribute is refused), elements come in the documented order, once. Every failure is an
//! [`Error`] naming what was wrong; nothing panics. XSDs for every blob are in
//! `docs/formats/`.
//!
//! A parsed invitation's chain is checked for structure (signatures, roles, nesting) but not
//! against the clock or revocations: call
//! [`CertChain::validate`](peergroup_credential_roles::CertChain::validate) for that.
//! [`Invitation::parse`] also reads real Windows password invitations (HomeGroup's).
//!
//! ```
//! use peergroup_identity::{Classifier, Identity, Timestamp};
//! use peergroup_invitation_xml::IdentityInfo;
//!
//! let bob = Identity::generate("Bob <laptop>", Classifier::new("bob")?, Timestamp::now())?;
//! let xml = IdentityInfo::new(bob.certificate().clone()).to_xml();
//! assert!(xml.starts_with(r#"<?xml version="1.0" encoding="utf-8"?><PEERIDENTITYINFO VERSION="1.0">"#));
//!
//! let parsed = IdentityInfo::parse(&xml)?;
//! assert_eq!(parsed.peer_name(), bob.peer_name());
//! assert_eq!(parsed.friendly_name(), "Bob <laptop>");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod chain;
mod config;
mod error;
mod export;
mod identity_info;
mod info;
mod invitation;
mod reader;
mod tree;
mod values;
mod writer;

#[doc(hidden)]
pub mod fuzz_targets;

pub use config::GroupConfig;
pub use error::Error;
pub use export::IdentityExport;
pub use identity_info::IdentityInfo;
pub use info::InvitationInfo;
pub use invitation::Invitation;
pub use reader::{MAX_ATTRIBUTES, MAX_DEPTH, MAX_ELEMENTS, MAX_INPUT_BYTES, MAX_TEXT_BYTES};
pub use tree::DATATYPES_NAMESPACE;
pub use values::{
    Addresses, AuthScheme, Cloud, CloudName, FriendlyName, MAX_ADDRESSES, MAX_CLOUD_NAME, Scope,
};
pub use writer::XML_DECLARATION;
