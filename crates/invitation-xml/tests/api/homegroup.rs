//! The real Windows HomeGroup password invitation ([MS-HGRP] §4.1) parses verbatim.

use peergroup_invitation_xml::{AuthScheme, Invitation, Scope};

use crate::support::HOMEGROUP_INVITATION;

#[test]
fn homegroup_invitation_parses_verbatim() {
    let xml = "<PEERINVITATION VERSION=\"1.1\"><CLOUDNAME>LinkLocal_ff00::%10/8</CLOUDNAME><SCOPE>LINKLOCAL</SCOPE><CLOUDFLAGS>1</CLOUDFLAGS><GROUPPEERNAME>2bcba40abd09492eb706b74f8f8932a6efb10979.HomeGroupPeerGroupClassifier</GROUPPEERNAME><GROUPFRIENDLYNAME>HomeGroup Peer Group</GROUPFRIENDLYNAME></PEERINVITATION>";
    assert_eq!(xml, HOMEGROUP_INVITATION);
    let invitation = Invitation::parse(xml).unwrap();
    let info = invitation.info();
    assert_eq!(info.auth_scheme, AuthScheme::Password);
    assert_eq!(info.cloud_name, "LinkLocal_ff00::%10/8");
    assert_eq!(info.scope, Scope::LinkLocal);
    assert_eq!(info.cloud_flags, 1);
    assert_eq!(
        info.group_peer_name.to_string(),
        "2bcba40abd09492eb706b74f8f8932a6efb10979.HomeGroupPeerGroupClassifier"
    );
    assert_eq!(info.group_friendly_name, "HomeGroup Peer Group");
    assert_eq!(info.issuer_peer_name, None);
    assert_eq!(info.issuer_friendly_name, None);
    assert_eq!(info.subject_peer_name, None);
    assert_eq!(info.subject_friendly_name, None);
    assert_eq!(info.validity_start, None);
    assert_eq!(info.validity_end, None);
    assert!(info.roles.is_empty());
    assert!(info.classifiers.is_empty());
    assert_eq!(info.subject_public_key, None);
    assert!(info.addresses.is_empty());

    // Written back, it is the same invitation (with our declaration in front).
    let again = Invitation::parse(&invitation.to_xml()).unwrap();
    assert_eq!(again, invitation);
    assert_eq!(
        invitation.to_xml(),
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>{xml}")
    );
}

#[test]
fn homegroup_invitation_as_windows_saves_it() {
    // UTF-16 little-endian with a byte order mark and a declaration saying so.
    let text = format!("<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n{HOMEGROUP_INVITATION}\r\n");
    let bytes: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let invitation = Invitation::parse_bytes(&bytes).unwrap();
    assert_eq!(invitation, Invitation::parse(HOMEGROUP_INVITATION).unwrap());
    // UTF-8 with a byte order mark.
    let bom = [b"\xef\xbb\xbf".as_slice(), HOMEGROUP_INVITATION.as_bytes()].concat();
    assert_eq!(Invitation::parse_bytes(&bom).unwrap(), invitation);
}

#[test]
fn homegroup_info_as_json() {
    let info = Invitation::parse(HOMEGROUP_INVITATION).unwrap().info();
    let json: serde_json::Value = serde_json::to_value(&info).unwrap();
    assert_eq!(json["auth_scheme"], "password");
    assert_eq!(json["scope"], "LINKLOCAL");
    assert_eq!(json["group_friendly_name"], "HomeGroup Peer Group");
    assert_eq!(json["validity_start"], serde_json::Value::Null);
    assert_eq!(json["roles"], serde_json::json!([]));
}
