//! The XSDs in docs/formats accept what we write, the examples and the Windows HomeGroup
//! invitation, and refuse what the parser refuses — checked with `xmllint`, a validator
//! nobody here wrote.
//!
//! Without `xmllint` on PATH these tests fail; set `PEERGROUP_SKIP_XMLLINT=1` to skip them
//! on a machine that cannot have it.

use std::path::{Path, PathBuf};
use std::process::Command;

use peergroup_invitation_xml::{GroupConfig, IdentityExport, IdentityInfo, Invitation};

use crate::support::{HOMEGROUP_INVITATION, fixture_named, pretty, samples};

fn formats_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/formats")
}

/// Whether to run: xmllint is there, or the caller asked to skip. Panics otherwise.
fn xmllint_available() -> bool {
    if std::env::var("PEERGROUP_SKIP_XMLLINT").as_deref() == Ok("1") {
        eprintln!("PEERGROUP_SKIP_XMLLINT=1: not validating against the XSDs");
        return false;
    }
    match Command::new("xmllint").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => panic!(
            "`xmllint --version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "xmllint is needed to validate the XML blobs against docs/formats/*.xsd but could \
             not be run ({e}). Install it (Debian: `apt-get install libxml2-utils`) or set \
             PEERGROUP_SKIP_XMLLINT=1 to skip these tests."
        ),
    }
}

/// Runs `xmllint --noout --schema <xsd> <files>`; returns success and the messages.
fn validate(xsd: &str, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(formats_dir().join(xsd))
        .args(files)
        .output()
        .unwrap();
    let messages = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), messages)
}

fn assert_valid(xsd: &str, files: &[PathBuf]) {
    let (ok, messages) = validate(xsd, files);
    assert!(ok, "xmllint refused files against {xsd}:\n{messages}");
}

fn write(dir: &Path, name: &str, xml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, xml).unwrap();
    path
}

#[test]
fn generated_blobs_validate() {
    if !xmllint_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = samples();
    // Awkward names, too.
    let awkward = fixture_named(" <Group> & \"co\" ", "Ålice 'the' admin", "  Bob 😀  ");
    let awkward_invitation = Invitation::new_certificate(
        awkward.bob_chain.clone(),
        peergroup_invitation_xml::Cloud::global(),
        peergroup_invitation_xml::Addresses::empty(),
    )
    .unwrap();
    let both = |name: &str, xml: String| -> Vec<PathBuf> {
        vec![
            write(d, &format!("{name}.xml"), &xml),
            write(d, &format!("{name}-pretty.xml"), &pretty(&xml)),
        ]
    };

    assert_valid(
        "peeridentityinfo.xsd",
        &[
            both("idc", s.identity_info.to_xml()),
            both(
                "idc-awkward",
                IdentityInfo::new(awkward.bob.certificate().clone()).to_xml(),
            ),
        ]
        .concat(),
    );
    assert_valid(
        "peerinvitation.xsd",
        &[
            both("cert-inv", s.certificate_invitation.to_xml()),
            both("pass-inv", s.password_invitation.to_xml()),
            both("cert-inv-awkward", awkward_invitation.to_xml()),
            vec![write(d, "homegroup.xml", HOMEGROUP_INVITATION)],
        ]
        .concat(),
    );
    assert_valid(
        "peeridentityexport.xsd",
        &[
            both("export", s.identity_export.to_xml()),
            both(
                "export-empty",
                IdentityExport {
                    peer_name: s.identity_export.peer_name.clone(),
                    data: vec![],
                }
                .to_xml(),
            ),
        ]
        .concat(),
    );
    assert_valid(
        "peergroupconfig.xsd",
        &[
            both("owner-config", s.group_config.to_xml()),
            both("member-config", s.member_config.to_xml()),
        ]
        .concat(),
    );
}

/// Which schema an example file is for, by its name.
fn schema_of(file: &str) -> &'static str {
    [
        "peeridentityinfo",
        "peerinvitation",
        "peeridentityexport",
        "peergroupconfig",
    ]
    .into_iter()
    .find(|p| file.starts_with(p))
    .map(|p| match p {
        "peeridentityinfo" => "peeridentityinfo.xsd",
        "peerinvitation" => "peerinvitation.xsd",
        "peeridentityexport" => "peeridentityexport.xsd",
        _ => "peergroupconfig.xsd",
    })
    .unwrap_or_else(|| panic!("example {file} is for no known blob"))
}

#[test]
fn examples_validate_and_parse() {
    let dir = formats_dir().join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for blob in [
        "peeridentityinfo",
        "peerinvitation",
        "peeridentityexport",
        "peergroupconfig",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(blob)),
            "no example for {blob} in {}",
            dir.display()
        );
    }
    // Our parser reads every example.
    for (path, name) in files.iter().zip(&names) {
        let bytes = std::fs::read(path).unwrap();
        let parsed = match schema_of(name) {
            "peeridentityinfo.xsd" => IdentityInfo::parse_bytes(&bytes).map(drop),
            "peerinvitation.xsd" => Invitation::parse_bytes(&bytes).map(drop),
            "peeridentityexport.xsd" => IdentityExport::parse_bytes(&bytes).map(drop),
            _ => GroupConfig::parse_bytes(&bytes).map(drop),
        };
        assert!(parsed.is_ok(), "{name}: {parsed:?}");
    }
    if !xmllint_available() {
        return;
    }
    for (path, name) in files.iter().zip(&names) {
        assert_valid(schema_of(name), std::slice::from_ref(path));
    }
}

#[test]
fn schemas_refuse_what_the_parser_refuses() {
    if !xmllint_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = samples();
    let info = s.identity_info.to_xml();
    let cases = [
        (
            "peeridentityinfo.xsd",
            info.replace("</IDC>", "</IDC><EXTRA/>"),
        ),
        (
            "peeridentityinfo.xsd",
            info.replace(" dt:dt=\"bin.base64\"", ""),
        ),
        (
            "peerinvitation.xsd",
            HOMEGROUP_INVITATION.replace(">LINKLOCAL<", ">linklocal<"),
        ),
        (
            "peerinvitation.xsd",
            HOMEGROUP_INVITATION.replace(
                "<GROUPFRIENDLYNAME>HomeGroup Peer Group</GROUPFRIENDLYNAME>",
                "",
            ),
        ),
        (
            "peerinvitation.xsd",
            HOMEGROUP_INVITATION.replace("VERSION=\"1.1\"", "VERSION=\"2.0\""),
        ),
        (
            "peerinvitation.xsd",
            HOMEGROUP_INVITATION.replace(
                "2bcba40abd09492eb706b74f8f8932a6efb10979.",
                "2BCBA40ABD09492EB706B74F8F8932A6EFB10979.",
            ),
        ),
        (
            "peerinvitation.xsd",
            s.certificate_invitation
                .to_xml()
                .replace("</GMC>", "</GMC><GROUPPEERNAME>x</GROUPPEERNAME>"),
        ),
        (
            "peerinvitation.xsd",
            HOMEGROUP_INVITATION.replace(
                "</PEERINVITATION>",
                &format!(
                    "<ADDRESSES>{}</ADDRESSES></PEERINVITATION>",
                    "<ADDRESS>192.0.2.1:1</ADDRESS>".repeat(65)
                ),
            ),
        ),
        (
            "peeridentityexport.xsd",
            s.identity_export
                .to_xml()
                .replace("<PEERNAME>", "<PEERNAME>x"),
        ),
        (
            "peergroupconfig.xsd",
            s.group_config
                .to_xml()
                .replace("<CLOUDFLAGS>0<", "<CLOUDFLAGS>-1<"),
        ),
    ];
    for (i, (xsd, xml)) in cases.iter().enumerate() {
        let path = write(d, &format!("bad-{i}.xml"), xml);
        let (ok, _) = validate(xsd, &[path]);
        assert!(!ok, "{xsd} accepted bad case {i}: {xml}");
        // And the parser refuses it too.
        let refused = match *xsd {
            "peeridentityinfo.xsd" => IdentityInfo::parse(xml).is_err(),
            "peerinvitation.xsd" => Invitation::parse(xml).is_err(),
            "peeridentityexport.xsd" => IdentityExport::parse(xml).is_err(),
            _ => GroupConfig::parse(xml).is_err(),
        };
        assert!(refused, "the parser accepted bad case {i}");
    }
}
