//! Writes a sample group's certificates as PEM files into a directory (used by `cargo xtask
//! interop` to check them with OpenSSL): `grc.pem`, `admin.pem`, `member.pem`, `idc.pem`,
//! `member-tampered.pem`, `chain.p7b`.

use std::time::Duration;

use peergroup_credential_roles::{GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, Identity, Timestamp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: dump_chain <dir>")?;
    std::fs::create_dir_all(&dir)?;
    let now = Timestamp::now().saturating_sub(Duration::from_secs(60));
    let alice = Identity::generate("Alice", Classifier::new("alice")?, now)?;
    let bob = Identity::generate("Bob", Classifier::new("bob")?, now)?;
    let root = GroupRoot::create(
        "Friends",
        Classifier::new("friends")?,
        alice.peer_name(),
        now,
    )?;
    let req = |who: &Identity, role| MemberRequest {
        subject_key: who.key().public(),
        subject_peer: who.peer_name().clone(),
        subject_friendly_name: who.friendly_name().to_owned(),
        roles: Roles::one(role),
        classifiers: vec![],
        not_before: now,
        not_after: now.saturating_add(Duration::from_secs(86_400)),
    };
    let admin = root.issue(&req(&alice, Role::Admin))?;
    let member = admin.issue(alice.key(), &req(&bob, Role::Member))?;
    let pem = |c: &peergroup_identity::x509::Certificate| c.to_pem();
    let path = |name: &str| std::path::Path::new(&dir).join(name);
    std::fs::write(path("grc.pem"), pem(member.root().certificate()))?;
    std::fs::write(
        path("admin.pem"),
        pem(member.certificates()[1].certificate()),
    )?;
    std::fs::write(path("member.pem"), pem(member.leaf().certificate()))?;
    std::fs::write(path("idc.pem"), pem(bob.certificate().certificate()))?;
    std::fs::write(path("chain.p7b"), member.to_pkcs7())?;
    let mut tampered = member.leaf().der().to_vec();
    let at = tampered.len() - 10;
    tampered[at] ^= 1;
    let tampered = peergroup_identity::x509::Certificate::parse(&tampered)?;
    std::fs::write(path("member-tampered.pem"), tampered.to_pem())?;
    Ok(())
}
