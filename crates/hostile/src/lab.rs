//! The set-up: a temporary directory, the node's home (identity and group made with the CLI,
//! records seeded through its control channel), and the members the attacks need — attackers
//! made in-process and invited with the CLI, honest members made and joined with the CLI.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use peergroup_identity::{Classifier, Identity, KeyPair, PeerName, Timestamp};
use peergroup_invitation_xml::{IdentityInfo, Invitation};
use peergroup_transport::{GroupCredentials, GroupTrust};

use crate::mesh::Attacker;
use crate::node::{NodeProc, forget_child, kill_child, register_child};
use crate::waits::CLI_WAIT;

/// The record type of the seeded records (and of the control channel's `add`s).
pub(crate) const SEED_TYPE: &str = "5ca1ab1e-0000-4000-8000-00000000a77a";
/// The group's friendly name.
pub(crate) const GROUP: &str = "Hostile";

/// Runs `exe --home home args…`, bounded by [`CLI_WAIT`]; its trimmed standard output, or an
/// error quoting its standard error.
pub(crate) fn cli(exe: &Path, home: &Path, args: &[&str]) -> Result<String> {
    let what = format!("peergroup {}", args.join(" "));
    let mut child = Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what} ({})", exe.display()))?;
    register_child(child.id());
    let stdout = child.stdout.take().map(read_all);
    let stderr = child.stderr.take().map(read_all);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < CLI_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                kill_child(&mut child);
                bail!("{what} did not finish within {CLI_WAIT:?}");
            }
            Err(e) => {
                kill_child(&mut child);
                bail!("{what}: waiting for it failed: {e}");
            }
        }
    };
    forget_child(child.id());
    let stdout = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if !status.success() {
        bail!(
            "{what} failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&stdout).trim().to_owned())
}

/// Reads a stream to its end on a thread of its own.
fn read_all(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        buf
    })
}

/// Copies the directory `from` to `to` (files and directories only).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// An honest member's data directory, joined to the group (with the CLI).
#[derive(Clone, Debug)]
pub(crate) struct PreparedMember {
    /// Its data directory.
    pub(crate) home: PathBuf,
    /// Its identity.
    pub(crate) identity: PeerName,
    /// The group.
    pub(crate) group: PeerName,
}

/// The suite's world.
pub(crate) struct Lab {
    /// The `peergroup` binary.
    pub(crate) exe: PathBuf,
    dir: tempfile::TempDir,
    /// The node's data directory as seeded; each attack runs on a copy of it.
    pub(crate) node_home: PathBuf,
    /// The group's peer name.
    pub(crate) group: PeerName,
    /// The node's identity.
    pub(crate) node_peer: PeerName,
    /// Ids of the records seeded through the node's control channel.
    pub(crate) seeded: Vec<String>,
    /// Shorter attacks.
    pub(crate) short: bool,
    next: AtomicUsize,
}

impl Lab {
    /// Makes the node's identity and the group in a new temporary directory.
    pub(crate) fn new(exe: PathBuf, short: bool) -> Result<Lab> {
        let dir = tempfile::Builder::new()
            .prefix("peergroup-hostile-")
            .tempdir()
            .context("making a temporary directory")?;
        let node_home = dir.path().join("node");
        let node_peer = cli(
            &exe,
            &node_home,
            &["identity", "create", "Node", "--classifier", "node"],
        )?;
        let node_peer: PeerName = node_peer.parse().map_err(|e| {
            anyhow::anyhow!("`identity create` printed {node_peer:?}, not a peer name: {e}")
        })?;
        let group = cli(&exe, &node_home, &["group", "create", GROUP])?;
        let group: PeerName = group.parse().map_err(|e| {
            anyhow::anyhow!("`group create` printed {group:?}, not a group peer name: {e}")
        })?;
        Ok(Lab {
            exe,
            dir,
            node_home,
            group,
            node_peer,
            seeded: Vec::new(),
            short,
            next: AtomicUsize::new(0),
        })
    }

    /// The temporary directory.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new number, for unique names.
    pub(crate) fn unique(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts a node on `home` on a free port.
    pub(crate) fn start_node(
        &self,
        name: &str,
        home: &Path,
        extra: &[String],
        markers: &[String],
    ) -> Result<NodeProc> {
        self.start_node_at(name, home, free_port()?, extra, markers)
    }

    /// Starts a node on `home` listening on `port`.
    pub(crate) fn start_node_at(
        &self,
        name: &str,
        home: &Path,
        port: u16,
        extra: &[String],
        markers: &[String],
    ) -> Result<NodeProc> {
        NodeProc::start(name, &self.exe, home, GROUP, port, extra, markers)
    }

    /// Seeds `n` records through the node's control channel and stops it.
    pub(crate) fn seed(&mut self, n: usize) -> Result<()> {
        let mut node = self.start_node("the node", &self.node_home.clone(), &[], &[])?;
        for i in 0..n {
            let id = node.add(SEED_TYPE, &format!("seeded record {i}"))?;
            self.seeded.push(id);
        }
        let count = node.record_count()?;
        if count < n {
            bail!("the node counts {count} records after {n} were seeded");
        }
        if let Some(complaint) = node.stop() {
            bail!("{complaint}");
        }
        Ok(())
    }

    /// A fresh copy of the seeded node's data directory (stopped), for one attack: every
    /// attack meets a node with the same identity, group and records, and nothing another
    /// attack left behind.
    pub(crate) fn fresh_node_home(&self, label: &str) -> Result<PathBuf> {
        let home = self.dir().join(format!("node-{label}-{}", self.unique()));
        copy_dir(&self.node_home, &home)
            .with_context(|| format!("copying {:?} to {home:?}", self.node_home))?;
        Ok(home)
    }

    /// Invites `identity_xml`'s identity with the admin of the node at `admin` (the CLI,
    /// node stopped); the invitation.
    fn invite(
        &self,
        admin: &Path,
        label: &str,
        identity_xml: &str,
        expires: Option<&str>,
    ) -> Result<Invitation> {
        let n = self.unique();
        let info = self.dir().join(format!("{label}-{n}.idinfo"));
        let inv = self.dir().join(format!("{label}-{n}.inv"));
        std::fs::write(&info, identity_xml).with_context(|| format!("writing {info:?}"))?;
        let (info_s, inv_s) = (info.to_string_lossy(), inv.to_string_lossy());
        let mut args = vec![
            "invite",
            "--group",
            GROUP,
            "--identity-info",
            &info_s,
            "-o",
            &inv_s,
        ];
        if let Some(e) = expires {
            args.extend(["--expires", e]);
        }
        cli(&self.exe, admin, &args)?;
        let xml = std::fs::read_to_string(&inv).with_context(|| format!("reading {inv:?}"))?;
        Invitation::parse(&xml)
            .with_context(|| format!("the invitation for {label} does not parse"))
    }

    /// An attacking member made in-process (friendly name `friendly`), invited by the admin
    /// of the node at `admin`, for `expires` (the CLI's `--expires`; default 30 days). The
    /// node must not run.
    pub(crate) fn attacker(
        &self,
        admin: &Path,
        label: &str,
        friendly: &str,
        expires: Option<&str>,
    ) -> Result<Attacker> {
        let classifier = Classifier::new(label)
            .map_err(|e| anyhow::anyhow!("classifier {label:?} refused: {e}"))?;
        let identity = Identity::generate(friendly, classifier, Timestamp::now())
            .map_err(|e| anyhow::anyhow!("making identity {friendly:?}: {e}"))?;
        let xml = IdentityInfo::new(identity.certificate().clone()).to_xml();
        let invitation = self.invite(admin, label, &xml, expires)?;
        let chain = invitation
            .chain()
            .with_context(|| format!("the invitation for {label} carries no certificate chain"))?
            .clone();
        let key = Arc::new(KeyPair::from_secret(&identity.key().secret()));
        let creds = GroupCredentials::new(self.group.clone(), key.clone(), chain.clone())
            .map_err(|e| anyhow::anyhow!("credentials for {label}: {e}"))?;
        Ok(Attacker {
            label: label.to_owned(),
            creds,
            trust: GroupTrust::new(self.group.clone()),
            key,
            chain,
            group: self.group.clone(),
        })
    }

    /// A member made with the CLI, invited by the admin of the node at `admin` and joined, in
    /// its own data directory.
    pub(crate) fn cli_member(
        &self,
        admin: &Path,
        label: &str,
        friendly: &str,
    ) -> Result<PreparedMember> {
        let n = self.unique();
        let home = self.dir().join(format!("{label}-{n}"));
        let peer = cli(
            &self.exe,
            &home,
            &["identity", "create", friendly, "--classifier", label],
        )?;
        let identity: PeerName = peer.parse().map_err(|e| {
            anyhow::anyhow!("`identity create` printed {peer:?}, not a peer name: {e}")
        })?;
        let xml = cli(&self.exe, &home, &["identity", "xml", &peer])?;
        let invitation = self.invite(admin, label, &xml, None)?;
        let inv = self.dir().join(format!("{label}-{n}.joined.inv"));
        std::fs::write(&inv, invitation.to_xml()).with_context(|| format!("writing {inv:?}"))?;
        cli(&self.exe, &home, &["join", &inv.to_string_lossy()])?;
        Ok(PreparedMember {
            home,
            identity,
            group: self.group.clone(),
        })
    }
}
