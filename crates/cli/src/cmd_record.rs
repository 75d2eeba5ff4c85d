//! `peergroup record …`, `peergroup members`, `peergroup connections`.
//!
//! Record commands work on the local replica of the group: what is added here reaches the
//! other members when the group next connects (`peergroup run` or `chat` with this data
//! directory).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use base64::Engine as _;
use clap::{Args, Subcommand};
use peergroup::{Record, RecordId, RecordType, RecordUpdate};
use serde::Serialize;

use crate::cmd_group::MemberView;
use crate::input;
use crate::terminal::{inert, print_line};
use crate::util::{self, Home};

#[derive(Debug, Args)]
pub(crate) struct GroupArg {
    /// The group (peer name or friendly-name prefix).
    #[arg(long)]
    pub(crate) group: String,
    /// The member identity, when several of yours belong to the group.
    #[arg(long)]
    pub(crate) identity: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RecordCommand {
    /// Publish a record; prints its id.
    Add {
        #[command(flatten)]
        group: GroupArg,
        /// The record type (a GUID).
        #[arg(long = "type")]
        record_type: RecordType,
        /// A file with the attribute XML (`<attributes>…</attributes>`), or `-` for standard
        /// input; at most 64 KiB.
        #[arg(long, value_name = "FILE")]
        attributes: Option<PathBuf>,
        /// The payload: a file, or `-` for standard input; at most the group's maximum record
        /// size (`group show`).
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
        /// Lifetime.
        #[arg(long, default_value = "1h", value_parser = util::parse_duration)]
        expires: Duration,
    },
    /// Show one record.
    Get {
        #[command(flatten)]
        group: GroupArg,
        /// The record id.
        id: RecordId,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// List records (of one type).
    List {
        #[command(flatten)]
        group: GroupArg,
        /// Only this type.
        #[arg(long = "type")]
        record_type: Option<RecordType>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Search records with a Windows search query (`<peersearch>…</peersearch>`).
    Search {
        #[command(flatten)]
        group: GroupArg,
        /// The query file, or `-` for standard input; at most 64 KiB.
        query: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Change a record (PeerGroupUpdateRecord): its attributes, data or lifetime; prints its
    /// new version.
    Update {
        #[command(flatten)]
        group: GroupArg,
        /// The record id.
        id: RecordId,
        /// A file with the new attribute XML, or `-` for standard input; at most 64 KiB.
        #[arg(long, value_name = "FILE")]
        attributes: Option<PathBuf>,
        /// The new payload: a file, or `-` for standard input.
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
        /// A new lifetime from now (a record's end may only move later).
        #[arg(long, value_parser = util::parse_duration)]
        expires: Option<Duration>,
    },
    /// Show the group's peer time (PeerGroupUniversalTimeToPeerTime): the clock the members
    /// share, and how far this member's clock is from it.
    PeerTime {
        #[command(flatten)]
        group: GroupArg,
    },
    /// Delete a record.
    Delete {
        #[command(flatten)]
        group: GroupArg,
        /// The record id.
        id: RecordId,
    },
}

#[derive(Debug, Args)]
pub(crate) struct MembersArgs {
    #[command(flatten)]
    group: GroupArg,
    /// Only members present (online), as last seen.
    #[arg(long)]
    present: bool,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    group: GroupArg,
    /// The member (friendly name, prefix, or peer name), who must be present.
    #[arg(long)]
    to: String,
    /// The data type (a GUID the receiving application listens for).
    #[arg(long = "type")]
    data_type: peergroup::DataType,
    /// The data: a file, or `-` for standard input; at most 4 MiB.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Extra addresses to dial (when no node runs the group here).
    #[arg(long = "connect", value_name = "ADDR")]
    connect: Vec<SocketAddr>,
    /// How long to wait to be in sync (when no node runs the group here).
    #[arg(long, default_value = "10s", value_parser = util::parse_duration)]
    wait: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct ConnectionsArgs {
    #[command(flatten)]
    group: GroupArg,
    /// Extra addresses to dial.
    #[arg(long = "connect", value_name = "ADDR")]
    connect: Vec<SocketAddr>,
    /// How long to wait for connections.
    #[arg(long, default_value = "10s", value_parser = util::parse_duration)]
    wait: Duration,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
pub(crate) struct RecordView {
    id: String,
    record_type: String,
    /// The name of a reserved (system) type, for a person.
    system: Option<&'static str>,
    version: u32,
    creator: String,
    modified_by: Option<String>,
    created: String,
    last_modified: String,
    expires: String,
    attributes: String,
    payload_base64: String,
    payload_text: Option<String>,
}

impl RecordView {
    pub(crate) fn of(r: &Record) -> Self {
        RecordView {
            id: r.id.to_string(),
            record_type: r.record_type.to_string(),
            system: r.record_type.reserved_name(),
            version: r.version,
            creator: r.creator.to_string(),
            modified_by: r.modified_by.as_ref().map(|p| p.to_string()),
            created: r.created.to_rfc3339(),
            last_modified: r.last_modified.to_rfc3339(),
            expires: r.expires.to_rfc3339(),
            attributes: r.attributes.clone(),
            payload_base64: base64::engine::general_purpose::STANDARD.encode(&r.payload),
            payload_text: String::from_utf8(r.payload.clone()).ok(),
        }
    }

    /// One line for a person: the payload, when it is text, shortened and made inert (`--json`
    /// gives it whole, and in base64).
    fn line(&self) -> String {
        let data = match &self.payload_text {
            Some(t) if t.chars().count() <= 60 => format!("\"{}\"", inert(t)),
            Some(t) => format!("\"{}\"…", inert(&t.chars().take(60).collect::<String>())),
            None => format!("{} bytes", self.payload_base64.len() * 3 / 4),
        };
        let kind = match self.system {
            Some(name) => format!("{} (system: {name})", self.record_type),
            None => self.record_type.clone(),
        };
        format!(
            "{}  {}  v{}  by {}  {}",
            self.id, kind, self.version, self.creator, data
        )
    }
}

fn print_records(records: &[Record], json: bool) -> Result<()> {
    let views: Vec<RecordView> = records.iter().map(RecordView::of).collect();
    if json {
        return util::print_json(&views);
    }
    if views.is_empty() {
        print_line("no records")?;
    }
    for v in views {
        print_line(&v.line())?;
    }
    Ok(())
}

/// Opens the group named by `arg` offline, runs `f`, closes it.
pub(crate) async fn with_group<T>(
    home: &Home,
    arg: &GroupArg,
    f: impl AsyncFnOnce(&util::OpenGroup) -> Result<T>,
) -> Result<T> {
    let infra = home.offline().await?;
    let found = util::group(&infra, &arg.group, arg.identity.as_deref()).await?;
    let group = home.open_group(&infra, &found).await?;
    let result = f(&group).await;
    group.done().await?;
    result
}

pub(crate) async fn run(home: &Home, cmd: RecordCommand) -> Result<()> {
    match cmd {
        RecordCommand::Add {
            group,
            record_type,
            attributes,
            data,
            expires,
        } => {
            let stdin = std::path::Path::new("-");
            if attributes.as_deref() == Some(stdin) && data.as_deref() == Some(stdin) {
                bail!("only one of --attributes and --data can be read from standard input (-)");
            }
            let r = with_group(home, &group, async |g| {
                let attributes = match &attributes {
                    Some(p) => input::read_text(p, input::ATTRIBUTES)?,
                    None => String::new(),
                };
                // The payload may not be larger than the group allows: read no more.
                let limit = match g.properties().await {
                    Ok(props) => input::record_data(props.max_record_size),
                    Err(_) => input::RECORD_DATA_CEILING,
                };
                let payload = match &data {
                    Some(p) => input::read_file_or_stdin(p, limit)?,
                    None => Vec::new(),
                };
                Ok(g.add_record(record_type, &attributes, payload, expires)
                    .await?)
            })
            .await?;
            print_line(&r.id.to_string())?;
        }
        RecordCommand::Get { group, id, json } => {
            let r = with_group(home, &group, async |g| Ok(g.record(id).await?)).await?;
            if json {
                util::print_json(&RecordView::of(&r))?;
            } else {
                let v = RecordView::of(&r);
                print_line(&v.line())?;
                if !v.attributes.is_empty() {
                    print_line(&format!("attributes: {}", v.attributes))?;
                }
                print_line(&format!(
                    "created {}, modified {}, expires {}",
                    v.created, v.last_modified, v.expires
                ))?;
            }
        }
        RecordCommand::List {
            group,
            record_type,
            json,
        } => {
            let records = with_group(home, &group, async |g| {
                Ok(match record_type {
                    Some(t) => g.records(t).await?,
                    None => g.search("<peersearch><clause attrib=\"peerrecordid\" type=\"string\">*</clause></peersearch>").await?,
                })
            })
            .await?;
            print_records(&records, json)?;
        }
        RecordCommand::Search { group, query, json } => {
            let q = input::read_text(&query, input::SEARCH_QUERY)?;
            let records = with_group(home, &group, async |g| Ok(g.search(&q).await?)).await?;
            print_records(&records, json)?;
        }
        RecordCommand::Update {
            group,
            id,
            attributes,
            data,
            expires,
        } => {
            let stdin = std::path::Path::new("-");
            if attributes.as_deref() == Some(stdin) && data.as_deref() == Some(stdin) {
                bail!("only one of --attributes and --data can be read from standard input (-)");
            }
            if attributes.is_none() && data.is_none() && expires.is_none() {
                bail!("nothing to change: give --attributes, --data or --expires");
            }
            let r = with_group(home, &group, async |g| {
                let attributes = match &attributes {
                    Some(p) => Some(input::read_text(p, input::ATTRIBUTES)?),
                    None => None,
                };
                let limit = match g.properties().await {
                    Ok(props) => input::record_data(props.max_record_size),
                    Err(_) => input::RECORD_DATA_CEILING,
                };
                let payload = match &data {
                    Some(p) => Some(input::read_file_or_stdin(p, limit)?),
                    None => None,
                };
                let update = RecordUpdate {
                    attributes,
                    payload,
                    expires: expires.map(|d| peergroup::Timestamp::now().saturating_add(d)),
                };
                Ok(g.update_record(id, update).await?)
            })
            .await?;
            print_line(&format!("{} v{}", r.id, r.version))?;
        }
        RecordCommand::PeerTime { group } => {
            let (now, peer) = with_group(home, &group, async |g| {
                let now = peergroup::Timestamp::now();
                Ok((now, g.to_peer_time(now).await?))
            })
            .await?;
            let ahead = peer.as_millis() as i128 - now.as_millis() as i128;
            print_line(&format!("peer time:  {}", peer.to_rfc3339()))?;
            print_line(&format!("local time: {}", now.to_rfc3339()))?;
            print_line(&format!(
                "the group's clock is {} ms {} this member's",
                ahead.unsigned_abs(),
                if ahead < 0 { "behind" } else { "ahead of" }
            ))?;
        }
        RecordCommand::Delete { group, id } => {
            with_group(home, &group, async |g| Ok(g.delete_record(id).await?)).await?;
            print_line(&format!("deleted {id}"))?;
        }
    }
    Ok(())
}

pub(crate) async fn members(home: &Home, a: MembersArgs) -> Result<()> {
    let members = with_group(home, &a.group, async |g| Ok(g.members(a.present).await?)).await?;
    let views: Vec<MemberView> = members.iter().map(MemberView::of).collect();
    if a.json {
        return util::print_json(&views);
    }
    for v in views {
        print_line(&v.line())?;
    }
    Ok(())
}

/// Sends data to one member over a direct connection (PeerGroupSendData): through the running
/// node when there is one, otherwise by connecting for the purpose.
pub(crate) async fn send(home: &Home, a: SendArgs) -> Result<()> {
    let payload = input::read_file_or_stdin(&a.data, input::DIRECT_DATA)?;
    let bytes = payload.len();
    let infra = home.online(&[], true, false).await?;
    let found = util::group(&infra, &a.group.group, a.group.identity.as_deref()).await?;
    let group = home.open_group(&infra, &found).await?;
    let result = async {
        if !group.is_served() {
            group.connect_to(a.connect.clone()).await?;
            group.wait_ready(a.wait).await?;
        }
        let members = group.members(true).await?;
        let to = crate::chat::whisper_target(&members, &a.to)?;
        let id = match group
            .direct_connections()
            .into_iter()
            .find(|c| c.peer == to)
        {
            Some(c) => c.id,
            None => group.open_direct_wait(&to).await?,
        };
        group
            .send_data(id, a.data_type, bytes::Bytes::from(payload))
            .await?;
        Ok::<_, anyhow::Error>(to)
    }
    .await;
    group.done().await?;
    let to = result?;
    print_line(&format!("sent {bytes} bytes to {to}"))
}

pub(crate) async fn connections(home: &Home, a: ConnectionsArgs) -> Result<()> {
    let infra = home.online(&[], true, false).await?;
    let found = util::group(&infra, &a.group.group, a.group.identity.as_deref()).await?;
    let group = home.open_group(&infra, &found).await?;
    let result = async {
        // The running node is connected already; only new addresses are worth a connect.
        if !group.is_served() || !a.connect.is_empty() {
            group.connect_to(a.connect.clone()).await?;
        }
        let _progress = (!group.is_served()).then(|| crate::progress::watch_sync((*group).clone()));
        if group.wait_ready(a.wait).await.is_err() && group.neighbor_connections().await?.is_empty()
        {
            bail!("no member could be reached within {:?}", a.wait);
        }
        Ok(group.connections().await?)
    }
    .await;
    group.done().await?;
    let conns = result?;
    if a.json {
        #[derive(Serialize)]
        struct C {
            id: u64,
            peer: String,
            addr: String,
            direct: bool,
        }
        let v: Vec<C> = conns
            .iter()
            .map(|c| C {
                id: c.id.0,
                peer: c.peer.to_string(),
                addr: c.addr.to_string(),
                direct: c.direct,
            })
            .collect();
        return util::print_json(&v);
    }
    for c in conns {
        print_line(&format!(
            "{}  {}  {}  {}",
            c.id.0,
            if c.direct { "direct" } else { "neighbor" },
            c.peer,
            c.addr
        ))?;
    }
    Ok(())
}
