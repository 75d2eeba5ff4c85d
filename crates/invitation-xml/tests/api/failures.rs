//! One test per way a blob can be wrong; each names what was wrong.

use base64::Engine as _;
use peergroup_invitation_xml::{
    Cloud, Error, GroupConfig, IdentityExport, IdentityInfo, Invitation, MAX_INPUT_BYTES,
};

use crate::support::{HOMEGROUP_INVITATION, fixture, samples};

const DT: &str = "xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.base64\"";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every parser on the same text: all must fail.
fn parse_all(xml: &str) -> Vec<Result<(), Error>> {
    vec![
        IdentityInfo::parse(xml).map(drop),
        Invitation::parse(xml).map(drop),
        IdentityExport::parse(xml).map(drop),
        GroupConfig::parse(xml).map(drop),
    ]
}

fn certificate_invitation_xml() -> String {
    samples().certificate_invitation.to_xml()
}

#[test]
fn truncated_blobs_are_refused() {
    let s = samples();
    let blobs = [
        s.identity_info.to_xml(),
        s.certificate_invitation.to_xml(),
        s.password_invitation.to_xml(),
        s.identity_export.to_xml(),
        s.group_config.to_xml(),
    ];
    for xml in &blobs {
        for cut in (1..xml.len()).filter(|c| xml.is_char_boundary(*c)) {
            let part = &xml[..cut];
            for r in parse_all(part) {
                assert!(r.is_err(), "a prefix of {cut} bytes parsed");
            }
        }
    }
    let cut = &blobs[1][..blobs[1].len() - 5];
    let e = Invitation::parse(cut).unwrap_err();
    assert!(
        matches!(e, Error::Truncated { ref element } if element == "PEERINVITATION")
            || matches!(e, Error::Syntax { .. }),
        "{e}"
    );
    let e = Invitation::parse(&blobs[1][..blobs[1].len() - "</PEERINVITATION>".len()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the XML ends before element PEERINVITATION is closed (truncated input?)"
    );
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let xml = format!(
        "<PEERINVITATION VERSION=\"1.1\">{}",
        " ".repeat(600_000 - 30)
    );
    assert_eq!(xml.len(), 600_000);
    for r in parse_all(&xml) {
        let e = r.unwrap_err();
        assert_eq!(e.to_string(), "input is 600000 bytes, the limit is 524288");
    }
    assert!(matches!(
        Invitation::parse_bytes(xml.as_bytes()),
        Err(Error::TooLarge {
            size: 600_000,
            limit: MAX_INPUT_BYTES
        })
    ));
    // Exactly at the limit is fine as far as size goes.
    let at_limit = format!(
        "{}{}",
        HOMEGROUP_INVITATION,
        " ".repeat(MAX_INPUT_BYTES - HOMEGROUP_INVITATION.len())
    );
    Invitation::parse(&at_limit).unwrap();
}

#[test]
fn doctype_and_entities_are_refused() {
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \
                  \"&lol;&lol;&lol;&lol;\">]><PEERIDENTITYINFO VERSION=\"1.0\">&lol2;\
                  </PEERIDENTITYINFO>";
    for r in parse_all(laughs) {
        assert!(matches!(r, Err(Error::DocType)), "{r:?}");
    }
    let xxe = HOMEGROUP_INVITATION.replace("HomeGroup Peer Group", "&xxe;");
    let e = Invitation::parse(&xxe).unwrap_err();
    assert!(
        matches!(e, Error::EntityReference { ref name } if name == "xxe"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("entity reference &xxe; is not allowed")
    );
    let in_attribute = HOMEGROUP_INVITATION.replace("VERSION=\"1.1\"", "VERSION=\"&v;\"");
    assert!(matches!(
        Invitation::parse(&in_attribute),
        Err(Error::EntityReference { .. })
    ));
    // The predefined entities and character references are fine.
    let ok = HOMEGROUP_INVITATION.replace(
        "HomeGroup Peer Group",
        "&lt;Home&#x26;&#38;&apos;&quot;&gt;",
    );
    let info = Invitation::parse(&ok).unwrap().info();
    assert_eq!(info.group_friendly_name, "<Home&&'\">");
}

#[test]
fn processing_instructions_are_refused() {
    let xml = format!("<?xml-stylesheet href=\"x.xsl\"?>{HOMEGROUP_INVITATION}");
    assert!(matches!(
        Invitation::parse(&xml),
        Err(Error::ProcessingInstruction { ref target }) if target == "xml-stylesheet"
    ));
    let late = format!("\n<?xml version=\"1.0\"?>{HOMEGROUP_INVITATION}");
    assert!(matches!(
        Invitation::parse(&late),
        Err(Error::Declaration(_))
    ));
}

#[test]
fn too_deep_is_refused() {
    let xml = format!(
        "<PEERIDENTITYINFO VERSION=\"1.0\">{}{}</PEERIDENTITYINFO>",
        "<A>".repeat(8),
        "</A>".repeat(8)
    );
    let e = IdentityInfo::parse(&xml).unwrap_err();
    assert!(matches!(e, Error::TooDeep { limit: 8, .. }), "{e}");
}

#[test]
fn too_many_elements_are_refused() {
    let xml = HOMEGROUP_INVITATION.replace(
        "</PEERINVITATION>",
        &format!(
            "<ADDRESSES>{}</ADDRESSES></PEERINVITATION>",
            "<ADDRESS>1.2.3.4:5</ADDRESS>".repeat(130)
        ),
    );
    assert!(matches!(
        Invitation::parse(&xml),
        Err(Error::TooManyElements { limit: 128 })
    ));
}

#[test]
fn unknown_element_in_identity_info_is_refused() {
    let xml = samples()
        .identity_info
        .to_xml()
        .replace("</IDC>", "</IDC><EXTRA>x</EXTRA>");
    let e = IdentityInfo::parse(&xml).unwrap_err();
    assert_eq!(e.to_string(), "unknown element EXTRA in PEERIDENTITYINFO");
    let xml = samples()
        .identity_info
        .to_xml()
        .replace("<IDC ", "<EXTRA/><IDC ");
    assert!(matches!(
        IdentityInfo::parse(&xml),
        Err(Error::UnknownElement { .. })
    ));
}

#[test]
fn unknown_elements_and_attributes_are_refused_everywhere() {
    let xml = HOMEGROUP_INVITATION.replace("<SCOPE>", "<COMMENT/><SCOPE>");
    assert_eq!(
        Invitation::parse(&xml).unwrap_err().to_string(),
        "unknown element COMMENT in PEERINVITATION"
    );
    let xml = HOMEGROUP_INVITATION.replace("VERSION=\"1.1\"", "VERSION=\"1.1\" LANG=\"en\"");
    assert_eq!(
        Invitation::parse(&xml).unwrap_err().to_string(),
        "unknown attribute LANG on element PEERINVITATION"
    );
    let xml = HOMEGROUP_INVITATION.replace("<SCOPE>", "<SCOPE x=\"1\">");
    assert!(matches!(
        Invitation::parse(&xml),
        Err(Error::UnknownAttribute { .. })
    ));
    let xml = HOMEGROUP_INVITATION.replace("<SCOPE>LINKLOCAL", "<SCOPE><X/>LINKLOCAL");
    assert!(matches!(
        Invitation::parse(&xml),
        Err(Error::UnexpectedChild { .. })
    ));
    let xml = HOMEGROUP_INVITATION.replace("<SCOPE>", "stray<SCOPE>");
    assert!(matches!(
        Invitation::parse(&xml),
        Err(Error::UnexpectedText { .. })
    ));
    let xml = HOMEGROUP_INVITATION.replace("PEERINVITATION", "peerinvitation");
    assert_eq!(
        Invitation::parse(&xml).unwrap_err().to_string(),
        "expected root element PEERINVITATION, found peerinvitation"
    );
    let xml = HOMEGROUP_INVITATION.replace(
        "</PEERINVITATION>",
        "<ADDRESSES><HOST>x</HOST></ADDRESSES></PEERINVITATION>",
    );
    assert_eq!(
        Invitation::parse(&xml).unwrap_err().to_string(),
        "unknown element HOST in ADDRESSES"
    );
}

#[test]
fn duplicate_elements_are_refused() {
    let xml = HOMEGROUP_INVITATION.replace(
        "<SCOPE>LINKLOCAL</SCOPE>",
        "<SCOPE>LINKLOCAL</SCOPE><SCOPE>LINKLOCAL</SCOPE>",
    );
    assert_eq!(
        Invitation::parse(&xml).unwrap_err().to_string(),
        "duplicate element SCOPE in PEERINVITATION"
    );
    let info = samples().identity_info.to_xml();
    let start = info.find("<IDC").unwrap();
    let end = info.find("</IDC>").unwrap() + "</IDC>".len();
    let doubled = format!("{}{}{}", &info[..end], &info[start..end], &info[end..]);
    assert!(matches!(
        IdentityInfo::parse(&doubled),
        Err(Error::DuplicateElement { .. })
    ));
}

#[test]
fn elements_out_of_order_are_refused() {
    let xml = HOMEGROUP_INVITATION.replace(
        "<CLOUDNAME>LinkLocal_ff00::%10/8</CLOUDNAME><SCOPE>LINKLOCAL</SCOPE>",
        "<SCOPE>LINKLOCAL</SCOPE><CLOUDNAME>LinkLocal_ff00::%10/8</CLOUDNAME>",
    );
    assert_eq!(
        Invitation::parse(&xml).unwrap_err().to_string(),
        "element CLOUDNAME in PEERINVITATION must come before SCOPE"
    );
}

#[test]
fn missing_elements_are_named() {
    let xml = certificate_invitation_xml();
    let start = xml.find("<GMC").unwrap();
    let end = xml.find("</GMC>").unwrap() + "</GMC>".len();
    let without_gmc = format!("{}{}", &xml[..start], &xml[end..]);
    assert_eq!(
        Invitation::parse(&without_gmc).unwrap_err().to_string(),
        "missing element GMC in PEERINVITATION"
    );
    let cases = [
        ("<CLOUDNAME>LinkLocal_ff00::%10/8</CLOUDNAME>", "CLOUDNAME"),
        ("<SCOPE>LINKLOCAL</SCOPE>", "SCOPE"),
        ("<CLOUDFLAGS>1</CLOUDFLAGS>", "CLOUDFLAGS"),
        (
            "<GROUPFRIENDLYNAME>HomeGroup Peer Group</GROUPFRIENDLYNAME>",
            "GROUPFRIENDLYNAME",
        ),
    ];
    for (remove, name) in cases {
        let xml = HOMEGROUP_INVITATION.replace(remove, "");
        assert_eq!(
            Invitation::parse(&xml).unwrap_err().to_string(),
            format!("missing element {name} in PEERINVITATION")
        );
    }
    let xml = HOMEGROUP_INVITATION.replace(
        "<GROUPPEERNAME>2bcba40abd09492eb706b74f8f8932a6efb10979.HomeGroupPeerGroupClassifier</GROUPPEERNAME>",
        "",
    );
    assert_eq!(
        Invitation::parse(&xml).unwrap_err().to_string(),
        "missing element GROUPPEERNAME in PEERINVITATION"
    );
    assert_eq!(
        IdentityInfo::parse("<PEERIDENTITYINFO VERSION=\"1.0\"/>")
            .unwrap_err()
            .to_string(),
        "missing element IDC in PEERIDENTITYINFO"
    );
    let export = samples().identity_export.to_xml();
    let start = export.find("<DATA").unwrap();
    let end = export.find("</DATA>").unwrap() + "</DATA>".len();
    assert_eq!(
        IdentityExport::parse(&format!("{}{}", &export[..start], &export[end..]))
            .unwrap_err()
            .to_string(),
        "missing element DATA in PEERIDENTITYEXPORT"
    );
    let config = samples().group_config.to_xml();
    let start = config.find("<IDENTITYPEERNAME>").unwrap();
    let end = config.find("</IDENTITYPEERNAME>").unwrap() + "</IDENTITYPEERNAME>".len();
    assert_eq!(
        GroupConfig::parse(&format!("{}{}", &config[..start], &config[end..]))
            .unwrap_err()
            .to_string(),
        "missing element IDENTITYPEERNAME in PEERGROUPCONFIG"
    );
    let xml = HOMEGROUP_INVITATION.replace(" VERSION=\"1.1\"", "");
    assert_eq!(
        Invitation::parse(&xml).unwrap_err().to_string(),
        "missing attribute VERSION on element PEERINVITATION"
    );
}

#[test]
fn bad_base64_is_refused() {
    let info = samples().identity_info.to_xml();
    let start = info.find("bin.base64\">").unwrap() + "bin.base64\">".len();
    for bad in ["!!!!", "AAA", "AB==", "AAAA=", "QUJD-A=="] {
        let end = info.find("</IDC>").unwrap();
        let xml = format!("{}{bad}{}", &info[..start], &info[end..]);
        let e = IdentityInfo::parse(&xml).unwrap_err();
        assert!(
            matches!(e, Error::Base64 { element: "IDC", .. }),
            "{bad}: {e}"
        );
        assert!(e.to_string().starts_with("invalid base64 in element IDC"));
    }
    // Base64 that is fine but is not a certificate.
    let xml = format!(
        "<PEERIDENTITYINFO VERSION=\"1.0\"><IDC {DT}>{}</IDC></PEERIDENTITYINFO>",
        b64(b"not a certificate")
    );
    assert!(matches!(
        IdentityInfo::parse(&xml),
        Err(Error::Certificate { element: "IDC", .. })
    ));
    // A group certificate is not an identity certificate.
    let f = fixture();
    let xml = format!(
        "<PEERIDENTITYINFO VERSION=\"1.0\"><IDC {DT}>{}</IDC></PEERIDENTITYINFO>",
        b64(f.bob_chain.leaf().der())
    );
    assert!(matches!(
        IdentityInfo::parse(&xml),
        Err(Error::Certificate { .. })
    ));
}

#[test]
fn base64_attributes_are_checked() {
    let info = samples().identity_info.to_xml();
    let cases = [
        (
            info.replace("dt:dt=\"bin.base64\"", "dt:dt=\"bin.hex\""),
            "dt:dt",
        ),
        (info.replace(" dt:dt=\"bin.base64\"", ""), "dt:dt"),
        (
            info.replace("urn:schemas-microsoft-com:datatypes", "urn:other"),
            "xmlns:dt",
        ),
    ];
    for (xml, attribute) in cases {
        let e = IdentityInfo::parse(&xml).unwrap_err();
        assert!(
            matches!(&e, Error::WrongAttribute { attribute: a, .. } | Error::MissingAttribute { attribute: a, .. } if *a == attribute),
            "{e}"
        );
    }
}

#[test]
fn bad_peer_names_are_refused() {
    for bad in [
        "2BCBA40ABD09492EB706B74F8F8932A6EFB10979.HomeGroupPeerGroupClassifier",
        "2bcba40abd09492eb706b74f8f8932a6efb10979",
        "2bcba40abd09492eb706b74f8f8932a6efb10979.has space",
        " 2bcba40abd09492eb706b74f8f8932a6efb10979.HomeGroupPeerGroupClassifier",
        "",
    ] {
        let xml = HOMEGROUP_INVITATION.replace(
            "2bcba40abd09492eb706b74f8f8932a6efb10979.HomeGroupPeerGroupClassifier",
            bad,
        );
        let e = Invitation::parse(&xml).unwrap_err();
        assert!(
            matches!(
                e,
                Error::PeerName {
                    element: "GROUPPEERNAME",
                    ..
                }
            ),
            "{bad:?}: {e}"
        );
    }
    let export = samples().identity_export;
    let xml = export
        .to_xml()
        .replace(&export.peer_name.to_string(), "alice");
    assert!(matches!(
        IdentityExport::parse(&xml),
        Err(Error::PeerName {
            element: "PEERNAME",
            ..
        })
    ));
}

#[test]
fn bad_values_are_refused() {
    let e =
        Invitation::parse(&HOMEGROUP_INVITATION.replace(">LINKLOCAL<", ">linklocal<")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid SCOPE \"linklocal\": expected GLOBAL, SITELOCAL or LINKLOCAL"
    );
    for bad in ["-1", "yes", "4294967296", " 1", ""] {
        let xml = HOMEGROUP_INVITATION.replace("<CLOUDFLAGS>1<", &format!("<CLOUDFLAGS>{bad}<"));
        assert!(
            matches!(
                Invitation::parse(&xml),
                Err(Error::Value {
                    element: "CLOUDFLAGS",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    for bad in ["", &"x".repeat(256), "a&#9;b"] {
        let xml = HOMEGROUP_INVITATION.replace(">HomeGroup Peer Group<", &format!(">{bad}<"));
        assert!(
            matches!(
                Invitation::parse(&xml),
                Err(Error::Value {
                    element: "GROUPFRIENDLYNAME",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    let xml = HOMEGROUP_INVITATION.replace(">LinkLocal_ff00::%10/8<", ">a&#10;b<");
    assert!(matches!(
        Invitation::parse(&xml),
        Err(Error::Value {
            element: "CLOUDNAME",
            ..
        })
    ));
    for bad in [
        "192.0.2.1",
        "192.0.2.1:99999",
        "2001:db8::1:3587",
        "[fe80::1%eth0]:1",
        "host:1",
        " 192.0.2.1:1",
    ] {
        let xml = HOMEGROUP_INVITATION.replace(
            "</PEERINVITATION>",
            &format!("<ADDRESSES><ADDRESS>{bad}</ADDRESS></ADDRESSES></PEERINVITATION>"),
        );
        assert!(
            matches!(
                Invitation::parse(&xml),
                Err(Error::Value {
                    element: "ADDRESS",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn too_many_addresses_are_refused() {
    let list = |n: usize| {
        HOMEGROUP_INVITATION.replace(
            "</PEERINVITATION>",
            &format!(
                "<ADDRESSES>{}</ADDRESSES></PEERINVITATION>",
                "<ADDRESS>192.0.2.1:3587</ADDRESS>".repeat(n)
            ),
        )
    };
    assert_eq!(Invitation::parse(&list(64)).unwrap().addresses().len(), 64);
    assert_eq!(
        Invitation::parse(&list(65)).unwrap_err().to_string(),
        "65 bootstrap addresses, at most 64 are allowed"
    );
    assert!(Invitation::parse(&list(0)).unwrap().addresses().is_empty());
}

#[test]
fn trailing_garbage_is_refused() {
    for tail in [
        "<X/>",
        "garbage",
        "<!-- c -->",
        "<PEERINVITATION VERSION=\"1.1\"/>",
        "\0",
    ] {
        let xml = format!("{HOMEGROUP_INVITATION}{tail}");
        let e = Invitation::parse(&xml).unwrap_err();
        assert!(
            matches!(
                e,
                Error::ContentOutsideRoot { .. }
                    | Error::Syntax { .. }
                    | Error::IllegalCharacter { .. }
            ),
            "{tail:?}: {e}"
        );
    }
    // White space after the root is fine.
    Invitation::parse(&format!("{HOMEGROUP_INVITATION}\r\n\n  ")).unwrap();
}

#[test]
fn versions_are_checked() {
    let xml = HOMEGROUP_INVITATION.replace("VERSION=\"1.1\"", "VERSION=\"2.0\"");
    assert_eq!(
        Invitation::parse(&xml).unwrap_err().to_string(),
        "PEERINVITATION VERSION \"2.0\" is not supported: expected 1.0 or 1.1"
    );
    let xml = HOMEGROUP_INVITATION.replace("VERSION=\"1.1\"", "VERSION=\"1.0\"");
    assert!(matches!(
        Invitation::parse(&xml),
        Err(Error::UnsupportedVersion { .. })
    ));
    // A certificate invitation may say 1.1.
    let xml = certificate_invitation_xml().replace("VERSION=\"1.0\"", "VERSION=\"1.1\"");
    Invitation::parse(&xml).unwrap();
    let xml = samples()
        .identity_info
        .to_xml()
        .replace("VERSION=\"1.0\"", "VERSION=\"1.1\"");
    assert!(matches!(
        IdentityInfo::parse(&xml),
        Err(Error::UnsupportedVersion { .. })
    ));
}

#[test]
fn mixed_invitations_are_refused() {
    let xml = certificate_invitation_xml().replace(
        "</GMC>",
        "</GMC><GROUPPEERNAME>2bcba40abd09492eb706b74f8f8932a6efb10979.x</GROUPPEERNAME>",
    );
    let e = Invitation::parse(&xml).unwrap_err();
    assert!(
        matches!(
            e,
            Error::MixedInvitation {
                element: "GROUPPEERNAME"
            }
        ),
        "{e}"
    );
}

#[test]
fn tampered_chain_bytes_are_refused() {
    let f = fixture();
    let pkcs7 = f.bob_chain.to_pkcs7();
    let xml_with = |bytes: &[u8]| {
        format!(
            "<PEERINVITATION VERSION=\"1.0\"><CLOUDNAME>Global_</CLOUDNAME><SCOPE>GLOBAL</SCOPE>\
             <CLOUDFLAGS>0</CLOUDFLAGS><GMC {DT}>{}</GMC></PEERINVITATION>",
            b64(bytes)
        )
    };
    Invitation::parse(&xml_with(&pkcs7)).unwrap();

    // Every byte of every certificate is covered by a signature or the structure: flipping
    // any of them must be caught.
    let leaf = f.bob_chain.leaf().der();
    let leaf_at = pkcs7.windows(leaf.len()).position(|w| w == leaf).unwrap();
    for i in (leaf_at..leaf_at + leaf.len())
        .step_by(7)
        .chain([pkcs7.len() - 3])
    {
        let mut bad = pkcs7.clone();
        bad[i] ^= 0x01;
        let e = Invitation::parse(&xml_with(&bad)).unwrap_err();
        assert!(
            matches!(e, Error::Chain { element: "GMC", .. }),
            "byte {i}: {e}"
        );
    }
    // The root and the admin certificate too.
    for cert in &f.bob_chain.certificates()[..2] {
        let at = pkcs7
            .windows(cert.der().len())
            .position(|w| w == cert.der())
            .unwrap();
        let mut bad = pkcs7.clone();
        let last = at + cert.der().len() - 1;
        bad[last] ^= 0x80;
        assert!(matches!(
            Invitation::parse(&xml_with(&bad)),
            Err(Error::Chain { .. })
        ));
    }
    // Truncated chain bytes.
    assert!(matches!(
        Invitation::parse(&xml_with(&pkcs7[..pkcs7.len() / 2])),
        Err(Error::Chain { .. })
    ));
    // A chain of the group root alone is no invitation.
    let e = Invitation::parse(&xml_with(&f.root.chain().to_pkcs7())).unwrap_err();
    assert!(
        e.to_string()
            .contains("must end in a group member certificate"),
        "{e}"
    );
    // Not PKCS#7 at all.
    assert!(matches!(
        Invitation::parse(&xml_with(b"\x30\x00")),
        Err(Error::Chain { .. })
    ));
    // The same checks in a group config.
    let config = GroupConfig::new(f.alice_chain.clone(), Cloud::global(), None)
        .unwrap()
        .to_xml();
    let good = b64(&f.alice_chain.to_pkcs7());
    let mut bad_bytes = f.alice_chain.to_pkcs7();
    let n = bad_bytes.len();
    bad_bytes[n - 5] ^= 0x10;
    let xml = config.replace(&good, &b64(&bad_bytes));
    assert_ne!(xml, config);
    assert!(matches!(GroupConfig::parse(&xml), Err(Error::Chain { .. })));
}

#[test]
fn group_config_must_agree_with_its_chain() {
    let f = fixture();
    let config = samples().group_config.to_xml();
    let xml = config.replace(
        &format!("<IDENTITYPEERNAME>{}<", f.alice.peer_name()),
        &format!("<IDENTITYPEERNAME>{}<", f.bob.peer_name()),
    );
    let e = GroupConfig::parse(&xml).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ChainMismatch {
                element: "IDENTITYPEERNAME",
                ..
            }
        ),
        "{e}"
    );
    let xml = config.replace(
        &format!("<GROUPPEERNAME>{}<", f.root.group()),
        &format!("<GROUPPEERNAME>{}<", f.bob.peer_name()),
    );
    let e = GroupConfig::parse(&xml).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ChainMismatch {
                element: "GROUPPEERNAME",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn not_text_is_refused() {
    assert!(matches!(
        Invitation::parse_bytes(b"<PEERINVITATION \xff/>"),
        Err(Error::Encoding { encoding: "UTF-8" })
    ));
    assert!(matches!(
        Invitation::parse_bytes(&[0xfe, 0xff, 0xd8, 0x00]),
        Err(Error::Encoding { encoding: "UTF-16" })
    ));
    let declared = format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{HOMEGROUP_INVITATION}");
    assert!(matches!(
        Invitation::parse(&declared),
        Err(Error::Declaration(_))
    ));
    assert!(matches!(Invitation::parse(""), Err(Error::NoRoot)));
    assert!(matches!(Invitation::parse("   "), Err(Error::NoRoot)));
}
