//! Fixtures shared by the tests and the sample writer: deterministic identities, a group
//! and chains, and the real Windows HomeGroup invitation.

#![allow(
    dead_code,
    reason = "each user of this module needs a different part of it"
)]

use std::time::Duration;

use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, Identity, IdentityCertificate, KeyPair, PeerName, Timestamp};
use peergroup_invitation_xml::{
    Addresses, Cloud, CloudName, FriendlyName, GroupConfig, IdentityExport, IdentityInfo,
    Invitation, Scope,
};

/// The real password invitation of a Windows HomeGroup ([MS-HGRP] §4.1), verbatim.
pub(crate) const HOMEGROUP_INVITATION: &str = "<PEERINVITATION VERSION=\"1.1\"><CLOUDNAME>LinkLocal_ff00::%10/8</CLOUDNAME><SCOPE>LINKLOCAL</SCOPE><CLOUDFLAGS>1</CLOUDFLAGS><GROUPPEERNAME>2bcba40abd09492eb706b74f8f8932a6efb10979.HomeGroupPeerGroupClassifier</GROUPPEERNAME><GROUPFRIENDLYNAME>HomeGroup Peer Group</GROUPFRIENDLYNAME></PEERINVITATION>";

/// 2026-09-20T00:00:00Z or so: a fixed "now".
pub(crate) fn t0() -> Timestamp {
    Timestamp::from_secs(1_789_862_400)
}

/// A deterministic identity.
pub(crate) fn identity(seed: u64, classifier: &str, friendly_name: &str) -> Identity {
    let key = KeyPair::from_test_seed(seed);
    let peer = PeerName::new(&key.public(), Classifier::new(classifier).unwrap());
    let idc = IdentityCertificate::create(&key, &peer, friendly_name, t0()).unwrap();
    Identity::from_parts(key, idc).unwrap()
}

/// A group with the given friendly name, created by `creator`.
pub(crate) fn group(seed: u64, friendly_name: &str, creator: &Identity) -> GroupRoot {
    GroupRoot::with_key(
        KeyPair::from_test_seed(seed),
        friendly_name,
        Classifier::new("friends").unwrap(),
        creator.peer_name(),
        t0(),
    )
    .unwrap()
}

/// A request for `who` with `role`, valid for 30 days from [`t0`].
pub(crate) fn request(who: &Identity, role: Role) -> MemberRequest {
    MemberRequest {
        subject_key: who.key().public(),
        subject_peer: who.peer_name().clone(),
        subject_friendly_name: who.friendly_name().to_owned(),
        roles: Roles::one(role),
        classifiers: vec![],
        not_before: t0(),
        not_after: t0().saturating_add(Duration::from_secs(30 * 86_400)),
    }
}

/// Alice (admin, the creator), Bob (invited as a member by Alice), their chains.
pub(crate) struct Fixture {
    pub(crate) alice: Identity,
    pub(crate) bob: Identity,
    pub(crate) root: GroupRoot,
    pub(crate) alice_chain: CertChain,
    pub(crate) bob_chain: CertChain,
}

/// The fixture with the given friendly names (group, Alice, Bob).
pub(crate) fn fixture_named(group_name: &str, alice_name: &str, bob_name: &str) -> Fixture {
    let alice = identity(1, "alice", alice_name);
    let bob = identity(2, "bob", bob_name);
    let root = group(100, group_name, &alice);
    let alice_chain = root.issue(&request(&alice, Role::Admin)).unwrap();
    let bob_chain = alice_chain
        .issue(alice.key(), &request(&bob, Role::Member))
        .unwrap();
    Fixture {
        alice,
        bob,
        root,
        alice_chain,
        bob_chain,
    }
}

/// The usual fixture.
pub(crate) fn fixture() -> Fixture {
    fixture_named("Friends", "Alice", "Bob")
}

/// Some bootstrap addresses, IPv4 and IPv6.
pub(crate) fn addresses() -> Addresses {
    Addresses::new(vec![
        "192.0.2.1:3587".parse().unwrap(),
        "[2001:db8::1]:3587".parse().unwrap(),
        "[fe80::b424:f131:8bcc:b134%12]:3587".parse().unwrap(),
    ])
    .unwrap()
}

/// One value of each blob, for samples and schema checks.
pub(crate) struct Samples {
    pub(crate) identity_info: IdentityInfo,
    pub(crate) certificate_invitation: Invitation,
    pub(crate) password_invitation: Invitation,
    pub(crate) identity_export: IdentityExport,
    pub(crate) group_config: GroupConfig,
    pub(crate) member_config: GroupConfig,
}

pub(crate) fn samples() -> Samples {
    let f = fixture();
    Samples {
        identity_info: IdentityInfo::new(f.bob.certificate().clone()),
        certificate_invitation: Invitation::new_certificate(
            f.bob_chain.clone(),
            Cloud::global(),
            addresses(),
        )
        .unwrap(),
        password_invitation: Invitation::new_password(
            f.root.group().clone(),
            FriendlyName::new("Friends & \"Family\" <home>").unwrap(),
            Cloud {
                name: CloudName::new("LinkLocal_ff00::%10/8").unwrap(),
                scope: Scope::LinkLocal,
                flags: 1,
            },
            addresses(),
        ),
        identity_export: IdentityExport {
            peer_name: f.bob.peer_name().clone(),
            data: (0..=255).collect(),
        },
        group_config: GroupConfig::new(f.alice_chain.clone(), Cloud::global(), Some(vec![7; 90]))
            .unwrap(),
        member_config: GroupConfig::new(f.bob_chain, Cloud::global(), None).unwrap(),
    }
}

/// Indents a compact blob for people to read, wrapping base64 at 76 characters. The result
/// parses to the same value (white space between elements and inside base64 is allowed).
pub(crate) fn pretty(xml: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut rest = xml;
    let mut tokens = Vec::new();
    while !rest.is_empty() {
        let end = if rest.starts_with('<') {
            rest.find('>').map_or(rest.len(), |i| i + 1)
        } else {
            rest.find('<').unwrap_or(rest.len())
        };
        tokens.push(&rest[..end]);
        rest = &rest[end..];
    }
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        let indent = "  ".repeat(depth);
        if t.starts_with("<?") {
            out.push_str(t);
            out.push('\n');
        } else if t.starts_with("</") {
            depth = depth.saturating_sub(1);
            out.push_str(&"  ".repeat(depth));
            out.push_str(t);
            out.push('\n');
        } else if i + 2 < tokens.len() && !tokens[i + 1].starts_with('<') {
            // <X>text</X>
            let text = tokens[i + 1];
            if t.contains("bin.base64") && text.len() > 76 {
                out.push_str(&indent);
                out.push_str(t);
                out.push('\n');
                for chunk in text.as_bytes().chunks(76) {
                    out.push_str(&indent);
                    out.push_str("  ");
                    out.push_str(std::str::from_utf8(chunk).unwrap());
                    out.push('\n');
                }
                out.push_str(&indent);
            } else {
                out.push_str(&indent);
                out.push_str(t);
                out.push_str(text);
            }
            out.push_str(tokens[i + 2]);
            out.push('\n');
            i += 3;
            continue;
        } else {
            out.push_str(&indent);
            out.push_str(t);
            out.push('\n');
            depth += 1;
        }
        i += 1;
    }
    out
}
