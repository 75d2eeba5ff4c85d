//! Writes the example blobs in `docs/formats/examples/` and the valid fuzz seeds in
//! `fuzz/seeds/<target>/`, from deterministic keys (serial numbers are random, so the
//! certificates differ on every run).
//!
//! ```text
//! cargo run -p peergroup-invitation-xml --example write_samples -- <repository root>
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a one-off generator"
)]

#[path = "../tests/api/support.rs"]
mod support;

use std::path::Path;

use peergroup_identity::{IdentityStore, KdfParams};
use peergroup_invitation_xml::IdentityExport;

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args()
        .nth(1)
        .ok_or("usage: write_samples <repository root>")?;
    let root = Path::new(&root);
    let s = support::samples();

    // A real sealed identity for the export example (default Argon2id costs).
    let dir = tempfile::tempdir()?;
    let store = IdentityStore::open(dir.path().join("ids"))?.with_kdf_params(KdfParams::DEFAULT);
    let bob = store.create("Bob", Some("bob"))?;
    let export = IdentityExport {
        peer_name: bob.peer_name().clone(),
        data: store.export(bob.peer_name(), b"correct horse battery staple")?,
    };

    let examples = root.join("docs/formats/examples");
    let pretty = support::pretty;
    write(
        &examples.join("peeridentityinfo.xml"),
        &pretty(&s.identity_info.to_xml()),
    )?;
    write(
        &examples.join("peerinvitation-certificate.xml"),
        &pretty(&s.certificate_invitation.to_xml()),
    )?;
    write(
        &examples.join("peerinvitation-password.xml"),
        &pretty(&s.password_invitation.to_xml()),
    )?;
    write(
        &examples.join("peerinvitation-homegroup.xml"),
        &format!("{}\n", support::HOMEGROUP_INVITATION),
    )?;
    write(
        &examples.join("peeridentityexport.xml"),
        &pretty(&export.to_xml()),
    )?;
    write(
        &examples.join("peergroupconfig.xml"),
        &pretty(&s.group_config.to_xml()),
    )?;

    let seeds = root.join("fuzz/seeds");
    let seed = |target: &str, name: &str, xml: &str| write(&seeds.join(target).join(name), xml);
    seed("identity_info", "valid.xml", &s.identity_info.to_xml())?;
    seed(
        "identity_info",
        "valid-pretty.xml",
        &pretty(&s.identity_info.to_xml()),
    )?;
    seed(
        "invitation",
        "valid-certificate.xml",
        &s.certificate_invitation.to_xml(),
    )?;
    seed(
        "invitation",
        "valid-password.xml",
        &s.password_invitation.to_xml(),
    )?;
    seed(
        "invitation",
        "valid-homegroup.xml",
        support::HOMEGROUP_INVITATION,
    )?;
    seed("identity_export", "valid.xml", &export.to_xml())?;
    seed(
        "identity_export",
        "valid-small.xml",
        &s.identity_export.to_xml(),
    )?;
    seed("group_config", "valid-owner.xml", &s.group_config.to_xml())?;
    seed(
        "group_config",
        "valid-member.xml",
        &s.member_config.to_xml(),
    )?;
    Ok(())
}
