//! `cargo xtask interop`: our certificates and XML, checked by tools nobody here wrote.
//!
//! - `openssl x509 -text` prints the IDC, the GRC and the GMCs;
//! - `openssl verify` accepts GRC (trust anchor) → admin GMC (intermediate) → member GMC and
//!   rejects the same chain with a tampered member certificate;
//! - `openssl pkcs7 -print_certs` reads the chain as invitations carry it;
//! - `xmllint --schema` accepts every XML blob we write, both from the library and from the
//!   `peergroup` command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};

use crate::util::{self, cargo, step};

pub(crate) fn run() -> Result<()> {
    step("interop (openssl, xmllint)");
    util::ensure_tools(&[("openssl", "openssl"), ("xmllint", "libxml2-utils")], &[])?;
    let root = util::root();
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();

    util::run(cargo().args(["build", "-q", "-p", "peergroup-cli"]))?;
    util::run(
        cargo()
            .args([
                "run",
                "-q",
                "-p",
                "peergroup-invitation-xml",
                "--example",
                "dump_artifacts",
                "--",
            ])
            .arg(dir),
    )?;
    cli_blobs(&root, dir)?;

    for cert in ["idc.pem", "grc.pem", "admin.pem", "member.pem"] {
        let out = openssl(&["x509", "-noout", "-text", "-in"], &dir.join(cert))?;
        ensure!(
            out.contains("ED25519"),
            "openssl did not see an Ed25519 key in {cert}"
        );
        if cert != "idc.pem" {
            ensure!(
                out.contains("2.25.309153241466388463490775781528159792981.2"),
                "openssl did not print our group peer name extension in {cert}"
            );
        }
        eprintln!("openssl x509 -text {cert}: ok");
    }
    let verify = |leaf: &str| {
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(dir.join("grc.pem"))
            .arg("-untrusted")
            .arg(dir.join("admin.pem"))
            .arg(dir.join(leaf))
            .output()
    };
    let ok = verify("member.pem")?;
    ensure!(
        ok.status.success(),
        "openssl verify refused a valid chain: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    eprintln!("openssl verify member.pem: accepted");
    let bad = verify("member-tampered.pem")?;
    ensure!(
        !bad.status.success(),
        "openssl verify accepted a tampered certificate"
    );
    eprintln!("openssl verify member-tampered.pem: rejected");
    let p7 = openssl(
        &["pkcs7", "-inform", "DER", "-print_certs", "-in"],
        &dir.join("chain.p7b"),
    )?;
    ensure!(
        p7.matches("BEGIN CERTIFICATE").count() == 3,
        "openssl pkcs7 did not find 3 certificates"
    );
    eprintln!("openssl pkcs7 chain.p7b: 3 certificates");

    let schemas = root.join("docs/formats");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "xml") {
            continue;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let xsd = schemas.join(schema_for(&name)?);
        let out = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .arg(&path)
            .output()?;
        ensure!(
            out.status.success(),
            "xmllint rejected {name} against {}: {}",
            xsd.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    ensure!(checked >= 8, "only {checked} XML blobs were checked");
    eprintln!("xmllint --schema: {checked} blobs valid");
    Ok(())
}

/// Which schema a blob file is checked against, from its name's prefix.
fn schema_for(name: &str) -> Result<&'static str> {
    Ok(match name {
        n if n.starts_with("identity-info") => "peeridentityinfo.xsd",
        n if n.starts_with("invitation") => "peerinvitation.xsd",
        n if n.starts_with("identity-export") => "peeridentityexport.xsd",
        n if n.starts_with("group-config") => "peergroupconfig.xsd",
        n => bail!("no schema for {n}"),
    })
}

/// Makes blobs the way a user would: with the `peergroup` binary.
fn cli_blobs(root: &Path, dir: &Path) -> Result<()> {
    let exe = root.join("target/debug/peergroup");
    let home = dir.join("home");
    let pg = |args: &[&str]| -> Result<String> {
        let out = Command::new(&exe)
            .arg("--home")
            .arg(&home)
            .args(args)
            .output()?;
        ensure!(
            out.status.success(),
            "peergroup {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    };
    let out = |name: &str| -> PathBuf { dir.join(name) };
    pg(&[
        "identity",
        "create",
        "Alice & Co <admin>",
        "--classifier",
        "alice",
    ])?;
    let bob = pg(&["identity", "create", "Bob", "--classifier", "bob"])?;
    let bob = bob.trim();
    pg(&["group", "create", "Friends", "--identity", "Alice"])?;
    std::fs::write(out("identity-info-cli.xml"), pg(&["identity", "xml", bob])?)?;
    let invitation = pg(&[
        "invite",
        "--group",
        "Friends",
        "--identity-info",
        &out("identity-info-cli.xml").to_string_lossy(),
        "--role",
        "member",
    ])?;
    std::fs::write(out("invitation-cli.xml"), invitation)?;
    std::fs::write(out("pw"), "correct horse\n")?;
    let export = pg(&[
        "identity",
        "export",
        "Alice",
        "--password-file",
        &out("pw").to_string_lossy(),
    ])?;
    std::fs::write(out("identity-export-cli.xml"), export).context("writing export")?;
    Ok(())
}

fn openssl(args: &[&str], file: &Path) -> Result<String> {
    let out = Command::new("openssl").args(args).arg(file).output()?;
    ensure!(
        out.status.success(),
        "openssl {} {} failed: {}",
        args.join(" "),
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
