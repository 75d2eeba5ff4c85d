//! `peergroup group …`

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use peergroup::{GroupProperties, GroupSpec, Role};
use serde::Serialize;

use crate::terminal::print_line;
use crate::util::{self, Home};

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Create a group owned by an identity; prints the group peer name.
    Create {
        /// The group's friendly name.
        friendly_name: String,
        /// The creating identity (peer name or friendly-name prefix; default: the default one).
        #[arg(long)]
        identity: Option<String>,
        /// The group peer name's classifier.
        #[arg(long, default_value = "group")]
        classifier: String,
        /// A comment.
        #[arg(long, default_value = "")]
        comment: String,
        /// Make it a password group: the first line of this file is the password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// The role a password join grants.
        #[arg(long, default_value = "member", requires = "password_file")]
        password_role: Role,
    },
    /// List the groups your identities belong to.
    List {
        /// Only this identity's groups.
        #[arg(long)]
        identity: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show a group: properties, status and members (from the local replica).
    Show {
        #[command(flatten)]
        group: GroupName,
        /// The member identity, when several of yours belong to the group.
        #[arg(long)]
        identity: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Change group properties (the creator only).
    Set {
        #[command(flatten)]
        group: GroupName,
        /// The member identity.
        #[arg(long)]
        identity: Option<String>,
        /// New friendly name.
        #[arg(long)]
        name: Option<String>,
        /// New comment.
        #[arg(long)]
        comment: Option<String>,
        /// New maximum record size in bytes.
        #[arg(long)]
        max_record_size: Option<u32>,
        /// New presence lifetime in seconds (at least 300).
        #[arg(long)]
        presence_lifetime: Option<u32>,
        /// How many nodes' presence the group holds: a number (0: only the presence
        /// applications force), or `all` for every node's.
        #[arg(long, value_name = "N|all", value_parser = parse_max_presence)]
        max_presence: Option<u32>,
    },
    /// Give this member the group password (admins and inviting members of a password
    /// group), to take password joins: registers it (OPAQUE) in the member's credentials
    /// file, replacing what was there. Needed once for a record stored by a version before
    /// OPAQUE, which cannot be converted.
    SetPassword {
        #[command(flatten)]
        group: GroupName,
        /// The member identity.
        #[arg(long)]
        identity: Option<String>,
        /// The first line of this file is the password.
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
    },
    /// Delete your local data of a group.
    Delete {
        #[command(flatten)]
        group: GroupName,
        /// The member identity.
        #[arg(long)]
        identity: Option<String>,
    },
}

/// A group named positionally (`group show Friends`) or with `--group`, as every other
/// command takes it.
#[derive(Debug, Args)]
pub(crate) struct GroupName {
    /// The group (peer name or friendly-name prefix).
    #[arg(value_name = "GROUP", required_unless_present = "group_flag")]
    group_pos: Option<String>,
    /// The group, named as other commands take it.
    #[arg(
        long = "group",
        id = "group_flag",
        value_name = "GROUP",
        conflicts_with = "group_pos"
    )]
    group_flag: Option<String>,
}

impl GroupName {
    fn name(&self) -> &str {
        self.group_pos
            .as_deref()
            .or(self.group_flag.as_deref())
            .unwrap_or_default()
    }
}

/// `--max-presence`: a count, or `all` (every node's presence).
fn parse_max_presence(s: &str) -> Result<u32, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(GroupProperties::ALL_PRESENCE);
    }
    s.parse::<u32>()
        .ok()
        .filter(|n| *n != GroupProperties::ALL_PRESENCE)
        .ok_or_else(|| format!("'{s}' is not a number of presences below 4294967295, or 'all'"))
}

#[derive(Serialize)]
struct Shown {
    group: String,
    identity: String,
    friendly_name: String,
    comment: String,
    creator: String,
    roles: Vec<String>,
    status: StatusView,
    presence_lifetime_secs: u32,
    /// The presences the group holds; `null` when every node publishes its own.
    max_presence: Option<u32>,
    max_record_size: u32,
    password_group: bool,
    records: usize,
    members: Vec<MemberView>,
}

#[derive(Serialize)]
struct StatusView {
    listening: bool,
    has_connections: bool,
    synchronized: bool,
    /// Synchronised once, in this run or an earlier one.
    ever_synchronized: bool,
    /// A node is running the group on this data directory (it answered).
    running: bool,
}

#[derive(Serialize)]
pub(crate) struct MemberView {
    pub(crate) peer: String,
    pub(crate) friendly_name: String,
    /// As in `group list` and `group show`: an array of role names.
    pub(crate) roles: Vec<String>,
    pub(crate) present: bool,
    pub(crate) local: bool,
    pub(crate) revoked: bool,
    pub(crate) addresses: Vec<String>,
}

impl MemberView {
    pub(crate) fn of(m: &peergroup::Member) -> Self {
        MemberView {
            peer: m.peer.to_string(),
            friendly_name: m.friendly_name.clone(),
            roles: m.roles.iter().map(|r| r.name().to_owned()).collect(),
            present: m.present,
            local: m.local,
            revoked: m.revoked,
            addresses: m
                .nodes
                .iter()
                .flat_map(|(_, a)| a.iter().map(|a| a.to_string()))
                .collect(),
        }
    }

    /// One line for a person (raw: print it with [`print_line`], which makes it inert).
    pub(crate) fn line(&self) -> String {
        let mut flags = Vec::new();
        if self.local {
            flags.push("you");
        }
        if self.present {
            flags.push("present");
        }
        if self.revoked {
            flags.push("revoked");
        }
        format!(
            "{}  {}  [{}] {}",
            self.peer,
            self.friendly_name,
            self.roles.join(","),
            flags.join(",")
        )
    }
}

pub(crate) async fn run(home: &Home, cmd: GroupCommand) -> Result<()> {
    let infra = home.offline().await?;
    match cmd {
        GroupCommand::Create {
            friendly_name,
            identity,
            classifier,
            comment,
            password_file,
            password_role,
        } => {
            let me = util::identity(&infra, identity.as_deref()).await?;
            // Commands find groups by name: a second of one name would make every later
            // lookup ambiguous.
            if let Some(same) = infra
                .groups(me.peer_name())
                .await?
                .into_iter()
                .find(|g| g.friendly_name == friendly_name)
            {
                bail!(
                    "{} belongs to a group called {friendly_name:?} already ({}); choose another name",
                    me.friendly_name(),
                    same.group
                );
            }
            let mut spec = GroupSpec::new(&friendly_name);
            spec.classifier = classifier;
            spec.comment = comment;
            if let Some(f) = password_file {
                spec.password = Some((util::read_password_file(&f)?.to_vec(), password_role));
            }
            let group = infra.create_group(me.peer_name(), &spec).await?;
            print_line(&group.to_string())?;
        }
        GroupCommand::List { identity, json } => {
            let ids: Vec<peergroup::PeerName> = match identity {
                Some(q) => vec![infra.identities().find(&q).await?.peer_name().clone()],
                None => infra
                    .identities()
                    .list()
                    .await?
                    .into_iter()
                    .map(|s| s.peer_name)
                    .collect(),
            };
            let mut all = Vec::new();
            for id in ids {
                all.extend(infra.groups(&id).await?);
            }
            if json {
                util::print_json(&all)?;
            } else if all.is_empty() {
                print_line(
                    "no groups; create one with `peergroup group create <name>` or join one",
                )?;
            } else {
                for g in all {
                    print_line(&format!(
                        "{}  {}  as {} [{}]{}",
                        g.group,
                        g.friendly_name,
                        g.identity,
                        g.roles.join(","),
                        if g.owner { " owner" } else { "" }
                    ))?;
                }
            }
        }
        GroupCommand::Show {
            group,
            identity,
            json,
        } => {
            let found = util::group(&infra, group.name(), identity.as_deref()).await?;
            let g = home.open_group(&infra, &found).await?;
            let props = g.properties().await?;
            let status = g.status();
            let members = g.members(false).await?;
            let (_, records) = g.digest().await?;
            let served = g.is_served();
            g.done().await?;
            let shown = Shown {
                group: found.group.to_string(),
                identity: found.identity.to_string(),
                friendly_name: props.friendly_name,
                comment: props.comment,
                creator: props.creator.to_string(),
                roles: found.roles,
                status: StatusView {
                    listening: status.listening,
                    has_connections: status.has_connections,
                    synchronized: status.synchronized,
                    ever_synchronized: status.ever_synchronized,
                    running: served,
                },
                presence_lifetime_secs: props.presence_lifetime_secs,
                max_presence: (props.max_presence != GroupProperties::ALL_PRESENCE)
                    .then_some(props.max_presence),
                max_record_size: props.max_record_size,
                password_group: props.password_auth,
                records,
                members: members.iter().map(MemberView::of).collect(),
            };
            if json {
                util::print_json(&shown)?;
            } else {
                // Names and the comment come from other members: each line is printed inert.
                print_line(&format!(
                    "group:        {} ({})",
                    shown.group, shown.friendly_name
                ))?;
                if !shown.comment.is_empty() {
                    print_line(&format!("comment:      {}", shown.comment))?;
                }
                print_line(&format!("creator:      {}", shown.creator))?;
                print_line(&format!(
                    "you:          {} [{}]",
                    shown.identity,
                    shown.roles.join(",")
                ))?;
                let s = &shown.status;
                if s.running {
                    print_line(&format!(
                        "status:       running here: listening={} connections={} synchronized={}",
                        s.listening, s.has_connections, s.synchronized
                    ))?;
                } else {
                    print_line(&format!(
                        "status:       {} (no node is running the group here; see `peergroup run`)",
                        if s.ever_synchronized {
                            "synchronized before"
                        } else {
                            "never synchronized"
                        }
                    ))?;
                }
                print_line(&format!(
                    "properties:   presence lifetime {} s, presence of {}, max record size {} \
                     bytes{}",
                    shown.presence_lifetime_secs,
                    shown
                        .max_presence
                        .map_or("every node".to_owned(), |m| format!("at most {m} nodes")),
                    shown.max_record_size,
                    if shown.password_group {
                        ", password group"
                    } else {
                        ""
                    }
                ))?;
                print_line(&format!("records:      {}", shown.records))?;
                print_line("members:")?;
                for m in &shown.members {
                    print_line(&format!("  {}", m.line()))?;
                }
            }
        }
        GroupCommand::Set {
            group,
            identity,
            name,
            comment,
            max_record_size,
            presence_lifetime,
            max_presence,
        } => {
            if name.is_none()
                && comment.is_none()
                && max_record_size.is_none()
                && presence_lifetime.is_none()
                && max_presence.is_none()
            {
                bail!(
                    "nothing to change: give --name, --comment, --max-record-size, \
                     --presence-lifetime or --max-presence"
                );
            }
            let found = util::group(&infra, group.name(), identity.as_deref()).await?;
            let g = home.open_group(&infra, &found).await?;
            let served = g.is_served();
            let result = async {
                let mut props = g.properties().await?;
                if let Some(n) = name {
                    props.friendly_name = n;
                }
                if let Some(c) = comment {
                    props.comment = c;
                }
                if let Some(m) = max_record_size {
                    props.max_record_size = m;
                }
                if let Some(p) = presence_lifetime {
                    props.presence_lifetime_secs = p;
                }
                if let Some(m) = max_presence {
                    props.max_presence = m;
                }
                g.set_properties(props).await
            }
            .await;
            g.done().await?;
            result?;
            if served {
                print_line(&format!("properties of {} changed", found.group))?;
            } else {
                print_line(&format!(
                    "properties of {} changed (they reach the others when the group next connects)",
                    found.group
                ))?;
            }
        }
        GroupCommand::SetPassword {
            group,
            identity,
            password_file,
        } => {
            let password = util::read_password_file(&password_file)?;
            let found = util::group(&infra, group.name(), identity.as_deref()).await?;
            let g = home.open_group(&infra, &found).await?;
            let result = g.set_password(&password).await;
            g.done().await?;
            result?;
            print_line(&format!(
                "{} takes password joins for {} with this password",
                found.identity, found.group
            ))?;
        }
        GroupCommand::Delete { group, identity } => {
            let found = util::group(&infra, group.name(), identity.as_deref()).await?;
            infra.delete_group(&found.identity, &found.group).await?;
            print_line(&format!(
                "deleted the local data of {} ({})",
                found.group, found.friendly_name
            ))?;
        }
    }
    Ok(())
}
