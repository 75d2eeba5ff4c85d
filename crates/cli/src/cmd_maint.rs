//! `peergroup db …`, `peergroup config …`, `peergroup revoke`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use peergroup::RevocationTarget;
use peergroup_record_db::export::{ImportMode, ImportReport};

use crate::cmd_record::{GroupArg, with_group};
use crate::progress::spinner;
use crate::terminal::print_line;
use crate::util::{self, Home};

#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Export the group's database to a file (checksummed; written atomically).
    Export {
        #[command(flatten)]
        group: GroupArg,
        /// The file to write.
        file: PathBuf,
    },
    /// Import a database export; every record is validated again (the group must not be
    /// running). Each refused record is listed with why; when any is refused nothing is
    /// imported and the command fails, unless --partial.
    Import {
        #[command(flatten)]
        group: GroupArg,
        /// The export file (at most 1 GiB).
        file: PathBuf,
        /// Import the valid records even when some are refused (they are still listed), and
        /// exit 0.
        #[arg(long)]
        partial: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Export your membership of a group (and the group key, if you created it) as a
    /// password-protected PEERGROUPCONFIG.
    Export {
        #[command(flatten)]
        group: GroupArg,
        /// The first line of this file is the password.
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Import a PEERGROUPCONFIG (the identity must already be here: `identity import`).
    Import {
        /// The PEERGROUPCONFIG file.
        file: PathBuf,
        /// The first line of this file is the password.
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
        /// Replace an existing membership.
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    group: GroupArg,
    /// The member to revoke: its peer name, or a friendly-name prefix among the members.
    member: String,
    /// Why (recorded in the revocation).
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Debug, Args)]
pub(crate) struct CredentialsArgs {
    #[command(flatten)]
    group: GroupArg,
    /// The member: its peer name, or a friendly-name prefix among the members.
    member: String,
    /// Its roles from now on (repeat for several; default: the ones it has).
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<peergroup::Role>,
    /// How long the new certificate lasts (default: as long as its current one).
    #[arg(long, value_parser = util::parse_duration)]
    lifetime: Option<std::time::Duration>,
    /// Also write the new credentials (a PEERINVITATION) to this file, for the member to join
    /// with at once.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Issues new credentials to a member (PeerGroupIssueCredentials): a role change or a
/// renewal, published in the group so the member takes them up when it next connects.
pub(crate) async fn credentials(home: &Home, a: CredentialsArgs) -> Result<()> {
    let (xml, peer, served) = with_group(home, &a.group, async |g| {
        let peer = member_named(&g.members(false).await?, &a.member)?;
        let roles = (!a.roles.is_empty()).then(|| a.roles.iter().copied().collect());
        let xml = g.issue_credentials(&peer, roles, a.lifetime, true).await?;
        Ok((xml, peer, g.is_served()))
    })
    .await?;
    if let Some(out) = &a.output {
        util::emit(Some(out), &xml)?;
    }
    let roles: Vec<&str> = a.roles.iter().map(|r| r.name()).collect();
    print_line(&format!(
        "new credentials for {peer}{} published; {}",
        if roles.is_empty() {
            String::new()
        } else {
            format!(" as {}", roles.join(","))
        },
        if served {
            "the member takes them up when it next connects"
        } else {
            "they reach the others when the group next connects"
        }
    ))
}

/// The member called `name` (its peer name, a friendly name, or a unique prefix of one),
/// other than the local one.
fn member_named(members: &[peergroup::Member], name: &str) -> Result<peergroup::PeerName> {
    if let Ok(p) = name.parse::<peergroup::PeerName>() {
        return Ok(p);
    }
    let others = || members.iter().filter(|m| !m.local);
    let exact: Vec<_> = others().filter(|m| m.friendly_name == name).collect();
    let found: Vec<_> = if exact.is_empty() {
        others()
            .filter(|m| m.friendly_name.starts_with(name))
            .collect()
    } else {
        exact
    };
    match found.as_slice() {
        [one] => Ok(one.peer.clone()),
        [] => anyhow::bail!("no member matches {name:?}"),
        _ => anyhow::bail!("{name:?} matches several members; give the peer name"),
    }
}

pub(crate) async fn db(home: &Home, cmd: DbCommand) -> Result<()> {
    match cmd {
        DbCommand::Export { group, file } => {
            let bar = spinner(&format!("exporting to {}", file.display()));
            let path = crate::control::path(&file);
            let n = with_group(home, &group, async |g| Ok(g.export_database(&path).await?)).await;
            bar.finish_and_clear();
            print_line(&format!("exported {} records to {}", n?, file.display()))?;
        }
        DbCommand::Import {
            group,
            file,
            partial,
        } => {
            let infra = home.offline().await?;
            let found = util::group(&infra, &group.group, group.identity.as_deref()).await?;
            let bar = spinner(&format!("importing {}", file.display()));
            let mode = if partial {
                ImportMode::Partial
            } else {
                ImportMode::AllOrNothing
            };
            let path = crate::control::path(&file);
            let report = infra.import_database(&found.identity, &found.group, &path, mode);
            bar.finish_and_clear();
            print_import(&report.await?, &file)?;
        }
    }
    Ok(())
}

/// Lists the records an import refused and sums it up; fails when it committed nothing
/// because of them.
fn print_import(report: &ImportReport, file: &Path) -> Result<()> {
    for refusal in &report.refused {
        // The reason may quote the record (attributes, names): shown inert.
        let reason = refusal.reason.to_string();
        crate::terminal::print_safe_line(&format!(
            "refused {}: {}",
            refusal.id,
            crate::terminal::inert(&reason)
        ))?;
    }
    let refused = report.refused.len();
    if !report.committed {
        anyhow::bail!(
            "{refused} of {} records in {} {} refused; nothing was imported (--partial \
             imports the {} valid records not held yet)",
            report.read,
            file.display(),
            if refused == 1 { "was" } else { "were" },
            report.accepted + report.deferred
        );
    }
    let mut line = format!(
        "imported {} records from {}",
        report.accepted,
        file.display()
    );
    if report.already_held > 0 {
        line += &format!(", {} already held", report.already_held);
    }
    if report.deferred > 0 {
        line += &format!(
            ", {} held until their signer's membership arrives",
            report.deferred
        );
    }
    if refused > 0 {
        line += &format!(", {refused} refused");
    }
    print_line(&line)
}

pub(crate) async fn config(home: &Home, cmd: ConfigCommand) -> Result<()> {
    let infra = home.offline().await?;
    match cmd {
        ConfigCommand::Export {
            group,
            password_file,
            output,
        } => {
            let found = util::group(&infra, &group.group, group.identity.as_deref()).await?;
            let password = util::read_password_file(&password_file)?;
            let xml = infra
                .export_config(&found.identity, &found.group, &password)
                .await?;
            util::emit(output.as_deref(), &xml)?;
        }
        ConfigCommand::Import {
            file,
            password_file,
            overwrite,
        } => {
            let xml = crate::input::read_text(&file, crate::input::GROUP_CONFIG)?;
            let password = util::read_password_file(&password_file)?;
            let (identity, group) = infra.import_config(&xml, &password, overwrite).await?;
            print_line(&format!("{group} (as {identity})"))?;
        }
    }
    Ok(())
}

pub(crate) async fn revoke(home: &Home, a: RevokeArgs) -> Result<()> {
    let record = with_group(home, &a.group, async |g| {
        let target = match a.member.parse::<peergroup::PeerName>() {
            Ok(p) => p,
            Err(_) => {
                let members = g.members(false).await?;
                let found: Vec<_> = members
                    .iter()
                    .filter(|m| m.friendly_name.starts_with(&a.member) && !m.local)
                    .collect();
                match found.as_slice() {
                    [one] => one.peer.clone(),
                    [] => anyhow::bail!("no member matches {:?}", a.member),
                    _ => {
                        anyhow::bail!("{:?} matches several members; give the peer name", a.member)
                    }
                }
            }
        };
        Ok((
            g.revoke(RevocationTarget::Peer(target), &a.reason).await?,
            g.is_served(),
        ))
    })
    .await?;
    let (record, served) = record;
    if served {
        print_line(&format!(
            "revoked ({}); the member's connections are closed and every member refuses it",
            record.id
        ))
    } else {
        print_line(&format!(
            "revoked ({}); the revocation reaches the others when the group next connects",
            record.id
        ))
    }
}
