//! `peergroup identity …`

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use peergroup_invitation_xml::IdentityExport;

use crate::input;
use crate::terminal::print_line;
use crate::util::{self, Home};

#[derive(Debug, Subcommand)]
pub(crate) enum IdentityCommand {
    /// Create an identity; prints its peer name.
    Create {
        /// A name people will recognise.
        friendly_name: String,
        /// The peer name's classifier (A-Z a-z 0-9 - _, at most 149).
        #[arg(long, default_value = peergroup_identity::DEFAULT_CLASSIFIER)]
        classifier: String,
    },
    /// List identities.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Print an identity's PEERIDENTITYINFO, to send to someone who will invite you.
    Xml {
        /// Peer name or friendly-name prefix.
        identity: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Export an identity with its secret key, protected by a password (PEERIDENTITYEXPORT).
    Export {
        /// Peer name or friendly-name prefix.
        identity: String,
        /// File whose first line is the password.
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Import an exported identity.
    Import {
        /// The PEERIDENTITYEXPORT file (`-` for standard input).
        file: PathBuf,
        /// File whose first line is the password.
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
    },
    /// Delete an identity (refused while it still holds groups).
    Delete {
        /// Peer name or friendly-name prefix.
        identity: String,
    },
    /// Show or set the default identity.
    Default {
        /// Peer name or friendly-name prefix to make the default.
        identity: Option<String>,
        /// JSON output (as an entry of `identity list --json`).
        #[arg(long)]
        json: bool,
    },
    /// Change an identity's friendly name.
    Rename {
        /// Peer name or friendly-name prefix.
        identity: String,
        /// The new friendly name.
        friendly_name: String,
    },
}

pub(crate) async fn run(home: &Home, cmd: IdentityCommand) -> Result<()> {
    let infra = home.offline().await?;
    let store = infra.identities();
    match cmd {
        IdentityCommand::Create {
            friendly_name,
            classifier,
        } => {
            // Commands find identities by name: a second of one name would make every later
            // lookup ambiguous.
            if let Some(same) = store
                .list()
                .await?
                .into_iter()
                .find(|s| s.friendly_name == friendly_name)
            {
                bail!(
                    "an identity called {friendly_name:?} exists already ({}); choose another name",
                    same.peer_name
                );
            }
            let id = store.create(&friendly_name, Some(&classifier)).await?;
            print_line(&id.peer_name().to_string())?;
        }
        IdentityCommand::List { json } => {
            let list = store.list().await?;
            if json {
                util::print_json(&list)?;
            } else if list.is_empty() {
                print_line("no identities; create one with `peergroup identity create <name>`")?;
            } else {
                for s in list {
                    let mark = if s.is_default { "*" } else { " " };
                    print_line(&format!("{mark} {}  {}", s.peer_name, s.friendly_name))?;
                }
            }
        }
        IdentityCommand::Xml { identity, output } => {
            let id = store.find(&identity).await?;
            let xml = infra.identity_info_xml(id.peer_name()).await?;
            util::emit(output.as_deref(), &xml)?;
        }
        IdentityCommand::Export {
            identity,
            password_file,
            output,
        } => {
            let id = store.find(&identity).await?;
            let password = util::read_password_file(&password_file)?;
            let data = store.export(id.peer_name(), &password).await?;
            let xml = IdentityExport {
                peer_name: id.peer_name().clone(),
                data,
            }
            .to_xml();
            util::emit(output.as_deref(), &xml)?;
        }
        IdentityCommand::Import {
            file,
            password_file,
        } => {
            let text = input::read_text(&file, input::IDENTITY_EXPORT)?;
            let export = IdentityExport::parse(&text)
                .with_context(|| format!("{} is not a PEERIDENTITYEXPORT", file.display()))?;
            let password = util::read_password_file(&password_file)?;
            let id = store
                .import(Some(&export.peer_name), &export.data, &password)
                .await?;
            print_line(&id.peer_name().to_string())?;
        }
        IdentityCommand::Delete { identity } => {
            let id = store.find(&identity).await?;
            store.delete(id.peer_name()).await?;
            print_line(&format!(
                "deleted {} ({})",
                id.peer_name(),
                id.friendly_name()
            ))?;
        }
        IdentityCommand::Default { identity, json } => {
            if let Some(q) = identity {
                let id = store.find(&q).await?;
                store.set_default(id.peer_name()).await?;
            }
            let id = store.default_identity().await?;
            if json {
                let entry = store
                    .list()
                    .await?
                    .into_iter()
                    .find(|s| s.peer_name == *id.peer_name())
                    .ok_or_else(|| anyhow::anyhow!("the default identity is not listed"))?;
                util::print_json(&entry)?;
            } else {
                print_line(&format!("{}  {}", id.peer_name(), id.friendly_name()))?;
            }
        }
        IdentityCommand::Rename {
            identity,
            friendly_name,
        } => {
            let id = store.find(&identity).await?;
            let id = store
                .set_friendly_name(id.peer_name(), &friendly_name)
                .await?;
            print_line(&format!("{}  {}", id.peer_name(), id.friendly_name()))?;
        }
    }
    Ok(())
}
