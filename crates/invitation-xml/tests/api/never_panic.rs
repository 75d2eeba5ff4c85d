//! No input makes a parser panic, and whatever parses survives a round trip (the fuzz bodies
//! assert that).

use std::sync::OnceLock;

use peergroup_invitation_xml::fuzz_targets;
use proptest::prelude::*;

use crate::support::{HOMEGROUP_INVITATION, samples};

fn all_bodies(data: &[u8]) {
    fuzz_targets::identity_info(data);
    fuzz_targets::invitation(data);
    fuzz_targets::identity_export(data);
    fuzz_targets::group_config(data);
}

/// Valid blobs of every kind, made once.
fn valid_blobs() -> &'static [String] {
    static BLOBS: OnceLock<Vec<String>> = OnceLock::new();
    BLOBS.get_or_init(|| {
        let s = samples();
        vec![
            s.identity_info.to_xml(),
            s.certificate_invitation.to_xml(),
            s.password_invitation.to_xml(),
            s.identity_export.to_xml(),
            s.group_config.to_xml(),
            s.member_config.to_xml(),
            HOMEGROUP_INVITATION.to_owned(),
        ]
    })
}

/// Pieces of our formats and of hostile XML, to glue together.
const FIXED: &[&str] = &[
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    "<PEERINVITATION VERSION=\"1.1\">",
    "<PEERINVITATION VERSION=\"1.0\">",
    "</PEERINVITATION>",
    "<PEERIDENTITYINFO VERSION=\"1.0\">",
    "</PEERIDENTITYINFO>",
    "<PEERIDENTITYEXPORT VERSION=\"1.0\">",
    "</PEERIDENTITYEXPORT>",
    "<PEERGROUPCONFIG VERSION=\"1.0\">",
    "</PEERGROUPCONFIG>",
    "<CLOUDNAME>Global_</CLOUDNAME>",
    "<SCOPE>GLOBAL</SCOPE>",
    "<CLOUDFLAGS>0</CLOUDFLAGS>",
    "<GROUPPEERNAME>2bcba40abd09492eb706b74f8f8932a6efb10979.x</GROUPPEERNAME>",
    "<GROUPFRIENDLYNAME>g</GROUPFRIENDLYNAME>",
    "<PEERNAME>2bcba40abd09492eb706b74f8f8932a6efb10979.x</PEERNAME>",
    "<DATA xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.base64\">",
    "</DATA>",
    "<IDC xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.base64\">",
    "</IDC>",
    "<GMC xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.base64\">",
    "</GMC>",
    "<ADDRESSES>",
    "</ADDRESSES>",
    "<ADDRESS>[::1]:1</ADDRESS>",
    "AAAA",
    "MAA=",
    "&amp;",
    "&#0;",
    "&#x10FFFF;",
    "&#xD800;",
    "&lol;",
    "<!DOCTYPE x>",
    "<![CDATA[x]]>",
    "<!-- c -->",
    "<?pi?>",
    "<",
    ">",
    "\"",
    "&",
    "/>",
    " ",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIXED).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
        1 => ".{0,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        all_bodies(&data);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in ".{0,256}") {
        all_bodies(text.as_bytes());
    }

    #[test]
    fn glued_pieces_never_panic(pieces in prop::collection::vec(piece(), 0..24)) {
        all_bodies(pieces.concat().as_bytes());
    }

    #[test]
    fn mutated_blobs_never_panic(
        which in 0usize..7,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut data = valid_blobs()[which].clone().into_bytes();
        for (at, byte, kind) in edits {
            let i = at.index(data.len().max(1));
            match kind {
                0 if i < data.len() => data[i] = byte,
                1 if i < data.len() => {
                    data.remove(i);
                }
                _ => data.insert(i.min(data.len()), byte),
            }
        }
        all_bodies(&data);
    }
}

#[test]
fn valid_blobs_pass_the_fuzz_bodies() {
    for blob in valid_blobs() {
        all_bodies(blob.as_bytes());
    }
}
