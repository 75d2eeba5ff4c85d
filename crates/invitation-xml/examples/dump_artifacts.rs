//! Writes a sample group's certificates and every XML blob into a directory, for
//! `cargo xtask interop` to check with tools we did not write (openssl, xmllint):
//!
//! - `idc.pem`, `grc.pem`, `admin.pem`, `member.pem`, `member-tampered.pem`, `chain.p7b`;
//! - `identity-info.xml`, `invitation-certificate.xml`, `invitation-password.xml`,
//!   `identity-export.xml`, `group-config.xml`, `group-config-owner.xml`.
//!
//! ```text
//! cargo run -p peergroup-invitation-xml --example dump_artifacts -- <dir>
//! ```

use std::path::Path;
use std::time::Duration;

use peergroup_credential_roles::{GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, Identity, IdentityStore, Timestamp};
use peergroup_invitation_xml::{
    Addresses, Cloud, FriendlyName, GroupConfig, IdentityExport, IdentityInfo, Invitation,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: dump_artifacts <dir>")?;
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes);

    let now = Timestamp::now().saturating_sub(Duration::from_secs(60));
    let store = IdentityStore::open(dir.join("identities"))?;
    let alice = store.create("Alice & <Co>", Some("alice"))?;
    let bob = Identity::generate("Bob", Classifier::new("bob")?, now)?;
    let root = GroupRoot::create(
        "Friends \"Ünïcode\"",
        Classifier::new("friends")?,
        alice.peer_name(),
        now,
    )?;
    let request = |who: &Identity, role| MemberRequest {
        subject_key: who.key().public(),
        subject_peer: who.peer_name().clone(),
        subject_friendly_name: who.friendly_name().to_owned(),
        roles: Roles::one(role),
        classifiers: vec![],
        not_before: now,
        not_after: now.saturating_add(Duration::from_secs(86_400)),
    };
    let admin = root.issue(&request(&alice, Role::Admin))?;
    let member = admin.issue(alice.key(), &request(&bob, Role::Member))?;

    // Certificates.
    write("grc.pem", member.root().certificate().to_pem().as_bytes())?;
    write(
        "admin.pem",
        member.certificates()[1].certificate().to_pem().as_bytes(),
    )?;
    write(
        "member.pem",
        member.leaf().certificate().to_pem().as_bytes(),
    )?;
    write(
        "idc.pem",
        bob.certificate().certificate().to_pem().as_bytes(),
    )?;
    write("chain.p7b", &member.to_pkcs7())?;
    let mut tampered = member.leaf().der().to_vec();
    let at = tampered.len() - 10;
    tampered[at] ^= 1;
    let tampered = peergroup_identity::x509::Certificate::parse(&tampered)?;
    write("member-tampered.pem", tampered.to_pem().as_bytes())?;

    // XML blobs.
    write(
        "identity-info.xml",
        IdentityInfo::new(bob.certificate().clone())
            .to_xml()
            .as_bytes(),
    )?;
    let addresses = Addresses::new(vec![
        "192.0.2.7:3587".parse()?,
        "[2001:db8::7]:3587".parse()?,
    ])?;
    let invitation =
        Invitation::new_certificate(member.clone(), Cloud::global(), addresses.clone())?;
    write("invitation-certificate.xml", invitation.to_xml().as_bytes())?;
    let password = Invitation::new_password(
        root.group().clone(),
        FriendlyName::new(root.chain().root().subject_friendly_name())?,
        Cloud::global(),
        addresses,
    );
    write("invitation-password.xml", password.to_xml().as_bytes())?;
    let export = IdentityExport {
        peer_name: alice.peer_name().clone(),
        data: store.export(alice.peer_name(), b"pw")?,
    };
    write("identity-export.xml", export.to_xml().as_bytes())?;
    write(
        "group-config.xml",
        GroupConfig::new(member, Cloud::global(), None)?
            .to_xml()
            .as_bytes(),
    )?;
    let owner = GroupConfig::new(admin, Cloud::global(), Some(vec![7; 80]))?;
    write("group-config-owner.xml", owner.to_xml().as_bytes())?;
    Ok(())
}
