//! `peergroup group …`

use anyhow::Result;
use clap::Subcommand;
use peergroup_credential_roles::{GroupRoot, INFINITE, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, Timestamp};
use serde::Serialize;

use crate::groups::{self, Membership};
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
}

#[derive(Serialize)]
struct GroupLine {
    group_peer_name: String,
    friendly_name: String,
    identity: String,
    roles: Vec<String>,
    owner: bool,
    valid_until: String,
}

impl GroupLine {
    fn of(m: &Membership) -> Self {
        let leaf = m.chain.leaf();
        GroupLine {
            group_peer_name: m.group().to_string(),
            friendly_name: m.friendly_name().to_owned(),
            identity: m.identity.to_string(),
            roles: leaf.roles().iter().map(|r| r.name().to_owned()).collect(),
            owner: m.group_key.is_some(),
            valid_until: leaf.not_after().to_rfc3339(),
        }
    }
}

pub(crate) fn run(home: &Home, cmd: GroupCommand) -> Result<()> {
    match cmd {
        GroupCommand::Create {
            friendly_name,
            identity,
            classifier,
        } => {
            let me = home.identity(identity.as_deref())?;
            let now = Timestamp::now();
            let root = GroupRoot::create(
                &friendly_name,
                Classifier::new(&classifier)?,
                me.peer_name(),
                now,
            )?;
            let chain = root.issue(&MemberRequest {
                subject_key: me.key().public(),
                subject_peer: me.peer_name().clone(),
                subject_friendly_name: me.friendly_name().to_owned(),
                roles: Roles::one(Role::Admin),
                classifiers: vec![],
                not_before: now,
                not_after: now.saturating_add(INFINITE),
            })?;
            let membership = Membership {
                identity: me.peer_name().clone(),
                chain,
                group_key: Some(peergroup_identity::KeyPair::from_secret(
                    &root.key().secret(),
                )),
                addresses: vec![],
            };
            groups::save(&home.identities, &membership, false)?;
            println!("{}", root.group());
        }
        GroupCommand::List { identity, json } => {
            let only = identity.map(|q| home.identities.find(&q)).transpose()?;
            let list = groups::list(&home.identities, only.as_ref().map(|i| i.peer_name()))?;
            let lines: Vec<GroupLine> = list.iter().map(GroupLine::of).collect();
            if json {
                util::print_json(&lines)?;
            } else if lines.is_empty() {
                println!("no groups; create one with `peergroup group create <name>` or join one");
            } else {
                for l in lines {
                    println!(
                        "{}  {}  as {} [{}]{}",
                        l.group_peer_name,
                        l.friendly_name,
                        l.identity,
                        l.roles.join(","),
                        if l.owner { " owner" } else { "" }
                    );
                }
            }
        }
    }
    Ok(())
}
