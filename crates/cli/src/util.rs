//! Shared helpers: the data directory and infrastructure, finding groups, passwords,
//! durations, output.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use peergroup::{Group, GroupSummary, Identity, Infrastructure, InfrastructureConfig, PeerName};

use crate::{input, terminal};

/// The data directory, and the node running on it when a command runs for a client of that
/// node (see `control.rs`).
pub(crate) struct Home {
    pub(crate) dir: PathBuf,
    served: Option<ServedNode>,
}

/// A node running on a data directory (`run`, `chat`): its infrastructure and open groups.
#[derive(Clone)]
pub(crate) struct ServedNode {
    dir: PathBuf,
    infra: Infrastructure,
    /// Open groups: (identity, group, handle).
    groups: Vec<(PeerName, PeerName, Group)>,
}

impl ServedNode {
    pub(crate) fn new(
        dir: &Path,
        infra: &Infrastructure,
        identity: &PeerName,
        group: &Group,
    ) -> Self {
        ServedNode {
            dir: dir.to_path_buf(),
            infra: infra.clone(),
            groups: vec![(identity.clone(), group.peer_name().clone(), group.clone())],
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A group a command works on: opened for it (closed at [`OpenGroup::done`]) or one the
/// running node has open (left open).
pub(crate) struct OpenGroup {
    group: Group,
    owned: bool,
}

impl std::ops::Deref for OpenGroup {
    type Target = Group;
    fn deref(&self) -> &Group {
        &self.group
    }
}

impl OpenGroup {
    /// Whether the running node has it open (connected, serving).
    pub(crate) fn is_served(&self) -> bool {
        !self.owned
    }

    /// Closes it if the command opened it.
    pub(crate) async fn done(self) -> Result<()> {
        if self.owned {
            self.group.close().await?;
        }
        Ok(())
    }
}

impl Home {
    /// The directory a node serves, for commands run on its behalf.
    pub(crate) fn served(node: ServedNode) -> Self {
        Home {
            dir: node.dir.clone(),
            served: Some(node),
        }
    }

    /// The group `found` for a command: the running node's handle when it has it open,
    /// otherwise opened offline.
    pub(crate) async fn open_group(
        &self,
        infra: &Infrastructure,
        found: &GroupSummary,
    ) -> Result<OpenGroup> {
        if let Some(node) = &self.served
            && let Some((_, _, g)) = node
                .groups
                .iter()
                .find(|(i, g, _)| *i == found.identity && *g == found.group)
        {
            return Ok(OpenGroup {
                group: g.clone(),
                owned: false,
            });
        }
        Ok(OpenGroup {
            group: infra.open_group(&found.identity, &found.group).await?,
            owned: true,
        })
    }

    /// `--home`, else `PEERGROUP_HOME` (both handled by clap), else the platform data dir.
    pub(crate) fn resolve(explicit: Option<PathBuf>) -> Result<Self> {
        let dir = match explicit {
            Some(d) => d,
            None => directories::ProjectDirs::from("", "", "peergroup")
                .map(|p| p.data_dir().to_path_buf())
                .ok_or_else(|| anyhow!("no home directory found; pass --home DIR"))?,
        };
        Ok(Home { dir, served: None })
    }

    /// An infrastructure that does not listen (for commands that manage local data, or only
    /// dial out).
    pub(crate) async fn offline(&self) -> Result<Infrastructure> {
        if let Some(node) = &self.served {
            return Ok(node.infra.clone());
        }
        Ok(Infrastructure::start(InfrastructureConfig::offline(&self.dir)).await?)
    }

    /// An infrastructure listening on `listen` (falling back to any free port when the
    /// requested one is taken), with mDNS discovery and a UPnP port mapping on the router
    /// unless `discovery` is off; dialing QUIC first (TCP after 500 ms) when `quic_first`:
    /// QUIC is what hole punching runs on, and what shows a member behind a NAT its
    /// mapping. (Not by default: a member killed on a QUIC link is seen gone only at the
    /// idle timeout, where TCP's reset tells at once.)
    pub(crate) async fn online(
        &self,
        listen: &[SocketAddr],
        discovery: bool,
        quic_first: bool,
    ) -> Result<Infrastructure> {
        if let Some(node) = &self.served {
            return Ok(node.infra.clone());
        }
        let mut config = InfrastructureConfig::new(&self.dir);
        // The default port may be taken (another member on this machine): any port will do.
        // An address the user asked for is kept, or fails.
        config.port_fallback = listen.is_empty();
        if !listen.is_empty() {
            config.listen = listen.to_vec();
        }
        config.discovery = discovery;
        config.transport.port_mapping = discovery;
        if quic_first {
            config.transport.dial = peergroup::Dial::QuicThenTcp;
        }
        Ok(Infrastructure::start(config).await?)
    }
}

/// An identity by peer name or friendly-name prefix, or the default identity.
pub(crate) async fn identity(infra: &Infrastructure, query: Option<&str>) -> Result<Identity> {
    Ok(match query {
        Some(q) => infra.identities().find(q).await?,
        None => infra
            .identities()
            .default_identity()
            .await
            .context("choose one with --identity")?,
    })
}

/// A group by peer name or friendly-name prefix, among the groups of `identity` (or of
/// every identity). Returns the membership found.
pub(crate) async fn group(
    infra: &Infrastructure,
    query: &str,
    identity: Option<&str>,
) -> Result<GroupSummary> {
    let identities: Vec<PeerName> = match identity {
        Some(q) => vec![infra.identities().find(q).await?.peer_name().clone()],
        None => infra
            .identities()
            .list()
            .await?
            .into_iter()
            .map(|s| s.peer_name)
            .collect(),
    };
    let mut all = Vec::new();
    for id in identities {
        all.extend(infra.groups(&id).await?);
    }
    let exact: Vec<&GroupSummary> = all
        .iter()
        .filter(|g| g.group.to_string() == query || g.friendly_name == query)
        .collect();
    let matches: Vec<&GroupSummary> = if exact.is_empty() {
        all.iter()
            .filter(|g| g.friendly_name.starts_with(query))
            .collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [] => bail!("group not found: {query} (see `peergroup group list`)"),
        [one] => Ok((*one).clone()),
        many => bail!(
            "{query:?} matches several groups or memberships; name one with --identity or the group peer name: {}",
            many.iter()
                .map(|g| format!("{} as {}", g.group, g.identity))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Reads a password from a file: the first line, without its line ending. The file is read
/// through [`input::PASSWORD_FILE`], and every copy is zeroed when dropped.
pub(crate) fn read_password_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let bytes = input::read_secret_file(path, input::PASSWORD_FILE)?;
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bail!("password file {} is empty", path.display());
    }
    Ok(zeroize::Zeroizing::new(line.to_vec()))
}

/// The control endpoint of a node serving `group` on `home` (see `control.rs`).
pub(crate) fn control_endpoint(
    home: &Home,
    infra: &Infrastructure,
    identity: &PeerName,
    group: &Group,
) -> crate::control::Endpoint {
    crate::control::Endpoint::start(ServedNode::new(&home.dir, infra, identity, group))
}

/// Parses `15d`, `2h 30m`, `90s` …
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 15d, 12h, 30m)"))
}

/// Writes `text` to `output`, or to standard output when none is given.
pub(crate) fn emit(output: Option<&Path>, text: &str) -> Result<()> {
    match output {
        Some(p) => std::fs::write(crate::control::path(p), text)
            .with_context(|| format!("writing {}", p.display()))?,
        None if crate::control::write_out(text.as_bytes()) => {
            if !text.ends_with('\n') {
                crate::control::write_out(b"\n");
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

/// Prints a value as pretty JSON.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    emit(None, &serde_json::to_string_pretty(value)?)
}

/// An error and its causes on one line, made [`inert`](terminal::inert): a cause that quotes
/// a file, a peer or what the user typed cannot break the line or reach the terminal as
/// control characters.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = terminal::inert(&cause.to_string()).into_owned();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Logs to standard error at a level set by `-v`.
pub(crate) fn init_tracing(verbose: u8) {
    init_tracing_at(match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    });
}

/// Logs to standard error at `level` (unless `PEERGROUP_LOG` says otherwise). Log lines quote
/// peers and files, so each goes through [`terminal::InertWriter`] (and so without colours).
pub(crate) fn init_tracing_at(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PEERGROUP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| terminal::InertWriter(std::io::stderr()))
        .try_init();
}
